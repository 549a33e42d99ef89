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
#include <stdlib.h>
#include <string.h>

#include "agent/keystore.h"
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

#define KS_MAX_TOKENS	 64
#define KS_MAX_PROVIDERS 16

struct ks_token {
	struct p11_token *tok;
	enum ks_pin_kind kind;
	char *value; /* file path or variable name */
	uint64_t logged_in_ms; /* 0: not logged in by us */
	int needs_unlock;
};

struct ks_key {
	char id[TS_PROTO_KEY_ID_LEN + 1];
	struct p11_key *key;
	size_t token; /* index into ks->tokens */
	int confirm;
	atomic_uint_fast64_t sigs;
	atomic_uint_fast64_t errors;
};

struct keystore {
	pthread_mutex_t mu;
	struct p11_provider *provs[KS_MAX_PROVIDERS];
	size_t nprovs;
	struct ks_token tokens[KS_MAX_TOKENS];
	size_t ntokens;
	struct ks_key *keys;
	size_t nkeys;
	unsigned pin_timeout;
};

struct keystore *
keystore_new(void)
{
	struct keystore *ks;

	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return NULL;
	pthread_mutex_init(&ks->mu, NULL);
	return ks;
}

void
keystore_free(struct keystore *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	keystore_logout_all(ks);
	for (i = 0; i < ks->ntokens; i++)
		free(ks->tokens[i].value);
	free(ks->keys);
	for (i = 0; i < ks->nprovs; i++)
		p11_provider_free(ks->provs[i]);
	pthread_mutex_destroy(&ks->mu);
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

/* Logs token t in; called with ks->mu held. */
static int
ks_login_locked(struct ks_token *t, const struct p11_pin *given)
{
	struct p11_pin *pin = NULL;
	int r = TS_ERR_INTERNAL;

	if (!p11_token_login_required(t->tok)) {
		t->logged_in_ms = loop_now_ms();
		return 0;
	}
	if (given == NULL && (r = ks_read_pin(t, &pin)) != 0)
		goto out;
	if (given == NULL && pin == NULL && t->kind != KS_PIN_NONE) {
		r = TS_ERR_P11_PIN_REQUIRED;
		goto out;
	}
	/* An env PIN cannot be read again: keep it for always-auth keys. */
	r = p11_token_login(t->tok, given != NULL ? given : pin,
	    t->kind == KS_PIN_ENV || given != NULL ? P11_LOGIN_KEEP_PIN : 0);
	if (r != 0)
		goto out;
	t->logged_in_ms = loop_now_ms();
	t->needs_unlock = 0;
	r = 0;
out:
	p11_pin_free(pin);
	return r;
}

int
keystore_add_tokens(struct keystore *ks, struct p11_provider *prov,
    const char *token_uri, enum ks_pin_kind kind, const char *value)
{
	struct p11_uri *uri = NULL;
	struct p11_token *tok;
	struct ks_token *t;
	char errbuf[P11_URI_ERRBUF_SIZE];
	size_t i, j, n, added = 0;
	int r = TS_ERR_INTERNAL, dup;

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
		if (tok == NULL || !p11_token_present(tok))
			continue;
		if (uri != NULL && !p11_token_match_uri(tok, uri))
			continue;
		/* An uninitialised token (SoftHSM's free slot) has no label. */
		if (uri == NULL && p11_token_label(tok)[0] == '\0') {
			debug_f("skipping slot %llu: token has no label",
			    (unsigned long long)p11_token_slot_id(tok));
			continue;
		}
		for (dup = 0, j = 0; j < ks->ntokens; j++)
			dup |= ks->tokens[j].tok == tok;
		if (dup)
			continue;
		if (ks->ntokens >= KS_MAX_TOKENS) {
			r = TS_ERR_TOO_LARGE;
			goto out;
		}
		t = &ks->tokens[ks->ntokens];
		memset(t, 0, sizeof(*t));
		t->tok = tok;
		t->kind = kind;
		if (value != NULL && (t->value = strdup(value)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		pthread_mutex_lock(&ks->mu);
		r = ks_login_locked(t, NULL);
		pthread_mutex_unlock(&ks->mu);
		if (r != 0) {
			error_fr(
			    r, "token \"%.64s\": login", p11_token_label(tok));
			free(t->value);
			t->value = NULL;
			goto out;
		}
		ks->ntokens++;
		added++;
	}
	r = added > 0 ? 0 : TS_ERR_P11_TOKEN_NOT_FOUND;
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

int
keystore_load(struct keystore *ks)
{
	struct ks_key *keys = NULL, *nk;
	struct p11_key *k;
	size_t i, j, n, nkeys = 0;
	int r = TS_ERR_INTERNAL;

	for (i = 0; i < ks->ntokens; i++) {
		n = p11_token_key_count(ks->tokens[i].tok);
		for (j = 0; j < n; j++) {
			k = p11_token_key(ks->tokens[i].tok, j);
			if (k == NULL || !p11_key_has_private(k))
				continue;
			if ((nk = reallocarray(
				 keys, nkeys + 1, sizeof(*keys))) == NULL) {
				r = TS_ERR_ALLOC;
				goto out;
			}
			keys = nk;
			memset(&keys[nkeys], 0, sizeof(keys[nkeys]));
			keys[nkeys].key = k;
			keys[nkeys].token = i;
			key_id_hex(p11_key_fingerprint(k), keys[nkeys].id);
			atomic_init(&keys[nkeys].sigs, 0);
			atomic_init(&keys[nkeys].errors, 0);
			nkeys++;
		}
	}
	free(ks->keys);
	ks->keys = keys;
	ks->nkeys = nkeys;
	keys = NULL;
	r = 0;
out:
	free(keys);
	return r;
}

size_t
keystore_count(const struct keystore *ks)
{
	return ks->nkeys;
}

struct ks_key *
keystore_get(const struct keystore *ks, size_t i)
{
	return i < ks->nkeys ? &ks->keys[i] : NULL;
}

size_t
keystore_token_count(const struct keystore *ks)
{
	return ks->ntokens;
}

const char *
keystore_token_label(const struct keystore *ks, size_t i)
{
	return i < ks->ntokens ? p11_token_label(ks->tokens[i].tok) : "";
}

const char *
keystore_token_uri(const struct keystore *ks, size_t i)
{
	return i < ks->ntokens ? p11_token_uri(ks->tokens[i].tok) : "";
}

int
keystore_token_present(const struct keystore *ks, size_t i)
{
	return i < ks->ntokens && p11_token_present(ks->tokens[i].tok);
}

int
keystore_token_logged_in(const struct keystore *ks, size_t i)
{
	return i < ks->ntokens && p11_token_logged_in(ks->tokens[i].tok);
}

static int
key_matches_uri(const struct ks_key *k, const struct p11_uri *uri)
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
	struct ks_key *found = NULL;
	char *text = NULL, errbuf[P11_URI_ERRBUF_SIZE];
	size_t i, n = 0;
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
		for (i = 0; i < ks->nkeys; i++)
			if (key_matches_uri(&ks->keys[i], uri)) {
				found = &ks->keys[i];
				n++;
			}
	} else {
		/* An id is exact; a label could equal another key's id. */
		for (i = 0; i < ks->nkeys; i++)
			if (strcmp(ks->keys[i].id, text) == 0) {
				found = &ks->keys[i];
				n++;
			}
		if (n == 0)
			for (i = 0; i < ks->nkeys; i++)
				if (strcmp(p11_key_label(ks->keys[i].key),
					text) == 0) {
					found = &ks->keys[i];
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
ks_key_confirm(const struct ks_key *k)
{
	return k->confirm;
}

void
ks_key_set_confirm(struct ks_key *k, int on)
{
	k->confirm = on;
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
		if (t->kind != KS_PIN_FILE) {
			t->needs_unlock = 1;
			r = TS_ERR_AGENT_NEEDS_UNLOCK;
		} else if ((r = ks_login_locked(t, NULL)) != 0) {
			error_fr(r, "token \"%.64s\": login again",
			    p11_token_label(t->tok));
			t->needs_unlock = 1;
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

static int
ks_sign(struct keystore *ks, struct ks_key *k, int hash, const uint8_t *data,
    size_t len, int message, uint8_t **sigp, size_t *siglenp)
{
	struct p11_pin *pin = NULL;
	int r = TS_ERR_INTERNAL, attempt;

	*sigp = NULL;
	*siglenp = 0;
	for (attempt = 0; attempt < 2; attempt++) {
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
		/* The PIN timeout may have logged out between check and sign. */
		if (r != TS_ERR_P11_NOT_LOGGED_IN)
			break;
	}
	p11_pin_free(pin);
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
	size_t i;

	pthread_mutex_lock(&ks->mu);
	for (i = 0; ks->pin_timeout != 0 && i < ks->ntokens; i++) {
		t = &ks->tokens[i];
		if (t->logged_in_ms == 0 ||
		    now - t->logged_in_ms < (uint64_t)ks->pin_timeout * 1000)
			continue;
		if (p11_token_login_required(t->tok))
			(void)p11_token_logout(t->tok);
		t->logged_in_ms = 0;
		if (t->kind != KS_PIN_FILE)
			t->needs_unlock = 1;
		logit("token \"%.64s\": PIN timeout, logged out",
		    p11_token_label(t->tok));
	}
	pthread_mutex_unlock(&ks->mu);
}

void
keystore_logout_all(struct keystore *ks)
{
	size_t i;

	pthread_mutex_lock(&ks->mu);
	for (i = 0; i < ks->ntokens; i++) {
		if (ks->tokens[i].logged_in_ms != 0 &&
		    p11_token_login_required(ks->tokens[i].tok))
			(void)p11_token_logout(ks->tokens[i].tok);
		ks->tokens[i].logged_in_ms = 0;
	}
	pthread_mutex_unlock(&ks->mu);
}

int
keystore_needs_unlock(const struct keystore *ks)
{
	size_t i;
	int n = 0;

	for (i = 0; i < ks->ntokens; i++)
		n |= ks->tokens[i].needs_unlock;
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
	for (i = 0; i < ks->ntokens && r == 0; i++) {
		if (!ks->tokens[i].needs_unlock)
			continue;
		if ((r = ks_login_locked(&ks->tokens[i], p)) == 0)
			logit("token \"%.64s\": unlocked by client",
			    p11_token_label(ks->tokens[i].tok));
	}
	pthread_mutex_unlock(&ks->mu);
	p11_pin_free(p);
	return r;
}
