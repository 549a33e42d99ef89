/*
 * token.c - slots, tokens, the session pool and login state.
 *
 * Locking (docs/internals/pkcs11.md): tok->op_lock serialises slow state
 * changes (login, logout, key (re)loading); tok->lock guards the pool, the
 * key array and the login flags and is never held across a PKCS#11 call.
 * Signing takes only tok->lock, twice (borrow and return a session), so
 * signatures from many threads run in parallel in the module.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "pkcs11/internal.h"
#include "pkcs11/pin.h"
#include "pkcs11/provider.h"
#include "pkcs11/sign.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

struct p11_token *
p11_token_new(struct p11_provider *prov, CK_SLOT_ID slot)
{
	struct p11_token *tok;

	if ((tok = calloc(1, sizeof(*tok))) == NULL)
		return NULL;
	tok->idle = calloc(P11_POOL_MAX_IDLE, sizeof(*tok->idle));
	tok->idle_gen = calloc(P11_POOL_MAX_IDLE, sizeof(*tok->idle_gen));
	if (tok->idle == NULL || tok->idle_gen == NULL) {
		free(tok->idle);
		free(tok->idle_gen);
		free(tok);
		return NULL;
	}
	tok->prov = prov;
	tok->slot = slot;
	tok->anchor = CK_INVALID_HANDLE;
	pthread_mutex_init(&tok->op_lock, NULL);
	pthread_mutex_init(&tok->lock, NULL);
	return tok;
}

void
p11_token_free(struct p11_token *tok)
{
	size_t i;

	if (tok == NULL)
		return;
	for (i = 0; i < tok->nidle; i++)
		tok->prov->f->C_CloseSession(tok->idle[i]);
	if (tok->anchor != CK_INVALID_HANDLE)
		tok->prov->f->C_CloseSession(tok->anchor);
	for (i = 0; i < tok->nkeys; i++)
		p11_key_free(tok->keys[i]);
	free(tok->keys);
	free(tok->idle);
	free(tok->idle_gen);
	p11_pin_free(tok->kept_pin);
	free(tok->uri);
	pthread_mutex_destroy(&tok->lock);
	pthread_mutex_destroy(&tok->op_lock);
	free(tok);
}

void
p11_ck_strcpy(char *dst, size_t dstlen, const unsigned char *src, size_t len)
{
	size_t i;

	if (len > dstlen - 1)
		len = dstlen - 1;
	while (len > 0 && (src[len - 1] == ' ' || src[len - 1] == '\0'))
		len--;
	/* control bytes from a device are not printable text */
	for (i = 0; i < len; i++)
		dst[i] = (src[i] < 0x20 || src[i] == 0x7f) ? '?' : (char)src[i];
	dst[len] = '\0';
}

void
p11_token_mark_removed(struct p11_token *tok)
{
	CK_SESSION_HANDLE idle[P11_POOL_MAX_IDLE], anchor;
	size_t i, n;

	pthread_mutex_lock(&tok->lock);
	__atomic_store_n(&tok->present, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&tok->logged_in, 0, __ATOMIC_RELAXED);
	anchor = tok->anchor;
	tok->anchor = CK_INVALID_HANDLE;
	tok->generation++;
	n = tok->nidle;
	memcpy(idle, tok->idle, n * sizeof(*idle));
	tok->nidle = 0;
	for (i = 0; i < tok->nkeys; i++) {
		__atomic_store_n(&tok->keys[i]->present, 0, __ATOMIC_RELAXED);
		tok->keys[i]->priv = CK_INVALID_HANDLE;
	}
	tok->keys_loaded = 0;
	p11_pin_free(tok->kept_pin);
	tok->kept_pin = NULL;
	pthread_mutex_unlock(&tok->lock);
	for (i = 0; i < n; i++)
		tok->prov->f->C_CloseSession(idle[i]);
	if (anchor != CK_INVALID_HANDLE)
		tok->prov->f->C_CloseSession(anchor);
}

int
p11_rv_session_dead(CK_RV rv)
{
	switch (rv) {
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_ERROR:
	case CKR_TOKEN_NOT_RECOGNIZED:
		return 1;
	default:
		return 0;
	}
}

int
p11_token_rv(struct p11_token *tok, CK_RV rv, const char *what)
{
	if (rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT)
		p11_token_mark_removed(tok);
	if (rv != CKR_OK)
		debug_f(
		    "token %.32s: %s: %s", tok->label, what, p11_rv_name(rv));
	return p11_rv_to_err(rv);
}

static int
token_make_uri(struct p11_token *tok, char **outp)
{
	struct p11_uri *uri;
	int r;

	*outp = NULL;
	if ((uri = p11_uri_new()) == NULL)
		return TS_ERR_ALLOC;
	if ((r = p11_uri_set(uri, P11_URI_TOKEN, tok->label)) == 0 &&
	    (r = p11_uri_set(uri, P11_URI_MANUFACTURER, tok->manufacturer)) ==
		0 &&
	    (r = p11_uri_set(uri, P11_URI_SERIAL, tok->serial)) == 0 &&
	    (r = p11_uri_set(uri, P11_URI_MODEL, tok->model)) == 0)
		r = p11_uri_format(uri, 0, outp);
	p11_uri_free(uri);
	return r;
}

int
p11_token_refresh(struct p11_token *tok)
{
	CK_FUNCTION_LIST_PTR f = tok->prov->f;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	char label[33], serial[17], manuf[33], model[17], *uri = NULL;
	char sdesc[sizeof(tok->slot_desc)], smanuf[sizeof(tok->slot_manuf)];
	CK_RV rv;
	int r;

	if ((rv = f->C_GetSlotInfo(tok->slot, &si)) != CKR_OK) {
		p11_token_mark_removed(tok);
		return p11_token_rv(tok, rv, "C_GetSlotInfo");
	}
	/* the borrowed strings are read without the lock: write on change */
	p11_ck_strcpy(sdesc, sizeof(sdesc), si.slotDescription,
	    sizeof(si.slotDescription));
	p11_ck_strcpy(smanuf, sizeof(smanuf), si.manufacturerID,
	    sizeof(si.manufacturerID));
	pthread_mutex_lock(&tok->lock);
	if (strcmp(sdesc, tok->slot_desc) != 0)
		memcpy(tok->slot_desc, sdesc, sizeof(sdesc));
	if (strcmp(smanuf, tok->slot_manuf) != 0)
		memcpy(tok->slot_manuf, smanuf, sizeof(smanuf));
	pthread_mutex_unlock(&tok->lock);
	if ((si.flags & CKF_TOKEN_PRESENT) == 0) {
		p11_token_mark_removed(tok);
		return 0;
	}
	if ((rv = f->C_GetTokenInfo(tok->slot, &ti)) != CKR_OK) {
		p11_token_mark_removed(tok);
		return p11_token_rv(tok, rv, "C_GetTokenInfo");
	}
	p11_ck_strcpy(label, sizeof(label), ti.label, sizeof(ti.label));
	p11_ck_strcpy(
	    serial, sizeof(serial), ti.serialNumber, sizeof(ti.serialNumber));
	p11_ck_strcpy(
	    manuf, sizeof(manuf), ti.manufacturerID, sizeof(ti.manufacturerID));
	p11_ck_strcpy(model, sizeof(model), ti.model, sizeof(ti.model));
	/* another token in the same slot: forget everything about the old */
	if (p11_token_present(tok) &&
	    (strcmp(label, tok->label) != 0 ||
		strcmp(serial, tok->serial) != 0))
		p11_token_mark_removed(tok);
	pthread_mutex_lock(&tok->lock);
	if (strcmp(tok->label, label) != 0)
		memcpy(tok->label, label, sizeof(label));
	if (strcmp(tok->serial, serial) != 0)
		memcpy(tok->serial, serial, sizeof(serial));
	if (strcmp(tok->manufacturer, manuf) != 0)
		memcpy(tok->manufacturer, manuf, sizeof(manuf));
	if (strcmp(tok->model, model) != 0)
		memcpy(tok->model, model, sizeof(model));
	__atomic_store_n(&tok->token_flags, ti.flags, __ATOMIC_RELAXED);
	__atomic_store_n(&tok->present, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&tok->lock);
	if ((r = token_make_uri(tok, &uri)) != 0)
		return r;
	pthread_mutex_lock(&tok->lock);
	/* XXX the old string leaks to readers holding it; swap is rare */
	if (tok->uri == NULL || strcmp(tok->uri, uri) != 0) {
		free(tok->uri);
		tok->uri = uri;
		uri = NULL;
	}
	pthread_mutex_unlock(&tok->lock);
	free(uri);
	return 0;
}

int
p11_session_get(struct p11_token *tok, CK_SESSION_HANDLE *sp, unsigned *genp)
{
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	unsigned gen;
	CK_RV rv;

	*sp = CK_INVALID_HANDLE;
	*genp = 0;
	pthread_mutex_lock(&tok->lock);
	if (!tok->present) {
		pthread_mutex_unlock(&tok->lock);
		return TS_ERR_P11_TOKEN_REMOVED;
	}
	if (tok->nidle > 0) {
		tok->nidle--;
		*sp = tok->idle[tok->nidle];
		*genp = tok->idle_gen[tok->nidle];
		pthread_mutex_unlock(&tok->lock);
		return 0;
	}
	gen = tok->generation;
	pthread_mutex_unlock(&tok->lock);
	rv = tok->prov->f->C_OpenSession(
	    tok->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv != CKR_OK)
		return p11_token_rv(tok, rv, "C_OpenSession");
	*sp = s;
	*genp = gen;
	return 0;
}

void
p11_session_put(
    struct p11_token *tok, CK_SESSION_HANDLE s, unsigned gen, int bad)
{
	pthread_mutex_lock(&tok->lock);
	if (!bad && gen == tok->generation && tok->present &&
	    tok->nidle < P11_POOL_MAX_IDLE) {
		tok->idle[tok->nidle] = s;
		tok->idle_gen[tok->nidle] = gen;
		tok->nidle++;
		pthread_mutex_unlock(&tok->lock);
		return;
	}
	pthread_mutex_unlock(&tok->lock);
	tok->prov->f->C_CloseSession(s);
}

struct p11_provider *
p11_token_provider(const struct p11_token *tok)
{
	return tok->prov;
}

uint64_t
p11_token_slot_id(const struct p11_token *tok)
{
	return (uint64_t)tok->slot;
}

const char *
p11_token_slot_description(const struct p11_token *tok)
{
	return tok->slot_desc;
}

const char *
p11_token_slot_manufacturer(const struct p11_token *tok)
{
	return tok->slot_manuf;
}

int
p11_token_present(const struct p11_token *tok)
{
	return __atomic_load_n(&tok->present, __ATOMIC_RELAXED);
}

int
p11_token_initialized(const struct p11_token *tok)
{
	return (__atomic_load_n(&tok->token_flags, __ATOMIC_RELAXED) &
		   CKF_TOKEN_INITIALIZED) != 0;
}

const char *
p11_token_label(const struct p11_token *tok)
{
	return tok->label;
}

const char *
p11_token_serial(const struct p11_token *tok)
{
	return tok->serial;
}

const char *
p11_token_manufacturer(const struct p11_token *tok)
{
	return tok->manufacturer;
}

const char *
p11_token_model(const struct p11_token *tok)
{
	return tok->model;
}

int
p11_token_login_required(const struct p11_token *tok)
{
	return (__atomic_load_n(&tok->token_flags, __ATOMIC_RELAXED) &
		   CKF_LOGIN_REQUIRED) != 0;
}

int
p11_token_protected_auth(const struct p11_token *tok)
{
	return (__atomic_load_n(&tok->token_flags, __ATOMIC_RELAXED) &
		   CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
}

const char *
p11_token_uri(const struct p11_token *tok)
{
	return tok->uri != NULL ? tok->uri : "pkcs11:";
}

int
p11_token_match_uri(const struct p11_token *tok, const struct p11_uri *uri)
{
	uint64_t slot;

	if (!p11_provider_match_uri(tok->prov, uri))
		return 0;
	if (p11_uri_get_slot_id(uri, &slot) && slot != (uint64_t)tok->slot)
		return 0;
	return p11_uri_match_text(
		   uri, P11_URI_TOKEN, tok->label, strlen(tok->label)) &&
	    p11_uri_match_text(uri, P11_URI_MANUFACTURER, tok->manufacturer,
		strlen(tok->manufacturer)) &&
	    p11_uri_match_text(
		uri, P11_URI_SERIAL, tok->serial, strlen(tok->serial)) &&
	    p11_uri_match_text(
		uri, P11_URI_MODEL, tok->model, strlen(tok->model)) &&
	    p11_uri_match_text(uri, P11_URI_SLOT_DESCRIPTION, tok->slot_desc,
		strlen(tok->slot_desc)) &&
	    p11_uri_match_text(uri, P11_URI_SLOT_MANUFACTURER, tok->slot_manuf,
		strlen(tok->slot_manuf));
}

static int
pin_flags(CK_FLAGS fl)
{
	int r = 0;

	if (fl & CKF_USER_PIN_COUNT_LOW)
		r |= P11_PIN_COUNT_LOW;
	if (fl & CKF_USER_PIN_FINAL_TRY)
		r |= P11_PIN_FINAL_TRY;
	if (fl & CKF_USER_PIN_LOCKED)
		r |= P11_PIN_LOCKED;
	return r;
}

/* Re-reads CK_TOKEN_INFO flags; returns the P11_PIN_* bits or an error. */
static int
token_flags_update(struct p11_token *tok)
{
	CK_TOKEN_INFO ti;
	CK_RV rv;

	if ((rv = tok->prov->f->C_GetTokenInfo(tok->slot, &ti)) != CKR_OK)
		return p11_token_rv(tok, rv, "C_GetTokenInfo");
	pthread_mutex_lock(&tok->lock);
	__atomic_store_n(&tok->token_flags, ti.flags, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&tok->lock);
	return pin_flags(ti.flags);
}

int
p11_token_pin_status(struct p11_token *tok)
{
	return token_flags_update(tok);
}

static int
token_load_keys_locked(struct p11_token *tok)
{
	struct p11_key **nk = NULL, **grown, *k, *o;
	size_t n = 0, i, j;
	int r, found;

	if ((r = p11_keys_scan(tok, &nk, &n)) != 0)
		return r;
	pthread_mutex_lock(&tok->lock);
	for (j = 0; j < tok->nkeys; j++)
		__atomic_store_n(&tok->keys[j]->present, 0, __ATOMIC_RELAXED);
	for (i = 0; i < n; i++) {
		k = nk[i];
		found = 0;
		for (j = 0; j < tok->nkeys && !found; j++) {
			o = tok->keys[j];
			if (o->present || o->spkilen != k->spkilen ||
			    o->idlen != k->idlen ||
			    memcmp(o->spki, k->spki, k->spkilen) != 0 ||
			    (k->idlen > 0 &&
				memcmp(o->id, k->id, k->idlen) != 0) ||
			    strcmp(o->label, k->label) != 0)
				continue;
			/* same key as before: keep the caller's pointer */
			__atomic_store_n(&o->present, 1, __ATOMIC_RELAXED);
			__atomic_store_n(
			    &o->has_private, k->has_private, __ATOMIC_RELAXED);
			__atomic_store_n(
			    &o->always_auth, k->always_auth, __ATOMIC_RELAXED);
			o->priv = k->priv;
			found = 1;
		}
		if (found) {
			p11_key_free(k);
			nk[i] = NULL;
			continue;
		}
		grown = reallocarray(tok->keys, tok->nkeys + 1, sizeof(*grown));
		if (grown == NULL) {
			r = TS_ERR_ALLOC;
			break;
		}
		tok->keys = grown;
		tok->keys[tok->nkeys++] = k;
		nk[i] = NULL;
	}
	if (r == 0)
		tok->keys_loaded = 1;
	pthread_mutex_unlock(&tok->lock);
	for (i = 0; i < n; i++)
		p11_key_free(nk[i]);
	free(nk);
	return r;
}

int
p11_token_load_keys(struct p11_token *tok)
{
	int r;

	pthread_mutex_lock(&tok->op_lock);
	r = token_load_keys_locked(tok);
	pthread_mutex_unlock(&tok->op_lock);
	return r;
}

size_t
p11_token_key_count(struct p11_token *tok)
{
	size_t n;
	int r;

	pthread_mutex_lock(&tok->op_lock);
	if (!tok->keys_loaded && tok->present && p11_token_initialized(tok) &&
	    (r = token_load_keys_locked(tok)) != 0)
		error_fr(r, "token %.32s: cannot list keys", tok->label);
	pthread_mutex_unlock(&tok->op_lock);
	pthread_mutex_lock(&tok->lock);
	n = tok->nkeys;
	pthread_mutex_unlock(&tok->lock);
	return n;
}

struct p11_key *
p11_token_key(struct p11_token *tok, size_t i)
{
	struct p11_key *k = NULL;

	pthread_mutex_lock(&tok->lock);
	if (i < tok->nkeys)
		k = tok->keys[i];
	pthread_mutex_unlock(&tok->lock);
	return k;
}

int
p11_token_logged_in(const struct p11_token *tok)
{
	return __atomic_load_n(&tok->logged_in, __ATOMIC_RELAXED);
}

int
p11_token_login(struct p11_token *tok, const struct p11_pin *pin, int flags)
{
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_SESSION_INFO sinfo;
	struct p11_pin *keep = NULL;
	const char *data = NULL;
	size_t len = 0;
	unsigned gen = 0;
	int st, bad = 0, r = TS_ERR_INTERNAL;
	CK_RV rv;

	pthread_mutex_lock(&tok->op_lock);
	if ((r = p11_session_get(tok, &s, &gen)) != 0)
		goto out;
	/* already logged in (by us or another user of this module)? */
	if ((rv = tok->prov->f->C_GetSessionInfo(s, &sinfo)) != CKR_OK) {
		bad = 1;
		r = p11_token_rv(tok, rv, "C_GetSessionInfo");
		goto out;
	}
	if (sinfo.state == CKS_RO_USER_FUNCTIONS ||
	    sinfo.state == CKS_RW_USER_FUNCTIONS) {
		r = 0;
		goto done;
	}
	if ((st = token_flags_update(tok)) < 0) {
		r = st;
		goto out;
	}
	if ((__atomic_load_n(&tok->token_flags, __ATOMIC_RELAXED) &
		CKF_LOGIN_REQUIRED) == 0 &&
	    pin == NULL) {
		r = 0;
		goto done;
	}
	if (st & P11_PIN_LOCKED) {
		error_f("token %.32s: the user PIN is locked; unblock it with "
			"the SO PIN",
		    tok->label);
		r = TS_ERR_P11_PIN_LOCKED;
		goto out;
	}
	if ((st & P11_PIN_FINAL_TRY) && !(flags & P11_LOGIN_FINAL_TRY)) {
		error_f("token %.32s: one PIN try left; refusing to spend it "
			"automatically",
		    tok->label);
		r = TS_ERR_P11_PIN_FINAL_TRY;
		goto out;
	}
	if (pin == NULL && !p11_token_protected_auth(tok)) {
		r = TS_ERR_P11_PIN_REQUIRED;
		goto out;
	}
	if (pin != NULL)
		data = p11_pin_data(pin, &len);
	/* exactly one attempt: a wrong PIN is never retried */
	rv = tok->prov->f->C_Login(
	    s, CKU_USER, (CK_UTF8CHAR_PTR)(uintptr_t)data, (CK_ULONG)len);
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID ||
	    rv == CKR_PIN_LEN_RANGE) {
		st = token_flags_update(tok);
		if (st >= 0 && (st & P11_PIN_LOCKED)) {
			error_f("token %.32s: PIN incorrect; the PIN is now "
				"locked",
			    tok->label);
			r = TS_ERR_P11_PIN_LOCKED;
		} else {
			error_f("token %.32s: PIN incorrect%s", tok->label,
			    st >= 0 && (st & P11_PIN_FINAL_TRY)
				? " (one try left before the PIN locks)"
				: st >= 0 && (st & P11_PIN_COUNT_LOW)
				? " (the token reports few tries left)"
				: "");
			r = TS_ERR_P11_PIN_INCORRECT;
		}
		goto out;
	}
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		r = p11_token_rv(tok, rv, "C_Login");
		bad = p11_rv_session_dead(rv);
		goto out;
	}
done:
	if ((flags & P11_LOGIN_KEEP_PIN) && pin != NULL &&
	    (r = p11_pin_dup(pin, &keep)) != 0)
		goto out;
	pthread_mutex_lock(&tok->lock);
	__atomic_store_n(&tok->logged_in, 1, __ATOMIC_RELAXED);
	if (keep != NULL) {
		p11_pin_free(tok->kept_pin);
		tok->kept_pin = keep;
		keep = NULL;
	}
	/* the login session becomes the anchor that keeps us logged in */
	if (tok->anchor == CK_INVALID_HANDLE && gen == tok->generation) {
		tok->anchor = s;
		s = CK_INVALID_HANDLE;
	}
	pthread_mutex_unlock(&tok->lock);
	if (s != CK_INVALID_HANDLE)
		p11_session_put(tok, s, gen, 0);
	s = CK_INVALID_HANDLE;
	/* private keys are visible now */
	if ((r = token_load_keys_locked(tok)) != 0)
		goto out;
	r = 0;
out:
	if (s != CK_INVALID_HANDLE)
		p11_session_put(tok, s, gen, bad);
	p11_pin_free(keep);
	pthread_mutex_unlock(&tok->op_lock);
	return r;
}

int
p11_token_logout(struct p11_token *tok)
{
	CK_SESSION_HANDLE s, anchor;
	unsigned gen;
	size_t i;
	CK_RV rv = CKR_OK;
	int r;

	pthread_mutex_lock(&tok->op_lock);
	if ((r = p11_session_get(tok, &s, &gen)) == 0) {
		rv = tok->prov->f->C_Logout(s);
		p11_session_put(tok, s, gen, p11_rv_session_dead(rv));
		if (rv == CKR_USER_NOT_LOGGED_IN)
			rv = CKR_OK;
		r = p11_token_rv(tok, rv, "C_Logout");
	}
	pthread_mutex_lock(&tok->lock);
	__atomic_store_n(&tok->logged_in, 0, __ATOMIC_RELAXED);
	anchor = tok->anchor;
	tok->anchor = CK_INVALID_HANDLE;
	p11_pin_free(tok->kept_pin);
	tok->kept_pin = NULL;
	for (i = 0; i < tok->nkeys; i++)
		tok->keys[i]->priv = CK_INVALID_HANDLE;
	pthread_mutex_unlock(&tok->lock);
	if (anchor != CK_INVALID_HANDLE)
		tok->prov->f->C_CloseSession(anchor);
	pthread_mutex_unlock(&tok->op_lock);
	return r;
}

int
p11_token_reopen(struct p11_token *tok)
{
	int r;

	pthread_mutex_lock(&tok->op_lock);
	p11_token_mark_removed(tok);
	r = p11_token_refresh(tok);
	if (r == 0 && !p11_token_present(tok))
		r = TS_ERR_P11_TOKEN_REMOVED;
	pthread_mutex_unlock(&tok->op_lock);
	return r;
}

int
p11_token_check(struct p11_token *tok)
{
	int r;

	pthread_mutex_lock(&tok->op_lock);
	r = p11_token_refresh(tok);
	pthread_mutex_unlock(&tok->op_lock);
	if (r == TS_ERR_P11_TOKEN_REMOVED)
		return 0;
	return r < 0 ? r : p11_token_present(tok);
}

unsigned
p11_token_generation(struct p11_token *tok)
{
	unsigned g;

	pthread_mutex_lock(&tok->lock);
	g = tok->generation;
	pthread_mutex_unlock(&tok->lock);
	return g;
}
