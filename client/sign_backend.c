/*
 * sign_backend.c - the file-key signer (OpenSSL) and the agent signer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "client/registry_auth.h"

#include "client/agent_client.h"
#include "client/sign_backend.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"

/* Payloads per SIGN_BATCH request (the agent caps a frame's size). */
#define SIGN_BATCH_MAX 64

struct sign_backend {
	EVP_PKEY *pkey; /* file backend: the private key */
	EVP_PKEY *pubkey; /* agent backend: the key's public half */
	struct agent_conn *agent;
	char *key_id; /* agent key id */
};

static int
open_file(const char *path, struct sign_backend *b)
{
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		error("cannot open key file %.200s", path);
		return TS_ERR_KEY_INVALID;
	}
	b->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (b->pkey == NULL) {
		(void)ts_err_ossl("PEM_read_PrivateKey");
		error("%.200s is not a PEM private key (unencrypted)", path);
		return TS_ERR_KEY_INVALID;
	}
	return 0;
}

/*
 * Connects to the agent and resolves key once, so a missing agent or key
 * fails before any registry work, and every signature names the same key
 * by its stable id.
 */
static int
open_agent(const char *key, struct sign_backend *b)
{
	struct agent_keylist *l = NULL;
	const struct agent_key *k = NULL;
	int r;

	if ((r = agent_connect(NULL, &b->agent)) != 0) {
		error("cannot reach the agent (is tokensign-agent running and "
		      "TOKENSIGN_AUTH_SOCK set?): %s",
		    ts_err(r));
		return r;
	}
	if ((r = agent_list_keys(b->agent, &l)) != 0) {
		(void)agent_perror(b->agent, r, "listing the agent's keys");
		return r;
	}
	if ((r = agent_keylist_find(l, key, &k)) != 0) {
		if (key == NULL && r == TS_ERR_P11_KEY_AMBIGUOUS)
			error("the agent holds %zu keys: choose one with --key",
			    l->n);
		else
			error("key %.200s: %s", key ? key : "(default)",
			    ts_err(r));
		agent_keylist_free(l);
		return r;
	}
	b->key_id = strdup(k->id);
	{
		const unsigned char *p = k->spki;

		b->pubkey = d2i_PUBKEY(NULL, &p, (long)k->spki_len);
	}
	agent_keylist_free(l);
	return b->key_id == NULL ? TS_ERR_ALLOC : 0;
}

int
sign_backend_open(const char *key, struct sign_backend **out)
{
	struct sign_backend *b;
	int r;

	*out = NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return TS_ERR_ALLOC;
	if (key != NULL && strncmp(key, "file:", 5) == 0) {
		if ((r = open_file(key + 5, b)) != 0) {
			free(b);
			return r;
		}
		*out = b;
		return 0;
	}
	if ((r = open_agent(key, b)) != 0) {
		sign_backend_close(b);
		return r;
	}
	*out = b;
	return 0;
}

void
sign_backend_close(struct sign_backend *b)
{
	if (b == NULL)
		return;
	EVP_PKEY_free(b->pkey);
	EVP_PKEY_free(b->pubkey);
	agent_close(b->agent);
	free(b->key_id);
	free(b);
}

/* SIGN_PAYLOAD for one, SIGN_BATCH for many (in chunks). */
static int
agent_sign_all(struct sign_backend *b, const uint8_t *const *payloads,
    const size_t *lens, size_t n, uint8_t **sigs, size_t *sig_lens)
{
	struct agent_batch_item items[SIGN_BATCH_MAX];
	size_t off, i, m;
	int r;

	if (n == 1) {
		r = agent_sign_payload(b->agent, b->key_id, payloads[0],
		    lens[0], &sigs[0], &sig_lens[0]);
		if (r != 0)
			(void)agent_perror(b->agent, r, "signing");
		return r;
	}
	for (off = 0; off < n; off += m) {
		m = n - off > SIGN_BATCH_MAX ? SIGN_BATCH_MAX : n - off;
		memset(items, 0, sizeof(items));
		for (i = 0; i < m; i++) {
			items[i].kind = TS_BATCH_PAYLOAD;
			items[i].data = payloads[off + i];
			items[i].len = lens[off + i];
		}
		r = agent_sign_batch(b->agent, b->key_id, items, m);
		for (i = 0; i < m; i++) {
			sigs[off + i] = items[i].sig;
			sig_lens[off + i] = items[i].siglen;
			if (r == 0 && items[i].r != 0)
				r = items[i].r;
		}
		if (r != 0) {
			(void)agent_perror(b->agent, r, "signing a batch");
			return r;
		}
	}
	return 0;
}

static int
file_sign(EVP_PKEY *pk, const uint8_t *msg, size_t len, uint8_t **sig,
    size_t *sig_len)
{
	EVP_MD_CTX *md = NULL;
	const EVP_MD *h =
	    EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
	uint8_t *s = NULL;
	size_t sl = 0;
	int r = TS_ERR_CRYPTO;

	*sig = NULL;
	*sig_len = 0;
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, h, NULL, pk) != 1 ||
	    EVP_DigestSign(md, NULL, &sl, msg, len) != 1 ||
	    (s = malloc(sl)) == NULL ||
	    EVP_DigestSign(md, s, &sl, msg, len) != 1) {
		r = ts_err_ossl("EVP_DigestSign");
		goto out;
	}
	*sig = s;
	*sig_len = sl;
	s = NULL;
	r = 0;
out:
	free(s);
	EVP_MD_CTX_free(md);
	return r;
}

int
sign_backend_sign(struct sign_backend *b, const uint8_t *const *payloads,
    const size_t *lens, size_t n, uint8_t **sigs, size_t *sig_lens)
{
	size_t i;
	int r = 0;

	for (i = 0; i < n; i++) {
		sigs[i] = NULL;
		sig_lens[i] = 0;
	}
	if (b->agent != NULL)
		r = agent_sign_all(b, payloads, lens, n, sigs, sig_lens);
	else
		for (i = 0; i < n && r == 0; i++)
			r = file_sign(b->pkey, payloads[i], lens[i], &sigs[i],
			    &sig_lens[i]);
	if (r != 0)
		for (i = 0; i < n; i++) {
			free(sigs[i]);
			sigs[i] = NULL;
			sig_lens[i] = 0;
		}
	return r;
}

int
sign_backend_verifies(const struct sign_backend *b, const uint8_t *payload,
    size_t len, const char *sig_b64)
{
	EVP_PKEY *k = b->pubkey != NULL ? b->pubkey : b->pkey;
	EVP_MD_CTX *md = NULL;
	unsigned char *sig = NULL;
	size_t sl = 0;
	int ok = 0;

	if (k == NULL || sig_b64 == NULL ||
	    regauth_b64_decode(sig_b64, &sig, &sl) != 0)
		return 0;
	if ((md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit(md, NULL,
		EVP_PKEY_get_id(k) == EVP_PKEY_ED25519 ? NULL : EVP_sha256(),
		NULL, k) == 1 &&
	    EVP_DigestVerify(md, sig, sl, payload, len) == 1)
		ok = 1;
	ERR_clear_error();
	EVP_MD_CTX_free(md);
	free(sig);
	return ok;
}
