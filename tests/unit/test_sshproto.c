/*
 * test_sshproto.c - the ssh-agent protocol handlers, socket-free, with
 * software keys behind struct sshproto_ops (the real agent path is
 * exercised with OpenSSH's own tools in test_ssh_agent_openssh.sh).
 * Covers: identities (P-384 left out), sign for every key type and RSA
 * flag, SHA-1 refused, unknown key, truncated/trailing frames, and every
 * message we do not implement answered with SSH_AGENT_FAILURE.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "agent/sshproto.h"
#include "common/err.h"
#include "common/sshkey.h"
#include "common/wbuf.h"

#define NKEYS 4

struct fixture {
	EVP_PKEY *pk[NKEYS]; /* p256, ed25519, rsa2048, p384 */
	uint8_t *spki[NKEYS];
	size_t spki_len[NKEYS];
	struct sshproto_key keys[NKEYS];
	size_t nkeys;
	int sign_calls;
	struct sshproto_sign last;
	int fail_sign;
};

static int
fx_list(void *arg, const struct sshproto_key **keys, size_t *n)
{
	struct fixture *f = arg;

	*keys = f->keys;
	*n = f->nkeys;
	return 0;
}

static int
fx_sign(void *arg, const struct sshproto_sign *req, uint8_t **sig,
    size_t *siglen, size_t *modlen)
{
	struct fixture *f = arg;
	EVP_PKEY *pk = f->pk[req->key_index];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_MD_CTX *mctx = NULL;

	f->sign_calls++;
	f->last = *req;
	if (f->fail_sign)
		return TS_ERR_AGENT_LOCKED;
	*modlen = 0;
	if (req->hash == SSHPROTO_HASH_NONE) {
		assert_non_null(mctx = EVP_MD_CTX_new());
		assert_int_equal(
		    EVP_DigestSignInit(mctx, NULL, NULL, NULL, pk), 1);
		assert_int_equal(
		    EVP_DigestSign(mctx, NULL, siglen, req->in, req->in_len),
		    1);
		assert_non_null(*sig = malloc(*siglen));
		assert_int_equal(
		    EVP_DigestSign(mctx, *sig, siglen, req->in, req->in_len),
		    1);
		EVP_MD_CTX_free(mctx);
		return 0;
	}
	assert_non_null(ctx = EVP_PKEY_CTX_new(pk, NULL));
	assert_int_equal(EVP_PKEY_sign_init(ctx), 1);
	if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
		assert_int_equal(
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING), 1);
		*modlen = (size_t)EVP_PKEY_get_size(pk);
	}
	assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx,
			     req->hash == SSHPROTO_HASH_SHA512 ? EVP_sha512()
							       : EVP_sha256()),
	    1);
	assert_int_equal(
	    EVP_PKEY_sign(ctx, NULL, siglen, req->in, req->in_len), 1);
	assert_non_null(*sig = malloc(*siglen));
	assert_int_equal(
	    EVP_PKEY_sign(ctx, *sig, siglen, req->in, req->in_len), 1);
	EVP_PKEY_CTX_free(ctx);
	return 0;
}

static const struct sshproto_ops fx_ops = { fx_list, fx_sign };

static int
setup(void **state)
{
	struct fixture *f;
	unsigned char *der;
	int i, n;
	static const char *comments[NKEYS] = { "p256", "ed25519", "rsa2048",
		"p384" };

	assert_non_null(f = calloc(1, sizeof(*f)));
	assert_non_null(
	    f->pk[0] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"));
	assert_non_null(f->pk[1] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	assert_non_null(
	    f->pk[2] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048));
	assert_non_null(
	    f->pk[3] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"));
	for (i = 0; i < NKEYS; i++) {
		der = NULL;
		assert_true((n = i2d_PUBKEY(f->pk[i], &der)) > 0);
		f->spki[i] = der;
		f->spki_len[i] = (size_t)n;
		f->keys[i].spki = der;
		f->keys[i].spki_len = (size_t)n;
		f->keys[i].comment = comments[i];
	}
	f->nkeys = NKEYS;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	int i;

	for (i = 0; i < NKEYS; i++) {
		EVP_PKEY_free(f->pk[i]);
		OPENSSL_free(f->spki[i]);
	}
	free(f);
	return 0;
}

/* Runs one request; returns the reply (caller frees). */
static struct wbuf *
run(struct fixture *f, uint8_t type, const struct wbuf *body_in)
{
	struct wbuf *reply, *body;

	assert_non_null(reply = wbuf_new(64 * 1024));
	if (body_in != NULL)
		assert_non_null(
		    body = wbuf_from(wbuf_ptr(body_in), wbuf_len(body_in)));
	else
		assert_non_null(body = wbuf_from("", 0));
	assert_int_equal(sshproto_handle(&fx_ops, f, type, body, reply), 0);
	wbuf_free(body);
	return reply;
}

static void
assert_failure(struct wbuf *reply)
{
	assert_int_equal(wbuf_len(reply), 1);
	assert_int_equal(wbuf_ptr(reply)[0], SSH_AGENT_FAILURE);
	wbuf_free(reply);
}

static struct wbuf *
blob_of(struct fixture *f, int i)
{
	struct wbuf *b;

	assert_non_null(b = wbuf_new(SSHKEY_BLOB_MAX));
	assert_int_equal(
	    sshkey_blob_from_spki(f->spki[i], f->spki_len[i], b, NULL), 0);
	return b;
}

static struct wbuf *
sign_body(struct wbuf *blob, const void *data, size_t len, uint32_t flags)
{
	struct wbuf *b;

	assert_non_null(b = wbuf_new(SSHPROTO_MAX_DATA + 8192));
	assert_int_equal(wbuf_put_stringb(b, blob), 0);
	assert_int_equal(wbuf_put_string(b, data, len), 0);
	assert_int_equal(wbuf_put_u32(b, flags), 0);
	return b;
}

static void
test_identities(void **state)
{
	struct fixture *f = *state;
	struct wbuf *reply, *want;
	uint8_t type;
	uint32_t n;
	const uint8_t *blob;
	size_t blen;
	char *comment;
	int i;

	reply = run(f, SSH_AGENTC_REQUEST_IDENTITIES, NULL);
	assert_int_equal(wbuf_get_u8(reply, &type), 0);
	assert_int_equal(type, SSH_AGENT_IDENTITIES_ANSWER);
	assert_int_equal(wbuf_get_u32(reply, &n), 0);
	assert_int_equal(n, 3); /* P-384 is not offered to ssh */
	for (i = 0; i < 3; i++) {
		want = blob_of(f, i);
		assert_int_equal(
		    wbuf_get_string_direct(reply, &blob, &blen), 0);
		assert_int_equal(blen, wbuf_len(want));
		assert_memory_equal(blob, wbuf_ptr(want), blen);
		assert_int_equal(wbuf_get_cstring(reply, &comment, NULL), 0);
		assert_string_equal(comment, f->keys[i].comment);
		free(comment);
		wbuf_free(want);
	}
	assert_int_equal(wbuf_len(reply), 0);
	wbuf_free(reply);

	/* no keys: an empty answer, not a failure */
	f->nkeys = 0;
	reply = run(f, SSH_AGENTC_REQUEST_IDENTITIES, NULL);
	assert_int_equal(wbuf_len(reply), 5);
	assert_memory_equal(wbuf_ptr(reply), "\x0c\0\0\0\0", 5);
	wbuf_free(reply);
	f->nkeys = NKEYS;

	/* trailing byte after an empty body */
	{
		struct wbuf *body;

		assert_non_null(body = wbuf_new(16));
		assert_int_equal(wbuf_put_u8(body, 0), 0);
		assert_failure(run(f, SSH_AGENTC_REQUEST_IDENTITIES, body));
		wbuf_free(body);
	}
}

static void
sign_and_verify(struct fixture *f, int key, uint32_t flags,
    enum sshkey_sigalg want_alg, const EVP_MD *md)
{
	static const uint8_t data[] = "SSHSIG-ish data to be signed";
	struct wbuf *blob, *body, *reply;
	uint8_t type, *sig;
	size_t siglen;
	struct wbuf *sigblob;
	enum sshkey_sigalg alg;
	EVP_MD_CTX *ctx;
	uint8_t want_sha[32];

	blob = blob_of(f, key);
	body = sign_body(blob, data, sizeof(data), flags);
	reply = run(f, SSH_AGENTC_SIGN_REQUEST, body);
	assert_int_equal(wbuf_get_u8(reply, &type), 0);
	assert_int_equal(type, SSH_AGENT_SIGN_RESPONSE);
	assert_int_equal(wbuf_get_stringb(reply, &sigblob), 0);
	assert_int_equal(wbuf_len(reply), 0);
	assert_int_equal(sshkey_sig_decode(wbuf_ptr(sigblob), wbuf_len(sigblob),
			     &alg, &sig, &siglen),
	    0);
	assert_int_equal(alg, want_alg);
	assert_non_null(ctx = EVP_MD_CTX_new());
	assert_int_equal(
	    EVP_DigestVerifyInit(ctx, NULL, md, NULL, f->pk[key]), 1);
	assert_int_equal(
	    EVP_DigestVerify(ctx, sig, siglen, data, sizeof(data)), 1);
	EVP_MD_CTX_free(ctx);
	/* the audit hash is always SHA-256 of the data ssh sent */
	assert_int_equal(
	    EVP_Digest(data, sizeof(data), want_sha, NULL, EVP_sha256(), NULL),
	    1);
	assert_memory_equal(f->last.data_sha256, want_sha, 32);
	assert_int_equal(f->last.key_index, key);
	free(sig);
	wbuf_free(sigblob);
	wbuf_free(reply);
	wbuf_free(body);
	wbuf_free(blob);
}

static void
test_sign_each_type(void **state)
{
	struct fixture *f = *state;

	sign_and_verify(f, 0, 0, SSHKEY_SIG_ECDSA_P256_SHA256, EVP_sha256());
	assert_int_equal(f->last.hash, SSHPROTO_HASH_SHA256);
	sign_and_verify(f, 1, 0, SSHKEY_SIG_ED25519, NULL);
	assert_int_equal(f->last.hash, SSHPROTO_HASH_NONE);
	sign_and_verify(f, 2, SSHKEY_AGENT_RSA_SHA2_256, SSHKEY_SIG_RSA_SHA256,
	    EVP_sha256());
	sign_and_verify(f, 2, SSHKEY_AGENT_RSA_SHA2_512, SSHKEY_SIG_RSA_SHA512,
	    EVP_sha512());
	assert_int_equal(f->last.hash, SSHPROTO_HASH_SHA512);
}

static void
test_sign_refusals(void **state)
{
	struct fixture *f = *state;
	struct wbuf *blob, *body;
	int calls;

	/* RSA without a SHA-2 flag means SHA-1: refused before signing */
	blob = blob_of(f, 2);
	body = sign_body(blob, "x", 1, 0);
	calls = f->sign_calls;
	assert_failure(run(f, SSH_AGENTC_SIGN_REQUEST, body));
	assert_int_equal(f->sign_calls, calls);
	wbuf_free(body);
	wbuf_free(blob);

	/* a key that is not (or no longer) offered */
	blob = blob_of(f, 0);
	f->nkeys = 0;
	body = sign_body(blob, "x", 1, 0);
	assert_failure(run(f, SSH_AGENTC_SIGN_REQUEST, body));
	assert_int_equal(f->sign_calls, calls);
	f->nkeys = NKEYS;
	wbuf_free(body);

	/* the signer refuses (locked, denied, PIN): FAILURE */
	f->fail_sign = 1;
	body = sign_body(blob, "x", 1, 0);
	assert_failure(run(f, SSH_AGENTC_SIGN_REQUEST, body));
	assert_int_equal(f->sign_calls, calls + 1);
	f->fail_sign = 0;
	wbuf_free(body);

	/* trailing byte, truncated flags, empty body */
	body = sign_body(blob, "x", 1, 0);
	assert_int_equal(wbuf_put_u8(body, 0), 0);
	assert_failure(run(f, SSH_AGENTC_SIGN_REQUEST, body));
	assert_int_equal(wbuf_consume_end(body, 2), 0);
	assert_failure(run(f, SSH_AGENTC_SIGN_REQUEST, body));
	assert_failure(run(f, SSH_AGENTC_SIGN_REQUEST, NULL));
	wbuf_free(body);

	/* data one byte over the maximum */
	{
		uint8_t *big;

		assert_non_null(big = calloc(1, SSHPROTO_MAX_DATA + 1));
		body = sign_body(blob, big, SSHPROTO_MAX_DATA + 1, 0);
		assert_failure(run(f, SSH_AGENTC_SIGN_REQUEST, body));
		wbuf_free(body);
		body = sign_body(blob, big, SSHPROTO_MAX_DATA, 0);
		{
			struct wbuf *reply =
			    run(f, SSH_AGENTC_SIGN_REQUEST, body);

			assert_int_equal(
			    wbuf_ptr(reply)[0], SSH_AGENT_SIGN_RESPONSE);
			wbuf_free(reply);
		}
		wbuf_free(body);
		free(big);
	}
	/* garbage key blob */
	{
		struct wbuf *g;

		assert_non_null(g = wbuf_new(64));
		assert_int_equal(wbuf_put_cstring(g, "ssh-dss"), 0);
		body = sign_body(g, "x", 1, 0);
		assert_failure(run(f, SSH_AGENTC_SIGN_REQUEST, body));
		wbuf_free(body);
		wbuf_free(g);
	}
	wbuf_free(blob);
}

static void
test_unsupported_messages(void **state)
{
	struct fixture *f = *state;
	static const uint8_t types[] = { 1, 5, 6, 9, 12, 14, 17, 18, 19, 20, 21,
		22, 23, 25, 26, 27, 30, 99 };
	struct wbuf *body;
	size_t i;

	/* e.g. ssh-add of a file key, lock via ssh, session-bind extension */
	assert_non_null(body = wbuf_new(256));
	assert_int_equal(wbuf_put_cstring(body, "session-bind@openssh.com"), 0);
	for (i = 0; i < sizeof(types); i++)
		assert_failure(run(f, types[i], body));
	wbuf_free(body);
	assert_int_equal(f->sign_calls, 0);
}

static void
test_blob_cache(void **state)
{
	struct fixture *f = *state;
	const uint8_t *b1, *b2;
	size_t l1, l2;
	struct wbuf *want;
	int i;

	for (i = 0; i < 3; i++) {
		want = blob_of(f, i);
		assert_int_equal(
		    sshproto_blob_cached(f->spki[i], f->spki_len[i], &b1, &l1),
		    0);
		assert_int_equal(
		    sshproto_blob_cached(f->spki[i], f->spki_len[i], &b2, &l2),
		    0);
		assert_ptr_equal(b1, b2); /* second call hits the cache */
		assert_int_equal(l1, wbuf_len(want));
		assert_memory_equal(b1, wbuf_ptr(want), l1);
		/* handlers use the precomputed blobs when given */
		f->keys[i].blob = b1;
		f->keys[i].blob_len = l1;
		wbuf_free(want);
	}
	/* a key ssh cannot use is remembered as such */
	assert_int_equal(
	    sshproto_blob_cached(f->spki[3], f->spki_len[3], &b1, &l1),
	    TS_ERR_UNSUPPORTED);
	assert_int_equal(
	    sshproto_blob_cached(f->spki[3], f->spki_len[3], &b1, &l1),
	    TS_ERR_UNSUPPORTED);
	assert_null(b1);
	/* the same checks as without the cache */
	test_identities(state);
	test_sign_each_type(state);
}

static void
test_type_ranges_and_policy(void **state)
{
	(void)state;
	assert_int_equal(sshproto_is_ssh_type(0), 0);
	assert_int_equal(sshproto_is_ssh_type(11), 1);
	assert_int_equal(sshproto_is_ssh_type(99), 1);
	assert_int_equal(sshproto_is_ssh_type(100), 0);
	assert_int_equal(sshproto_is_ssh_type(255), 0);
	/* default: on for own uid on Unix; off for TLS and other uids */
	assert_int_equal(
	    sshproto_key_allowed(SSHPROTO_KEY_DEFAULT, 1, 1000, 1000), 1);
	assert_int_equal(
	    sshproto_key_allowed(SSHPROTO_KEY_DEFAULT, 1, 0, 1000), 0);
	assert_int_equal(
	    sshproto_key_allowed(SSHPROTO_KEY_DEFAULT, 0, 1000, 1000), 0);
	assert_int_equal(
	    sshproto_key_allowed(SSHPROTO_KEY_ON, 0, 1000, 1000), 1);
	assert_int_equal(
	    sshproto_key_allowed(SSHPROTO_KEY_OFF, 1, 1000, 1000), 0);
	assert_int_equal(
	    sshproto_key_allowed((enum sshproto_key_policy)9, 1, 1, 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_identities, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sign_each_type, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sign_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unsupported_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_blob_cache, setup, teardown),
		cmocka_unit_test(test_type_ranges_and_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
