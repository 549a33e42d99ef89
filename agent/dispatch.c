/*
 * dispatch.c - the message table and its handlers (docs/PROTOCOL.md).
 *
 * Every handler parses its whole request through the wbuf getters and
 * checks for trailing bytes before it acts, so a malformed request never
 * reaches the token.  Decisions on signing requests (done or refused) are
 * audited; a signature whose audit line cannot be written is not returned.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "agent/audit.h"
#include "agent/confirm.h"
#define DISPATCH_INTERNAL
#include "agent/dispatch.h"
#include "agent/keystore.h"
#include "agent/policy.h"
#include "agent/worker.h"
#include "common/err.h"
#include "common/log.h"
#include "common/payload.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "common/wbuf.h"
#include "pkcs11/key.h"

#define SSH_AGENT_FAILURE   5
#define LOCK_SALT_LEN	    16
#define LOCK_HASH_LEN	    32
#define LOCK_KDF_ROUNDS	    20000
#define LOCK_DELAY_BASE_MS  100
#define LOCK_DELAY_MAX_MS   5000
#define DISPATCH_AGENT_NAME "tokensign-agent " TOKENSIGN_VERSION

struct dispatch_ctx {
	struct keystore *ks;
	struct audit *audit;
	pthread_mutex_t mu; /* policy pointer, lock state, askpass */
	struct policy *pol;
	char *askpass;
	int locked;
	unsigned char lock_salt[LOCK_SALT_LEN];
	unsigned char lock_hash[LOCK_HASH_LEN];
	unsigned unlock_failures;
	time_t started;
	atomic_uint_fast64_t sigs;
	atomic_uint_fast64_t errors;
	atomic_uint connections;
	int test_mode; /* no unlock delay, cheap KDF */
};

/* ---- helpers ---------------------------------------------------------- */

static int
expect_end(struct wbuf *req)
{
	return wbuf_len(req) == 0 ? 0 : TS_ERR_WIRE_TRAILING;
}

static void
hexify(const uint8_t *d, size_t n, char *out, size_t outlen)
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n && 2 * i + 2 < outlen; i++) {
		out[2 * i] = hx[d[i] >> 4];
		out[2 * i + 1] = hx[d[i] & 15];
	}
	out[2 * i] = '\0';
}

static const char *
hash_name(int h)
{
	switch (h) {
	case TS_HASH_SHA256:
		return "sha256";
	case TS_HASH_SHA384:
		return "sha384";
	case TS_HASH_SHA512:
		return "sha512";
	default:
		return NULL;
	}
}

static size_t
hash_len(int h)
{
	return h == TS_HASH_SHA256 ? 32
	    : h == TS_HASH_SHA384  ? 48
	    : h == TS_HASH_SHA512  ? 64
				   : 0;
}

static int
is_locked(struct dispatch_ctx *c)
{
	int l;

	pthread_mutex_lock(&c->mu);
	l = c->locked;
	pthread_mutex_unlock(&c->mu);
	return l;
}

/* Reads the key reference and finds the key; names it in why on failure. */
static int
get_key(struct dispatch_ctx *c, struct wbuf *req, struct ks_key **kp, char *why,
    size_t whylen)
{
	const uint8_t *ref;
	size_t len;
	int r;

	*kp = NULL;
	if ((r = wbuf_get_string_direct(req, &ref, &len)) != 0)
		return r;
	if (len > TS_PROTO_MAX_KEYREF)
		return TS_ERR_WIRE_TOO_LONG;
	if ((r = keystore_lookup(c->ks, (const char *)ref, len, kp)) != 0)
		snprintf(why, whylen, "key \"%.*s\"",
		    (int)(len > 100 ? 100 : len), (const char *)ref);
	return r;
}

/* Runs the confirmation for key k if it needs one. */
static int
maybe_confirm(struct dispatch_ctx *c, struct agent_peer *peer, struct ks_key *k,
    const char *what, char *why, size_t whylen)
{
	char prompt[512], *askpass;
	int r;

	if (!ks_key_confirm(k))
		return 0;
	snprintf(prompt, sizeof(prompt),
	    "Allow uid %u (pid %d, %.100s) to sign %.200s with key %s (%.64s)?",
	    (unsigned)peer->uid, (int)peer->pid, peer->exe[0] ? peer->exe : "?",
	    what, ks_key_id(k), ks_key_label(k));
	pthread_mutex_lock(&c->mu);
	askpass = c->askpass != NULL ? strdup(c->askpass) : NULL;
	pthread_mutex_unlock(&c->mu);
	r = confirm_ask(askpass, prompt);
	free(askpass);
	if (r != 0)
		snprintf(why, whylen, "confirmation for key %s declined",
		    ks_key_id(k));
	return r;
}

/*
 * Arms the "Touch your <token> to sign ..." PROGRESS notice: sent if the
 * signature takes longer than DISPATCH_PROGRESS_MS (a token waiting for a
 * touch, an HSM queue); the worker disarms it when the request ends.
 */
static void
touch_notice(const struct ks_key *k)
{
	char text[160];

	snprintf(text, sizeof(text), "Touch your %.64s to sign \xe2\x80\xa6",
	    ks_key_token_label(k));
	worker_progress_arm(DISPATCH_PROGRESS_MS, TS_PROGRESS_TOUCH, text);
	snprintf(text, sizeof(text),
	    "touch timed out: no touch of %.64s within %u s for key %s",
	    ks_key_token_label(k), ks_key_touch_timeout(k) / 1000,
	    ks_key_id(k));
	worker_deadline_arm(
	    ks_key_touch_timeout(k), TS_ERR_P11_TOUCH_TIMEOUT, text);
}

/* Ends both timers; a request its deadline answered counts as failed. */
static int
touch_done(int r)
{
	worker_progress_disarm();
	worker_deadline_disarm();
	return r == 0 && worker_answered() ? TS_ERR_P11_TOUCH_TIMEOUT : r;
}

static void
count(struct dispatch_ctx *c, int r)
{
	if (r == 0)
		atomic_fetch_add_explicit(&c->sigs, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
}

static int
put_signature(struct wbuf *reply, const uint8_t *sig, size_t siglen,
    const struct ks_key *k)
{
	int r;

	if ((r = wbuf_put_u8(reply, TS_MSG_SIGNATURE)) != 0 ||
	    (r = wbuf_put_string(reply, sig, siglen)) != 0 ||
	    (r = wbuf_put_cstring(reply, ks_key_id(k))) != 0)
		return r;
	return 0;
}

/* ---- handlers --------------------------------------------------------- */

static int
h_hello(struct dispatch_ctx *c, struct agent_peer *peer, struct wbuf *req,
    struct wbuf *reply, char *why, size_t whylen)
{
	const uint8_t *name;
	size_t nlen;
	uint32_t version;
	int r;

	(void)c;
	if ((r = wbuf_get_u32(req, &version)) != 0 ||
	    (r = wbuf_get_string_direct(req, &name, &nlen)) != 0 ||
	    (r = expect_end(req)) != 0)
		return r;
	if (nlen > TS_PROTO_MAX_NAME)
		return TS_ERR_WIRE_TOO_LONG;
	if (version != TS_PROTO_VERSION) {
		snprintf(why, whylen, "agent speaks version %d, client %u",
		    TS_PROTO_VERSION, version);
		return TS_ERR_WIRE_VERSION;
	}
	peer->hello_done = 1;
	peer->version = version;
	if ((r = wbuf_put_u8(reply, TS_MSG_HELLO_REPLY)) != 0 ||
	    (r = wbuf_put_u32(reply, TS_PROTO_VERSION)) != 0 ||
	    (r = wbuf_put_cstring(reply, DISPATCH_AGENT_NAME)) != 0 ||
	    (r = wbuf_put_u32(reply, TS_PROTO_MAX_FRAME)) != 0 ||
	    (r = wbuf_put_u32(reply, TS_PROTO_MAX_BATCH)) != 0)
		return r;
	return 0;
}

static int
h_list_keys(struct dispatch_ctx *c, struct agent_peer *peer, struct wbuf *req,
    struct wbuf *reply, char *why, size_t whylen)
{
	struct ks_key *k;
	struct p11_key *pk;
	const uint8_t *spki;
	size_t i, n, spkilen;
	uint32_t flags;
	int r;

	(void)peer;
	(void)why;
	(void)whylen;
	if ((r = expect_end(req)) != 0)
		return r;
	n = keystore_count(c->ks);
	if ((r = wbuf_put_u8(reply, TS_MSG_KEYS)) != 0 ||
	    (r = wbuf_put_u32(reply, (uint32_t)n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		k = keystore_get(c->ks, i);
		pk = ks_key_p11(k);
		spki = p11_key_spki_der(pk, &spkilen);
		flags = (p11_key_present(pk) ? TS_KEY_PRESENT : 0) |
		    (ks_key_confirm(k) ? TS_KEY_CONFIRM : 0) |
		    (p11_key_always_auth(pk) ? TS_KEY_ALWAYS_AUTH : 0);
		if ((r = wbuf_put_cstring(reply, ks_key_id(k))) != 0 ||
		    (r = wbuf_put_cstring(reply, p11_key_type_name(pk))) != 0 ||
		    (r = wbuf_put_u32(reply, p11_key_bits(pk))) != 0 ||
		    (r = wbuf_put_cstring(reply, p11_key_label(pk))) != 0 ||
		    (r = wbuf_put_cstring(reply, p11_key_uri(pk))) != 0 ||
		    (r = wbuf_put_string(reply, spki, spkilen)) != 0 ||
		    (r = wbuf_put_string(reply, p11_key_fingerprint(pk),
			 P11_FINGERPRINT_LEN)) != 0 ||
		    (r = wbuf_put_cstring(reply, ks_key_token_label(k))) != 0 ||
		    (r = wbuf_put_u32(reply, flags)) != 0)
			return r;
	}
	return 0;
}

/* Parses and checks one payload; fills rec's image fields. */
static int
check_payload(struct dispatch_ctx *c, struct agent_peer *peer, struct ks_key *k,
    const uint8_t *data, size_t len, struct payload **plp, char *why,
    size_t whylen)
{
	struct policy *pol;
	char pwhy[DISPATCH_WHY_MAX];
	int r;

	*plp = NULL;
	pwhy[0] = '\0';
	if ((r = payload_parse(data, len, plp, pwhy, sizeof(pwhy))) != 0) {
		snprintf(why, whylen, "payload: %s", pwhy);
		return r == TS_ERR_ALLOC ? r : TS_ERR_PAYLOAD_INVALID;
	}
	pol = dispatch_get_policy(c);
	r = policy_check_payload(
	    pol, peer, ks_key_id(k), *plp, pwhy, sizeof(pwhy));
	policy_unref(pol);
	if (r != 0)
		snprintf(why, whylen, "%s", pwhy);
	return r;
}

static int
check_digest_policy(struct dispatch_ctx *c, struct agent_peer *peer,
    struct ks_key *k, char *why, size_t whylen)
{
	struct policy *pol = dispatch_get_policy(c);
	int r;

	r = policy_check_digest_key(pol, peer, ks_key_id(k), why, whylen);
	policy_unref(pol);
	if (r != 0 && why[0] == '\0')
		snprintf(why, whylen,
		    "raw digest signing not allowed for uid %u",
		    (unsigned)peer->uid);
	return r;
}

static int
h_sign_payload(struct dispatch_ctx *c, struct agent_peer *peer,
    struct wbuf *req, struct wbuf *reply, char *why, size_t whylen)
{
	struct ks_key *k = NULL;
	struct payload *pl = NULL;
	struct audit_rec rec;
	const uint8_t *data;
	uint8_t *sig = NULL;
	size_t len, siglen = 0;
	uint32_t flags;
	char what[600];
	int r, ra;

	memset(&rec, 0, sizeof(rec));
	rec.event = "sign-payload";
	rec.peer = peer;
	if ((r = get_key(c, req, &k, why, whylen)) != 0) {
		/* A parse error is not worth an audit line; a lookup is. */
		if (r <= TS_ERR_WIRE_TRUNCATED && r >= -59)
			return r;
		goto out;
	}
	if ((r = wbuf_get_string_direct(req, &data, &len)) != 0 ||
	    (r = wbuf_get_u32(req, &flags)) != 0 || (r = expect_end(req)) != 0)
		return r;
	rec.key_id = ks_key_id(k);
	rec.key_fp = ks_key_fingerprint(k);
	if ((flags & ~TS_SIGN_FLAGS_KNOWN) != 0) {
		snprintf(why, whylen, "unknown flags 0x%x", flags);
		r = TS_ERR_WIRE_BAD_FIELD;
		goto out;
	}
	if (is_locked(c)) {
		r = TS_ERR_AGENT_LOCKED;
		goto out;
	}
	if ((r = check_payload(c, peer, k, data, len, &pl, why, whylen)) != 0)
		goto out;
	rec.image = payload_docker_reference(pl);
	rec.manifest_digest = payload_manifest_digest_str(pl);
	snprintf(what, sizeof(what), "image %.200s@%.80s", rec.image,
	    rec.manifest_digest);
	if ((r = maybe_confirm(c, peer, k, what, why, whylen)) != 0)
		goto out;
	touch_notice(k);
	r = touch_done(
	    keystore_sign_message(c->ks, k, data, len, &sig, &siglen));
	if (r != 0)
		(void)keystore_explain(c->ks, k, r, why, whylen);
out:
	rec.result = r;
	rec.reason = r != 0 && why[0] != '\0' ? why : NULL;
	if ((ra = audit_log(c->audit, &rec)) != 0 && r == 0)
		r = ra;
	if (r == 0)
		r = put_signature(reply, sig, siglen, k);
	count(c, r);
	freezero(sig, siglen);
	payload_free(pl);
	return r;
}

static int
h_sign_digest(struct dispatch_ctx *c, struct agent_peer *peer, struct wbuf *req,
    struct wbuf *reply, char *why, size_t whylen)
{
	struct ks_key *k = NULL;
	struct audit_rec rec;
	const uint8_t *dig;
	uint8_t hash, *sig = NULL;
	size_t dlen, siglen = 0;
	uint32_t flags;
	char hex[2 * 64 + 1], what[200];
	int r, ra;

	memset(&rec, 0, sizeof(rec));
	rec.event = "sign-digest";
	rec.peer = peer;
	if ((r = get_key(c, req, &k, why, whylen)) != 0) {
		if (r <= TS_ERR_WIRE_TRUNCATED && r >= -59)
			return r;
		goto out;
	}
	if ((r = wbuf_get_u8(req, &hash)) != 0 ||
	    (r = wbuf_get_string_direct(req, &dig, &dlen)) != 0 ||
	    (r = wbuf_get_u32(req, &flags)) != 0 || (r = expect_end(req)) != 0)
		return r;
	rec.key_id = ks_key_id(k);
	rec.key_fp = ks_key_fingerprint(k);
	if (hash_len(hash) == 0 || dlen != hash_len(hash)) {
		snprintf(why, whylen, "hash %u with a %zu-byte digest",
		    (unsigned)hash, dlen);
		r = TS_ERR_WIRE_BAD_FIELD;
		goto out;
	}
	rec.hash = hash_name(hash);
	hexify(dig, dlen, hex, sizeof(hex));
	rec.digest_hex = hex;
	if ((flags & ~TS_SIGN_FLAGS_KNOWN) != 0) {
		snprintf(why, whylen, "unknown flags 0x%x", flags);
		r = TS_ERR_WIRE_BAD_FIELD;
		goto out;
	}
	if (is_locked(c)) {
		r = TS_ERR_AGENT_LOCKED;
		goto out;
	}
	if ((r = check_digest_policy(c, peer, k, why, whylen)) != 0)
		goto out;
	snprintf(what, sizeof(what), "raw %s digest %.16s...", rec.hash, hex);
	if ((r = maybe_confirm(c, peer, k, what, why, whylen)) != 0)
		goto out;
	touch_notice(k);
	r = touch_done(
	    keystore_sign_digest(c->ks, k, hash, dig, dlen, &sig, &siglen));
	if (r != 0)
		(void)keystore_explain(c->ks, k, r, why, whylen);
out:
	rec.result = r;
	rec.reason = r != 0 && why[0] != '\0' ? why : NULL;
	if ((ra = audit_log(c->audit, &rec)) != 0 && r == 0)
		r = ra;
	if (r == 0)
		r = put_signature(reply, sig, siglen, k);
	count(c, r);
	freezero(sig, siglen);
	return r;
}

struct batch_item {
	uint8_t kind;
	uint8_t hash;
	const uint8_t *data;
	size_t len;
	struct payload *pl;
	char hex[2 * 64 + 1];
	uint8_t *sig;
	size_t siglen;
	int r;
};

static int
h_sign_batch(struct dispatch_ctx *c, struct agent_peer *peer, struct wbuf *req,
    struct wbuf *reply, char *why, size_t whylen)
{
	struct ks_key *k = NULL;
	struct batch_item *items = NULL;
	struct audit_rec *recs = NULL, one;
	uint32_t flags, n = 0, i;
	char what[300], itemwhy[256];
	int r, ra, ndigest = 0;

	memset(&one, 0, sizeof(one));
	one.event = "sign-batch";
	one.peer = peer;
	if ((r = get_key(c, req, &k, why, whylen)) != 0) {
		if (r <= TS_ERR_WIRE_TRUNCATED && r >= -59)
			return r;
		goto refuse;
	}
	one.key_id = ks_key_id(k);
	one.key_fp = ks_key_fingerprint(k);
	if ((r = wbuf_get_u32(req, &flags)) != 0 ||
	    (r = wbuf_get_u32(req, &n)) != 0)
		return r;
	if (n == 0 || n > TS_PROTO_MAX_BATCH) {
		snprintf(why, whylen, "batch of %u items (1..%d)", n,
		    TS_PROTO_MAX_BATCH);
		return TS_ERR_WIRE_BAD_FIELD;
	}
	/* Each item takes at least 5 bytes: refuse a count the body lacks. */
	if (wbuf_len(req) / 5 < n)
		return TS_ERR_WIRE_TRUNCATED;
	if ((items = calloc(n, sizeof(*items))) == NULL ||
	    (recs = calloc(n, sizeof(*recs))) == NULL) {
		r = TS_ERR_ALLOC;
		goto done;
	}
	for (i = 0; i < n; i++) {
		if ((r = wbuf_get_u8(req, &items[i].kind)) != 0)
			goto done;
		if (items[i].kind == TS_BATCH_DIGEST &&
		    (r = wbuf_get_u8(req, &items[i].hash)) != 0)
			goto done;
		if ((r = wbuf_get_string_direct(
			 req, &items[i].data, &items[i].len)) != 0)
			goto done;
		if (items[i].kind != TS_BATCH_PAYLOAD &&
		    items[i].kind != TS_BATCH_DIGEST) {
			snprintf(why, whylen, "item %u: unknown kind %u", i + 1,
			    (unsigned)items[i].kind);
			r = TS_ERR_WIRE_BAD_FIELD;
			goto done;
		}
	}
	if ((r = expect_end(req)) != 0)
		goto done;
	if ((flags & ~TS_SIGN_FLAGS_KNOWN) != 0) {
		snprintf(why, whylen, "unknown flags 0x%x", flags);
		r = TS_ERR_WIRE_BAD_FIELD;
		goto refuse;
	}
	if (is_locked(c)) {
		r = TS_ERR_AGENT_LOCKED;
		goto refuse;
	}
	/* Check everything before signing anything. */
	for (i = 0; i < n; i++) {
		if (items[i].kind == TS_BATCH_DIGEST) {
			if (hash_len(items[i].hash) == 0 ||
			    items[i].len != hash_len(items[i].hash)) {
				snprintf(why, whylen,
				    "item %u: hash %u with a %zu-byte digest",
				    i + 1, (unsigned)items[i].hash,
				    items[i].len);
				r = TS_ERR_WIRE_BAD_FIELD;
				goto refuse;
			}
			hexify(items[i].data, items[i].len, items[i].hex,
			    sizeof(items[i].hex));
			ndigest++;
			continue;
		}
		if ((r = check_payload(c, peer, k, items[i].data, items[i].len,
			 &items[i].pl, what, sizeof(what))) != 0) {
			snprintf(why, whylen, "item %u: %s", i + 1, what);
			goto refuse;
		}
	}
	if (ndigest > 0 &&
	    (r = check_digest_policy(c, peer, k, why, whylen)) != 0)
		goto refuse;
	snprintf(what, sizeof(what), "a batch of %u items", n);
	if ((r = maybe_confirm(c, peer, k, what, why, whylen)) != 0)
		goto refuse;
	touch_notice(k);
	for (i = 0; i < n; i++) {
		if (items[i].kind == TS_BATCH_DIGEST)
			items[i].r = keystore_sign_digest(c->ks, k,
			    items[i].hash, items[i].data, items[i].len,
			    &items[i].sig, &items[i].siglen);
		else
			items[i].r =
			    keystore_sign_message(c->ks, k, items[i].data,
				items[i].len, &items[i].sig, &items[i].siglen);
		recs[i] = one;
		recs[i].batch_index = i + 1;
		recs[i].result = items[i].r;
		if (items[i].kind == TS_BATCH_DIGEST) {
			recs[i].hash = hash_name(items[i].hash);
			recs[i].digest_hex = items[i].hex;
		} else {
			recs[i].image = payload_docker_reference(items[i].pl);
			recs[i].manifest_digest =
			    payload_manifest_digest_str(items[i].pl);
		}
	}
	if (touch_done(0) != 0)
		for (i = 0; i < n; i++)
			recs[i].result = TS_ERR_P11_TOUCH_TIMEOUT;
	if ((r = audit_log_n(c->audit, recs, n)) != 0)
		goto done;
	if ((r = wbuf_put_u8(reply, TS_MSG_BATCH_REPLY)) != 0 ||
	    (r = wbuf_put_u32(reply, n)) != 0)
		goto done;
	for (i = 0; i < n; i++) {
		count(c, items[i].r);
		if (items[i].r == 0)
			r = wbuf_put_u32(reply, 0) ||
			    wbuf_put_string(
				reply, items[i].sig, items[i].siglen);
		else if (keystore_explain(
			     c->ks, k, items[i].r, itemwhy, sizeof(itemwhy)))
			r = wbuf_put_u32(reply, (uint32_t)-items[i].r) ||
			    wbuf_put_cstring(reply, itemwhy);
		else
			r = wbuf_put_u32(reply, (uint32_t)-items[i].r) ||
			    wbuf_put_cstring(reply, ts_err(items[i].r));
		if (r != 0) {
			r = TS_ERR_WIRE_BUF_FULL;
			goto done;
		}
	}
	r = 0;
	goto done;
refuse:
	one.result = r;
	one.reason = why[0] != '\0' ? why : NULL;
	if ((ra = audit_log(c->audit, &one)) != 0)
		r = ra;
	count(c, r);
done:
	for (i = 0; items != NULL && i < n; i++) {
		payload_free(items[i].pl);
		freezero(items[i].sig, items[i].siglen);
	}
	free(items);
	free(recs);
	return r;
}

static int
lock_kdf(struct dispatch_ctx *c, const uint8_t *pass, size_t len,
    const unsigned char *salt, unsigned char *out)
{
	if (PKCS5_PBKDF2_HMAC((const char *)pass, (int)len, salt, LOCK_SALT_LEN,
		c->test_mode ? 1 : LOCK_KDF_ROUNDS, EVP_sha256(), LOCK_HASH_LEN,
		out) != 1)
		return ts_err_ossl("PBKDF2");
	return 0;
}

static int
h_lock(struct dispatch_ctx *c, struct agent_peer *peer, struct wbuf *req,
    struct wbuf *reply, char *why, size_t whylen)
{
	struct audit_rec rec;
	const uint8_t *pass;
	unsigned char salt[LOCK_SALT_LEN], hash[LOCK_HASH_LEN];
	size_t len;
	int r;

	if ((r = wbuf_get_string_direct(req, &pass, &len)) != 0 ||
	    (r = expect_end(req)) != 0)
		return r;
	if (len == 0 || len > TS_PROTO_MAX_PASS) {
		snprintf(why, whylen, "passphrase must be 1..%d bytes",
		    TS_PROTO_MAX_PASS);
		return TS_ERR_WIRE_BAD_FIELD;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return ts_err_ossl("RAND_bytes");
	if ((r = lock_kdf(c, pass, len, salt, hash)) != 0)
		return r;
	pthread_mutex_lock(&c->mu);
	if (c->locked)
		r = TS_ERR_AGENT_LOCKED;
	else {
		memcpy(c->lock_salt, salt, sizeof(salt));
		memcpy(c->lock_hash, hash, sizeof(hash));
		c->locked = 1;
		c->unlock_failures = 0;
	}
	pthread_mutex_unlock(&c->mu);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (r != 0) {
		snprintf(why, whylen, "already locked");
		return r;
	}
	memset(&rec, 0, sizeof(rec));
	rec.event = "lock";
	rec.peer = peer;
	(void)audit_log(c->audit, &rec);
	logit("agent locked by uid %u", (unsigned)peer->uid);
	return wbuf_put_u8(reply, TS_MSG_SUCCESS);
}

static int
h_unlock(struct dispatch_ctx *c, struct agent_peer *peer, struct wbuf *req,
    struct wbuf *reply, char *why, size_t whylen)
{
	struct audit_rec rec;
	const uint8_t *pass;
	unsigned char salt[LOCK_SALT_LEN], hash[LOCK_HASH_LEN];
	struct timespec ts;
	size_t len;
	unsigned fails = 0;
	uint64_t delay;
	int r, locked;

	if ((r = wbuf_get_string_direct(req, &pass, &len)) != 0 ||
	    (r = expect_end(req)) != 0)
		return r;
	if (len == 0 || len > TS_PROTO_MAX_PASS) {
		snprintf(why, whylen, "passphrase must be 1..%d bytes",
		    TS_PROTO_MAX_PASS);
		return TS_ERR_WIRE_BAD_FIELD;
	}
	memset(&rec, 0, sizeof(rec));
	rec.event = "unlock";
	rec.peer = peer;
	pthread_mutex_lock(&c->mu);
	locked = c->locked;
	memcpy(salt, c->lock_salt, sizeof(salt));
	pthread_mutex_unlock(&c->mu);
	if (!locked) {
		/* Not locked: the passphrase is a PIN for a logged-out token. */
		if (!keystore_needs_unlock(c->ks)) {
			snprintf(why, whylen, "agent is not locked");
			return TS_ERR_INVALID_ARG;
		}
		r = keystore_unlock_with(c->ks, pass, len);
		rec.event = "unlock-token";
		rec.result = r;
		(void)audit_log(c->audit, &rec);
		if (r != 0)
			return r;
		return wbuf_put_u8(reply, TS_MSG_SUCCESS);
	}
	if ((r = lock_kdf(c, pass, len, salt, hash)) != 0)
		return r;
	pthread_mutex_lock(&c->mu);
	if (c->locked &&
	    CRYPTO_memcmp(hash, c->lock_hash, LOCK_HASH_LEN) == 0) {
		c->locked = 0;
		c->unlock_failures = 0;
		OPENSSL_cleanse(c->lock_hash, sizeof(c->lock_hash));
		r = 0;
	} else if (c->locked) {
		fails = ++c->unlock_failures;
		r = TS_ERR_AGENT_BAD_PASS;
	} else
		r = 0; /* someone else unlocked meanwhile */
	pthread_mutex_unlock(&c->mu);
	OPENSSL_cleanse(hash, sizeof(hash));
	rec.result = r;
	(void)audit_log(c->audit, &rec);
	if (r != 0) {
		/* Growing delay against guessing (ssh-agent does the same). */
		delay = LOCK_DELAY_BASE_MS << (fails > 7 ? 7 : fails - 1);
		if (delay > LOCK_DELAY_MAX_MS)
			delay = LOCK_DELAY_MAX_MS;
		if (c->test_mode)
			delay = 0;
		ts.tv_sec = (time_t)(delay / 1000);
		ts.tv_nsec = (long)(delay % 1000) * 1000000;
		nanosleep(&ts, NULL);
		return r;
	}
	logit("agent unlocked by uid %u", (unsigned)peer->uid);
	return wbuf_put_u8(reply, TS_MSG_SUCCESS);
}

static int
h_status(struct dispatch_ctx *c, struct agent_peer *peer, struct wbuf *req,
    struct wbuf *reply, char *why, size_t whylen)
{
	struct ks_key *k;
	size_t i, n, nwait;
	uint32_t flags = 0;
	const char *uri;
	int r, failed;

	(void)peer;
	(void)why;
	(void)whylen;
	if ((r = expect_end(req)) != 0)
		return r;
	if (is_locked(c))
		flags |= TS_STATUS_LOCKED;
	if (keystore_needs_unlock(c->ks))
		flags |= TS_STATUS_NEEDS_UNLOCK;
	if ((r = wbuf_put_u8(reply, TS_MSG_STATUS_REPLY)) != 0 ||
	    (r = wbuf_put_u32(reply, TS_PROTO_VERSION)) != 0 ||
	    (r = wbuf_put_u32(reply, flags)) != 0 ||
	    (r = wbuf_put_u64(reply, (uint64_t)(time(NULL) - c->started))) !=
		0 ||
	    (r = wbuf_put_u64(reply, atomic_load(&c->sigs))) != 0 ||
	    (r = wbuf_put_u64(reply, atomic_load(&c->errors))) != 0 ||
	    (r = wbuf_put_u32(reply, atomic_load(&c->connections))) != 0)
		return r;
	/*
	 * Token specs still waited for (or whose token failed to log in)
	 * come last: empty label, the spec's URI.
	 */
	n = keystore_token_count(c->ks);
	nwait = keystore_wait_count(c->ks);
	if ((r = wbuf_put_u32(reply, (uint32_t)(n + nwait))) != 0)
		return r;
	for (i = 0; i < n; i++)
		if ((r = wbuf_put_cstring(
			 reply, keystore_token_label(c->ks, i))) != 0 ||
		    (r = wbuf_put_cstring(
			 reply, keystore_token_uri(c->ks, i))) != 0 ||
		    (r = wbuf_put_u8(reply,
			 (uint8_t)keystore_token_present(c->ks, i))) != 0 ||
		    (r = wbuf_put_u8(reply,
			 (uint8_t)keystore_token_logged_in(c->ks, i))) != 0)
			return r;
	/* present 1: arrived, not taken (its login failed) */
	for (i = 0; i < nwait; i++) {
		uri = keystore_wait_uri(c->ks, i, &failed);
		if ((r = wbuf_put_cstring(reply, "")) != 0 ||
		    (r = wbuf_put_cstring(reply, uri)) != 0 ||
		    (r = wbuf_put_u8(reply, (uint8_t)failed)) != 0 ||
		    (r = wbuf_put_u8(reply, 0)) != 0)
			return r;
	}
	n = keystore_count(c->ks);
	if ((r = wbuf_put_u32(reply, (uint32_t)n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		k = keystore_get(c->ks, i);
		if ((r = wbuf_put_cstring(reply, ks_key_id(k))) != 0 ||
		    (r = wbuf_put_cstring(reply, ks_key_label(k))) != 0 ||
		    (r = wbuf_put_u64(reply, ks_key_signatures(k))) != 0 ||
		    (r = wbuf_put_u64(reply, ks_key_errors(k))) != 0)
			return r;
	}
	return 0;
}

/* ---- the table -------------------------------------------------------- */

static const struct dispatch_entry dispatch_table[] = {
	{ TS_MSG_HELLO, "HELLO", h_hello, DISPATCH_F_NO_HELLO },
	{ TS_MSG_LIST_KEYS, "LIST_KEYS", h_list_keys, 0 },
	{ TS_MSG_SIGN_PAYLOAD, "SIGN_PAYLOAD", h_sign_payload,
	    DISPATCH_F_SIGN },
	{ TS_MSG_SIGN_DIGEST, "SIGN_DIGEST", h_sign_digest, DISPATCH_F_SIGN },
	{ TS_MSG_SIGN_BATCH, "SIGN_BATCH", h_sign_batch, DISPATCH_F_SIGN },
	{ TS_MSG_LOCK, "LOCK", h_lock, 0 },
	{ TS_MSG_UNLOCK, "UNLOCK", h_unlock, 0 },
	{ TS_MSG_STATUS, "STATUS", h_status, 0 },
};

#define DISPATCH_MAX_EXTRA 32

/* Rows added by other protocol modules; written only before serving. */
static const struct dispatch_entry *extra_rows[DISPATCH_MAX_EXTRA];
static size_t nextra;

const struct dispatch_entry *
dispatch_lookup(uint8_t type)
{
	size_t i;

	for (i = 0; i < sizeof(dispatch_table) / sizeof(dispatch_table[0]); i++)
		if (dispatch_table[i].type == type)
			return &dispatch_table[i];
	for (i = 0; i < nextra; i++)
		if (extra_rows[i]->type == type)
			return extra_rows[i];
	return NULL;
}

int
dispatch_register(const struct dispatch_entry *rows, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (rows[i].fn == NULL || rows[i].name == NULL ||
		    (rows[i].type >= TS_MSG_FIRST &&
			rows[i].type <= TS_MSG_LAST))
			return TS_ERR_INVALID_ARG;
		if (dispatch_lookup(rows[i].type) != NULL)
			return TS_ERR_EXISTS;
		for (j = 0; j < i; j++)
			if (rows[j].type == rows[i].type)
				return TS_ERR_EXISTS;
	}
	if (n > DISPATCH_MAX_EXTRA - nextra)
		return TS_ERR_TOO_LARGE;
	for (i = 0; i < n; i++)
		extra_rows[nextra++] = &rows[i];
	return 0;
}

struct keystore *
dispatch_keystore(struct dispatch_ctx *c)
{
	return c->ks;
}

int
dispatch_is_locked(struct dispatch_ctx *c)
{
	return is_locked(c);
}

int
dispatch_confirm(struct dispatch_ctx *c, struct agent_peer *peer,
    struct ks_key *k, const char *what, char *why, size_t whylen)
{
	return maybe_confirm(c, peer, k, what, why, whylen);
}

void
dispatch_count(struct dispatch_ctx *c, int r)
{
	count(c, r);
}

/* ---- context ---------------------------------------------------------- */

struct dispatch_ctx *
dispatch_ctx_new(struct keystore *ks, struct policy *pol, struct audit *audit)
{
	struct dispatch_ctx *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->ks = ks;
	c->audit = audit;
	c->pol = policy_ref(pol);
	c->started = time(NULL);
	pthread_mutex_init(&c->mu, NULL);
	atomic_init(&c->sigs, 0);
	atomic_init(&c->errors, 0);
	atomic_init(&c->connections, 0);
	return c;
}

void
dispatch_ctx_free(struct dispatch_ctx *c)
{
	if (c == NULL)
		return;
	policy_unref(c->pol);
	free(c->askpass);
	pthread_mutex_destroy(&c->mu);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

void
dispatch_set_policy(struct dispatch_ctx *c, struct policy *pol)
{
	struct policy *old;

	pthread_mutex_lock(&c->mu);
	old = c->pol;
	c->pol = policy_ref(pol);
	pthread_mutex_unlock(&c->mu);
	policy_unref(old);
}

struct policy *
dispatch_get_policy(struct dispatch_ctx *c)
{
	struct policy *p;

	pthread_mutex_lock(&c->mu);
	p = policy_ref(c->pol);
	pthread_mutex_unlock(&c->mu);
	return p;
}

void
dispatch_set_askpass(struct dispatch_ctx *c, const char *path)
{
	char *n = path != NULL ? strdup(path) : NULL;

	pthread_mutex_lock(&c->mu);
	free(c->askpass);
	c->askpass = n;
	pthread_mutex_unlock(&c->mu);
}

void
dispatch_set_test_mode(struct dispatch_ctx *c, int on)
{
	c->test_mode = on;
}

void
dispatch_set_connections(struct dispatch_ctx *c, unsigned n)
{
	atomic_store(&c->connections, n);
}

struct audit *
dispatch_audit(struct dispatch_ctx *c)
{
	return c->audit;
}

/* ---- dispatch --------------------------------------------------------- */

/* Starts a frame: reserves the length; returns the frame's offset. */
static size_t
frame_begin(struct wbuf *reply, int *rp)
{
	size_t at = wbuf_len(reply);

	*rp = wbuf_put_u32(reply, 0);
	return at;
}

static int
frame_end(struct wbuf *reply, size_t at)
{
	size_t n = wbuf_len(reply) - at - TS_PROTO_LEN_SIZE;

	if (n > TS_PROTO_MAX_FRAME)
		return TS_ERR_WIRE_TOO_LONG;
	return wbuf_poke_u32(reply, at, (uint32_t)n);
}

int
dispatch_failure(struct wbuf *reply, int code, const char *message)
{
	size_t at, mlen = strlen(message);
	int r;

	if (mlen > TS_PROTO_MAX_MESSAGE)
		mlen = TS_PROTO_MAX_MESSAGE;
	at = frame_begin(reply, &r);
	if (r != 0 || (r = wbuf_put_u8(reply, TS_MSG_FAILURE)) != 0 ||
	    (r = wbuf_put_u32(reply, (uint32_t)(code < 0 ? -code : code))) !=
		0 ||
	    (r = wbuf_put_string(reply, message, mlen)) != 0)
		return r;
	return frame_end(reply, at);
}

static int
ssh_failure(struct wbuf *reply)
{
	int r;

	if ((r = wbuf_put_u32(reply, 1)) != 0)
		return r;
	return wbuf_put_u8(reply, SSH_AGENT_FAILURE);
}

/* Truncates the reply back to at bytes (drops a half-built reply). */
static int
reply_rewind(struct wbuf *reply, size_t at)
{
	return wbuf_consume_end(reply, wbuf_len(reply) - at);
}

int
dispatch_message(struct dispatch_ctx *c, struct agent_peer *peer,
    const uint8_t *msg, size_t len, struct wbuf *reply)
{
	const struct dispatch_entry *e;
	struct wbuf *req = NULL;
	struct policy *pol;
	char why[DISPATCH_WHY_MAX], text[DISPATCH_WHY_MAX + 128];
	size_t at;
	uint8_t type;
	int r, hr;

	why[0] = '\0';
	if (len == 0) {
		hr = TS_ERR_WIRE_TRUNCATED;
		snprintf(why, sizeof(why), "empty message");
		goto fail;
	}
	if (len > TS_PROTO_MAX_FRAME) {
		hr = TS_ERR_WIRE_TOO_LONG;
		goto fail;
	}
	type = msg[0];
	if ((e = dispatch_lookup(type)) == NULL) {
		if (type < TS_MSG_FIRST)
			return ssh_failure(reply);
		hr = TS_ERR_WIRE_BAD_TYPE;
		snprintf(why, sizeof(why), "type %u", (unsigned)type);
		goto fail;
	}
	/* Policy may have changed (SIGHUP) since this peer connected. */
	pol = dispatch_get_policy(c);
	hr = policy_check_peer(pol, peer);
	policy_unref(pol);
	if (hr != 0) {
		snprintf(why, sizeof(why), "uid %u", (unsigned)peer->uid);
		goto fail_e;
	}
	if (!(e->flags & DISPATCH_F_NO_HELLO) && !peer->hello_done) {
		hr = TS_ERR_WIRE_VERSION;
		snprintf(why, sizeof(why), "HELLO required first");
		goto fail_e;
	}
	if ((req = wbuf_from(msg + 1, len - 1)) == NULL)
		return TS_ERR_ALLOC;
	at = frame_begin(reply, &r);
	if (r != 0)
		goto out;
	hr = e->fn(c, peer, req, reply, why, sizeof(why));
	policy_request_end(); /* issue 5: frees the max_concurrent slot */
	/* Safety net: a handler that returned 0 must have read everything. */
	if (hr == 0 && wbuf_len(req) != 0) {
		error_f("%s: handler left %zu bytes", e->name, wbuf_len(req));
		hr = TS_ERR_WIRE_TRAILING;
	}
	if (hr == 0) {
		r = frame_end(reply, at);
		if (r == 0)
			goto out;
		hr = r;
	}
	if ((r = reply_rewind(reply, at)) != 0)
		goto out;
	debug_fr(hr, "%s from uid %u", e->name, (unsigned)peer->uid);
fail_e:
	if (e->flags & DISPATCH_F_SSH) {
		r = ssh_failure(reply);
		goto out;
	}
fail:
	if (hr == TS_ERR_ALLOC || hr == TS_ERR_INTERNAL) {
		r = hr;
		goto out;
	}
	/* keystore_explain() texts stand alone: they name the problem */
	if ((hr == TS_ERR_P11_TOKEN_REMOVED || hr == TS_ERR_P11_PIN_FINAL_TRY ||
		hr == TS_ERR_P11_PIN_LOCKED) &&
	    why[0] != '\0')
		snprintf(text, sizeof(text), "%s", why);
	else
		snprintf(text, sizeof(text), "%s%s%s", ts_err(hr),
		    why[0] != '\0' ? ": " : "", why);
	r = dispatch_failure(reply, hr, text);
out:
	wbuf_free(req);
	return r;
}
