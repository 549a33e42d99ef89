/*
 * test_verify.c - signature verification with every key type, the P1363
 * fallback, each failure code, key loading rules, base64, docker reference
 * normalisation for identities, and reports.  Keys are made here with
 * OpenSSL; the real cosign fixture signature is checked too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "client/commands.h"
#include "client/verify.h"
#include "common/err.h"

#define D634      \
	"sha256:" \
	"634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"

/* containers/image fixtures: cosign.pub and dir-img-cosign-valid. */
static const char cosign_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFNLqFhf4fiN6o/glAuYnq2jYUeL0\n"
    "vRuLu/z39pmbVwS9ff5AYnlwaP9sxREajdLY9ynM6G1sy6AAmb7Z63TsLg==\n"
    "-----END PUBLIC KEY-----\n";
static const char fixture_payload[] =
    "{\"critical\":{\"identity\":{\"docker-reference\":\"192.168.64.2:5000/"
    "cosign-signed-single-sample\"},\"image\":{\"docker-manifest-digest\":"
    "\"" D634 "\"},\"type\":\"cosign container image signature\"},"
    "\"optional\":null}";
static const char fixture_sig[] =
    "MEYCIQDmtamqYPjMg81nqeBhptrPls44aA/r7PwLmspINJY4MwIhANKRpqe2E9UCBtGFdP"
    "oz/8jAbaQm4uP4h+IpwKTE6ClR";

struct testkey {
	EVP_PKEY *priv;
	struct verify_key *pub;
};

static char *
pem_of(EVP_PKEY *pkey, const char *structure)
{
	OSSL_ENCODER_CTX *ctx;
	unsigned char *data = NULL;
	size_t len = 0;
	char *s;

	ctx = OSSL_ENCODER_CTX_new_for_pkey(
	    pkey, EVP_PKEY_PUBLIC_KEY, "PEM", structure, NULL);
	assert_non_null(ctx);
	assert_int_equal(OSSL_ENCODER_to_data(ctx, &data, &len), 1);
	OSSL_ENCODER_CTX_free(ctx);
	s = calloc(1, len + 1);
	memcpy(s, data, len);
	OPENSSL_free(data);
	return s;
}

static struct testkey
mkkey(const char *type, const char *param)
{
	struct testkey k;
	char why[256], *pem;

	if (strcmp(type, "RSA") == 0)
		k.priv = EVP_PKEY_Q_keygen(
		    NULL, NULL, "RSA", (size_t)strtoul(param, NULL, 10));
	else if (strcmp(type, "EC") == 0)
		k.priv = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
	else
		k.priv = EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(k.priv);
	pem = pem_of(k.priv, "SubjectPublicKeyInfo");
	if (verify_key_load_pem(
		(uint8_t *)pem, strlen(pem), &k.pub, why, sizeof(why)) != 0)
		fail_msg("load %s: %s", type, why);
	free(pem);
	return k;
}

static void
freekey(struct testkey *k)
{
	EVP_PKEY_free(k->priv);
	verify_key_free(k->pub);
}

static uint8_t *
sign(EVP_PKEY *pkey, const char *msg, size_t *len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519
	    ? NULL
	    : EVP_sha256();
	uint8_t *sig;

	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, pkey), 1);
	assert_int_equal(
	    EVP_DigestSign(ctx, NULL, len, (const uint8_t *)msg, strlen(msg)),
	    1);
	sig = malloc(*len);
	assert_int_equal(
	    EVP_DigestSign(ctx, sig, len, (const uint8_t *)msg, strlen(msg)),
	    1);
	EVP_MD_CTX_free(ctx);
	return sig;
}

static char *
b64(const uint8_t *d, size_t n)
{
	char *s = calloc(1, 4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)s, d, (int)n);
	return s;
}

static struct verify_policy
policy(struct digest *d, const char *identity)
{
	struct verify_policy p;

	memset(&p, 0, sizeof(p));
	assert_int_equal(digest_parse_str(D634, d, NULL), 0);
	p.digest = d;
	p.identity = identity;
	return p;
}

static void
check_key_type(const char *type, const char *param, const char *desc)
{
	struct testkey k = mkkey(type, param), other = mkkey(type, param);
	struct digest d;
	struct verify_policy pol =
	    policy(&d, "192.168.64.2:5000/cosign-signed-single-sample");
	struct payload *p;
	size_t len;
	uint8_t *sig = sign(k.priv, fixture_payload, &len);
	char *s = b64(sig, len), why[512];
	char tampered[sizeof(fixture_payload)];

	assert_string_equal(verify_key_type(k.pub), desc);
	assert_int_equal(
	    verify_one(k.pub, (const uint8_t *)fixture_payload,
		strlen(fixture_payload), s, &pol, &p, why, sizeof(why)),
	    0);
	assert_string_equal(payload_docker_reference(p),
	    "192.168.64.2:5000/cosign-signed-single-sample");
	payload_free(p);
	/* a different key of the same type */
	assert_int_equal(
	    verify_one(other.pub, (const uint8_t *)fixture_payload,
		strlen(fixture_payload), s, &pol, NULL, why, sizeof(why)),
	    TS_ERR_SIG_INVALID);
	assert_non_null(strstr(why, "does not match it over the raw payload"));
	/* one payload byte changed */
	memcpy(tampered, fixture_payload, sizeof(tampered));
	tampered[40] ^= 0x01;
	assert_int_equal(verify_one(k.pub, (const uint8_t *)tampered,
			     strlen(tampered), s, &pol, NULL, why, sizeof(why)),
	    TS_ERR_SIG_INVALID);
	/* one signature byte changed */
	sig[len / 2] ^= 0x80;
	assert_int_equal(verify_one_raw(k.pub, (const uint8_t *)fixture_payload,
			     strlen(fixture_payload), sig, len, &pol, NULL, why,
			     sizeof(why)),
	    TS_ERR_SIG_INVALID);
	free(sig);
	free(s);
	freekey(&k);
	freekey(&other);
}

static void
test_key_types(void **state)
{
	(void)state;
	check_key_type("EC", "P-256", "ecdsa-p256");
	check_key_type("EC", "P-384", "ecdsa-p384");
	check_key_type("RSA", "2048", "rsa");
	check_key_type("ED25519", NULL, "ed25519");
}

static void
test_fixture_and_p1363(void **state)
{
	struct verify_key *k;
	struct digest d;
	struct verify_policy pol =
	    policy(&d, "192.168.64.2:5000/cosign-signed-single-sample");
	uint8_t *der, raw[64];
	const unsigned char *p;
	size_t dlen;
	ECDSA_SIG *es;
	char why[512];

	(void)state;
	assert_int_equal(verify_key_load_pem((const uint8_t *)cosign_pub,
			     strlen(cosign_pub), &k, why, sizeof(why)),
	    0);
	assert_int_equal(verify_one(k, (const uint8_t *)fixture_payload,
			     strlen(fixture_payload), fixture_sig, &pol, NULL,
			     why, sizeof(why)),
	    0);
	/* the same signature as IEEE P1363 r||s (sigstore's fallback) */
	assert_int_equal(verify_base64_decode(fixture_sig, strlen(fixture_sig),
			     VERIFY_SIG_MAX_LEN, &der, &dlen),
	    0);
	p = der;
	assert_non_null(es = d2i_ECDSA_SIG(NULL, &p, (long)dlen));
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
	assert_int_equal(
	    verify_one_raw(k, (const uint8_t *)fixture_payload,
		strlen(fixture_payload), raw, 64, &pol, NULL, why, sizeof(why)),
	    0);
	/* r||s of the wrong length for the curve is not tried */
	assert_int_equal(
	    verify_one_raw(k, (const uint8_t *)fixture_payload,
		strlen(fixture_payload), raw, 63, &pol, NULL, why, sizeof(why)),
	    TS_ERR_SIG_INVALID);
	/* DER with a trailing byte is refused */
	der = realloc(der, dlen + 1);
	der[dlen] = 0;
	assert_int_equal(verify_one_raw(k, (const uint8_t *)fixture_payload,
			     strlen(fixture_payload), der, dlen + 1, &pol, NULL,
			     why, sizeof(why)),
	    TS_ERR_SIG_INVALID);
	ECDSA_SIG_free(es);
	free(der);
	verify_key_free(k);
}

static void
test_policy_failures(void **state)
{
	const struct payload_kv want_env[] = { { "env", "prod" } };
	const struct payload_kv want_other[] = { { "env", "dev" } };
	const struct payload_kv want_missing[] = { { "team", "x" } };
	struct testkey k = mkkey("EC", "P-256");
	struct digest d, other;
	struct verify_policy pol = policy(&d, "127.0.0.1:5000/demo/app");
	uint8_t *payload, *sig;
	size_t plen, slen;
	char *s, why[512], *pz;

	(void)state;
	assert_int_equal(payload_build("127.0.0.1:5000/demo/app", &d, want_env,
			     1, &payload, &plen),
	    0);
	pz = calloc(1, plen + 1);
	memcpy(pz, payload, plen);
	sig = sign(k.priv, pz, &slen);
	s = b64(sig, slen);
#define V() verify_one(k.pub, payload, plen, s, &pol, NULL, why, sizeof(why))
	assert_int_equal(V(), 0);
	/* identity: image reference with a tag still matches by repository */
	pol.identity = "127.0.0.1:5000/demo/app:v1";
	assert_int_equal(V(), 0);
	/* --identity with a tag asks for an exact match: cosign has none */
	pol.identity_mode = VERIFY_ID_AUTO;
	assert_int_equal(V(), TS_ERR_SIG_IDENTITY);
	assert_non_null(strstr(why, "exact"));
	pol.identity_mode = VERIFY_ID_REPOSITORY;
	pol.identity = "127.0.0.1:5000/demo/other";
	assert_int_equal(V(), TS_ERR_SIG_IDENTITY);
	assert_non_null(strstr(why, "does not match"));
	pol.identity = "127.0.0.1:5001/demo/app";
	assert_int_equal(V(), TS_ERR_SIG_IDENTITY);
	pol.identity = "Not A Reference";
	assert_int_equal(V(), TS_ERR_INVALID_ARG);
	pol.identity = NULL; /* explicitly skipped */
	assert_int_equal(V(), 0);
	pol.identity = "127.0.0.1:5000/demo/app";
	/* annotations */
	pol.annotations = want_env;
	pol.n_annotations = 1;
	assert_int_equal(V(), 0);
	pol.annotations = want_other;
	assert_int_equal(V(), TS_ERR_SIG_ANNOTATION);
	assert_non_null(strstr(why, "not \"dev\""));
	pol.annotations = want_missing;
	assert_int_equal(V(), TS_ERR_SIG_ANNOTATION);
	assert_non_null(strstr(why, "missing"));
	pol.annotations = NULL;
	pol.n_annotations = 0;
	/* digest of another image */
	assert_int_equal(digest_compute(DIGEST_ALG_SHA256, "x", 1, &other), 0);
	pol.digest = &other;
	assert_int_equal(V(), TS_ERR_DIGEST_MISMATCH);
	assert_non_null(strstr(why, D634));
	pol.digest = &d;
	/* base64 problems */
	s[3] = '*';
	assert_int_equal(V(), TS_ERR_BASE64);
	assert_non_null(strstr(why, "base64"));
	assert_int_equal(verify_one(k.pub, payload, plen, NULL, &pol, NULL, why,
			     sizeof(why)),
	    TS_ERR_SIG_INVALID);
	assert_non_null(strstr(why, "no dev.cosignproject.cosign/signature"));
	free(s);
	/* a validly signed payload that is not a simple-signing payload */
	free(sig);
	sig = sign(k.priv, "{\"critical\":{}}", &slen);
	s = b64(sig, slen);
	assert_int_equal(verify_one(k.pub, (const uint8_t *)"{\"critical\":{}}",
			     15, s, &pol, NULL, why, sizeof(why)),
	    TS_ERR_PAYLOAD_INVALID);
	assert_non_null(strstr(why, "missing key \"optional\""));
#undef V
	free(s);
	free(sig);
	free(pz);
	free(payload);
	freekey(&k);
}

static void
test_base64(void **state)
{
	static const char *const bad[] = { "", "A", "AB", "ABC", "AB=C",
		"A===", "ABCD=", "ABC=D", "AB==AB==", "AB-_", "AB CD",
		"ABCD\t" };
	uint8_t *out;
	size_t len, i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (verify_base64_decode(bad[i], strlen(bad[i]), 100, &out,
			&len) != TS_ERR_BASE64)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(verify_base64_decode("AAEC", 4, 100, &out, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "\0\1\2", 3);
	free(out);
	/* CR/LF anywhere are skipped, as Go's decoder does */
	assert_int_equal(
	    verify_base64_decode("AA\r\nE=\n", 7, 100, &out, &len), 0);
	assert_int_equal(len, 2);
	free(out);
	assert_int_equal(verify_base64_decode("AAECAw==", 8, 3, &out, &len),
	    TS_ERR_TOO_LARGE);
}

static void
test_key_loading(void **state)
{
	struct testkey k = mkkey("RSA", "2048");
	struct verify_key *vk;
	EVP_PKEY *small, *x;
	char *pem, *two, why[256];
	BIO *bio;
	char *priv;
	long plen;

	(void)state;
	/* PKCS#1 "RSA PUBLIC KEY" */
	pem = pem_of(k.priv, "type-specific");
	assert_non_null(strstr(pem, "BEGIN RSA PUBLIC KEY"));
	assert_int_equal(verify_key_load_pem((uint8_t *)pem, strlen(pem), &vk,
			     why, sizeof(why)),
	    0);
	assert_string_equal(verify_key_type(vk), "rsa");
	verify_key_free(vk);
	free(pem);
	/* only the first block counts: a private key first is refused */
	bio = BIO_new(BIO_s_mem());
	assert_int_equal(
	    PEM_write_bio_PrivateKey(bio, k.priv, NULL, NULL, 0, NULL, NULL),
	    1);
	plen = BIO_get_mem_data(bio, &priv);
	pem = pem_of(k.priv, "SubjectPublicKeyInfo");
	two = calloc(1, (size_t)plen + strlen(pem) + 1);
	memcpy(two, priv, (size_t)plen);
	memcpy(two + plen, pem, strlen(pem));
	assert_int_equal(verify_key_load_pem((uint8_t *)two, strlen(two), &vk,
			     why, sizeof(why)),
	    TS_ERR_KEY_INVALID);
	assert_non_null(strstr(why, "not a public key"));
	assert_null(vk);
	free(two);
	BIO_free(bio);
	/* junk before the first block is skipped, as Go's pem.Decode */
	two = calloc(1, strlen(pem) + 20);
	memcpy(two, "comment line\n", 13);
	memcpy(two + 13, pem, strlen(pem));
	assert_int_equal(verify_key_load_pem((uint8_t *)two, strlen(two), &vk,
			     why, sizeof(why)),
	    0);
	verify_key_free(vk);
	free(two);
	/* damaged DER */
	pem[40] = pem[40] == 'A' ? 'B' : 'A';
	pem[41] = '!';
	assert_int_equal(verify_key_load_pem((uint8_t *)pem, strlen(pem), &vk,
			     why, sizeof(why)),
	    TS_ERR_KEY_INVALID);
	free(pem);
	/* no PEM at all, empty */
	assert_int_equal(verify_key_load_pem((const uint8_t *)"hello", 5, &vk,
			     why, sizeof(why)),
	    TS_ERR_KEY_INVALID);
	assert_non_null(strstr(why, "no PEM block"));
	/* RSA below 2048 bits, and an unsupported type */
	small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	pem = pem_of(small, "SubjectPublicKeyInfo");
	assert_int_equal(verify_key_load_pem((uint8_t *)pem, strlen(pem), &vk,
			     why, sizeof(why)),
	    TS_ERR_KEY_INVALID);
	assert_non_null(strstr(why, "too small"));
	free(pem);
	EVP_PKEY_free(small);
	x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	pem = pem_of(x, "SubjectPublicKeyInfo");
	assert_int_equal(verify_key_load_pem((uint8_t *)pem, strlen(pem), &vk,
			     why, sizeof(why)),
	    TS_ERR_KEY_INVALID);
	free(pem);
	EVP_PKEY_free(x);
	assert_int_equal(
	    verify_key_load_file("/nonexistent/key.pem", &vk, why, sizeof(why)),
	    TS_ERR_KEY_INVALID);
	assert_non_null(strstr(why, "cannot open"));
	freekey(&k);
}

static void
check_norm(const char *in, const char *name, const char *tag, const char *dig)
{
	char *n, *t, *d;

	if (verify_ref_normalize(in, &n, &t, &d) != 0)
		fail_msg("rejected %s", in);
	assert_string_equal(n, name);
	if (tag == NULL)
		assert_null(t);
	else
		assert_string_equal(t, tag);
	if (dig == NULL)
		assert_null(d);
	else
		assert_string_equal(d, dig);
	free(n);
	free(t);
	free(d);
}

static void
test_ref_normalize(void **state)
{
	static const char *const bad[] = { "", "docker.io/UPPER", "a//b", "a/",
		"/a", "host:5000/", "busybox:", "busybox@sha256:abc",
		"docker.io/Library/busybox", "a..b", "a-", "ba d" };
	char *n, *t, *d;
	size_t i;

	(void)state;
	check_norm("busybox", "docker.io/library/busybox", NULL, NULL);
	check_norm("busybox:1.36", "docker.io/library/busybox", "1.36", NULL);
	check_norm("index.docker.io/library/busybox",
	    "docker.io/library/busybox", NULL, NULL);
	check_norm(
	    "index.docker.io/busybox", "docker.io/library/busybox", NULL, NULL);
	check_norm("user/app", "docker.io/user/app", NULL, NULL);
	check_norm("localhost/app", "localhost/app", NULL, NULL);
	check_norm("127.0.0.1:5000/demo/app:v1@" D634,
	    "127.0.0.1:5000/demo/app", "v1", D634);
	check_norm("192.168.64.2:5000/skopeo-signed:tag",
	    "192.168.64.2:5000/skopeo-signed", "tag", NULL);
	check_norm("Host.Example/a__b/c-d--e.f", "Host.Example/a__b/c-d--e.f",
	    NULL, NULL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (verify_ref_normalize(bad[i], &n, &t, &d) !=
		    TS_ERR_REF_INVALID)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void
test_candidates_report(void **state)
{
	struct verify_key *k;
	struct digest d;
	struct verify_policy pol =
	    policy(&d, "192.168.64.2:5000/cosign-signed-single-sample");
	struct verify_report *rep;
	struct verify_candidate c[4];
	char buf[4096];
	FILE *out, *sum;

	(void)state;
	assert_int_equal(verify_key_load_pem((const uint8_t *)cosign_pub,
			     strlen(cosign_pub), &k, NULL, 0),
	    0);
	memset(c, 0, sizeof(c));
	c[0].media_type = "text/plain"; /* other attachment */
	c[0].payload = (const uint8_t *)"x";
	c[0].payload_len = 1;
	c[0].sig_b64 = fixture_sig;
	c[1].media_type = PAYLOAD_MEDIA_TYPE; /* corrupted base64 */
	c[1].payload = (const uint8_t *)fixture_payload;
	c[1].payload_len = strlen(fixture_payload);
	c[1].sig_b64 = "!!!!";
	c[1].source = "layer 2";
	c[2] = c[1];
	c[2].sig_b64 = fixture_sig;
	c[2].source = "layer 3";
	c[3] = c[2];
	c[3].payload_len--; /* truncated payload */
	c[3].certificate = "-----BEGIN CERTIFICATE-----";
	c[3].source = NULL;
	assert_int_equal(verify_candidates(k, c, 4, &pol, &rep), 0);
	assert_int_equal(verify_report_valid(rep), 1);
	assert_int_equal(verify_report_signatures(rep), 3);
	assert_int_equal(verify_report_others(rep), 1);
	assert_int_equal(verify_report_exit_status(rep), TS_EXIT_OK);
	verify_report_add_skipped(rep, 2);
	out = fmemopen(buf, sizeof(buf), "w");
	verify_report_print(rep, out, NULL);
	fclose(out);
	assert_int_equal(strncmp(buf, "[", 1), 0);
	assert_memory_equal(buf + 1, fixture_payload, strlen(fixture_payload));
	assert_string_equal(buf + 1 + strlen(fixture_payload), "]\n");
	sum = fmemopen(buf, sizeof(buf), "w");
	verify_report_print(rep, NULL, sum);
	fclose(sum);
	assert_non_null(strstr(buf, "layer 2: rejected: invalid base64"));
	assert_non_null(strstr(buf,
	    "signature 4: rejected: signature does not "
	    "verify"));
	assert_non_null(strstr(buf, "certificate-based"));
	assert_non_null(strstr(buf,
	    "1 of 3 signatures verified, 1 "
	    "non-signature attachment skipped, 2 "
	    "non-sigstore (GPG) signatures skipped"));
	verify_report_free(rep);
	/* none valid / none at all */
	assert_int_equal(verify_candidates(k, c, 2, &pol, &rep), 0);
	assert_int_equal(verify_report_exit_status(rep), TS_EXIT_INVALID);
	verify_report_free(rep);
	assert_int_equal(verify_candidates(k, c, 1, &pol, &rep), 0);
	assert_int_equal(verify_report_exit_status(rep), TS_EXIT_NO_SIGNATURES);
	verify_report_free(rep);
	verify_key_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_fixture_and_p1363),
		cmocka_unit_test(test_policy_failures),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_key_loading),
		cmocka_unit_test(test_ref_normalize),
		cmocka_unit_test(test_candidates_report),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
