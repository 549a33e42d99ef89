/*
 * fuzz_sshproto.c - ssh-agent frames (type byte + body) into
 * sshproto_handle() with one fixed software P-256 key behind the ops.  The
 * reply must be FAILURE, IDENTITIES_ANSWER or SIGN_RESPONSE, never
 * anything else, and nothing may leak or overrun.
 */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "agent/sshproto.h"
#include "common/wbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The key behind the ops must be the same in every run, so corpus seeds
 * can name its public key in SIGN_REQUEST.  It is derived at start-up
 * from a fixed scalar (no key material is stored in the tree).
 */
static EVP_PKEY *
fuzz_key_new(void)
{
	static const char label[] = "tokensign fuzz_sshproto test key";
	unsigned char scalar[32], pub[65];
	EC_GROUP *g = NULL;
	EC_POINT *q = NULL;
	BIGNUM *d = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *k = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;

	SHA256((const unsigned char *)label, sizeof(label) - 1, scalar);
	if ((g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL ||
	    (d = BN_bin2bn(scalar, sizeof(scalar), NULL)) == NULL ||
	    (q = EC_POINT_new(g)) == NULL ||
	    !EC_POINT_mul(g, q, d, NULL, NULL, NULL) ||
	    EC_POINT_point2oct(g, q, POINT_CONVERSION_UNCOMPRESSED, pub,
		sizeof(pub), NULL) != sizeof(pub) ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(
		bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
	    !OSSL_PARAM_BLD_push_octet_string(
		bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_KEYPAIR, params) <= 0)
		abort();
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	EC_POINT_free(q);
	BN_clear_free(d);
	EC_GROUP_free(g);
	return k;
}

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
		if ((pk = fuzz_key_new()) == NULL ||
		    (n = i2d_PUBKEY(pk, &der)) <= 0)
			abort();
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
