/*
 * main.c - sigstore-kms-tokensign: cosign's KMS plugin program.  Binds the
 * plugin protocol (client/kms/kms.c) to the agent at $TOKENSIGN_AUTH_SOCK
 * through client/agent_client; one connection per invocation, opened on
 * first use so defaultAlgorithm/supportedAlgorithms answer without one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/agent_client.h"
#include "client/kms/kms.h"
#include "common/err.h"
#include "common/log.h"

struct agent_backend {
	struct agent_conn *conn;
	struct agent_keylist *keys;
};

static int
backend_conn(struct agent_backend *b)
{
	if (b->conn != NULL)
		return 0;
	return agent_connect(NULL, &b->conn);
}

static int
be_public_key(void *arg, const char *ref, uint8_t **spki, size_t *len)
{
	struct agent_backend *b = arg;
	const struct agent_key *k;
	int r;

	*spki = NULL;
	*len = 0;
	if ((r = backend_conn(b)) != 0)
		return r;
	if (b->keys == NULL && (r = agent_list_keys(b->conn, &b->keys)) != 0)
		return r;
	if ((r = agent_keylist_find(b->keys, ref, &k)) != 0)
		return r;
	if ((*spki = malloc(k->spki_len)) == NULL)
		return TS_ERR_ALLOC;
	memcpy(*spki, k->spki, k->spki_len);
	*len = k->spki_len;
	return 0;
}

static int
be_sign_payload(void *arg, const char *ref, const uint8_t *p, size_t len,
    uint8_t **sig, size_t *siglen)
{
	struct agent_backend *b = arg;
	int r;

	if ((r = backend_conn(b)) != 0)
		return r;
	return agent_sign_payload(b->conn, ref, p, len, sig, siglen);
}

static int
be_sign_digest(void *arg, const char *ref, int hash, const uint8_t *d,
    size_t len, uint8_t **sig, size_t *siglen)
{
	struct agent_backend *b = arg;
	int r;

	if ((r = backend_conn(b)) != 0)
		return r;
	return agent_sign_digest(b->conn, ref, hash, d, len, sig, siglen);
}

static const char *
be_last_error(void *arg)
{
	struct agent_backend *b = arg;

	return b->conn != NULL ? agent_last_error(b->conn) : "";
}

int
main(int argc, char **argv)
{
	static const struct kms_backend be = { be_public_key, be_sign_payload,
		be_sign_digest, be_last_error };
	struct agent_backend b;
	int r;

	ts_log_init("sigstore-kms-tokensign", TS_LOG_ERROR, 0);
	memset(&b, 0, sizeof(b));
	r = kms_run(&be, &b, argc, argv, stdin, stdout);
	agent_keylist_free(b.keys);
	agent_close(b.conn);
	/* cosign ignores the status; it helps people running us by hand */
	return r == 0 ? 0 : 1;
}
