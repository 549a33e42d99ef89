/*
 * internal.h - structures shared by the pkcs11/ translation units.  Not a
 * public header: nothing outside pkcs11/ (and its unit tests) includes it,
 * and it is the only header that includes pkcs11.h.
 */
#ifndef TS_PKCS11_INTERNAL_H
#define TS_PKCS11_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <p11-kit/pkcs11.h>

#include "pkcs11/key.h"

#define P11_MAX_SLOTS	  256 /* slots we look at per module */
#define P11_MAX_OBJECTS	  1024 /* key objects we look at per token */
#define P11_MAX_ATTR_LEN  4096 /* any variable attribute we read */
#define P11_POOL_MAX_IDLE 32 /* idle sessions kept per token */
#define P11_RSA_MIN_BITS  2048
#define P11_RSA_MAX_BITS  8192

struct p11_pin;
struct p11_uri;

struct p11_provider {
	char *path; /* realpath of the module */
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	int refs; /* guarded by the registry mutex (provider.c) */
	int own_init; /* we called C_Initialize and must C_Finalize */
	char manufacturer[33];
	char description[33];
	unsigned ck_major, ck_minor, lib_major, lib_minor;
	pthread_mutex_t
	    *lock; /* guards tokens, ntokens (malloc'd: const API) */
	struct p11_token **tokens;
	size_t ntokens;
	struct p11_provider *next; /* registry list */
};

struct p11_token {
	struct p11_provider *prov;
	CK_SLOT_ID slot;
	char slot_desc[65];
	char slot_manuf[33];
	char label[33];
	char serial[17];
	char manufacturer[33];
	char model[17];
	char *uri;
	CK_FLAGS token_flags;
	int present;
	/*
	 * op_lock serialises the slow state changes (login, logout, key
	 * loading, refresh of this token).  lock guards the fields below
	 * and is held only for list operations, never across a PKCS#11 call
	 * that may block on the device.  Order: op_lock before lock.
	 */
	pthread_mutex_t op_lock;
	pthread_mutex_t lock;
	int logged_in;
	/*
	 * Closing an application's last session logs it out (PKCS#11 v2.40
	 * C_CloseSession), so while logged in one session is kept open and
	 * never used for operations: the pool may then close any of its own.
	 */
	CK_SESSION_HANDLE anchor;
	unsigned generation; /* bumped on logout/removal: stale sessions */
	struct p11_pin *kept_pin;
	CK_SESSION_HANDLE *idle;
	unsigned *idle_gen;
	size_t nidle;
	struct p11_key **keys;
	size_t nkeys;
	int keys_loaded;
};

struct p11_key {
	struct p11_token *tok;
	enum p11_key_type type;
	unsigned bits;
	CK_KEY_TYPE ck_type;
	size_t sig_len; /* raw signature length from the token */
	char *label;
	uint8_t *id;
	size_t idlen;
	uint8_t *spki;
	size_t spkilen;
	char *pem;
	uint8_t fp[32];
	char fpstr[64];
	char *uri;
	/*
	 * Guarded by tok->lock; the next three are also read without it by
	 * the p11_key_* accessors (LIST_KEYS), so they are written with
	 * __atomic stores.
	 */
	int always_auth;
	int has_private;
	int present;
	CK_OBJECT_HANDLE priv; /* CK_INVALID_HANDLE when unknown */
};

/* token.c */
/*
 * Copies a blank-padded CK_* text field (len bytes) into dst as a
 * NUL-terminated string: trailing blanks dropped, control bytes made '?'.
 */
void p11_ck_strcpy(
    char *dst, size_t dstlen, const unsigned char *src, size_t len);
/* Returns a new token for slot (not yet refreshed), or NULL on OOM. */
struct p11_token *p11_token_new(struct p11_provider *prov, CK_SLOT_ID slot);
/* Closes pooled sessions, frees keys and the token. */
void p11_token_free(struct p11_token *tok);
/* Re-reads slot and token info; returns 0 or a TS_ERR_P11_* code. */
int p11_token_refresh(struct p11_token *tok);
/* Marks the token gone: pool flushed, login forgotten, keys not present. */
void p11_token_mark_removed(struct p11_token *tok);
/*
 * Borrows a session from the pool (opening one if none is idle).  Returns
 * 0 and the session and its generation, or a TS_ERR_P11_* code.  Give it back with
 * p11_session_put(); bad != 0 closes it instead (errors, half-done ops).
 */
int p11_session_get(
    struct p11_token *tok, CK_SESSION_HANDLE *sp, unsigned *genp);
void p11_session_put(
    struct p11_token *tok, CK_SESSION_HANDLE s, unsigned gen, int bad);
/* Returns 1 when rv means the session (or the device) is gone. */
int p11_rv_session_dead(CK_RV rv);
/*
 * Handles a CK_RV from any call on tok: marks the token removed when the
 * device is gone.  Returns p11_rv_to_err(rv).
 */
int p11_token_rv(struct p11_token *tok, CK_RV rv, const char *what);

/* key.c */
/*
 * Reads a variable-length attribute (size query, then data; both checked
 * against maxlen).  Returns 0 with *valp (malloc'd, NUL-terminated, caller
 * frees) and *lenp; TS_ERR_NOT_FOUND when the object lacks it;
 * TS_ERR_P11_BAD_ATTRIBUTE for an empty or oversized value.
 */
int p11_get_attr(struct p11_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, size_t maxlen, uint8_t **valp, size_t *lenp);
/* Reads a CK_ULONG / CK_BBOOL attribute of exactly its size. */
int p11_get_ulong(struct p11_token *tok, CK_SESSION_HANDLE s,
    CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type, CK_ULONG *vp);
int p11_get_bool(struct p11_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, int *vp);
/* Enumerates the token's keys into *keysp (caller frees each). */
int p11_keys_scan(
    struct p11_token *tok, struct p11_key ***keysp, size_t *nkeysp);
void p11_key_free(struct p11_key *key);
/*
 * Builds SPKI, PEM, fingerprint, type and bits from public values.
 * For exposure to the unit tests: key material validation lives here.
 */
int p11_key_set_rsa(struct p11_key *key, const uint8_t *n, size_t nlen,
    const uint8_t *e, size_t elen);
int p11_key_set_ec(struct p11_key *key, CK_KEY_TYPE ck_type,
    const uint8_t *params, size_t plen, const uint8_t *point, size_t ptlen);
/* Finds the private key object with this key's id and label. */
int p11_key_find_private(
    struct p11_key *key, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *hp);

#endif /* TS_PKCS11_INTERNAL_H */
