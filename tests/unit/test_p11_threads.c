/*
 * test_p11_threads.c - the token layer on a real SoftHSM token that this
 * test creates itself (softhsm2-util, pkcs11-tool), no mocks:
 *   - 8 threads sign concurrently on one token (P-256, RSA-2048, Ed25519
 *     and an always-authenticate P-256 key mixed, the last with a
 *     context-specific login per signature); every signature is verified
 *     with OpenSSL;
 *   - one module instance per process (a second open shares it);
 *   - login state: not logged in, wrong PIN, logout;
 *   - digest-length and key-type checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>

#include "common/err.h"
#include "pkcs11/key.h"
#include "pkcs11/pin.h"
#include "pkcs11/provider.h"
#include "pkcs11/sign.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

#define MODULE	 "/usr/lib/softhsm/libsofthsm2.so"
#define PIN	 "123456"
#define NTHREADS 8
#ifdef __SANITIZE_ADDRESS__
#define PER_THREAD 24 /* full-stack malloc tracing makes SoftHSM slow */
#else
#define PER_THREAD 150
#endif

#ifdef __SANITIZE_ADDRESS__
/*
 * SoftHSM 2.6.1 leaks an ASN1_STRING per EdDSA C_SignInit; only full
 * stacks show that the allocation comes from inside the module.
 */
const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void);
const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}
const char *
__lsan_default_suppressions(void)
{
	return "leak:libsofthsm2.so\n";
}
#endif

static char tmpdir[256];
static struct p11_provider *prov;
static struct p11_token *tok;
static struct p11_key *keys[4]; /* p256, rsa2048, ed25519, p256aa */

static int
run(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

static int
find(const char *text, struct p11_key **keyp)
{
	struct p11_uri *uri = NULL;
	int r;

	if ((r = p11_uri_parse(text, &uri, NULL, 0)) != 0)
		return r;
	r = p11_provider_find_key(prov, uri, keyp);
	p11_uri_free(uri);
	return r;
}

static int
setup(void **state)
{
	char conf[300];
	const char *t = getenv("TMPDIR");
	FILE *f;
	struct p11_uri *uri = NULL;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/ts-p11thr.XXXXXX",
	    t != NULL ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", tmpdir);
	if ((f = fopen(conf, "w")) == NULL)
		return -1;
	fprintf(f,
	    "directories.tokendir = %s\nobjectstore.backend = file\n"
	    "log.level = ERROR\nslots.removable = false\n",
	    tmpdir);
	fclose(f);
	setenv("SOFTHSM2_CONF", conf, 1);
	if (run("softhsm2-util --init-token --free --label thr --pin " PIN
		" --so-pin 12345678 >/dev/null") != 0)
		return -1;
#define KEYGEN(type, label, id)                                                \
	"pkcs11-tool --module " MODULE " --token-label thr --login --pin " PIN \
	" --keypairgen --key-type " type " --label " label " --id " id         \
	" >/dev/null 2>&1"
	if (run(KEYGEN("EC:prime256v1", "p256", "01")) != 0 ||
	    run(KEYGEN("rsa:2048", "rsa2048", "02")) != 0 ||
	    run(KEYGEN("EC:edwards25519", "ed25519", "03")) != 0 ||
	    run("pkcs11-tool --module " MODULE " --token-label thr --login "
		"--pin " PIN " --keypairgen --key-type EC:prime256v1 --label "
		"p256aa --id 04 --always-auth >/dev/null 2>&1") != 0)
		return -1;
	if (p11_provider_open(MODULE, NULL, &prov) != 0)
		return -1;
	if (p11_uri_parse("pkcs11:token=thr", &uri, NULL, 0) != 0 ||
	    p11_provider_find_token(prov, uri, &tok) != 0) {
		p11_uri_free(uri);
		return -1;
	}
	p11_uri_free(uri);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	p11_provider_free(prov);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return run(cmd) == 0 ? 0 : -1;
}

static int
verify(struct p11_key *key, const uint8_t *msg, size_t len, const uint8_t *sig,
    size_t siglen)
{
	const uint8_t *der;
	size_t derlen;
	EVP_PKEY *pk;
	EVP_MD_CTX *ctx;
	int ok;

	der = p11_key_spki_der(key, &derlen);
	if ((pk = d2i_PUBKEY(NULL, &der, (long)derlen)) == NULL)
		return 0;
	ctx = EVP_MD_CTX_new();
	ok = ctx != NULL &&
	    EVP_DigestVerifyInit(ctx, NULL,
		p11_key_type(key) == P11_KEY_ED25519 ? NULL : EVP_sha256(),
		NULL, pk) == 1 &&
	    EVP_DigestVerify(ctx, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok;
}

static void
test_not_logged_in(void **state)
{
	struct p11_pin *bad = NULL;
	uint8_t md[32] = { 1 }, *sig = NULL;
	size_t siglen;

	(void)state;
	assert_int_equal(find("pkcs11:token=thr;object=p256", &keys[0]), 0);
	assert_int_equal(p11_key_type(keys[0]), P11_KEY_EC_P256);
	assert_int_equal(p11_key_has_private(keys[0]), 0);
	assert_int_equal(p11_sign_digest(keys[0], P11_HASH_SHA256, md,
			     sizeof(md), NULL, &sig, &siglen),
	    TS_ERR_P11_NOT_LOGGED_IN);
	assert_null(sig);
	/* a wrong PIN is its own error, and is tried exactly once */
	assert_int_equal(p11_pin_from_bytes("000000", 6, &bad), 0);
	assert_int_equal(
	    p11_token_login(tok, bad, 0), TS_ERR_P11_PIN_INCORRECT);
	assert_int_equal(p11_token_logged_in(tok), 0);
	p11_pin_free(bad);
	/* the counter-low flag is set after a failure, nothing locked */
	assert_true(p11_token_pin_status(tok) >= 0);
	assert_int_equal(p11_token_pin_status(tok) & P11_PIN_LOCKED, 0);
}

static void
test_login_and_keys(void **state)
{
	struct p11_pin *pin = NULL;
	struct p11_provider *again = NULL;
	struct p11_key *k = NULL;

	(void)state;
	assert_int_equal(p11_pin_from_bytes(PIN, strlen(PIN), &pin), 0);
	assert_int_equal(p11_token_login(tok, pin, 0), 0);
	p11_pin_free(pin);
	assert_int_equal(p11_token_logged_in(tok), 1);
	assert_int_equal(find("pkcs11:token=thr;object=p256", &k), 0);
	/* the key pointer survives the reload at login */
	assert_ptr_equal(k, keys[0]);
	assert_int_equal(p11_key_has_private(k), 1);
	assert_int_equal(find("pkcs11:token=thr;id=%02", &keys[1]), 0);
	assert_int_equal(p11_key_type(keys[1]), P11_KEY_RSA);
	assert_int_equal(p11_key_bits(keys[1]), 2048);
	assert_int_equal(find("pkcs11:object=ed25519", &keys[2]), 0);
	assert_int_equal(p11_key_type(keys[2]), P11_KEY_ED25519);
	assert_int_equal(
	    find("pkcs11:token=thr", &k), TS_ERR_P11_KEY_AMBIGUOUS);
	assert_int_equal(
	    find("pkcs11:token=thr;type=cert", &k), TS_ERR_P11_KEY_NOT_FOUND);
	/* one module instance per process: a second open shares it */
	assert_int_equal(p11_provider_open(MODULE, NULL, &again), 0);
	assert_ptr_equal(again, prov);
	p11_provider_free(again);
	assert_string_equal(p11_token_label(tok), "thr");
}

static void
test_sign_checks(void **state)
{
	uint8_t md[64] = { 0 }, *sig = NULL;
	size_t siglen = 0;

	(void)state;
	/* digest length must match the hash */
	assert_int_equal(p11_sign_digest(keys[0], P11_HASH_SHA256, md, 31, NULL,
			     &sig, &siglen),
	    TS_ERR_INVALID_ARG);
	assert_int_equal(p11_sign_digest(keys[1], P11_HASH_SHA384, md, 32, NULL,
			     &sig, &siglen),
	    TS_ERR_INVALID_ARG);
	/* Ed25519 signs messages only */
	assert_int_equal(p11_sign_digest(keys[2], P11_HASH_SHA256, md, 32, NULL,
			     &sig, &siglen),
	    TS_ERR_P11_KEY_TYPE);
	assert_null(sig);
	/* RSA with SHA-512 DigestInfo: modulus-sized output */
	assert_int_equal(p11_sign_digest(keys[1], P11_HASH_SHA512, md, 64, NULL,
			     &sig, &siglen),
	    0);
	assert_int_equal(siglen, 256);
	free(sig);
}

static void
test_always_auth(void **state)
{
	struct p11_pin *pin = NULL;
	uint8_t msg[] = "always", *sig = NULL;
	size_t siglen = 0;

	(void)state;
	assert_int_equal(find("pkcs11:token=thr;object=p256aa", &keys[3]), 0);
	assert_int_equal(p11_key_always_auth(keys[3]), 1);
	assert_int_equal(p11_key_always_auth(keys[0]), 0);
	/* logged in without keeping the PIN: none for the per-sign login */
	assert_int_equal(
	    p11_sign_message(keys[3], msg, sizeof(msg), NULL, &sig, &siglen),
	    TS_ERR_P11_PIN_REQUIRED);
	assert_null(sig);
	/* the PIN given to the call */
	assert_int_equal(p11_pin_from_bytes(PIN, strlen(PIN), &pin), 0);
	assert_int_equal(
	    p11_sign_message(keys[3], msg, sizeof(msg), pin, &sig, &siglen), 0);
	assert_true(verify(keys[3], msg, sizeof(msg), sig, siglen));
	free(sig);
	sig = NULL;
	/* the PIN kept by the login (already logged in: only kept) */
	assert_int_equal(p11_token_login(tok, pin, P11_LOGIN_KEEP_PIN), 0);
	p11_pin_free(pin);
	assert_int_equal(
	    p11_sign_message(keys[3], msg, sizeof(msg), NULL, &sig, &siglen),
	    0);
	assert_true(verify(keys[3], msg, sizeof(msg), sig, siglen));
	free(sig);
	/* the plain key still signs with no PIN at all */
	assert_int_equal(
	    p11_sign_message(keys[0], msg, sizeof(msg), NULL, &sig, &siglen),
	    0);
	free(sig);
}

struct worker {
	int id;
	int ok;
	int bad;
	int err;
};

static void *
worker(void *arg)
{
	struct worker *w = arg;
	struct p11_key *key;
	uint8_t msg[64], *sig;
	size_t siglen;
	int i, n, r;

	for (i = 0; i < PER_THREAD; i++) {
		key = keys[(w->id + i) % 4];
		n = snprintf(
		    (char *)msg, sizeof(msg), "thread %d message %d", w->id, i);
		sig = NULL;
		r = p11_sign_message(key, msg, (size_t)n, NULL, &sig, &siglen);
		if (r != 0) {
			if (w->err == 0)
				w->err = r;
			continue;
		}
		if (verify(key, msg, (size_t)n, sig, siglen))
			w->ok++;
		else
			w->bad++;
		free(sig);
	}
	return NULL;
}

static void
test_eight_threads(void **state)
{
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];
	int i, total = 0;

	(void)state;
	memset(w, 0, sizeof(w));
	for (i = 0; i < NTHREADS; i++) {
		w[i].id = i;
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker, &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	for (i = 0; i < NTHREADS; i++) {
		if (w[i].err != 0)
			fail_msg("thread %d: %s", i, ts_err(w[i].err));
		assert_int_equal(w[i].bad, 0);
		total += w[i].ok;
	}
	assert_int_equal(total, NTHREADS * PER_THREAD);
}

static void
test_logout(void **state)
{
	uint8_t md[32] = { 2 }, *sig = NULL;
	size_t siglen;

	(void)state;
	assert_int_equal(p11_token_logout(tok), 0);
	assert_int_equal(p11_token_logged_in(tok), 0);
	assert_int_equal(p11_sign_digest(keys[0], P11_HASH_SHA256, md,
			     sizeof(md), NULL, &sig, &siglen),
	    TS_ERR_P11_NOT_LOGGED_IN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_logged_in),
		cmocka_unit_test(test_login_and_keys),
		cmocka_unit_test(test_sign_checks),
		cmocka_unit_test(test_always_auth),
		cmocka_unit_test(test_eight_threads),
		cmocka_unit_test(test_logout),
	};

	if (access(MODULE, R_OK) != 0) {
		fprintf(stderr, "SoftHSM is not installed (%s)\n", MODULE);
		return 1;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
