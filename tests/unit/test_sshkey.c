/*
 * test_sshkey.c - OpenSSH key and signature blobs.  The expected
 * authorized_keys lines were produced by OpenSSH 9.2's own ssh-keygen
 * ("ssh-keygen -i -m PKCS8 -f pub.pem" for EC/RSA; for Ed25519, whose
 * PKCS8 import ssh-keygen 9.2 lacks, the key was made by "ssh-keygen -t
 * ed25519" and the SPKI built from the RFC 8410 prefix).  The integration
 * test test_ssh_keys_interop.sh repeats the comparison with fresh keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/sshkey.h"
#include "common/wbuf.h"

static const char ec_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdWgsZAmsvXhsq3BMzXvYXeRVF6qR\n"
    "NAR0T1V2XdcGxV9aOC1MYGjFhQDZa64EWXNO0lX4IUBk+1A5ot8LBSeDlQ==\n"
    "-----END PUBLIC KEY-----\n";
static const char ec_line[] =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAAB"
    "BBHVoLGQJrL14bKtwTM172F3kVReqkTQEdE9Vdl3XBsVfWjgtTGBoxYUA2WuuBFlzTtJV+C"
    "FAZPtQOaLfCwUng5U=";
static const char ec_fp[] =
    "SHA256:ZO2zhjIrJ/W2r43naYJaShsss8eEC3eIIH5bDeF4K9M";

static const char rsa_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsNhIHJyxhcZoFDdIVaa2\n"
    "huTXj1kV1qMm05iirk888oZ7ZAXCc33bOLuPBgWO+l3K5ijcHytnAo7xJPgAG3Tv\n"
    "AIHwgco0KNNF6bpjvRLau4H6iB+dFBLdOjDs9yeA3EKB58kvQUMC1NxRT8y2Ke64\n"
    "O4Ba7+92hyeXAIMYFzp32ixMHw2HDHiGi6/tpkOab7rRXCsMhP/ereTqeJS5ZbA3\n"
    "JEaEY5I9DvM49W1DMJGtxXJEQIZN+LFA4tkfozzgp3pa81YcFSN6RGT737iMBFNb\n"
    "jzHEC40sGjz0S9h0siIeD3QdXMjo30anTxVWUBD37LAKBcCbeY6ao19DYyUWJwBv\n"
    "CQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
static const char rsa_line[] =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCw2EgcnLGFxmgUN0hVpraG5NePWRXWoyb"
    "TmKKuTzzyhntkBcJzfds4u48GBY76XcrmKNwfK2cCjvEk+AAbdO8AgfCByjQo00XpumO9Et"
    "q7gfqIH50UEt06MOz3J4DcQoHnyS9BQwLU3FFPzLYp7rg7gFrv73aHJ5cAgxgXOnfaLEwfD"
    "YcMeIaLr+2mQ5pvutFcKwyE/96t5Op4lLllsDckRoRjkj0O8zj1bUMwka3FckRAhk34sUDi"
    "2R+jPOCnelrzVhwVI3pEZPvfuIwEU1uPMcQLjSwaPPRL2HSyIh4PdB1cyOjfRqdPFVZQEPf"
    "ssAoFwJt5jpqjX0NjJRYnAG8J";

static const char ed_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEAqMs2jj9T/7l2xF0fWp+BFyneQoKQ4Ua6cZZqir01niw=\n"
    "-----END PUBLIC KEY-----\n";
static const char ed_line[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKjLNo4/U/+5dsRdH1qfgRcp3kKCkOFGunG"
    "Waoq9NZ4s";

/* Returns the SPKI DER of a PEM public key (caller frees). */
static uint8_t *
pem_to_spki(const char *pem, size_t *len)
{
	BIO *bio;
	EVP_PKEY *pk;
	unsigned char *der = NULL;
	int n;

	assert_non_null(bio = BIO_new_mem_buf(pem, -1));
	assert_non_null(pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL));
	assert_true((n = i2d_PUBKEY(pk, &der)) > 0);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	*len = (size_t)n;
	return der;
}

static uint8_t *
key_spki(EVP_PKEY *pk, size_t *len)
{
	unsigned char *der = NULL;
	int n;

	assert_true((n = i2d_PUBKEY(pk, &der)) > 0);
	*len = (size_t)n;
	return der;
}

static void
check_line(const char *pem, const char *want, enum sshkey_type want_type)
{
	uint8_t *spki, *back;
	size_t len, backlen;
	char *line;
	struct wbuf *blob;
	enum sshkey_type t;
	char want_c[1024];

	spki = pem_to_spki(pem, &len);
	assert_int_equal(sshkey_authorized_line(spki, len, NULL, &line), 0);
	assert_string_equal(line, want);
	free(line);
	assert_int_equal(sshkey_authorized_line(spki, len, "", &line), 0);
	assert_string_equal(line, want);
	free(line);
	/* comments are one field: spaces and controls become '_' */
	assert_int_equal(
	    sshkey_authorized_line(spki, len, "p256 key\nevil", &line), 0);
	assert_true(snprintf(want_c, sizeof(want_c), "%s p256_key_evil", want) <
	    (int)sizeof(want_c));
	assert_string_equal(line, want_c);
	free(line);

	assert_non_null(blob = wbuf_new(SSHKEY_BLOB_MAX));
	assert_int_equal(sshkey_blob_from_spki(spki, len, blob, &t), 0);
	assert_int_equal(t, want_type);
	assert_int_equal(
	    sshkey_blob_parse(wbuf_ptr(blob), wbuf_len(blob), &t), 0);
	assert_int_equal(t, want_type);
	assert_int_equal(
	    sshkey_blob_match(wbuf_ptr(blob), wbuf_len(blob), spki, len), 0);
	/* and back to the same SPKI */
	assert_int_equal(sshkey_blob_to_spki(
			     wbuf_ptr(blob), wbuf_len(blob), &back, &backlen),
	    0);
	assert_int_equal(backlen, len);
	assert_memory_equal(back, spki, len);
	free(back);
	wbuf_free(blob);
	OPENSSL_free(spki);
}

static void
test_lines_match_ssh_keygen(void **state)
{
	(void)state;
	check_line(ec_pem, ec_line, SSHKEY_ECDSA_P256);
	check_line(rsa_pem, rsa_line, SSHKEY_RSA);
	check_line(ed_pem, ed_line, SSHKEY_ED25519);
}

static void
test_fingerprint(void **state)
{
	uint8_t *spki;
	size_t len;
	struct wbuf *blob;
	char fp[SSHKEY_FP_MAX];

	(void)state;
	spki = pem_to_spki(ec_pem, &len);
	assert_non_null(blob = wbuf_new(SSHKEY_BLOB_MAX));
	assert_int_equal(sshkey_blob_from_spki(spki, len, blob, NULL), 0);
	assert_int_equal(
	    sshkey_fingerprint(wbuf_ptr(blob), wbuf_len(blob), fp, sizeof(fp)),
	    0);
	assert_string_equal(fp, ec_fp);
	assert_int_equal(
	    sshkey_fingerprint(wbuf_ptr(blob), wbuf_len(blob), fp, 50),
	    TS_ERR_TOO_LARGE);
	wbuf_free(blob);
	OPENSSL_free(spki);
}

static void
test_unsupported_keys(void **state)
{
	EVP_PKEY *pk;
	uint8_t *spki;
	size_t len;
	struct wbuf *blob;
	enum sshkey_type t = SSHKEY_RSA;

	(void)state;
	assert_non_null(blob = wbuf_new(SSHKEY_BLOB_MAX));
	assert_int_equal(wbuf_put_u8(blob, 0x42), 0);
	/* P-384: refused, and the buffer is left as it was */
	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"));
	spki = key_spki(pk, &len);
	assert_int_equal(
	    sshkey_blob_from_spki(spki, len, blob, &t), TS_ERR_UNSUPPORTED);
	assert_int_equal(t, SSHKEY_UNKNOWN);
	assert_int_equal(wbuf_len(blob), 1);
	OPENSSL_free(spki);
	EVP_PKEY_free(pk);
	/* RSA-1024: below the minimum */
	assert_non_null(
	    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024));
	spki = key_spki(pk, &len);
	assert_int_equal(
	    sshkey_blob_from_spki(spki, len, blob, &t), TS_ERR_UNSUPPORTED);
	assert_int_equal(wbuf_len(blob), 1);
	/* not our key: match says NOT_FOUND rather than an error */
	assert_int_equal(
	    sshkey_blob_match(wbuf_ptr(blob), 1, spki, len), TS_ERR_NOT_FOUND);
	OPENSSL_free(spki);
	EVP_PKEY_free(pk);
	/* garbage, truncated and trailing SPKI */
	spki = pem_to_spki(ec_pem, &len);
	assert_int_equal(
	    sshkey_blob_from_spki(spki, len - 1, blob, &t), TS_ERR_KEY_INVALID);
	assert_int_equal(
	    sshkey_blob_from_spki(spki, 0, blob, &t), TS_ERR_KEY_INVALID);
	{
		uint8_t longer[200];

		memcpy(longer, spki, len);
		longer[len] = 0;
		assert_int_equal(
		    sshkey_blob_from_spki(longer, len + 1, blob, &t),
		    TS_ERR_KEY_INVALID);
	}
	assert_int_equal(wbuf_len(blob), 1);
	OPENSSL_free(spki);
	wbuf_free(blob);
}

/* Builds a blob from parts for the parser's negative cases. */
static struct wbuf *
mkblob(const char *name, const void *a, size_t alen, const void *c, size_t clen)
{
	struct wbuf *b;

	assert_non_null(b = wbuf_new(SSHKEY_BLOB_MAX));
	assert_int_equal(wbuf_put_cstring(b, name), 0);
	if (a != NULL)
		assert_int_equal(wbuf_put_string(b, a, alen), 0);
	if (c != NULL)
		assert_int_equal(wbuf_put_string(b, c, clen), 0);
	return b;
}

static void
test_blob_parse_negative(void **state)
{
	struct wbuf *b;
	enum sshkey_type t;
	uint8_t q[65], big[257], e[3] = { 1, 0, 1 };
	uint8_t *spki;
	size_t len;

	(void)state;
	memset(q, 0x11, sizeof(q));
	q[0] = 4;
	memset(big, 0x5b, sizeof(big));
	big[0] = 0;
	big[1] = 0xc5;
	big[256] = 0x01; /* odd modulus */

	/* unknown type: well-formed but not ours */
	b = mkblob("ssh-dss", q, 20, NULL, 0);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_UNSUPPORTED);
	wbuf_free(b);
	b = mkblob("ecdsa-sha2-nistp384", "nistp384", 8, q, 65);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_UNSUPPORTED);
	wbuf_free(b);
	/* ecdsa: curve name mismatch, short point, compressed point */
	b = mkblob("ecdsa-sha2-nistp256", "nistp384", 8, q, 65);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_KEY_INVALID);
	wbuf_free(b);
	b = mkblob("ecdsa-sha2-nistp256", "nistp256", 8, q, 64);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_KEY_INVALID);
	wbuf_free(b);
	q[0] = 2;
	b = mkblob("ecdsa-sha2-nistp256", "nistp256", 8, q, 65);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_KEY_INVALID);
	wbuf_free(b);
	q[0] = 4;
	/* well-formed but not on the curve: parse ok, to_spki refuses */
	b = mkblob("ecdsa-sha2-nistp256", "nistp256", 8, q, 65);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t), 0);
	assert_int_equal(
	    sshkey_blob_to_spki(wbuf_ptr(b), wbuf_len(b), &spki, &len),
	    TS_ERR_KEY_INVALID);
	assert_null(spki);
	/* trailing byte */
	assert_int_equal(wbuf_put_u8(b, 0), 0);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_KEY_INVALID);
	/* truncated by one byte */
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b) - 2, &t),
	    TS_ERR_KEY_INVALID);
	assert_int_equal(
	    sshkey_blob_parse(wbuf_ptr(b), 0, &t), TS_ERR_KEY_INVALID);
	wbuf_free(b);
	/* ed25519: 31 and 33 bytes */
	b = mkblob("ssh-ed25519", q, 31, NULL, 0);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_KEY_INVALID);
	wbuf_free(b);
	b = mkblob("ssh-ed25519", q, 33, NULL, 0);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_KEY_INVALID);
	wbuf_free(b);
	/* rsa: good, then non-minimal e, negative n, short n */
	b = mkblob("ssh-rsa", e, 3, big, sizeof(big));
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t), 0);
	assert_int_equal(t, SSHKEY_RSA);
	wbuf_free(b);
	{
		uint8_t e0[4] = { 0, 1, 0, 1 };

		b = mkblob("ssh-rsa", e0, 4, big, sizeof(big));
		assert_int_equal(
		    sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
		    TS_ERR_KEY_INVALID);
		wbuf_free(b);
	}
	b = mkblob("ssh-rsa", e, 3, big + 1, sizeof(big) - 1);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_KEY_INVALID);
	wbuf_free(b);
	b = mkblob("ssh-rsa", e, 3, big, 129);
	assert_int_equal(sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
	    TS_ERR_KEY_INVALID);
	wbuf_free(b);
	/* embedded NUL in the type name */
	b = mkblob("ssh-ed25519", q, 32, NULL, 0);
	{
		uint8_t *m = wbuf_mutable_ptr(b);

		m[7] = 0;
		assert_int_equal(
		    sshkey_blob_parse(wbuf_ptr(b), wbuf_len(b), &t),
		    TS_ERR_UNSUPPORTED);
	}
	wbuf_free(b);
}

static void
test_sigalg_flags(void **state)
{
	enum sshkey_sigalg a;

	(void)state;
	assert_int_equal(sshkey_sigalg_for(SSHKEY_RSA, 2, &a), 0);
	assert_int_equal(a, SSHKEY_SIG_RSA_SHA256);
	assert_int_equal(sshkey_sigalg_for(SSHKEY_RSA, 4, &a), 0);
	assert_int_equal(a, SSHKEY_SIG_RSA_SHA512);
	assert_int_equal(sshkey_sigalg_for(SSHKEY_RSA, 6, &a), 0);
	assert_int_equal(a, SSHKEY_SIG_RSA_SHA512);
	assert_int_equal(
	    sshkey_sigalg_for(SSHKEY_RSA, 0, &a), TS_ERR_UNSUPPORTED);
	assert_int_equal(a, SSHKEY_SIG_RSA_SHA1);
	assert_string_equal(sshkey_sigalg_name(a), "ssh-rsa");
	assert_int_equal(sshkey_sigalg_for(SSHKEY_ECDSA_P256, 6, &a), 0);
	assert_int_equal(a, SSHKEY_SIG_ECDSA_P256_SHA256);
	assert_int_equal(sshkey_sigalg_for(SSHKEY_ED25519, 0, &a), 0);
	assert_int_equal(a, SSHKEY_SIG_ED25519);
	assert_int_equal(
	    sshkey_sigalg_for(SSHKEY_UNKNOWN, 0, &a), TS_ERR_INVALID_ARG);
}

/* Signs data with pk (digest md or NULL for Ed25519), returns the sig. */
static uint8_t *
ossl_sign(EVP_PKEY *pk, const EVP_MD *md, const uint8_t *data, size_t len,
    size_t *siglen)
{
	EVP_MD_CTX *ctx;
	uint8_t *sig;

	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(ctx, NULL, siglen, data, len), 1);
	assert_non_null(sig = malloc(*siglen));
	assert_int_equal(EVP_DigestSign(ctx, sig, siglen, data, len), 1);
	EVP_MD_CTX_free(ctx);
	return sig;
}

static int
ossl_verify(EVP_PKEY *pk, const EVP_MD *md, const uint8_t *data, size_t len,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *ctx;
	int ok;

	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk), 1);
	ok = EVP_DigestVerify(ctx, sig, siglen, data, len);
	EVP_MD_CTX_free(ctx);
	return ok;
}

static void
roundtrip_sig(EVP_PKEY *pk, const EVP_MD *md, enum sshkey_sigalg alg,
    size_t modlen, const char *name)
{
	static const uint8_t data[] = "ssh session data";
	uint8_t *sig, *back;
	size_t siglen, backlen;
	struct wbuf *out;
	const uint8_t *n;
	size_t nlen;
	enum sshkey_sigalg got;
	int i;

	/* many runs so ECDSA r/s with the top bit set and clear both occur */
	for (i = 0; i < 16; i++) {
		sig = ossl_sign(pk, md, data, sizeof(data), &siglen);
		assert_non_null(out = wbuf_new(SSHKEY_BLOB_MAX));
		assert_int_equal(
		    sshkey_sig_encode(alg, sig, siglen, modlen, out), 0);
		assert_int_equal(sshkey_sig_decode(wbuf_ptr(out), wbuf_len(out),
				     &got, &back, &backlen),
		    0);
		assert_int_equal(got, alg);
		assert_int_equal(
		    ossl_verify(pk, md, data, sizeof(data), back, backlen), 1);
		if (alg != SSHKEY_SIG_ECDSA_P256_SHA256) {
			assert_int_equal(backlen, siglen);
			assert_memory_equal(back, sig, siglen);
		}
		assert_int_equal(wbuf_get_string_direct(out, &n, &nlen), 0);
		assert_int_equal(nlen, strlen(name));
		assert_memory_equal(n, name, nlen);
		free(back);
		free(sig);
		wbuf_free(out);
	}
}

static void
test_sig_roundtrip(void **state)
{
	EVP_PKEY *pk;

	(void)state;
	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	roundtrip_sig(pk, EVP_sha256(), SSHKEY_SIG_ECDSA_P256_SHA256, 0,
	    "ecdsa-sha2-nistp256");
	EVP_PKEY_free(pk);
	assert_non_null(pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	roundtrip_sig(pk, NULL, SSHKEY_SIG_ED25519, 0, "ssh-ed25519");
	EVP_PKEY_free(pk);
	assert_non_null(
	    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
	roundtrip_sig(
	    pk, EVP_sha256(), SSHKEY_SIG_RSA_SHA256, 256, "rsa-sha2-256");
	roundtrip_sig(
	    pk, EVP_sha512(), SSHKEY_SIG_RSA_SHA512, 256, "rsa-sha2-512");
	EVP_PKEY_free(pk);
}

static void
test_sig_ecdsa_mpint_exact(void **state)
{
	/* r = 0x80 00..01 (top bit set), s = 0x00..7f (leading zeros) */
	uint8_t der[8 + 33 + 1];
	uint8_t want[4 + 33 + 4 + 1];
	struct wbuf *out;
	const uint8_t *body;
	size_t blen, i;

	(void)state;
	der[0] = 0x30;
	der[1] = 2 + 33 + 2 + 1;
	der[2] = 0x02;
	der[3] = 33;
	der[4] = 0x00;
	der[5] = 0x80;
	for (i = 6; i < 37; i++)
		der[i] = 0;
	der[36] = 1;
	der[37] = 0x02;
	der[38] = 1;
	der[39] = 0x7f;
	memcpy(want, "\x00\x00\x00\x21\x00\x80", 6);
	memset(want + 6, 0, 31);
	want[36] = 1;
	memcpy(want + 37, "\x00\x00\x00\x01\x7f", 5);
	assert_non_null(out = wbuf_new(SSHKEY_BLOB_MAX));
	assert_int_equal(
	    sshkey_sig_encode(SSHKEY_SIG_ECDSA_P256_SHA256, der, 40, 0, out),
	    0);
	assert_int_equal(wbuf_get_string_direct(out, &body, &blen), 0);
	assert_int_equal(wbuf_get_string_direct(out, &body, &blen), 0);
	assert_int_equal(blen, sizeof(want));
	assert_memory_equal(body, want, sizeof(want));
	assert_int_equal(wbuf_len(out), 0);
	wbuf_free(out);
}

static void
test_sig_encode_negative(void **state)
{
	uint8_t raw[512];
	struct wbuf *out;

	(void)state;
	memset(raw, 0x33, sizeof(raw));
	assert_non_null(out = wbuf_new(SSHKEY_BLOB_MAX));
	assert_int_equal(wbuf_put_u8(out, 7), 0);
	/* raw r||s is not DER */
	assert_int_equal(
	    sshkey_sig_encode(SSHKEY_SIG_ECDSA_P256_SHA256, raw, 64, 0, out),
	    TS_ERR_INVALID_ARG);
	assert_int_equal(sshkey_sig_encode(SSHKEY_SIG_ED25519, raw, 63, 0, out),
	    TS_ERR_INVALID_ARG);
	assert_int_equal(sshkey_sig_encode(SSHKEY_SIG_ED25519, raw, 65, 0, out),
	    TS_ERR_INVALID_ARG);
	assert_int_equal(
	    sshkey_sig_encode(SSHKEY_SIG_RSA_SHA256, raw, 255, 256, out),
	    TS_ERR_INVALID_ARG);
	assert_int_equal(
	    sshkey_sig_encode(SSHKEY_SIG_RSA_SHA1, raw, 256, 256, out),
	    TS_ERR_UNSUPPORTED);
	assert_int_equal(sshkey_sig_encode(SSHKEY_SIG_NONE, raw, 1, 0, out),
	    TS_ERR_INVALID_ARG);
	/* nothing half-written */
	assert_int_equal(wbuf_len(out), 1);
	wbuf_free(out);
}

static void
test_sig_decode_negative(void **state)
{
	struct wbuf *b;
	enum sshkey_sigalg a;
	uint8_t *sig;
	size_t len;
	uint8_t z[64] = { 0 };

	(void)state;
	b = mkblob("ssh-dss", z, 40, NULL, 0);
	assert_int_equal(
	    sshkey_sig_decode(wbuf_ptr(b), wbuf_len(b), &a, &sig, &len),
	    TS_ERR_UNSUPPORTED);
	assert_null(sig);
	wbuf_free(b);
	b = mkblob("ssh-ed25519", z, 63, NULL, 0);
	assert_int_equal(
	    sshkey_sig_decode(wbuf_ptr(b), wbuf_len(b), &a, &sig, &len),
	    TS_ERR_INVALID_ARG);
	wbuf_free(b);
	/* ecdsa body with r = 0 (empty mpint) */
	{
		uint8_t body[] = { 0, 0, 0, 0, 0, 0, 0, 1, 1 };

		b = mkblob("ecdsa-sha2-nistp256", body, sizeof(body), NULL, 0);
		assert_int_equal(
		    sshkey_sig_decode(wbuf_ptr(b), wbuf_len(b), &a, &sig, &len),
		    TS_ERR_INVALID_ARG);
		wbuf_free(b);
	}
	/* trailing bytes after the body */
	b = mkblob("ssh-ed25519", z, 64, NULL, 0);
	assert_int_equal(
	    sshkey_sig_decode(wbuf_ptr(b), wbuf_len(b), &a, &sig, &len), 0);
	free(sig);
	assert_int_equal(wbuf_put_u8(b, 0), 0);
	assert_int_equal(
	    sshkey_sig_decode(wbuf_ptr(b), wbuf_len(b), &a, &sig, &len),
	    TS_ERR_INVALID_ARG);
	wbuf_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_match_ssh_keygen),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_unsupported_keys),
		cmocka_unit_test(test_blob_parse_negative),
		cmocka_unit_test(test_sigalg_flags),
		cmocka_unit_test(test_sig_roundtrip),
		cmocka_unit_test(test_sig_ecdsa_mpint_exact),
		cmocka_unit_test(test_sig_encode_negative),
		cmocka_unit_test(test_sig_decode_negative),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
