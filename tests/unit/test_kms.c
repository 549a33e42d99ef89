/*
 * test_kms.c - the cosign KMS plugin protocol (client/kms/kms.c) with
 * software keys behind struct kms_backend, replaying the argv/stdin shapes
 * sigstore's cliplugin client sends (encoding.PackSignOptions: digest is
 * null when absent, keyVersion "" and remoteVerification false always
 * present).  The real agent path is test_kms_plugin.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "client/kms/kms.h"
#include "common/err.h"
#include "common/json.h"
#include "common/payload.h"
#include "common/proto.h"

static const char payload_text[] =
    "{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/"
    "demo/app\"},\"image\":{\"docker-manifest-digest\":\"sha256:"
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"},"
    "\"type\":\"cosign container image signature\"},\"optional\":null}";

struct soft {
	const char *ref;
	EVP_PKEY *pk;
};

static struct soft keys[3];
static int payload_calls, digest_calls, last_hash;

static struct soft *
find(const char *ref)
{
	size_t i;

	for (i = 0; i < 3; i++)
		if (strcmp(keys[i].ref, ref) == 0)
			return &keys[i];
	return NULL;
}

static int
be_key(void *arg, const char *ref, uint8_t **spki, size_t *len)
{
	struct soft *k;
	unsigned char *der = NULL;
	int n;

	(void)arg;
	if (strcmp(ref, "down") == 0)
		return TS_ERR_AGENT_CONNECT;
	if (strcmp(ref, "locked") == 0)
		ref = "p256";
	if ((k = find(ref)) == NULL)
		return TS_ERR_P11_KEY_NOT_FOUND;
	assert_true((n = i2d_PUBKEY(k->pk, &der)) > 0);
	*spki = malloc((size_t)n);
	memcpy(*spki, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	return 0;
}

static int
soft_sign(EVP_PKEY *pk, const EVP_MD *md, const uint8_t *in, size_t len,
    uint8_t **sig, size_t *siglen)
{
	EVP_PKEY_CTX *ctx;

	assert_non_null(ctx = EVP_PKEY_CTX_new(pk, NULL));
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA)
		assert_int_equal(
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, md), 1);
	assert_int_equal(EVP_PKEY_sign(ctx, NULL, siglen, in, len), 1);
	*sig = malloc(*siglen);
	assert_int_equal(EVP_PKEY_sign(ctx, *sig, siglen, in, len), 1);
	EVP_PKEY_CTX_free(ctx);
	return 0;
}

static int
be_payload(void *arg, const char *ref, const uint8_t *p, size_t len,
    uint8_t **sig, size_t *siglen)
{
	struct soft *k;
	struct payload *pl;
	uint8_t md[32];
	EVP_MD_CTX *ctx;

	(void)arg;
	payload_calls++;
	if (strcmp(ref, "locked") == 0)
		return TS_ERR_AGENT_LOCKED;
	assert_non_null(k = find(ref));
	/* what the agent does first */
	assert_int_equal(payload_parse(p, len, &pl, NULL, 0), 0);
	payload_free(pl);
	if (EVP_PKEY_get_base_id(k->pk) == EVP_PKEY_ED25519) {
		assert_non_null(ctx = EVP_MD_CTX_new());
		assert_int_equal(
		    EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pk), 1);
		assert_int_equal(EVP_DigestSign(ctx, NULL, siglen, p, len), 1);
		*sig = malloc(*siglen);
		assert_int_equal(EVP_DigestSign(ctx, *sig, siglen, p, len), 1);
		EVP_MD_CTX_free(ctx);
		return 0;
	}
	assert_int_equal(EVP_Digest(p, len, md, NULL, EVP_sha256(), NULL), 1);
	return soft_sign(k->pk, EVP_sha256(), md, 32, sig, siglen);
}

static int
be_digest(void *arg, const char *ref, int hash, const uint8_t *d, size_t len,
    uint8_t **sig, size_t *siglen)
{
	struct soft *k;

	(void)arg;
	digest_calls++;
	last_hash = hash;
	if (strcmp(ref, "locked") == 0)
		return TS_ERR_AGENT_LOCKED;
	assert_non_null(k = find(ref));
	return soft_sign(k->pk,
	    hash == TS_HASH_SHA512	 ? EVP_sha512()
		: hash == TS_HASH_SHA384 ? EVP_sha384()
					 : EVP_sha256(),
	    d, len, sig, siglen);
}

static const struct kms_backend be = { be_key, be_payload, be_digest, NULL };

static int
setup(void **state)
{
	(void)state;
	keys[0].ref = "p256";
	keys[0].pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	keys[1].ref = "ed";
	keys[1].pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	keys[2].ref = "rsa";
	keys[2].pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	return 0;
}

static int
teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++)
		EVP_PKEY_free(keys[i].pk);
	return 0;
}

/*
 * Runs the plugin with method args `margs` (JSON text of the method
 * member, or NULL) for key `ref`; returns the parsed response.
 */
static json_t *
call(const char *method, const char *margs, const char *ref, int hash,
    const void *in, size_t inlen, int *rc)
{
	char argbuf[8192];
	char *outbuf = NULL;
	size_t outlen = 0;
	FILE *fin, *fout;
	json_t *resp;
	char *argv[4];

	assert_true(snprintf(argbuf, sizeof(argbuf),
			"{\"methodName\":\"%s\"%s%s%s%s,\"initOptions\":{"
			"\"protocolVersion\":\"v1\",\"keyResourceID\":"
			"\"tokensign://%s\",\"hashFunc\":%d}}",
			method, margs ? ",\"" : "", margs ? method : "",
			margs ? "\":" : "", margs ? margs : "", ref,
			hash) < (int)sizeof(argbuf));
	static char a0[] = "sigstore-kms-tokensign", a1[] = "v1";
	char *incopy = NULL;

	argv[0] = a0;
	argv[1] = a1;
	argv[2] = argbuf;
	argv[3] = NULL;
	if (inlen) {
		assert_non_null(incopy = malloc(inlen));
		memcpy(incopy, in, inlen);
	}
	assert_non_null(fin = inlen ? fmemopen(incopy, inlen, "r")
				    : fopen("/dev/null", "r"));
	assert_non_null(fout = open_memstream(&outbuf, &outlen));
	*rc = kms_run(&be, NULL, 3, argv, fin, fout);
	fclose(fin);
	free(incopy);
	fclose(fout);
	/* exactly one JSON object and a newline */
	assert_true(outlen > 2 && outbuf[outlen - 1] == '\n');
	assert_int_equal(tsjson_parse(outbuf, outlen - 1, 1 << 20,
			     TSJSON_OBJECT, &resp, NULL, 0),
	    0);
	free(outbuf);
	return resp;
}

static const char *
errmsg(json_t *resp)
{
	json_t *e = json_object_get(resp, "errorMessage");

	return json_is_string(e) ? json_string_value(e) : NULL;
}

static uint8_t *
b64dec(const char *s, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *d = malloc(n);
	int k = EVP_DecodeBlock(d, (const unsigned char *)s, (int)n);

	assert_true(k >= 0);
	while (n > 0 && s[n - 1] == '=') {
		n--;
		k--;
	}
	*len = (size_t)k;
	return d;
}

static char *
b64enc(const uint8_t *d, size_t len)
{
	char *s = malloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)s, d, (int)len);
	return s;
}

static void
test_algorithms_always_answer(void **state)
{
	json_t *r, *a;
	int rc;

	(void)state;
	r = call("supportedAlgorithms", "{}", "down", 5, NULL, 0, &rc);
	assert_int_equal(rc, 0);
	a = json_object_get(
	    json_object_get(r, "supportedAlgorithms"), "supportedAlgorithms");
	assert_true(json_array_size(a) >= 3);
	assert_string_equal(
	    json_string_value(json_array_get(a, 0)), "ecdsa-sha2-256-nistp256");
	json_decref(r);
	/* agent down: still an answer (cosign would exit otherwise) */
	r = call("defaultAlgorithm", "{}", "down", 5, NULL, 0, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(r, "defaultAlgorithm"), "defaultAlgorithm")),
	    "ecdsa-sha2-256-nistp256");
	json_decref(r);
	r = call("defaultAlgorithm", "{}", "ed", 5, NULL, 0, &rc);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(r, "defaultAlgorithm"), "defaultAlgorithm")),
	    "ed25519");
	json_decref(r);
	r = call("defaultAlgorithm", NULL, "rsa", 5, NULL, 0, &rc);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(r, "defaultAlgorithm"), "defaultAlgorithm")),
	    "rsa-sign-pkcs1-2048-sha256");
	json_decref(r);
}

static void
check_pem(json_t *r, const char *member, EVP_PKEY *want)
{
	const char *b64 = json_string_value(
	    json_object_get(json_object_get(r, member), "publicKeyPEM"));
	uint8_t *pem;
	size_t len;
	BIO *bio;
	EVP_PKEY *got;

	assert_non_null(b64);
	pem = b64dec(b64, &len);
	assert_non_null(bio = BIO_new_mem_buf(pem, (int)len));
	assert_non_null(got = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL));
	assert_int_equal(EVP_PKEY_eq(got, want), 1);
	EVP_PKEY_free(got);
	BIO_free(bio);
	free(pem);
}

static void
test_public_and_create(void **state)
{
	json_t *r;
	int rc;

	(void)state;
	r = call("publicKey",
	    "{\"publicKeyOptions\":{\"rpcOptions\":{\"keyVersion\":\"\","
	    "\"remoteVerification\":false}}}",
	    "p256", 5, NULL, 0, &rc);
	assert_int_equal(rc, 0);
	check_pem(r, "publicKey", keys[0].pk);
	json_decref(r);
	r = call("createKey", "{\"algorithm\":\"ecdsa-sha2-256-nistp256\"}",
	    "p256", 5, NULL, 0, &rc);
	assert_int_equal(rc, 0);
	check_pem(r, "createKey", keys[0].pk);
	json_decref(r);
	/* no generation: another algorithm is an error, as JSON */
	r = call("createKey", "{\"algorithm\":\"rsa-sign-pkcs1-4096-sha256\"}",
	    "p256", 5, NULL, 0, &rc);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(errmsg(r), "rsa-sign-pkcs1-4096-sha256"));
	json_decref(r);
	/* unknown key, agent down */
	r = call("publicKey", "{}", "nokey", 5, NULL, 0, &rc);
	assert_int_equal(rc, TS_ERR_P11_KEY_NOT_FOUND);
	assert_non_null(strstr(errmsg(r), "nokey"));
	json_decref(r);
	r = call("publicKey", "{}", "down", 5, NULL, 0, &rc);
	assert_int_equal(rc, TS_ERR_AGENT_CONNECT);
	assert_non_null(errmsg(r));
	json_decref(r);
}

static int
verify_with(EVP_PKEY *pk, const EVP_MD *md, const void *msg, size_t len,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk), 1);
	ok = EVP_DigestVerify(ctx, sig, siglen, msg, len);
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* signMessage; returns the decoded signature (caller frees) or NULL. */
static uint8_t *
sign(const char *ref, const char *digest_b64, int hash, const void *in,
    size_t inlen, size_t *siglen, int *rc, char **err)
{
	char margs[1024];
	json_t *r;
	const char *s;
	uint8_t *sig = NULL;

	assert_true(
	    snprintf(margs, sizeof(margs),
		"{\"signOptions\":{\"rpcOptions\":{\"keyVersion\":"
		"\"\",\"remoteVerification\":false},"
		"\"messageOptions\":{\"digest\":%s%s%s}}}",
		digest_b64 ? "\"" : "", digest_b64 ? digest_b64 : "null",
		digest_b64 ? "\"" : "") < (int)sizeof(margs));
	r = call("signMessage", margs, ref, hash, in, inlen, rc);
	*err = errmsg(r) ? strdup(errmsg(r)) : NULL;
	s = json_string_value(
	    json_object_get(json_object_get(r, "signMessage"), "signature"));
	if (s != NULL)
		sig = b64dec(s, siglen);
	json_decref(r);
	return sig;
}

static void
test_sign_message(void **state)
{
	uint8_t *sig, md[64];
	size_t siglen;
	char *err, *d64;
	int rc, pc, dc;
	static const char other[] = "not a payload";

	(void)state;
	/* cosign 2.x: the whole payload, no digest -> SIGN_PAYLOAD */
	pc = payload_calls;
	sig = sign("p256", NULL, 5, payload_text, strlen(payload_text), &siglen,
	    &rc, &err);
	assert_int_equal(rc, 0);
	assert_null(err);
	assert_int_equal(payload_calls, pc + 1);
	assert_int_equal(sig[0], 0x30); /* DER */
	assert_int_equal(verify_with(keys[0].pk, EVP_sha256(), payload_text,
			     strlen(payload_text), sig, siglen),
	    1);
	free(sig);
	/* payload plus its digest: still SIGN_PAYLOAD, digest checked */
	EVP_Digest(
	    payload_text, strlen(payload_text), md, NULL, EVP_sha256(), NULL);
	d64 = b64enc(md, 32);
	sig = sign("p256", d64, 5, payload_text, strlen(payload_text), &siglen,
	    &rc, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(payload_calls, pc + 2);
	free(sig);
	/* empty stdin plus digest: SIGN_DIGEST */
	dc = digest_calls;
	sig = sign("p256", d64, 5, NULL, 0, &siglen, &rc, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(digest_calls, dc + 1);
	assert_int_equal(last_hash, TS_HASH_SHA256);
	assert_int_equal(verify_with(keys[0].pk, EVP_sha256(), payload_text,
			     strlen(payload_text), sig, siglen),
	    1);
	free(sig);
	/* digest that is not the hash of stdin */
	sig = sign("p256", d64, 5, other, strlen(other), &siglen, &rc, &err);
	assert_null(sig);
	assert_int_equal(rc, TS_ERR_DIGEST_MISMATCH);
	free(err);
	free(d64);
	/* digest length vs hashFunc (SHA-512 asked, 32 bytes given) */
	d64 = b64enc(md, 32);
	sig = sign("p256", d64, 7, NULL, 0, &siglen, &rc, &err);
	assert_null(sig);
	assert_int_equal(rc, TS_ERR_DIGEST_INVALID);
	free(err);
	free(d64);
	/* bad base64 in the digest */
	sig = sign("p256", "@@@@", 5, NULL, 0, &siglen, &rc, &err);
	assert_null(sig);
	assert_int_equal(rc, TS_ERR_BASE64);
	free(err);
	/* a non-payload message is hashed here and sent as a digest */
	sig = sign("rsa", NULL, 7, other, strlen(other), &siglen, &rc, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(last_hash, TS_HASH_SHA512);
	assert_int_equal(siglen, 256);
	assert_int_equal(verify_with(keys[2].pk, EVP_sha512(), other,
			     strlen(other), sig, siglen),
	    1);
	free(sig);
	/* Ed25519: the whole payload, no digest */
	sig = sign("ed", NULL, 0, payload_text, strlen(payload_text), &siglen,
	    &rc, &err);
	assert_int_equal(rc, 0);
	assert_int_equal(siglen, 64);
	assert_int_equal(verify_with(keys[1].pk, NULL, payload_text,
			     strlen(payload_text), sig, siglen),
	    1);
	free(sig);
	/* Ed25519 with only a digest cannot work */
	d64 = b64enc(md, 32);
	sig = sign("ed", d64, 5, NULL, 0, &siglen, &rc, &err);
	assert_null(sig);
	assert_int_equal(rc, TS_ERR_UNSUPPORTED);
	assert_non_null(strstr(err, "Ed25519"));
	free(err);
	free(d64);
	/* errors: unknown key, agent down, locked agent */
	sig = sign("nokey", NULL, 5, payload_text, strlen(payload_text),
	    &siglen, &rc, &err);
	assert_int_equal(rc, TS_ERR_P11_KEY_NOT_FOUND);
	free(err);
	sig = sign("down", NULL, 5, payload_text, strlen(payload_text), &siglen,
	    &rc, &err);
	assert_int_equal(rc, TS_ERR_AGENT_CONNECT);
	free(err);
	sig = sign("locked", NULL, 5, payload_text, strlen(payload_text),
	    &siglen, &rc, &err);
	assert_int_equal(rc, TS_ERR_AGENT_LOCKED);
	assert_non_null(strstr(err, "locked"));
	free(err);
}

static void
test_verify_signature(void **state)
{
	uint8_t *sig;
	size_t siglen;
	char *err, *s64, margs[2048];
	json_t *r;
	int rc;

	(void)state;
	sig = sign("p256", NULL, 5, payload_text, strlen(payload_text), &siglen,
	    &rc, &err);
	s64 = b64enc(sig, siglen);
	assert_true(snprintf(margs, sizeof(margs),
			"{\"signature\":\"%s\",\"verifyOptions\":{"
			"\"rpcOptions\":{},\"messageOptions\":{\"digest\":"
			"null}}}",
			s64) < (int)sizeof(margs));
	r = call("verifySignature", margs, "p256", 5, payload_text,
	    strlen(payload_text), &rc);
	assert_int_equal(rc, 0);
	assert_non_null(json_object_get(r, "verifySignature"));
	assert_null(errmsg(r));
	json_decref(r);
	/* tampered message */
	r = call("verifySignature", margs, "p256", 5, "x", 1, &rc);
	assert_int_equal(rc, TS_ERR_SIG_INVALID);
	assert_non_null(errmsg(r));
	json_decref(r);
	/* bad signature bytes */
	r = call("verifySignature",
	    "{\"signature\":\"YmFkIHNpZ25hdHVyZQ==\",\"verifyOptions\":{}}",
	    "p256", 5, payload_text, strlen(payload_text), &rc);
	assert_int_equal(rc, TS_ERR_SIG_INVALID);
	json_decref(r);
	free(s64);
	free(sig);
	/* Ed25519 */
	sig = sign("ed", NULL, 0, payload_text, strlen(payload_text), &siglen,
	    &rc, &err);
	s64 = b64enc(sig, siglen);
	assert_true(snprintf(margs, sizeof(margs),
			"{\"signature\":\"%s\",\"verifyOptions\":{}}",
			s64) < (int)sizeof(margs));
	r = call("verifySignature", margs, "ed", 0, payload_text,
	    strlen(payload_text), &rc);
	assert_int_equal(rc, 0);
	json_decref(r);
	free(s64);
	free(sig);
}

static void
test_bad_invocations(void **state)
{
	static char p[] = "p", v2[] = "v2", v1[] = "v1", empty[] = "{}",
		    del[] = "{\"methodName\":\"deleteKey\"}",
		    bad[] = "{\"methodName\":";
	char *argv[4] = { p, v2, empty, NULL };
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	json_t *r;

	(void)state;
	/* wrong protocol version, unknown method, bad JSON, no args */
	f = open_memstream(&out, &len);
	assert_int_equal(
	    kms_run(&be, NULL, 3, argv, stdin, f), TS_ERR_WIRE_VERSION);
	fclose(f);
	assert_int_equal(
	    tsjson_parse(out, len, 4096, TSJSON_OBJECT, &r, NULL, 0), 0);
	assert_non_null(strstr(errmsg(r), "v1"));
	json_decref(r);
	free(out);
	argv[1] = v1;
	argv[2] = del;
	f = open_memstream(&out, &len);
	assert_int_equal(
	    kms_run(&be, NULL, 3, argv, stdin, f), TS_ERR_UNSUPPORTED);
	fclose(f);
	free(out);
	argv[2] = bad;
	f = open_memstream(&out, &len);
	assert_int_equal(kms_run(&be, NULL, 3, argv, stdin, f), TS_ERR_PARSE);
	fclose(f);
	assert_int_equal(
	    tsjson_parse(out, len, 4096, TSJSON_OBJECT, &r, NULL, 0), 0);
	json_decref(r);
	free(out);
	f = open_memstream(&out, &len);
	assert_int_not_equal(kms_run(&be, NULL, 1, argv, stdin, f), 0);
	fclose(f);
	free(out);
}

static void
test_keyref_decode(void **state)
{
	char *s;

	(void)state;
	assert_int_equal(kms_keyref_decode("tokensign://p256", &s), 0);
	assert_string_equal(s, "p256");
	free(s);
	assert_int_equal(kms_keyref_decode("0123456789abcdef", &s), 0);
	assert_string_equal(s, "0123456789abcdef");
	free(s);
	assert_int_equal(kms_keyref_decode("tokensign://pkcs11%3Atoken%3Dts-"
					   "main%3Bobject%3Dp256",
			     &s),
	    0);
	assert_string_equal(s, "pkcs11:token=ts-main;object=p256");
	free(s);
	/* a raw pkcs11: URI passes through unchanged */
	assert_int_equal(
	    kms_keyref_decode("tokensign://pkcs11:object=a%20b", &s), 0);
	assert_string_equal(s, "pkcs11:object=a%20b");
	free(s);
	assert_int_equal(
	    kms_keyref_decode("tokensign://", &s), TS_ERR_INVALID_ARG);
	assert_int_equal(
	    kms_keyref_decode("pkcs11%3Aobject%3", &s), TS_ERR_INVALID_ARG);
	assert_int_equal(
	    kms_keyref_decode("pkcs11%3Aobject%00", &s), TS_ERR_INVALID_ARG);
	assert_int_equal(
	    kms_keyref_decode("pkcs11%3Aobject%zz", &s), TS_ERR_INVALID_ARG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_algorithms_always_answer),
		cmocka_unit_test(test_public_and_create),
		cmocka_unit_test(test_sign_message),
		cmocka_unit_test(test_verify_signature),
		cmocka_unit_test(test_bad_invocations),
		cmocka_unit_test(test_keyref_decode),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
