/*
 * token.h - a slot and its token (style.md section 10).
 *
 * A struct p11_token is owned by its provider and stays valid until the
 * provider is freed, even after the token is removed (it is then marked not
 * present and operations fail with TS_ERR_P11_TOKEN_REMOVED).  All
 * functions here are safe to call from several threads: each token has one
 * mutex guarding its session pool, login state and key list, never held
 * across a C_Sign (docs/internals/pkcs11.md, "Locking").
 */
#ifndef TS_PKCS11_TOKEN_H
#define TS_PKCS11_TOKEN_H

#include <stddef.h>
#include <stdint.h>

struct p11_provider;
struct p11_token;
struct p11_key;
struct p11_pin;
struct p11_uri;

/* PIN counter state, from CK_TOKEN_INFO flags (p11_token_pin_status). */
#define P11_PIN_COUNT_LOW 0x01 /* CKF_USER_PIN_COUNT_LOW: a wrong PIN seen */
#define P11_PIN_FINAL_TRY 0x02 /* CKF_USER_PIN_FINAL_TRY: one try left */
#define P11_PIN_LOCKED	  0x04 /* CKF_USER_PIN_LOCKED */

/* Login flags. */
#define P11_LOGIN_KEEP_PIN 0x01 /* keep a copy for context-specific logins */
/* Allow spending the last try (else TS_ERR_P11_PIN_FINAL_TRY). */
#define P11_LOGIN_FINAL_TRY 0x02

/* Returns the owning provider (borrowed). */
struct p11_provider *p11_token_provider(const struct p11_token *tok);
/* Returns the slot id. */
uint64_t p11_token_slot_id(const struct p11_token *tok);
/* Returns CK_SLOT_INFO slotDescription, blanks stripped (borrowed). */
const char *p11_token_slot_description(const struct p11_token *tok);
/* Returns CK_SLOT_INFO manufacturerID, blanks stripped (borrowed). */
const char *p11_token_slot_manufacturer(const struct p11_token *tok);
/* Returns 1 when a token is in the slot (as of the last refresh), else 0. */
int p11_token_present(const struct p11_token *tok);
/*
 * Returns 1 when the token is initialised (CKF_TOKEN_INITIALIZED); an
 * uninitialised token (e.g. SoftHSM's spare slot) has no keys and is
 * skipped by key listing and lookups.
 */
int p11_token_initialized(const struct p11_token *tok);
/* Returns CK_TOKEN_INFO label, blanks stripped (borrowed; "" if absent). */
const char *p11_token_label(const struct p11_token *tok);
/* Returns CK_TOKEN_INFO serialNumber, blanks stripped (borrowed). */
const char *p11_token_serial(const struct p11_token *tok);
/* Returns CK_TOKEN_INFO manufacturerID, blanks stripped (borrowed). */
const char *p11_token_manufacturer(const struct p11_token *tok);
/* Returns CK_TOKEN_INFO model, blanks stripped (borrowed). */
const char *p11_token_model(const struct p11_token *tok);
/* Returns 1 when the token needs a login to use private keys. */
int p11_token_login_required(const struct p11_token *tok);
/* Returns 1 when the token has a PIN pad (CKF_PROTECTED_AUTHENTICATION_PATH). */
int p11_token_protected_auth(const struct p11_token *tok);
/*
 * Returns the canonical RFC 7512 URI naming this token (token,
 * manufacturer, serial, model; borrowed).
 */
const char *p11_token_uri(const struct p11_token *tok);
/* Returns 1 when uri's token/slot/library attributes match, else 0. */
int p11_token_match_uri(const struct p11_token *tok, const struct p11_uri *uri);

/*
 * Re-reads CK_TOKEN_INFO and returns the P11_PIN_* flags now set (>= 0),
 * or a negative TS_ERR_P11_* code.
 */
int p11_token_pin_status(struct p11_token *tok);

/*
 * Logs in as the user (C_Login CKU_USER).  pin NULL means the protected
 * authentication path (refused with TS_ERR_P11_PIN_REQUIRED if the token
 * has none).  Never retries: a wrong PIN costs one try exactly.  Refuses
 * to try when the PIN is locked (TS_ERR_P11_PIN_LOCKED) or on its final
 * try without P11_LOGIN_FINAL_TRY (TS_ERR_P11_PIN_FINAL_TRY).  On success
 * the key list is reloaded so private keys become visible.  Returns 0 (also
 * when already logged in), TS_ERR_P11_PIN_INCORRECT, TS_ERR_P11_PIN_LOCKED,
 * TS_ERR_P11_TOKEN_REMOVED or another TS_ERR_P11_* code.
 */
int p11_token_login(struct p11_token *tok, const struct p11_pin *pin, int flags)
    __attribute__((warn_unused_result));
/* Logs out and forgets any kept PIN.  Returns 0 or a TS_ERR_P11_* code. */
int p11_token_logout(struct p11_token *tok);
/* Returns 1 when logged in (as far as this process knows), else 0. */
int p11_token_logged_in(const struct p11_token *tok);

/*
 * (Re)loads the key list: keys that disappeared are marked gone, new ones
 * are appended; existing struct p11_key pointers stay valid.  Called
 * automatically by the first p11_token_key_count().  Returns 0 or a
 * TS_ERR_P11_* code.
 */
int p11_token_load_keys(struct p11_token *tok)
    __attribute__((warn_unused_result));
/*
 * Forgets every session and the login (as after a removal), then re-reads
 * slot and token info: recovery after CKR_SESSION_HANDLE_INVALID,
 * CKR_USER_NOT_LOGGED_IN, a removal and a reinsertion.  The caller logs in
 * again (p11_token_login loads the keys) or calls p11_token_load_keys().
 * Returns 0 when the token is present, TS_ERR_P11_TOKEN_REMOVED when not,
 * or another TS_ERR_P11_* code.
 */
int p11_token_reopen(struct p11_token *tok) __attribute__((warn_unused_result));
/*
 * Re-reads slot and token info only (a presence check: C_GetSlotInfo and
 * C_GetTokenInfo); a token found gone is marked removed.  Returns 1 when
 * present, 0 when not, or a negative TS_ERR_P11_* code.
 */
int p11_token_check(struct p11_token *tok);
/*
 * Returns a counter bumped each time the token's sessions are forgotten
 * (removal, reopen): lets a caller see that someone else recovered it.
 */
unsigned p11_token_generation(struct p11_token *tok);
/* Returns the number of keys known (loading them first if never loaded). */
size_t p11_token_key_count(struct p11_token *tok);
/* Returns key i (borrowed), or NULL when out of range. */
struct p11_key *p11_token_key(struct p11_token *tok, size_t i);

#endif /* TS_PKCS11_TOKEN_H */
