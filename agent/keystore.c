/*
 * keystore.c - tokens, their login state, and the key table.
 *
 * Locking: ks->mu guards login state (logged_in_at, needs_unlock) and is
 * held across C_Login/C_Logout only, never across a signature, so a
 * re-login after the PIN timeout briefly serialises signers of that
 * token and nothing else.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/keystore.h"
#include "agent/keystore_int.h"
#include "agent/loop.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"
#include "pkcs11/key.h"
#include "pkcs11/pin.h"
#include "pkcs11/provider.h"
#include "pkcs11/sign.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

/* A presence check running longer than this: the token is unresponsive. */
#define KS_TOKEN_DEADLINE_MS 2000
/* ...looked at again this much later before the token is called hung */
#define KS_TOKEN_GRACE_MS 20

struct ks_watch_arg {
	struct keystore *ks;
	size_t i;
};

struct keystore *
keystore_new(void)
{
	struct keystore *ks;

	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return NULL;
	/* calloc'd: pages are touched only as keys are made */
	if ((ks->slab = calloc(KS_MAX_KEYS, sizeof(*ks->slab))) == NULL ||
	    (ks->view = calloc(KS_MAX_KEYS, sizeof(*ks->view))) == NULL) {
		free(ks->slab);
		free(ks);
		return NULL;
	}
	atomic_init(&ks->ntokens, 0);
	atomic_init(&ks->nkeys, 0);
	ks->late_fd = -1;
	pthread_mutex_init(&ks->mu, NULL);
	pthread_mutex_init(&ks->lmu, NULL);
	pthread_mutex_init(&ks->wmu, NULL);
	pthread_cond_init(&ks->wcv, NULL);
	return ks;
}

void
keystore_free(struct keystore *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	keystore_watch_stop(ks);
	keystore_logout_all(ks);
	for (i = 0; i < ks->nprepared; i++) {
		free(ks->tokens[i].value);
		p11_pin_free(ks->tokens[i].held);
	}
	free(ks->slab);
	free(ks->view);
	ks_late_free(ks);
	for (i = 0; i < ks->nprovs; i++)
		p11_provider_free(ks->provs[i]);
	pthread_mutex_destroy(&ks->mu);
	pthread_mutex_destroy(&ks->lmu);
	pthread_mutex_destroy(&ks->wmu);
	pthread_cond_destroy(&ks->wcv);
	free(ks);
}

/* Reads the PIN for token t; returns 0 and *pinp (NULL: no PIN needed). */
static int
ks_read_pin(struct ks_token *t, struct p11_pin **pinp)
{
	*pinp = NULL;
	switch (t->kind) {
	case KS_PIN_FILE:
		return p11_pin_from_file(t->value, pinp);
	case KS_PIN_ENV:
		return p11_pin_from_env(t->value, pinp);
	case KS_PIN_NONE:
	default:
		return 0;
	}
}

/*
 * Says what the token's PIN counter shows before a PIN from a source is
 * tried: "1 try left" / few tries.  Returns the P11_PIN_* flags or < 0.
 */
static int
ks_pin_warn(struct ks_token *t)
{
	int st = p11_token_pin_status(t->tok);

	if (st < 0)
		return st;
	if (st & P11_PIN_LOCKED)
		logit("token \"%.64s\": the user PIN is locked",
		    p11_token_label(t->tok));
	else if (st & P11_PIN_FINAL_TRY)
		logit("token \"%.64s\": 1 try left before the PIN locks",
		    p11_token_label(t->tok));
	else if (st & P11_PIN_COUNT_LOW)
		logit("token \"%.64s\": the token reports few PIN tries left "
		      "(a wrong PIN was entered)",
		    p11_token_label(t->tok));
	return st;
}

/*
 * Logs token t in; called with ks->mu held.  given: a PIN from UNLOCK (or
 * the held env PIN); NULL reads the source.  A PIN the token refuses is
 * never tried again (pin_rejected) until a client UNLOCKs.
 */
static int
ks_login_locked(
    struct keystore *ks, struct ks_token *t, const struct p11_pin *given)
{
	struct p11_pin *pin = NULL, *hold = NULL;
	const struct p11_pin *use;
	int r = TS_ERR_INTERNAL, st, flags;

	if (!p11_token_login_required(t->tok)) {
		t->logged_in_ms = loop_now_ms();
		return 0;
	}
	if (given == NULL && (t->pin_rejected || t->unlock_only)) {
		r = TS_ERR_AGENT_NEEDS_UNLOCK;
		goto out;
	}
	if (given == NULL && (r = ks_read_pin(t, &pin)) != 0)
		goto out;
	if (given == NULL && pin == NULL && t->kind != KS_PIN_NONE) {
		r = TS_ERR_P11_PIN_REQUIRED;
		goto out;
	}
	use = given != NULL ? given : pin;
	if ((st = ks_pin_warn(t)) < 0) {
		r = st;
		goto out;
	}
	/* An env PIN cannot be read again: keep it for always-auth keys. */
	flags = t->kind == KS_PIN_ENV || given != NULL ? P11_LOGIN_KEEP_PIN : 0;
	if (ks->final_try)
		flags |= P11_LOGIN_FINAL_TRY;
	if (t->kind == KS_PIN_ENV && use != NULL &&
	    (r = p11_pin_dup(use, &hold)) != 0)
		goto out;
	r = p11_token_login(t->tok, use, flags);
	if (r != 0)
		t->active = 0; /* the watcher does not try again by itself */
	/* locked before we tried: the PIN itself was not refused */
	if (r == TS_ERR_P11_PIN_INCORRECT ||
	    (r == TS_ERR_P11_PIN_LOCKED && !(st & P11_PIN_LOCKED))) {
		t->pin_rejected = 1;
		t->active = 0;
		p11_pin_free(t->held);
		t->held = NULL;
	}
	if (r != 0)
		goto out;
	if (hold != NULL && use != t->held) {
		p11_pin_free(t->held);
		t->held = hold;
		hold = NULL;
	}
	t->logged_in_ms = loop_now_ms();
	__atomic_store_n(&t->needs_unlock, 0, __ATOMIC_RELAXED);
	t->pin_rejected = 0;
	t->unlock_only = 0;
	t->active = 1;
	r = 0;
out:
	p11_pin_free(hold);
	p11_pin_free(pin);
	return r;
}

/*
 * Fills tokens[idx] with tok and logs it in (given: a PIN read earlier,
 * else the source).  The caller publishes it.  Returns 0 or the login
 * error, with tokens[idx] left empty.
 */
int
ks_take_token(struct keystore *ks, size_t idx, struct p11_token *tok,
    enum ks_pin_kind kind, const char *value, const struct p11_pin *given)
{
	struct ks_token *t = &ks->tokens[idx];
	int r;

	memset(t, 0, sizeof(*t));
	t->tok = tok;
	t->kind = kind;
	snprintf(t->serial, sizeof(t->serial), "%s", p11_token_serial(tok));
	snprintf(t->label, sizeof(t->label), "%s", p11_token_label(tok));
	if (value != NULL && (t->value = strdup(value)) == NULL)
		return TS_ERR_ALLOC;
	pthread_mutex_lock(&ks->mu);
	r = ks_login_locked(ks, t, given);
	pthread_mutex_unlock(&ks->mu);
	if (r != 0) {
		error_fr(r, "token \"%.64s\": login", p11_token_label(tok));
		free(t->value);
		p11_pin_free(t->held);
		memset(t, 0, sizeof(*t));
	}
	return r;
}

int
ks_token_wanted(const struct p11_token *tok, const struct p11_uri *uri, int say)
{
	if (tok == NULL || !p11_token_present(tok))
		return 0;
	if (uri != NULL)
		return p11_token_match_uri(tok, uri);
	/* An uninitialised token (SoftHSM's free slot) has no label. */
	if (p11_token_label(tok)[0] == '\0') {
		if (say)
			debug_f("skipping slot %llu: token has no label",
			    (unsigned long long)p11_token_slot_id(tok));
		return 0;
	}
	return 1;
}

int
ks_token_taken(const struct keystore *ks, const struct p11_token *tok)
{
	size_t j;

	for (j = 0; j < ks->nprepared; j++)
		if (ks->tokens[j].tok == tok)
			return 1;
	return 0;
}

int
keystore_add_tokens(struct keystore *ks, struct p11_provider *prov,
    const char *token_uri, enum ks_pin_kind kind, const char *value,
    unsigned flags)
{
	struct p11_uri *uri = NULL;
	struct p11_token *tok;
	char errbuf[P11_URI_ERRBUF_SIZE];
	size_t i, n, added = 0;
	int r = TS_ERR_INTERNAL;

	if (ks->nprovs >= KS_MAX_PROVIDERS) {
		p11_provider_free(prov);
		return TS_ERR_TOO_LARGE;
	}
	ks->provs[ks->nprovs++] = prov;
	if (token_uri != NULL &&
	    (r = p11_uri_parse(token_uri, &uri, errbuf, sizeof(errbuf))) != 0) {
		error_f("token URI: %s", errbuf);
		goto out;
	}
	n = p11_provider_token_count(prov);
	for (i = 0; i < n; i++) {
		tok = p11_provider_token(prov, i);
		if (!ks_token_wanted(tok, uri, 1) || ks_token_taken(ks, tok))
			continue;
		if (ks->nprepared >= KS_MAX_TOKENS) {
			r = TS_ERR_TOO_LARGE;
			goto out;
		}
		if ((r = ks_take_token(
			 ks, ks->nprepared, tok, kind, value, NULL)) != 0)
			goto out;
		ks->nprepared++;
		atomic_store(&ks->ntokens, ks->nprepared);
		added++;
	}
	if (added > 0)
		r = 0;
	else if (flags & KS_ADD_WAIT) {
		r = keystore_wait_tokens(ks, prov, uri, token_uri, kind, value);
		uri = NULL; /* the wait owns it */
	} else
		r = TS_ERR_P11_TOKEN_NOT_FOUND;
out:
	p11_uri_free(uri);
	return r;
}

static void
key_id_hex(const uint8_t *fp, char out[TS_PROTO_KEY_ID_LEN + 1])
{
	static const char hx[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < TS_PROTO_KEY_ID_LEN / 2; i++) {
		out[2 * i] = hx[fp[i] >> 4];
		out[2 * i + 1] = hx[fp[i] & 15];
	}
	out[TS_PROTO_KEY_ID_LEN] = '\0';
}

/*
 * Makes the keys of token ti in slab[nslab, ...) without publishing them;
 * returns how many.  Keys past KS_MAX_KEYS are left out, logged.
 */
size_t
ks_make_keys(struct keystore *ks, size_t ti)
{
	struct ks_token *t = &ks->tokens[ti];
	struct ks_key *nk;
	struct p11_key *k;
	size_t j, n, made = 0;

	n = p11_token_key_count(t->tok);
	for (j = 0; j < n; j++) {
		k = p11_token_key(t->tok, j);
		if (k == NULL || !p11_key_has_private(k))
			continue;
		if (ks->nslab + made >= KS_MAX_KEYS) {
			error("token \"%.64s\": more than %d keys in all; "
			      "the rest are not served",
			    t->label, KS_MAX_KEYS);
			break;
		}
		nk = &ks->slab[ks->nslab + made];
		memset(nk, 0, sizeof(*nk));
		nk->key = k;
		nk->token = ti;
		key_id_hex(p11_key_fingerprint(k), nk->id);
		atomic_init(&nk->sigs, 0);
		atomic_init(&nk->errors, 0);
		made++;
	}
	return made;
}

int
keystore_load(struct keystore *ks)
{
	size_t i;

	ks->nslab = 0;
	for (i = 0; i < ks->nprepared; i++)
		ks->nslab += ks_make_keys(ks, i);
	for (i = 0; i < ks->nslab; i++)
		ks->view[i] = &ks->slab[i];
	ks->nadopted = ks->nslab;
	atomic_store(&ks->nkeys, ks->nslab);
	return 0;
}

int
keystore_retain(struct keystore *ks, char *const *refs, size_t n, size_t *badp)
{
	struct ks_key *k;
	uint8_t *keep = NULL;
	size_t i, j, nk = atomic_load(&ks->nkeys);
	int r = 0;

	*badp = 0;
	if (n == 0)
		return 0;
	if ((keep = calloc(KS_MAX_KEYS, 1)) == NULL)
		return TS_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		r = keystore_lookup(ks, refs[i], strlen(refs[i]), &k);
		if (r == TS_ERR_P11_KEY_NOT_FOUND && keystore_waiting(ks)) {
			/* may be on a token still to come: kept then */
			logit("key \"%.200s\": not here yet; served when its "
			      "token arrives",
			    refs[i]);
			r = 0;
			continue;
		}
		if (r != 0) {
			*badp = i;
			goto out;
		}
		keep[k - ks->slab] = 1;
	}
	for (i = j = 0; i < nk; i++)
		if (keep[ks->view[i] - ks->slab])
			ks->view[j++] = ks->view[i];
	atomic_store(&ks->nkeys, j);
out:
	free(keep);
	return r;
}

int
keystore_reserve(struct keystore *ks, const char *ref, struct ks_key **kp)
{
	struct ks_key *k;
	size_t i, nk = atomic_load(&ks->nkeys);
	int r;

	*kp = NULL;
	if ((r = keystore_lookup(ks, ref, strlen(ref), &k)) != 0)
		return r;
	/* Out of the view, where no client lookup goes; the slab keeps it. */
	for (i = 0; i < nk && ks->view[i] != k; i++)
		;
	for (; i + 1 < nk; i++)
		ks->view[i] = ks->view[i + 1];
	atomic_store(&ks->nkeys, nk - 1);
	*kp = k;
	return 0;
}

size_t
keystore_count(const struct keystore *ks)
{
	return atomic_load_explicit(&ks->nkeys, memory_order_acquire);
}

struct ks_key *
keystore_get(const struct keystore *ks, size_t i)
{
	return i < keystore_count(ks) ? ks->view[i] : NULL;
}

size_t
keystore_token_count(const struct keystore *ks)
{
	return atomic_load_explicit(&ks->ntokens, memory_order_acquire);
}

const char *
keystore_token_label(const struct keystore *ks, size_t i)
{
	return i < keystore_token_count(ks) ? p11_token_label(ks->tokens[i].tok)
					    : "";
}

const char *
keystore_token_uri(const struct keystore *ks, size_t i)
{
	return i < keystore_token_count(ks) ? p11_token_uri(ks->tokens[i].tok)
					    : "";
}

int
keystore_token_present(const struct keystore *ks, size_t i)
{
	return i < keystore_token_count(ks) &&
	    p11_token_present(ks->tokens[i].tok);
}

int
keystore_token_logged_in(const struct keystore *ks, size_t i)
{
	return i < keystore_token_count(ks) &&
	    p11_token_logged_in(ks->tokens[i].tok);
}

int
ks_key_matches_uri(const struct ks_key *k, const struct p11_uri *uri)
{
	const char *label = p11_key_label(k->key);
	const uint8_t *want, *have;
	size_t wlen, hlen;
	enum p11_uri_type type = p11_uri_get_type(uri);

	if (type != P11_URI_TYPE_ANY && type != P11_URI_TYPE_PRIVATE &&
	    type != P11_URI_TYPE_PUBLIC)
		return 0;
	if (!p11_token_match_uri(p11_key_token(k->key), uri))
		return 0;
	if (!p11_uri_match_text(uri, P11_URI_OBJECT, label, strlen(label)))
		return 0;
	if ((want = p11_uri_get_id(uri, &wlen)) != NULL) {
		have = p11_key_id(k->key, &hlen);
		if (hlen != wlen || (wlen > 0 && memcmp(want, have, wlen) != 0))
			return 0;
	}
	return 1;
}

int
keystore_lookup(
    const struct keystore *ks, const char *ref, size_t len, struct ks_key **kp)
{
	struct p11_uri *uri = NULL;
	struct ks_key *found = NULL, *k;
	char *text = NULL, errbuf[P11_URI_ERRBUF_SIZE];
	size_t i, n = 0, nk = keystore_count(ks);
	int r = TS_ERR_INTERNAL;

	*kp = NULL;
	if (len == 0 || memchr(ref, '\0', len) != NULL) {
		r = TS_ERR_P11_KEY_NOT_FOUND;
		goto out;
	}
	if ((text = strndup(ref, len)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if (strncasecmp(text, "pkcs11:", 7) == 0) {
		if ((r = p11_uri_parse(text, &uri, errbuf, sizeof(errbuf))) !=
		    0) {
			debug_f("key URI: %s", errbuf);
			goto out;
		}
		for (i = 0; i < nk; i++)
			if (ks_key_matches_uri((k = ks->view[i]), uri)) {
				found = k;
				n++;
			}
	} else {
		/* An id is exact; a label could equal another key's id. */
		for (i = 0; i < nk; i++)
			if (strcmp((k = ks->view[i])->id, text) == 0) {
				found = k;
				n++;
			}
		if (n == 0)
			for (i = 0; i < nk; i++)
				if (strcmp(
					p11_key_label((k = ks->view[i])->key),
					text) == 0) {
					found = k;
					n++;
				}
	}
	if (n == 0) {
		r = TS_ERR_P11_KEY_NOT_FOUND;
		goto out;
	}
	if (n > 1) {
		r = TS_ERR_P11_KEY_AMBIGUOUS;
		goto out;
	}
	*kp = found;
	r = 0;
out:
	free(text);
	p11_uri_free(uri);
	return r;
}

int
ks_key_matches(const struct ks_key *k, const char *ref)
{
	struct p11_uri *uri = NULL;
	char errbuf[P11_URI_ERRBUF_SIZE];
	int m;

	if (strncasecmp(ref, "pkcs11:", 7) != 0)
		return strcmp(k->id, ref) == 0 ||
		    strcmp(p11_key_label(k->key), ref) == 0;
	if (p11_uri_parse(ref, &uri, errbuf, sizeof(errbuf)) != 0)
		return 0;
	m = ks_key_matches_uri(k, uri);
	p11_uri_free(uri);
	return m;
}

const char *
ks_key_id(const struct ks_key *k)
{
	return k->id;
}

const char *
ks_key_label(const struct ks_key *k)
{
	return p11_key_label(k->key);
}

const char *
ks_key_fingerprint(const struct ks_key *k)
{
	return p11_key_fingerprint_str(k->key);
}

const char *
ks_key_token_label(const struct ks_key *k)
{
	return p11_token_label(p11_key_token(k->key));
}

struct p11_key *
ks_key_p11(const struct ks_key *k)
{
	return k->key;
}

int
ks_key_ssh(const struct ks_key *k)
{
	return k->ssh;
}

void
ks_key_set_ssh(struct ks_key *k, int mode)
{
	k->ssh = mode;
}

int
ks_key_confirm(const struct ks_key *k)
{
	return k->confirm;
}

void
ks_key_set_confirm(struct ks_key *k, int on)
{
	k->confirm = on;
}

unsigned
ks_key_touch_timeout(const struct ks_key *k)
{
	return __atomic_load_n(&k->touch_ms, __ATOMIC_RELAXED);
}

void
ks_key_set_touch_timeout(struct ks_key *k, unsigned ms)
{
	__atomic_store_n(&k->touch_ms, ms, __ATOMIC_RELAXED);
}

uint64_t
ks_key_signatures(const struct ks_key *k)
{
	return atomic_load_explicit(&k->sigs, memory_order_relaxed);
}

uint64_t
ks_key_errors(const struct ks_key *k)
{
	return atomic_load_explicit(&k->errors, memory_order_relaxed);
}

/* Makes sure k's token is logged in; re-reads the PIN source if needed. */
static int
ks_ensure_login(struct keystore *ks, struct ks_key *k)
{
	struct ks_token *t = &ks->tokens[k->token];
	int r = 0;

	if (!p11_token_login_required(t->tok) || p11_token_logged_in(t->tok))
		return 0;
	pthread_mutex_lock(&ks->mu);
	if (!p11_token_logged_in(t->tok)) {
		if (t->unlock_only ||
		    (t->kind != KS_PIN_FILE && t->held == NULL)) {
			__atomic_store_n(&t->needs_unlock, 1, __ATOMIC_RELAXED);
			r = TS_ERR_AGENT_NEEDS_UNLOCK;
		} else if ((r = ks_login_locked(ks, t, t->held)) != 0) {
			if (r == TS_ERR_P11_TOKEN_REMOVED ||
			    r == TS_ERR_P11_PIN_FINAL_TRY ||
			    r == TS_ERR_P11_PIN_LOCKED) {
				pthread_mutex_unlock(&ks->mu);
				return r;
			}
			error_fr(r, "token \"%.64s\": login again",
			    p11_token_label(t->tok));
			__atomic_store_n(&t->needs_unlock, 1, __ATOMIC_RELAXED);
			r = TS_ERR_AGENT_NEEDS_UNLOCK;
		} else
			logit("token \"%.64s\": logged in again",
			    p11_token_label(t->tok));
	}
	pthread_mutex_unlock(&ks->mu);
	return r;
}

/* PIN for a CKA_ALWAYS_AUTHENTICATE key from a file source, else NULL. */
static int
ks_aa_pin(struct keystore *ks, struct ks_key *k, struct p11_pin **pinp)
{
	struct ks_token *t = &ks->tokens[k->token];

	*pinp = NULL;
	if (!p11_key_always_auth(k->key) || t->kind != KS_PIN_FILE)
		return 0;
	return p11_pin_from_file(t->value, pinp);
}

/* Errors after which the token is reopened and the operation retried once. */
static int
ks_recoverable(int r)
{
	return r == TS_ERR_P11_TOKEN_REMOVED || r == TS_ERR_P11_SESSION ||
	    r == TS_ERR_P11_NOT_LOGGED_IN;
}

/*
 * Reopens token t after a removal or lost sessions/login: fresh sessions,
 * then a login from the PIN source (file re-read, held env PIN, PIN pad)
 * or "needs unlock" when the PIN came from UNLOCK, or when the token was
 * removed (removed != 0) under "reinsert_login unlock".  gen is the
 * token's generation the caller saw: when another worker already reopened
 * it, this is a no-op.  Returns 0, TS_ERR_P11_TOKEN_REMOVED (absent, or
 * another card in the slot), TS_ERR_AGENT_NEEDS_UNLOCK or a login error.
 */
static int
ks_reopen(struct keystore *ks, struct ks_token *t, unsigned gen, int removed)
{
	int r = TS_ERR_INTERNAL;

	pthread_mutex_lock(&ks->mu);
	if (p11_token_generation(t->tok) != gen && p11_token_present(t->tok) &&
	    (!p11_token_login_required(t->tok) ||
		p11_token_logged_in(t->tok))) {
		r = 0; /* another worker got there first */
		goto out;
	}
	t->logged_in_ms = 0;
	if ((r = p11_token_reopen(t->tok)) != 0)
		goto out;
	if (strcmp(p11_token_serial(t->tok), t->serial) != 0 ||
	    strcmp(p11_token_label(t->tok), t->label) != 0) {
		/* another card in the reader: not the token we serve */
		r = TS_ERR_P11_TOKEN_REMOVED;
		goto out;
	}
	if (p11_token_login_required(t->tok)) {
		if (removed && ks->reinsert_unlock && !t->unlock_only) {
			/* a token out of sight may have been tampered with */
			t->unlock_only = 1;
			p11_pin_free(t->held);
			t->held = NULL;
			logit("token \"%.64s\" (serial %.16s) is back: waiting "
			      "for unlock (config reinsert_login unlock)",
			    t->label, t->serial);
		}
		if (t->unlock_only ||
		    (t->kind != KS_PIN_FILE && t->kind != KS_PIN_NONE &&
			t->held == NULL)) {
			__atomic_store_n(&t->needs_unlock, 1, __ATOMIC_RELAXED);
			r = TS_ERR_AGENT_NEEDS_UNLOCK;
			goto out;
		}
		if (t->kind == KS_PIN_NONE && t->held == NULL &&
		    !p11_token_protected_auth(t->tok)) {
			__atomic_store_n(&t->needs_unlock, 1, __ATOMIC_RELAXED);
			r = TS_ERR_AGENT_NEEDS_UNLOCK;
			goto out;
		}
		if ((r = ks_login_locked(ks, t, t->held)) != 0) {
			error_fr(r, "token \"%.64s\": login after reopening",
			    t->label);
			if (r == TS_ERR_P11_PIN_INCORRECT ||
			    r == TS_ERR_P11_PIN_SOURCE ||
			    r == TS_ERR_P11_PIN_REQUIRED) {
				__atomic_store_n(
				    &t->needs_unlock, 1, __ATOMIC_RELAXED);
				r = TS_ERR_AGENT_NEEDS_UNLOCK;
			}
			goto out;
		}
	} else if ((r = p11_token_load_keys(t->tok)) != 0)
		goto out;
	else
		t->logged_in_ms = loop_now_ms();
	logit("token \"%.64s\" (serial %.16s): sessions reopened%s", t->label,
	    t->serial,
	    p11_token_login_required(t->tok) ? ", logged in again" : "");
	r = 0;
out:
	pthread_mutex_unlock(&ks->mu);
	return r;
}

/*
 * Whether token t looks hung: its presence check has not come back for
 * KS_TOKEN_DEADLINE_MS and no signature has either since the check began
 * (a module busy with signatures can keep a check waiting on its locks
 * for seconds; signatures coming back show it is answering), or, with n
 * (>= token_cap) signatures in flight, none has finished for that long.
 * Such a token takes no more, so a hung module holds only part of the
 * worker pool and other tokens keep signing.  What looks overdue is looked
 * at again after KS_TOKEN_GRACE_MS: a stall of the whole process (a
 * paused VM, SIGSTOP) makes every deadline look passed at once, and the
 * check or a signature then comes back within moments.
 */
static int
ks_unresponsive(const struct keystore *ks, struct ks_token *t, unsigned n)
{
	struct timespec ts = { 0, KS_TOKEN_GRACE_MS * 1000000L };
	uint64_t since, done;
	int tries;

	for (tries = 0; tries < 2; tries++) {
		if (tries > 0)
			(void)nanosleep(&ts, NULL);
		if (n == 0) {
			since = atomic_load(&t->check_since_ms);
			done = atomic_load(&t->done_ms);
			if (since == 0 ||
			    loop_now_ms() - since <= KS_TOKEN_DEADLINE_MS ||
			    done >= since)
				return 0;
		} else {
			done = atomic_load(&t->progress_ms);
			if (ks->token_cap == 0 || n < ks->token_cap ||
			    loop_now_ms() - done <= KS_TOKEN_DEADLINE_MS)
				return 0;
		}
	}
	debug_f("token \"%.64s\": %s", t->label,
	    n == 0 ? "presence check overdue, no signature since"
		   : "signatures in flight, none done");
	return 1;
}

static int
ks_sign(struct keystore *ks, struct ks_key *k, int hash, const uint8_t *data,
    size_t len, int message, uint8_t **sigp, size_t *siglenp)
{
	struct ks_token *t = &ks->tokens[k->token];
	struct p11_pin *pin = NULL;
	int r = TS_ERR_INTERNAL, retried = 0;
	unsigned gen, n;

	*sigp = NULL;
	*siglenp = 0;
	if (ks_unresponsive(ks, t, 0))
		return TS_ERR_P11_TOKEN_BUSY;
	n = atomic_fetch_add(&t->inflight, 1);
	if (n == 0)
		atomic_store(&t->progress_ms, loop_now_ms());
	else if (ks->token_cap > 0 && n >= ks->token_cap &&
	    ks_unresponsive(ks, t, n)) {
		atomic_fetch_sub(&t->inflight, 1);
		return TS_ERR_P11_TOKEN_BUSY;
	}
	for (;;) {
		gen = p11_token_generation(t->tok);
		/* absent: a cheap C_GetSlotInfo sees a reinsertion */
		if (!p11_token_present(t->tok) ||
		    strcmp(p11_token_serial(t->tok), t->serial) != 0) {
			if (p11_token_check(t->tok) != 1) {
				r = TS_ERR_P11_TOKEN_REMOVED;
				break;
			}
			if ((r = ks_reopen(ks, t, gen, 1)) != 0)
				break;
			gen = p11_token_generation(t->tok);
		}
		if ((r = ks_ensure_login(ks, k)) != 0)
			break;
		if ((r = ks_aa_pin(ks, k, &pin)) != 0)
			break;
		if (message)
			r = p11_sign_message(
			    k->key, data, len, pin, sigp, siglenp);
		else
			r = p11_sign_digest(k->key, (enum p11_hash)hash, data,
			    len, pin, sigp, siglenp);
		p11_pin_free(pin);
		pin = NULL;
		/*
		 * Removed, sessions dropped, logged out (card reset, PIN
		 * timeout between check and sign): reopen and retry once.
		 */
		if (r == 0 || !ks_recoverable(r) || retried)
			break;
		retried = 1;
		debug_fr(r, "token \"%.64s\": reopening", t->label);
		if ((r = ks_reopen(
			 ks, t, gen, r == TS_ERR_P11_TOKEN_REMOVED)) != 0)
			break;
	}
	p11_pin_free(pin);
	atomic_store(&t->progress_ms, loop_now_ms());
	atomic_store(&t->done_ms, loop_now_ms());
	atomic_fetch_sub(&t->inflight, 1);
	if (r == 0)
		atomic_fetch_add_explicit(&k->sigs, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&k->errors, 1, memory_order_relaxed);
	return r;
}

int
keystore_sign_digest(struct keystore *ks, struct ks_key *k, int hash,
    const uint8_t *digest, size_t dlen, uint8_t **sigp, size_t *siglenp)
{
	return ks_sign(ks, k, hash, digest, dlen, 0, sigp, siglenp);
}

int
keystore_sign_message(struct keystore *ks, struct ks_key *k, const uint8_t *msg,
    size_t len, uint8_t **sigp, size_t *siglenp)
{
	return ks_sign(ks, k, 0, msg, len, 1, sigp, siglenp);
}

void
keystore_set_pin_timeout(struct keystore *ks, unsigned secs)
{
	pthread_mutex_lock(&ks->mu);
	ks->pin_timeout = secs;
	pthread_mutex_unlock(&ks->mu);
}

void
keystore_expire(struct keystore *ks)
{
	uint64_t now = loop_now_ms();
	struct ks_token *t;
	size_t i, n = keystore_token_count(ks);
	int due = 0, watched;

	/* held across C_Login by a worker: never wait for it on the loop */
	if (pthread_mutex_trylock(&ks->mu) != 0)
		return;
	for (i = 0; ks->pin_timeout != 0 && i < n; i++) {
		t = &ks->tokens[i];
		if (t->logged_in_ms == 0 ||
		    now - t->logged_in_ms < (uint64_t)ks->pin_timeout * 1000)
			continue;
		atomic_store(&t->logout_due, 1);
		due = 1;
		t->logged_in_ms = 0;
		t->active = 0;
		p11_pin_free(t->held);
		t->held = NULL;
		if (t->kind != KS_PIN_FILE)
			__atomic_store_n(&t->needs_unlock, 1, __ATOMIC_RELAXED);
		logit("token \"%.64s\": PIN timeout, logged out",
		    p11_token_label(t->tok));
	}
	pthread_mutex_unlock(&ks->mu);
	if (!due)
		return;
	pthread_mutex_lock(&ks->wmu);
	watched = ks->nwthreads > 0 && !ks->wstop;
	if (watched)
		pthread_cond_broadcast(&ks->wcv);
	pthread_mutex_unlock(&ks->wmu);
	/* no watchers (not serving yet): log out here */
	for (i = 0; !watched && i < n; i++)
		if (atomic_exchange(&ks->tokens[i].logout_due, 0) &&
		    p11_token_login_required(ks->tokens[i].tok))
			(void)p11_token_logout(ks->tokens[i].tok);
}

void
keystore_logout_all(struct keystore *ks)
{
	size_t i, n;

	pthread_mutex_lock(&ks->lmu);
	n = ks->nprepared; /* prepared, not yet adopted: logged in too */
	pthread_mutex_unlock(&ks->lmu);
	pthread_mutex_lock(&ks->mu);
	for (i = 0; i < n; i++) {
		if (ks->tokens[i].logged_in_ms != 0 &&
		    p11_token_login_required(ks->tokens[i].tok))
			(void)p11_token_logout(ks->tokens[i].tok);
		ks->tokens[i].logged_in_ms = 0;
		ks->tokens[i].active = 0;
	}
	pthread_mutex_unlock(&ks->mu);
}

size_t
keystore_calls_running(const struct keystore *ks, int report)
{
	const struct ks_token *t;
	uint64_t now = loop_now_ms(), since, started;
	size_t i, n = 0;

	for (i = 0; i < keystore_token_count(ks); i++) {
		t = &ks->tokens[i];
		since = atomic_load(&t->check_since_ms);
		started = atomic_load(&t->inflight) > 0
		    ? atomic_load(&t->progress_ms)
		    : 0;
		if (since == 0 && started == 0)
			continue;
		if (since == 0 || (started != 0 && started < since))
			since = started;
		n++;
		if (report)
			error(
			    "token \"%.64s\" (serial %.16s) is not answering: "
			    "a call to its module has been running for "
			    "%llu ms",
			    t->label, t->serial,
			    (unsigned long long)(now - since));
	}
	return n;
}

int
keystore_needs_unlock(const struct keystore *ks)
{
	size_t i;
	int n = 0;

	for (i = 0; i < keystore_token_count(ks); i++)
		n |= __atomic_load_n(
		    &ks->tokens[i].needs_unlock, __ATOMIC_RELAXED);
	return n;
}

int
keystore_unlock_with(struct keystore *ks, const void *pin, size_t len)
{
	struct p11_pin *p = NULL;
	size_t i;
	int r;

	if ((r = p11_pin_from_bytes(pin, len, &p)) != 0)
		return r;
	pthread_mutex_lock(&ks->mu);
	for (i = 0; i < keystore_token_count(ks) && r == 0; i++) {
		if (!ks->tokens[i].needs_unlock)
			continue;
		ks->tokens[i].pin_rejected = 0; /* a new PIN from the user */
		if ((r = ks_login_locked(ks, &ks->tokens[i], p)) == 0)
			logit("token \"%.64s\": unlocked by client",
			    p11_token_label(ks->tokens[i].tok));
	}
	pthread_mutex_unlock(&ks->mu);
	p11_pin_free(p);
	return r;
}

void
keystore_set_final_try(struct keystore *ks, int allow)
{
	pthread_mutex_lock(&ks->mu);
	ks->final_try = allow;
	pthread_mutex_unlock(&ks->mu);
}

void
keystore_set_reinsert_unlock(struct keystore *ks, int on)
{
	pthread_mutex_lock(&ks->mu);
	ks->reinsert_unlock = on;
	pthread_mutex_unlock(&ks->mu);
}

int
keystore_explain(const struct keystore *ks, const struct ks_key *k, int r,
    char *why, size_t whylen)
{
	const struct ks_token *t = &ks->tokens[k->token];

	switch (r) {
	case TS_ERR_P11_TOKEN_REMOVED:
		snprintf(why, whylen,
		    "token %.32s (serial %.16s) is not present \xe2\x80\x94 "
		    "insert it",
		    t->label, t->serial);
		return 1;
	case TS_ERR_P11_PIN_FINAL_TRY:
		snprintf(why, whylen,
		    "token %.32s: 1 try left; not spending it from the PIN "
		    "source (config pin_final_try allow, or UNLOCK)",
		    t->label);
		return 1;
	case TS_ERR_P11_TOKEN_BUSY:
		snprintf(why, whylen,
		    "token %.32s (serial %.16s) is not responding; other "
		    "tokens are unaffected",
		    t->label, t->serial);
		return 1;
	case TS_ERR_P11_PIN_LOCKED:
		snprintf(why, whylen, "token %.32s: the user PIN is locked",
		    t->label);
		return 1;
	default:
		return 0;
	}
}

void
ks_wait_ms_locked(struct keystore *ks, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	(void)pthread_cond_timedwait(&ks->wcv, &ks->wmu, &ts);
}

/*
 * One token's presence watcher: a C_GetSlotInfo (+ C_GetTokenInfo) every
 * watch_ms.  A removal is logged (the token and its keys show absent in
 * STATUS and LIST_KEYS); a reinsertion reopens sessions and logs in again
 * from the PIN source at once, so the next signature does not pay for it.
 * A module that hangs blocks only this token's thread.
 */
static void *
ks_watch_main(void *arg)
{
	struct ks_watch_arg *wa = arg;
	struct keystore *ks = wa->ks;
	struct ks_token *t = &ks->tokens[wa->i];
	unsigned gen, ms;
	int was, now, r, want, due;

	free(wa);
	was = p11_token_present(t->tok);
	pthread_mutex_lock(&ks->wmu);
	while (!ks->wstop) {
		/*
		 * A reader event asks for quick re-checks (100 ms apart) for
		 * a module that sees the card a little after pcscd does.
		 */
		ms = t->burst > 0 ? 100 : ks->watch_ms;
		if (atomic_load(&t->logout_due))
			; /* set before we waited: no wake-up comes for it */
		else if (ms == 0)
			pthread_cond_wait(&ks->wcv, &ks->wmu);
		else
			ks_wait_ms_locked(ks, ms);
		if (ks->wstop)
			break;
		due = atomic_exchange(&t->logout_due, 0);
		if (t->burst > 0)
			t->burst--;
		else if (ks->watch_ms == 0 && !due)
			continue; /* woken for another token */
		pthread_mutex_unlock(&ks->wmu);
		/*
		 * The PIN timeout's C_Logout, here rather than on the loop:
		 * a hung module holds this token's thread only.
		 */
		if (due && p11_token_login_required(t->tok))
			(void)p11_token_logout(t->tok);
		gen = p11_token_generation(t->tok);
		atomic_store(&t->check_since_ms, loop_now_ms());
		r = p11_token_check(t->tok);
		atomic_store(&t->check_since_ms, 0);
		now =
		    r == 1 && strcmp(p11_token_serial(t->tok), t->serial) == 0;
		if (was && !now)
			logit("token \"%.64s\" (serial %.16s) removed",
			    t->label, t->serial);
		if (!was && now)
			logit("token \"%.64s\" (serial %.16s) inserted",
			    t->label, t->serial);
		/*
		 * Back (maybe seen first by a signer), or logged out under
		 * us while we meant to be logged in: reopen and log in now.
		 * Not after the PIN timeout or a refused PIN (!active).
		 */
		pthread_mutex_lock(&ks->mu);
		want = t->active && !t->needs_unlock;
		pthread_mutex_unlock(&ks->mu);
		if (now &&
		    (!was ||
			(want && p11_token_login_required(t->tok) &&
			    !p11_token_logged_in(t->tok))) &&
		    (r = ks_reopen(ks, t, gen, !was)) != 0)
			error_fr(r, "token \"%.64s\": reopen", t->label);
		was = now;
		pthread_mutex_lock(&ks->wmu);
	}
	pthread_mutex_unlock(&ks->wmu);
	return NULL;
}

/* Gives the tokens in slot of prov a burst of checks; wmu held. */
static void
ks_poke_slot_locked(
    struct keystore *ks, const struct p11_provider *prov, uint64_t slot)
{
	size_t i;

	for (i = 0; i < keystore_token_count(ks); i++)
		if (p11_token_provider(ks->tokens[i].tok) == prov &&
		    p11_token_slot_id(ks->tokens[i].tok) == slot)
			ks->tokens[i].burst = 10;
	ks->hunt = 1; /* maybe a token still waited for */
	pthread_cond_broadcast(&ks->wcv);
}

/*
 * Slot events of one module (C_WaitForSlotEvent, non-blocking every 50 ms
 * so that stopping needs no C_Finalize): each event gives that slot's token
 * a burst of presence checks.  Ends quietly when the module has no slot
 * events; the periodic check then does the work.
 */
static void *
ks_slotev_main(void *arg)
{
	struct ks_watch_arg *wa = arg;
	struct keystore *ks = wa->ks;
	struct p11_provider *prov = ks->provs[wa->i];
	uint64_t slot;
	int r;

	free(wa);
	pthread_mutex_lock(&ks->wmu);
	while (!ks->wstop) {
		pthread_mutex_unlock(&ks->wmu);
		while ((r = p11_provider_slot_event(prov, &slot)) == 1) {
			debug_f(
			    "slot event: slot %llu", (unsigned long long)slot);
			pthread_mutex_lock(&ks->wmu);
			ks_poke_slot_locked(ks, prov, slot);
			pthread_mutex_unlock(&ks->wmu);
		}
		pthread_mutex_lock(&ks->wmu);
		if (r < 0) {
			debug_f("no slot events (%s): polling", ts_err(r));
			break;
		}
		ks_wait_ms_locked(ks, 50);
	}
	pthread_mutex_unlock(&ks->wmu);
	return NULL;
}

/* Starts token ti's presence watcher; wmu held.  0 or TS_ERR_*. */
static int
ks_watch_token_locked(struct keystore *ks, size_t ti)
{
	struct ks_watch_arg *wa;
	int r;

	if ((wa = malloc(sizeof(*wa))) == NULL)
		return TS_ERR_ALLOC;
	wa->ks = ks;
	wa->i = ti;
	if ((r = pthread_create(
		 &ks->wthreads[ks->nwthreads], NULL, ks_watch_main, wa)) != 0) {
		free(wa);
		error_f("presence watcher: pthread_create: %s", strerror(r));
		return TS_ERR_SYSTEM;
	}
	ks->nwthreads++;
	return 0;
}

/*
 * A token adopted while serving gets its watcher, if watchers run (not
 * before keystore_watch_start(), not after keystore_watch_stop()).
 */
int
ks_watch_token(struct keystore *ks, size_t ti)
{
	int r = 0;

	pthread_mutex_lock(&ks->wmu);
	if (ks->nwthreads > 0 && !ks->wstop)
		r = ks_watch_token_locked(ks, ti);
	pthread_mutex_unlock(&ks->wmu);
	return r;
}

int
keystore_watch_start(struct keystore *ks, unsigned interval_ms)
{
	struct ks_watch_arg *wa;
	size_t i, j;
	int r = 0;

	pthread_mutex_lock(&ks->wmu);
	if (ks->nwthreads > 0)
		goto out;
	ks->watch_ms = interval_ms;
	ks->wstop = 0;
	for (i = 0; i < keystore_token_count(ks); i++)
		if ((r = ks_watch_token_locked(ks, i)) != 0)
			goto out;
	for (i = 0; i < ks->nprovs; i++) {
		for (j = 0; j < i && ks->provs[j] != ks->provs[i]; j++)
			;
		if (j < i)
			continue; /* the same module opened twice */
		if ((wa = malloc(sizeof(*wa))) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		wa->ks = ks;
		wa->i = i;
		if ((r = pthread_create(&ks->wthreads[ks->nwthreads], NULL,
			 ks_slotev_main, wa)) != 0) {
			free(wa);
			error_f("slot events: pthread_create: %s", strerror(r));
			r = TS_ERR_SYSTEM;
			goto out;
		}
		ks->nwthreads++;
	}
	r = ks_late_start(ks);
out:
	pthread_mutex_unlock(&ks->wmu);
	return r;
}

void
keystore_watch_stop(struct keystore *ks)
{
	size_t i;

	pthread_mutex_lock(&ks->wmu);
	ks->wstop = 1;
	pthread_cond_broadcast(&ks->wcv);
	pthread_mutex_unlock(&ks->wmu);
	for (i = 0; i < ks->nwthreads; i++)
		pthread_join(ks->wthreads[i], NULL);
	ks->nwthreads = 0;
}

void
keystore_set_token_cap(struct keystore *ks, unsigned cap)
{
	ks->token_cap = cap;
}

void
keystore_reader_event(void *arg, const char *reader, int present)
{
	struct keystore *ks = arg;
	const char *desc;
	size_t i, dl, n = keystore_token_count(ks), hits = 0;

	pthread_mutex_lock(&ks->wmu);
	for (i = 0; i < n; i++) {
		desc = p11_token_slot_description(ks->tokens[i].tok);
		dl = strlen(desc);
		/* a 64-byte slot description may be a cut reader name */
		if (dl == 0 || strncmp(reader, desc, dl) != 0 ||
		    (reader[dl] != '\0' && dl < 64))
			continue;
		debug_f("reader \"%.100s\" (card %s): checking token %.64s",
		    reader, present ? "in" : "out", ks->tokens[i].label);
		ks->tokens[i].burst = 10;
		hits++;
	}
	/*
	 * A module that names its slots otherwise (not after the reader):
	 * check every token.  A presence check is a C_GetSlotInfo, and the
	 * token serial decides whether the card that came is the token
	 * (p11_token_refresh refuses another serial in the slot).
	 */
	if (hits == 0 && n > 0) {
		debug_f("reader \"%.100s\" (card %s) names no token's slot: "
			"checking every token",
		    reader, present ? "in" : "out");
		for (i = 0; i < n; i++)
			ks->tokens[i].burst = 10;
	}
	if (present)
		ks->hunt = 1; /* maybe a token still waited for */
	pthread_cond_broadcast(&ks->wcv);
	pthread_mutex_unlock(&ks->wmu);
}
