/*
 * test_p11_key.c - the token layer's checks on hostile input, without a
 * token: EC point unwrapping and validation, curve/type agreement, RSA
 * size and exponent checks, raw ECDSA to DER, PIN files and sources,
 * the module allow-list, CK_RV mapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "pkcs11/internal.h"
#include "pkcs11/pin.h"
#include "pkcs11/provider.h"
#include "pkcs11/sign.h"

static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
	0x03, 0x01, 0x07 };
static const uint8_t oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
static const uint8_t oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const uint8_t str_ed25519[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
	's', '2', '5', '5', '1', '9' };

static struct p11_key *
new_key(void)
{
	struct p11_key *k = calloc(1, sizeof(*k));

	assert_non_null(k);
	k->label = strdup("test");
	assert_non_null(k->label);
	return k;
}

/* Generates a key of the named group; returns its public point. */
static EVP_PKEY *
gen_ec(const char *group, uint8_t *pt, size_t *ptlen)
{
	EVP_PKEY *pk = EVP_EC_gen(group);

	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_octet_string_param(
			     pk, OSSL_PKEY_PARAM_PUB_KEY, pt, 200, ptlen),
	    1);
	return pk;
}

static void
check_spki(const struct p11_key *k, EVP_PKEY *pk)
{
	uint8_t *der = NULL;
	int len = i2d_PUBKEY(pk, &der);

	assert_true(len > 0);
	assert_int_equal(k->spkilen, (size_t)len);
	assert_memory_equal(k->spki, der, (size_t)len);
	assert_non_null(strstr(k->pem, "-----BEGIN PUBLIC KEY-----"));
	assert_int_equal(strncmp(k->fpstr, "SHA256:", 7), 0);
	assert_int_equal(strlen(k->fpstr), 7 + 43);
	OPENSSL_free(der);
}

static void
test_ec_point_forms(void **state)
{
	uint8_t pt[200], w[210];
	size_t ptlen;
	struct p11_key *k;
	EVP_PKEY *pk;

	(void)state;
	pk = gen_ec("prime256v1", pt, &ptlen);
	assert_int_equal(ptlen, 65);
	/* wrapped in an OCTET STRING, as PKCS#11 says */
	w[0] = 0x04;
	w[1] = 65;
	memcpy(w + 2, pt, 65);
	k = new_key();
	assert_int_equal(
	    p11_key_set_ec(k, CKK_EC, oid_p256, sizeof(oid_p256), w, 67), 0);
	assert_int_equal(k->type, P11_KEY_EC_P256);
	assert_int_equal(k->bits, 256);
	assert_int_equal(k->sig_len, 64);
	check_spki(k, pk);
	p11_key_free(k);
	/* bare, as some tokens return it */
	k = new_key();
	assert_int_equal(
	    p11_key_set_ec(k, CKK_EC, oid_p256, sizeof(oid_p256), pt, 65), 0);
	check_spki(k, pk);
	p11_key_free(k);
	/* wrapper that lies about its length, truncated point, trailing byte */
	k = new_key();
	w[1] = 64;
	assert_int_equal(
	    p11_key_set_ec(k, CKK_EC, oid_p256, sizeof(oid_p256), w, 67),
	    TS_ERR_P11_BAD_ATTRIBUTE);
	w[1] = 65;
	assert_int_equal(
	    p11_key_set_ec(k, CKK_EC, oid_p256, sizeof(oid_p256), w, 66),
	    TS_ERR_P11_BAD_ATTRIBUTE);
	w[67] = 0;
	assert_int_equal(
	    p11_key_set_ec(k, CKK_EC, oid_p256, sizeof(oid_p256), w, 68),
	    TS_ERR_P11_BAD_ATTRIBUTE);
	assert_int_equal(
	    p11_key_set_ec(k, CKK_EC, oid_p256, sizeof(oid_p256), w, 0),
	    TS_ERR_P11_BAD_ATTRIBUTE);
	/* a point off the curve */
	w[2 + 64] ^= 0x01;
	assert_int_equal(
	    p11_key_set_ec(k, CKK_EC, oid_p256, sizeof(oid_p256), w, 67),
	    TS_ERR_P11_BAD_ATTRIBUTE);
	/* unknown curve, and a curve that does not fit the key type */
	assert_int_equal(p11_key_set_ec(k, CKK_EC, oid_p256, 9, pt, 65),
	    TS_ERR_P11_KEY_TYPE);
	assert_int_equal(p11_key_set_ec(k, CKK_EC_EDWARDS, oid_p256,
			     sizeof(oid_p256), pt, 65),
	    TS_ERR_P11_KEY_TYPE);
	assert_null(k->spki);
	p11_key_free(k);
	EVP_PKEY_free(pk);
}

static void
test_ec_p521_long_form(void **state)
{
	uint8_t pt[200], w[210];
	size_t ptlen;
	struct p11_key *k;
	EVP_PKEY *pk;

	(void)state;
	pk = gen_ec("secp521r1", pt, &ptlen);
	assert_int_equal(ptlen, 133);
	w[0] = 0x04;
	w[1] = 0x81;
	w[2] = 133;
	memcpy(w + 3, pt, 133);
	k = new_key();
	assert_int_equal(
	    p11_key_set_ec(k, CKK_EC, oid_p521, sizeof(oid_p521), w, 136), 0);
	assert_int_equal(k->type, P11_KEY_EC_P521);
	assert_int_equal(k->sig_len, 132);
	check_spki(k, pk);
	p11_key_free(k);
	EVP_PKEY_free(pk);
}

static void
test_ed25519_forms(void **state)
{
	uint8_t raw[32], w[34];
	size_t len = sizeof(raw);
	struct p11_key *k;
	EVP_PKEY *pk, *tricky;

	(void)state;
	pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_raw_public_key(pk, raw, &len), 1);
	w[0] = 0x04;
	w[1] = 0x20;
	memcpy(w + 2, raw, 32);
	k = new_key();
	assert_int_equal(p11_key_set_ec(k, CKK_EC_EDWARDS, oid_ed25519,
			     sizeof(oid_ed25519), w, 34),
	    0);
	assert_int_equal(k->type, P11_KEY_ED25519);
	assert_int_equal(k->sig_len, 64);
	check_spki(k, pk);
	p11_key_free(k);
	k = new_key();
	assert_int_equal(p11_key_set_ec(k, CKK_EC_EDWARDS, str_ed25519,
			     sizeof(str_ed25519), raw, 32),
	    0);
	check_spki(k, pk);
	/* a bare key that happens to look like "04 1e ...": still bare */
	raw[0] = 0x04;
	raw[1] = 0x1e;
	tricky = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
	assert_non_null(tricky);
	p11_key_free(k);
	k = new_key();
	assert_int_equal(p11_key_set_ec(k, CKK_EC_EDWARDS, oid_ed25519,
			     sizeof(oid_ed25519), raw, 32),
	    0);
	check_spki(k, tricky);
	p11_key_free(k);
	k = new_key();
	assert_int_equal(p11_key_set_ec(k, CKK_EC_EDWARDS, oid_ed25519,
			     sizeof(oid_ed25519), raw, 31),
	    TS_ERR_P11_BAD_ATTRIBUTE);
	assert_int_equal(p11_key_set_ec(k, CKK_EC, oid_ed25519,
			     sizeof(oid_ed25519), raw, 32),
	    TS_ERR_P11_KEY_TYPE);
	p11_key_free(k);
	EVP_PKEY_free(pk);
	EVP_PKEY_free(tricky);
}

static void
test_rsa_checks(void **state)
{
	uint8_t n[1100], e[8] = { 0, 0, 0, 0, 0, 0x01, 0x00, 0x01 };
	BIGNUM *bn = NULL;
	EVP_PKEY *pk;
	struct p11_key *k;
	int nlen;

	(void)state;
	pk = EVP_RSA_gen(2048);
	assert_non_null(pk);
	assert_int_equal(
	    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
	n[0] = 0; /* a leading zero byte is harmless */
	nlen = BN_bn2bin(bn, n + 1);
	assert_int_equal(nlen, 256);
	k = new_key();
	assert_int_equal(p11_key_set_rsa(k, n, 257, e, sizeof(e)), 0);
	assert_int_equal(k->type, P11_KEY_RSA);
	assert_int_equal(k->bits, 2048);
	assert_int_equal(k->sig_len, 256);
	check_spki(k, pk);
	p11_key_free(k);
	k = new_key();
	/* even exponent, exponent 1, empty exponent, 9-byte exponent */
	e[7] = 0x02;
	assert_int_equal(
	    p11_key_set_rsa(k, n, 257, e, sizeof(e)), TS_ERR_P11_KEY_TYPE);
	e[7] = 0x01;
	assert_int_equal(
	    p11_key_set_rsa(k, n, 257, e + 7, 1), TS_ERR_P11_KEY_TYPE);
	assert_int_equal(p11_key_set_rsa(k, n, 257, e, 0), TS_ERR_P11_KEY_TYPE);
	assert_int_equal(p11_key_set_rsa(k, n, 257,
			     (const uint8_t *)"\x01\x00"
					      "\x00\x00\x00\x00\x00"
					      "\x00\x01",
			     9),
	    TS_ERR_P11_KEY_TYPE);
	e[7] = 0x01;
	/* 1024-bit: too small; even modulus; empty modulus */
	assert_int_equal(
	    p11_key_set_rsa(k, n + 1, 128, e, sizeof(e)), TS_ERR_P11_KEY_TYPE);
	n[256] &= 0xfe;
	assert_int_equal(
	    p11_key_set_rsa(k, n, 257, e, sizeof(e)), TS_ERR_P11_KEY_TYPE);
	assert_int_equal(
	    p11_key_set_rsa(k, n, 1, e, sizeof(e)), TS_ERR_P11_KEY_TYPE);
	assert_null(k->spki);
	p11_key_free(k);
	BN_free(bn);
	EVP_PKEY_free(pk);
}

static void
der_check(
    const uint8_t *raw, size_t rawlen, const uint8_t *want, size_t wantlen)
{
	uint8_t *der = NULL, *re = NULL;
	const uint8_t *p;
	size_t len = 0;
	ECDSA_SIG *s;
	int relen;

	assert_int_equal(p11_ecdsa_raw_to_der(raw, rawlen, &der, &len), 0);
	if (want != NULL) {
		assert_int_equal(len, wantlen);
		assert_memory_equal(der, want, wantlen);
	}
	/* OpenSSL parses it and re-encodes it identically: minimal DER */
	p = der;
	s = d2i_ECDSA_SIG(NULL, &p, (long)len);
	assert_non_null(s);
	assert_ptr_equal(p, der + len);
	relen = i2d_ECDSA_SIG(s, &re);
	assert_int_equal((size_t)relen, len);
	assert_memory_equal(re, der, len);
	OPENSSL_free(re);
	ECDSA_SIG_free(s);
	free(der);
}

static void
test_raw_to_der(void **state)
{
	uint8_t raw[132], *der = NULL;
	size_t len;
	static const uint8_t small[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02,
		0x01, 0x00 };
	static const uint8_t high[] = { 0x30, 0x08, 0x02, 0x02, 0x00, 0x80,
		0x02, 0x02, 0x00, 0xff };

	(void)state;
	/* r = 1, s = 0 (32-byte halves, leading zeros stripped) */
	memset(raw, 0, 64);
	raw[31] = 1;
	der_check(raw, 64, small, sizeof(small));
	/* top bit set: a 00 byte goes in front (2-byte halves) */
	raw[0] = 0x00;
	raw[1] = 0x80;
	raw[2] = 0x00;
	raw[3] = 0xff;
	der_check(raw, 4, high, sizeof(high));
	raw[0] = 0x80;
	raw[1] = 0x00;
	der_check(raw, 4, NULL, 0);
	/* full-size P-256, P-384 and P-521 (long form 30 81 xx) */
	memset(raw, 0xc3, sizeof(raw));
	der_check(raw, 64, NULL, 0);
	der_check(raw, 96, NULL, 0);
	assert_int_equal(p11_ecdsa_raw_to_der(raw, 132, &der, &len), 0);
	assert_int_equal(der[0], 0x30);
	assert_int_equal(der[1], 0x81);
	assert_int_equal(der[2], len - 3);
	free(der);
	der_check(raw, 132, NULL, 0);
	/* odd, empty, oversized */
	assert_int_equal(p11_ecdsa_raw_to_der(raw, 63, &der, &len),
	    TS_ERR_P11_BAD_ATTRIBUTE);
	assert_int_equal(
	    p11_ecdsa_raw_to_der(raw, 0, &der, &len), TS_ERR_P11_BAD_ATTRIBUTE);
	assert_int_equal(p11_ecdsa_raw_to_der(raw, 134, &der, &len),
	    TS_ERR_P11_BAD_ATTRIBUTE);
	assert_null(der);
}

static void
test_rv_mapping(void **state)
{
	(void)state;
	assert_int_equal(p11_rv_to_err(CKR_OK), 0);
	assert_int_equal(
	    p11_rv_to_err(CKR_PIN_INCORRECT), TS_ERR_P11_PIN_INCORRECT);
	assert_int_equal(p11_rv_to_err(CKR_PIN_LOCKED), TS_ERR_P11_PIN_LOCKED);
	assert_int_equal(
	    p11_rv_to_err(CKR_DEVICE_REMOVED), TS_ERR_P11_TOKEN_REMOVED);
	assert_int_equal(
	    p11_rv_to_err(CKR_TOKEN_NOT_PRESENT), TS_ERR_P11_TOKEN_REMOVED);
	assert_int_equal(
	    p11_rv_to_err(CKR_SESSION_HANDLE_INVALID), TS_ERR_P11_SESSION);
	assert_int_equal(
	    p11_rv_to_err(CKR_USER_NOT_LOGGED_IN), TS_ERR_P11_NOT_LOGGED_IN);
	assert_int_equal(
	    p11_rv_to_err(CKR_MECHANISM_INVALID), TS_ERR_P11_MECHANISM);
	assert_int_equal(
	    p11_rv_to_err(CKR_KEY_HANDLE_INVALID), TS_ERR_P11_KEY_NOT_FOUND);
	assert_int_equal(p11_rv_to_err(CKR_GENERAL_ERROR), TS_ERR_P11_DEVICE);
	assert_int_equal(
	    p11_rv_to_err(CKR_VENDOR_DEFINED | 5), TS_ERR_P11_FUNCTION);
	assert_int_equal(p11_rv_to_err(0x7777), TS_ERR_P11_FUNCTION);
	assert_string_equal(
	    p11_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
	assert_string_equal(
	    p11_rv_name(CKR_VENDOR_DEFINED | 5), "CKR_VENDOR_DEFINED+");
	assert_int_equal(p11_hash_len(P11_HASH_SHA384), 48);
	assert_int_equal(p11_hash_len((enum p11_hash)99), 0);
}

static char dir[128];

static void
write_file(const char *name, const char *data, size_t len, mode_t mode,
    char *path, size_t plen)
{
	FILE *f;

	snprintf(path, plen, "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void
expect_pin(const char *path, const char *want)
{
	struct p11_pin *pin = NULL;
	const char *d;
	size_t len;

	assert_int_equal(p11_pin_from_file(path, &pin), 0);
	d = p11_pin_data(pin, &len);
	assert_int_equal(len, strlen(want));
	assert_string_equal(d, want);
	p11_pin_free(pin);
}

static void
test_pin_sources(void **state)
{
	struct p11_pin *pin = (struct p11_pin *)1, *dup = NULL;
	char path[256], src[300], big[300];
	const char *d;
	size_t len;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/ts-p11key.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	write_file("nl", "1234\n", 5, 0600, path, sizeof(path));
	expect_pin(path, "1234");
	write_file("crlf", "1234\r\n", 6, 0400, path, sizeof(path));
	expect_pin(path, "1234");
	write_file("plain", "12 34", 5, 0600, path, sizeof(path));
	expect_pin(path, "12 34");
	snprintf(src, sizeof(src), "file:%s", path);
	assert_int_equal(p11_pin_from_source(src, &pin), 0);
	assert_int_equal(p11_pin_dup(pin, &dup), 0);
	d = p11_pin_data(dup, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(d, "12 34", 5);
	p11_pin_free(dup);
	p11_pin_free(pin);
	snprintf(src, sizeof(src), "file://%s", path);
	assert_int_equal(p11_pin_from_source(src, &pin), 0);
	p11_pin_free(pin);
	assert_int_equal(
	    p11_pin_from_source("|/bin/echo 1", &pin), TS_ERR_UNSUPPORTED);
	assert_null(pin);
	assert_int_equal(
	    p11_pin_from_source("relative", &pin), TS_ERR_P11_PIN_SOURCE);
	/* group/other bits, empty, NUL, too long, a directory, missing */
	write_file("open", "1234", 4, 0640, path, sizeof(path));
	assert_int_equal(p11_pin_from_file(path, &pin), TS_ERR_P11_PIN_SOURCE);
	write_file("empty", "\n", 1, 0600, path, sizeof(path));
	assert_int_equal(p11_pin_from_file(path, &pin), TS_ERR_P11_PIN_SOURCE);
	write_file("nul",
	    "12\0"
	    "34",
	    5, 0600, path, sizeof(path));
	assert_int_equal(p11_pin_from_file(path, &pin), TS_ERR_P11_PIN_SOURCE);
	memset(big, '7', sizeof(big));
	write_file("max", big, P11_PIN_MAX_LEN, 0600, path, sizeof(path));
	assert_int_equal(p11_pin_from_file(path, &pin), 0);
	p11_pin_free(pin);
	write_file("over", big, P11_PIN_MAX_LEN + 1, 0600, path, sizeof(path));
	assert_int_equal(p11_pin_from_file(path, &pin), TS_ERR_P11_PIN_SOURCE);
	assert_int_equal(p11_pin_from_file(dir, &pin), TS_ERR_P11_PIN_SOURCE);
	assert_int_equal(
	    p11_pin_from_file("/nonexistent/pin", &pin), TS_ERR_P11_PIN_SOURCE);
	assert_null(pin);
	/* environment */
	setenv("TS_TEST_PIN", "4321", 1);
	assert_int_equal(p11_pin_from_env("TS_TEST_PIN", &pin), 0);
	d = p11_pin_data(pin, &len);
	assert_string_equal(d, "4321");
	p11_pin_free(pin);
	setenv("TS_TEST_PIN", "", 1);
	assert_int_equal(
	    p11_pin_from_env("TS_TEST_PIN", &pin), TS_ERR_P11_PIN_SOURCE);
	assert_int_equal(
	    p11_pin_from_env("TS_TEST_UNSET_PIN", &pin), TS_ERR_P11_PIN_SOURCE);
	assert_int_equal(p11_pin_from_bytes(big, P11_PIN_MAX_LEN + 1, &pin),
	    TS_ERR_P11_PIN_SOURCE);
	assert_int_equal(
	    p11_pin_from_bytes("", 0, &pin), TS_ERR_P11_PIN_SOURCE);
	p11_pin_free(NULL);
}

static void
test_allow_list(void **state)
{
	char link[256], file[256], *real = NULL;
	const char *mod = "/usr/lib/softhsm/libsofthsm2.so";

	(void)state;
	/* test_pin_sources made dir */
	snprintf(link, sizeof(link), "%s/link.so", dir);
	snprintf(file, sizeof(file), "%s/copy.so", dir);
	if (access(mod, R_OK) == 0) {
		assert_int_equal(symlink(mod, link), 0);
		/* matched after realpath: the link's target is allowed */
		assert_int_equal(
		    p11_provider_check_allowed(link, NULL, &real), 0);
		assert_int_equal(strncmp(real, "/usr/lib/", 9), 0);
		free(real);
		/* a pattern naming the link does not help */
		snprintf(file, sizeof(file), "%s/*", dir);
		assert_int_equal(p11_provider_check_allowed(link, file, NULL),
		    TS_ERR_P11_MODULE_DENIED);
	}
	write_file("mod.so", "x", 1, 0600, file, sizeof(file));
	assert_int_equal(p11_provider_check_allowed(file, NULL, NULL),
	    TS_ERR_P11_MODULE_DENIED);
	snprintf(link, sizeof(link), "/nowhere/*,,%s/mod.*", dir);
	assert_int_equal(p11_provider_check_allowed(file, link, NULL), 0);
	assert_int_equal(p11_provider_check_allowed(file, "", NULL),
	    TS_ERR_P11_MODULE_DENIED);
	assert_int_equal(
	    p11_provider_check_allowed("/nonexistent.so", "/*", NULL),
	    TS_ERR_P11_MODULE);
	assert_int_equal(
	    p11_provider_check_allowed("", NULL, NULL), TS_ERR_INVALID_ARG);
	snprintf(link, sizeof(link), "rm -rf '%s'", dir);
	assert_int_equal(system(link), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ec_point_forms),
		cmocka_unit_test(test_ec_p521_long_form),
		cmocka_unit_test(test_ed25519_forms),
		cmocka_unit_test(test_rsa_checks),
		cmocka_unit_test(test_raw_to_der),
		cmocka_unit_test(test_rv_mapping),
		cmocka_unit_test(test_pin_sources),
		cmocka_unit_test(test_allow_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
