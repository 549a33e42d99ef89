/*
 * provider.h - loading a PKCS#11 module (style.md section 6).
 *
 * A provider is one PKCS#11 module, loaded with dlopen() and initialised
 * once per process: opening the same module (same realpath) again returns
 * the same instance with a reference taken, because SoftHSM and many other
 * modules break when initialised twice in one process.  Modules are loaded
 * only when their realpath matches the allow-list, a comma-separated list
 * of fnmatch(3) patterns where `*` also matches `/` (as ssh-agent -P).
 *
 * The whole layer is written on the raw PKCS#11 API (p11-kit's pkcs11.h),
 * not libp11: see docs/internals/pkcs11.md for why.
 *
 * Tokens and keys reached through a provider are owned by it and stay
 * valid until the last p11_provider_free().
 * WARNING: do not fork() after opening a provider (PKCS#11 state does not
 * survive a fork); exec-only children are fine.
 */
#ifndef TS_PKCS11_PROVIDER_H
#define TS_PKCS11_PROVIDER_H

#include <stddef.h>

/* Default allow-list: modules installed by the system's package manager. */
#define P11_PROVIDER_ALLOW_DEFAULT "/usr/lib/*,/usr/lib64/*,/usr/local/lib/*"

struct p11_provider;
struct p11_token;
struct p11_key;
struct p11_uri;

/*
 * Checks path against allowlist (NULL: P11_PROVIDER_ALLOW_DEFAULT) after
 * realpath().  Returns 0 and, if realp is not NULL, the resolved path in
 * *realp (malloc'd, caller frees); TS_ERR_P11_MODULE (path does not
 * exist), TS_ERR_P11_MODULE_DENIED, TS_ERR_INVALID_ARG or TS_ERR_ALLOC.
 */
int p11_provider_check_allowed(const char *path, const char *allowlist,
    char **realp) __attribute__((warn_unused_result));

/*
 * Loads (or takes another reference to) the module at path, which must
 * match allowlist (NULL: the default), calls C_Initialize with OS locking
 * and enumerates its slots.  Returns 0 and *provp (release with
 * p11_provider_free), or TS_ERR_P11_MODULE_DENIED, TS_ERR_P11_MODULE (not
 * found, not a PKCS#11 module, C_Initialize failed; the reason is logged),
 * TS_ERR_ALLOC.
 */
int p11_provider_open(const char *path, const char *allowlist,
    struct p11_provider **provp) __attribute__((warn_unused_result));

/*
 * Drops a reference; the last one closes all sessions, calls C_Finalize
 * and unloads the module.  NULL is fine.
 */
void p11_provider_free(struct p11_provider *prov);

/* Returns the module's resolved path (borrowed). */
const char *p11_provider_path(const struct p11_provider *prov);
/* Returns CK_INFO manufacturerID, blanks stripped (borrowed). */
const char *p11_provider_manufacturer(const struct p11_provider *prov);
/* Returns CK_INFO libraryDescription, blanks stripped (borrowed). */
const char *p11_provider_description(const struct p11_provider *prov);
/* Returns the Cryptoki version the module implements (e.g. 2.40). */
void p11_provider_cryptoki_version(
    const struct p11_provider *prov, unsigned *majorp, unsigned *minorp);

/*
 * Re-reads the slot list: new tokens are appended, removed ones are marked
 * not present (their objects stay valid).  Returns 0 or a TS_ERR_P11_*
 * code.  Safe to call while other threads sign.
 */
int p11_provider_refresh(struct p11_provider *prov)
    __attribute__((warn_unused_result));

/* Returns the number of slots known (present tokens or not). */
size_t p11_provider_token_count(const struct p11_provider *prov);
/* Returns slot i's token (borrowed), or NULL when i is out of range. */
struct p11_token *p11_provider_token(const struct p11_provider *prov, size_t i);

/*
 * Finds the one present token matching uri's token, manufacturer, serial,
 * model, slot-*, library-* attributes.  Returns 0 and *tokp (borrowed),
 * TS_ERR_P11_TOKEN_NOT_FOUND or TS_ERR_AMBIGUOUS (several tokens match).
 */
int p11_provider_find_token(struct p11_provider *prov,
    const struct p11_uri *uri, struct p11_token **tokp)
    __attribute__((warn_unused_result));

/*
 * Finds the one key matching uri over all matching tokens (loading their
 * key lists if needed).  Returns 0 and *keyp (borrowed),
 * TS_ERR_P11_KEY_NOT_FOUND, TS_ERR_P11_KEY_AMBIGUOUS (two or more keys
 * match: never a silent pick), TS_ERR_P11_TOKEN_REMOVED (nothing found and
 * a token matching uri that was seen before is now absent, or uri names a
 * token by label or serial that no present token is while a slot is
 * empty) or a TS_ERR_P11_* error.
 */
int p11_provider_find_key(struct p11_provider *prov, const struct p11_uri *uri,
    struct p11_key **keyp) __attribute__((warn_unused_result));

/*
 * Returns 1 when uri's library-manufacturer/-description/-version
 * attributes match this module (absent ones match), else 0.
 */
int p11_provider_match_uri(
    const struct p11_provider *prov, const struct p11_uri *uri);

/*
 * Asks the module for a slot event without blocking (C_WaitForSlotEvent
 * with CKF_DONT_BLOCK).  Returns 1 and *slotp (a token was inserted or
 * removed there), 0 (no event), TS_ERR_UNSUPPORTED (the module has no slot
 * events: poll C_GetSlotInfo instead) or another TS_ERR_P11_* code.
 */
int p11_provider_slot_event(struct p11_provider *prov, uint64_t *slotp);

#endif /* TS_PKCS11_PROVIDER_H */
