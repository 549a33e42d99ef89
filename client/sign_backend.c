/*
 * sign_backend.c - the file-key signer (OpenSSL) and the agent signer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "client/sign_backend.h"
#include "common/err.h"
#include "common/log.h"

struct sign_backend {
	EVP_PKEY *pkey; /* file backend */
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
	error("signing through the agent is not built in yet; use "
	      "--key file:PEM");
	free(b);
	return TS_ERR_AGENT_CONNECT;
}

void
sign_backend_close(struct sign_backend *b)
{
	if (b == NULL)
		return;
	EVP_PKEY_free(b->pkey);
	free(b);
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
	for (i = 0; i < n && r == 0; i++)
		r = file_sign(
		    b->pkey, payloads[i], lens[i], &sigs[i], &sig_lens[i]);
	if (r != 0)
		for (i = 0; i < n; i++) {
			free(sigs[i]);
			sigs[i] = NULL;
			sig_lens[i] = 0;
		}
	return r;
}
