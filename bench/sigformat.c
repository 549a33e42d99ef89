/*
 * sigformat.c - throughput of the signature-format code: payload build and
 * strict parse, .sig manifest parse + render, and one full verify_one() per
 * key type.  Run by hand: ./build/bench/sigformat [iterations].  Figures go
 * in docs/performance-sigformat.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "client/sigmanifest.h"
#include "client/verify.h"
#include "common/digest.h"
#include "common/payload.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
report(const char *what, long n, double secs)
{
	printf("%-34s %9.0f ops/s  (%.2f us/op)\n", what, (double)n / secs,
	    secs / (double)n * 1e6);
}

static struct verify_key *
pubkey(EVP_PKEY *priv)
{
	struct verify_key *k = NULL;
	BIO *b = BIO_new(BIO_s_mem());
	char *pem;
	long len;

	if (b == NULL || PEM_write_bio_PUBKEY(b, priv) != 1)
		exit(1);
	len = BIO_get_mem_data(b, &pem);
	if (verify_key_load_pem(
		(const uint8_t *)pem, (size_t)len, &k, NULL, 0) != 0)
		exit(1);
	BIO_free(b);
	return k;
}

static void
bench_verify(const char *name, EVP_PKEY *priv, const uint8_t *payload,
    size_t plen, const struct verify_policy *pol, long n)
{
	struct verify_key *k = pubkey(priv);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = EVP_PKEY_get_base_id(priv) == EVP_PKEY_ED25519
	    ? NULL
	    : EVP_sha256();
	unsigned char sig[1024];
	char b64[2048], label[64];
	size_t slen = sizeof(sig);
	double t;
	long i;

	if (EVP_DigestSignInit(ctx, NULL, md, NULL, priv) != 1 ||
	    EVP_DigestSign(ctx, sig, &slen, payload, plen) != 1)
		exit(1);
	EVP_EncodeBlock((unsigned char *)b64, sig, (int)slen);
	t = now();
	for (i = 0; i < n; i++)
		if (verify_one(k, payload, plen, b64, pol, NULL, NULL, 0) != 0)
			exit(1);
	snprintf(label, sizeof(label), "verify_one %s", name);
	report(label, n, now() - t);
	EVP_MD_CTX_free(ctx);
	verify_key_free(k);
}

int
main(int argc, char **argv)
{
	const struct payload_kv kv[] = { { "env", "prod" }, { "team", "a&b" } };
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000, i;
	struct sigmanifest *m = sigmanifest_new(), *p;
	struct siglayer *l;
	struct verify_policy pol;
	struct payload *pp;
	struct digest d;
	uint8_t *out, *mb, *cb;
	size_t len, mlen, clen;
	char sigtxt[32];
	double t;
	EVP_PKEY *k;

	if (n <= 0 || digest_compute(DIGEST_ALG_SHA256, "m", 1, &d) != 0)
		return 2;
	t = now();
	for (i = 0; i < n; i++) {
		if (payload_build(
			"127.0.0.1:5000/demo/app", &d, kv, 2, &out, &len) != 0)
			return 1;
		free(out);
	}
	report("payload_build (2 annotations)", n, now() - t);
	if (payload_build("127.0.0.1:5000/demo/app", &d, kv, 2, &out, &len) !=
	    0)
		return 1;
	t = now();
	for (i = 0; i < n; i++) {
		if (payload_parse(out, len, &pp, NULL, 0) != 0)
			return 1;
		payload_free(pp);
	}
	report("payload_parse (strict)", n, now() - t);

	for (i = 0; i < 100; i++) {
		snprintf(sigtxt, sizeof(sigtxt), "MEUCIQsig%ld", i);
		if (siglayer_new_signature(out, len, sigtxt, &l) != 0 ||
		    sigmanifest_append(m, l, NULL) != 0)
			return 1;
		siglayer_free(l);
	}
	if (sigmanifest_render(m, &mb, &mlen, &cb, &clen) != 0)
		return 1;
	t = now();
	for (i = 0; i < n / 100 + 1; i++) {
		if (sigmanifest_parse(mb, mlen, NULL, &p, NULL, 0) != 0)
			return 1;
		free(mb);
		free(cb);
		if (sigmanifest_render(p, &mb, &mlen, &cb, &clen) != 0)
			return 1;
		sigmanifest_free(p);
	}
	report(".sig parse+render (100 layers)", n / 100 + 1, now() - t);

	memset(&pol, 0, sizeof(pol));
	pol.digest = &d;
	pol.identity = "127.0.0.1:5000/demo/app:v1";
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	bench_verify("ecdsa-p256", k, out, len, &pol, n / 4);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	bench_verify("ed25519", k, out, len, &pol, n / 4);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	bench_verify("rsa-2048", k, out, len, &pol, n / 4);
	EVP_PKEY_free(k);
	free(out);
	free(mb);
	free(cb);
	sigmanifest_free(m);
	return 0;
}
