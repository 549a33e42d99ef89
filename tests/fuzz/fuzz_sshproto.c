/*
 * fuzz_sshproto.c - ssh-agent frames (type byte + body) into
 * sshproto_handle() with one fixed software P-256 key behind the ops.  The
 * reply must be FAILURE, IDENTITIES_ANSWER or SIGN_RESPONSE, never
 * anything else, and nothing may leak or overrun.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "agent/sshproto.h"
#include "common/wbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed throw-away test key, so seeds can name it in SIGN_REQUEST. */
static const char fuzz_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgY1Lzo7b3S6CCJMdz\n"
    "stcssp4gBCy73MzNB68hL/BG11uhRANCAATzPynH8iBXTCI6Vupr+BS+w+qsmazP\n"
    "jE7Siyo4+UOdWvoFgRajenkInLJRs08p6TN5P3eK6HPvumwkaQfJx08K\n"
    "-----END PRIVATE KEY-----\n";

static EVP_PKEY *pk;
static struct sshproto_key key;

static int
f_list(void *arg, const struct sshproto_key **keys, size_t *n)
{
	(void)arg;
	*keys = &key;
	*n = 1;
	return 0;
}

static int
f_sign(void *arg, const struct sshproto_sign *req, uint8_t **sig,
    size_t *siglen, size_t *modlen)
{
	EVP_PKEY_CTX *ctx;
	int ok;

	(void)arg;
	*modlen = 0;
	if ((ctx = EVP_PKEY_CTX_new(pk, NULL)) == NULL)
		return -1;
	ok = EVP_PKEY_sign_init(ctx) == 1 &&
	    EVP_PKEY_sign(ctx, NULL, siglen, req->in, req->in_len) == 1 &&
	    (*sig = malloc(*siglen)) != NULL &&
	    EVP_PKEY_sign(ctx, *sig, siglen, req->in, req->in_len) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}

static const struct sshproto_ops ops = { f_list, f_sign };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wbuf *body, *reply;
	unsigned char *der = NULL;
	int n;

	if (pk == NULL) {
		BIO *bio = BIO_new_mem_buf(fuzz_key_pem, -1);

		if (bio == NULL ||
		    (pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) ==
			NULL ||
		    (n = i2d_PUBKEY(pk, &der)) <= 0)
			abort();
		BIO_free(bio);
		key.spki = der;
		key.spki_len = (size_t)n;
		key.comment = "fuzz";
	}
	if (size < 1)
		return 0;
	if ((body = wbuf_from(data + 1, size - 1)) == NULL ||
	    (reply = wbuf_new(64 * 1024)) == NULL)
		abort();
	if (sshproto_handle(&ops, NULL, data[0], body, reply) != 0)
		abort();
	if (wbuf_len(reply) < 1 ||
	    (wbuf_ptr(reply)[0] != SSH_AGENT_FAILURE &&
		wbuf_ptr(reply)[0] != SSH_AGENT_IDENTITIES_ANSWER &&
		wbuf_ptr(reply)[0] != SSH_AGENT_SIGN_RESPONSE))
		abort();
	wbuf_free(reply);
	wbuf_free(body);
	return 0;
}
