/*
 * keystore.h - the agent's key table: the tokens it opened, their login
 * state and PIN sources, and the signing keys on them with a stable id.
 *
 * Key id: the first 8 bytes of SHA-256(SPKI DER) in lowercase hex
 * (TS_PROTO_KEY_ID_LEN chars), so it survives restarts and slot changes.
 * Lookup accepts the id, the label or a PKCS#11 URI; a reference matching
 * two keys is an error, never a silent pick.
 *
 * Thread-safe: the key table only grows after keystore_load() (tokens
 * that arrive late, keystore_adopt()), and a key once shared stays; login
 * state changes under one mutex; signing goes through pkcs11/'s session
 * pool, so many workers sign at once.
 */
#ifndef TS_AGENT_KEYSTORE_H
#define TS_AGENT_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

struct keystore;
struct ks_key;
struct p11_provider;
struct p11_key;

enum ks_pin_kind {
	KS_PIN_NONE = 0, /* protected authentication path, or no login */
	KS_PIN_FILE, /* re-read on each login */
	KS_PIN_ENV /* read once at start; cannot be re-read later */
};

/* Returns a new empty keystore (no tokens), or NULL on OOM. */
struct keystore *keystore_new(void);
/* Logs every token out and frees; providers are released.  NULL is fine. */
void keystore_free(struct keystore *ks);

/* keystore_add_tokens() flag: wait for a token that is not there yet */
#define KS_ADD_WAIT 0x01

/*
 * Adds the present tokens of prov (the keystore takes the reference) that
 * match token_uri (NULL: all), each logged in with the PIN from the
 * source (kind, value: a file path or variable name).  Returns 0,
 * TS_ERR_P11_TOKEN_NOT_FOUND when nothing matches, a login error
 * (TS_ERR_P11_PIN_*), or TS_ERR_ALLOC.  With KS_ADD_WAIT, nothing
 * matching is not an error: the spec is waited for (an env PIN is read
 * now, as the variable is scrubbed after start), and the tokens matching
 * it are added when they arrive (keystore_late_fd()).
 */
int keystore_add_tokens(struct keystore *ks, struct p11_provider *prov,
    const char *token_uri, enum ks_pin_kind kind, const char *value,
    unsigned flags) __attribute__((warn_unused_result));
/* Builds the key table from every token added.  0 or TS_ERR_*. */
int keystore_load(struct keystore *ks) __attribute__((warn_unused_result));

/*
 * Keeps only the keys named by refs[0..n) (each must match exactly one
 * key; a key named twice is kept once).  Call after keystore_load(),
 * before the keys are shared.  Returns 0, or the lookup error of the first
 * bad reference with *badp set to its index.
 */
int keystore_retain(struct keystore *ks, char *const *refs, size_t n,
    size_t *badp) __attribute__((warn_unused_result));

/*
 * Takes the one key ref names out of the table clients see (lookup, count,
 * get), for the agent's own use through *kp: the TLS server key, which a
 * client able to sign with could impersonate the agent with.  Call after
 * keystore_retain(), before the keys are shared.  Returns 0 or the lookup
 * error.
 */
int keystore_reserve(struct keystore *ks, const char *ref, struct ks_key **kp)
    __attribute__((warn_unused_result));

/*
 * Tokens that arrive late.  Returns 1 when some token spec still waits.
 * keystore_late_fd() is readable (an eventfd, -1 when nothing waits)
 * when such tokens were logged in and their keys loaded, by the hunter
 * thread keystore_watch_start() runs; the event loop then calls
 * keystore_adopt(), which passes each new key to hook before any client
 * can see it: the hook applies per-key config and returns 1 to serve
 * the key, 0 to leave it out.  keystore_wait_count()/_uri() list, for
 * STATUS, the specs still waiting and those whose token arrived and was
 * not taken (its login failed: never tried again), *failed set for those.
 */
typedef int (*ks_key_hook)(void *arg, struct ks_key *k);
int keystore_waiting(const struct keystore *ks);
int keystore_late_fd(const struct keystore *ks);
void keystore_adopt(struct keystore *ks, ks_key_hook hook, void *arg);
size_t keystore_wait_count(const struct keystore *ks);
const char *keystore_wait_uri(const struct keystore *ks, size_t i, int *failed);

/* Returns the number of keys / key i (borrowed, NULL when out of range). */
size_t keystore_count(const struct keystore *ks);
struct ks_key *keystore_get(const struct keystore *ks, size_t i);
/* Returns the number of tokens / facts about token i. */
size_t keystore_token_count(const struct keystore *ks);
const char *keystore_token_label(const struct keystore *ks, size_t i);
const char *keystore_token_uri(const struct keystore *ks, size_t i);
int keystore_token_present(const struct keystore *ks, size_t i);
int keystore_token_logged_in(const struct keystore *ks, size_t i);

/*
 * Finds the one key named by ref[0..len): key id, label or PKCS#11 URI.
 * Returns 0 and *kp (borrowed), TS_ERR_P11_KEY_NOT_FOUND,
 * TS_ERR_P11_KEY_AMBIGUOUS or TS_ERR_P11_URI.
 */
int keystore_lookup(const struct keystore *ks, const char *ref, size_t len,
    struct ks_key **kp) __attribute__((warn_unused_result));

/*
 * Whether k is the key ref names (key id, label or PKCS#11 URI), without
 * the table-wide ambiguity check of keystore_lookup(): for keys that
 * arrive late.
 */
int ks_key_matches(const struct ks_key *k, const char *ref);

/* Key facts (borrowed, valid as long as the keystore). */
const char *ks_key_id(const struct ks_key *k);
const char *ks_key_label(const struct ks_key *k);
const char *ks_key_fingerprint(const struct ks_key *k); /* "SHA256:..." */
const char *ks_key_token_label(const struct ks_key *k);
struct p11_key *ks_key_p11(const struct ks_key *k);
/* Returns 1 when every use needs confirmation (config "confirm"). */
int ks_key_confirm(const struct ks_key *k);
void ks_key_set_confirm(struct ks_key *k, int on);
/* Per-key ssh switch (enum sshproto_key_policy; 0 = default). */
int ks_key_ssh(const struct ks_key *k);
void ks_key_set_ssh(struct ks_key *k, int mode);
/*
 * Per-key touch timeout in ms (config touch_timeout; 0: none): the client
 * of a signature still waiting after it is answered "touch timed out"
 * (TS_ERR_P11_TOUCH_TIMEOUT, dispatch.c through worker_deadline_arm).
 */
void ks_key_set_touch_timeout(struct ks_key *k, unsigned ms);
unsigned ks_key_touch_timeout(const struct ks_key *k);
/* Per-key counters (relaxed atomics). */
uint64_t ks_key_signatures(const struct ks_key *k);
uint64_t ks_key_errors(const struct ks_key *k);

/*
 * Sign through the token, logging in again first when the PIN timeout
 * logged it out (re-reading a file PIN source).  Returns as
 * p11_sign_digest(), or TS_ERR_AGENT_NEEDS_UNLOCK when the token is logged
 * out and its PIN source cannot give the PIN again.  *sigp is malloc'd.
 */
int keystore_sign_digest(struct keystore *ks, struct ks_key *k, int hash,
    const uint8_t *digest, size_t dlen, uint8_t **sigp, size_t *siglenp)
    __attribute__((warn_unused_result));
int keystore_sign_message(struct keystore *ks, struct ks_key *k,
    const uint8_t *msg, size_t len, uint8_t **sigp, size_t *siglenp)
    __attribute__((warn_unused_result));

/* PIN timeout in seconds (0: never). */
void keystore_set_pin_timeout(struct keystore *ks, unsigned secs);
/*
 * Ends the login of tokens logged in longer than the timeout; call
 * periodically from the loop.  It makes no PKCS#11 call itself (a hung
 * module must not freeze the loop): each token's watcher thread does the
 * C_Logout.  When the keystore is busy (a login holds it) it tries again
 * at the next call.
 */
void keystore_expire(struct keystore *ks);
/* Logs out every token now (shutdown). */
void keystore_logout_all(struct keystore *ks);
/*
 * Returns the number of tokens with a module call running now (a presence
 * check or a signature); with report set, logs each, with how long its
 * call has been running.  At shutdown: such a token may never answer, and
 * logging it out or joining its threads would wait for it.
 */
size_t keystore_calls_running(const struct keystore *ks, int report);
/* Returns 1 when some token is logged out and cannot log in by itself. */
int keystore_needs_unlock(const struct keystore *ks);
/*
 * Logs the tokens that need it in with pin bytes supplied by a client
 * (UNLOCK after "agent needs unlock").  Returns 0 or a login error.
 */
int keystore_unlock_with(struct keystore *ks, const void *pin, size_t len)
    __attribute__((warn_unused_result));

/*
 * Config "pin_final_try allow": spend a token's last PIN try from a file
 * or env source (default: refuse, TS_ERR_P11_PIN_FINAL_TRY).
 */
void keystore_set_final_try(struct keystore *ks, int allow);
/*
 * Config "reinsert_login unlock": a token that was pulled out and put back
 * is not logged in from its PIN source; it waits for UNLOCK with the PIN
 * (default: log in again from the source).
 */
void keystore_set_reinsert_unlock(struct keystore *ks, int on);
/*
 * Writes the user-facing text for a sign error r of key k into why
 * ("token L (serial S) is not present - insert it", "1 try left", ...).
 * Returns 1 when it wrote one (the text replaces the generic message),
 * else 0.
 */
int keystore_explain(const struct keystore *ks, const struct ks_key *k, int r,
    char *why, size_t whylen);
/*
 * Starts one presence watcher thread per token, checking it every
 * interval_ms (0: only after reader events).  keystore_free() stops them; keystore_watch_stop()
 * does it earlier.  Returns 0, TS_ERR_ALLOC or TS_ERR_SYSTEM.
 */
int keystore_watch_start(struct keystore *ks, unsigned interval_ms)
    __attribute__((warn_unused_result));
void keystore_watch_stop(struct keystore *ks);
/*
 * readers_cb for agent/readers.c (arg: the keystore): a card went in or out
 * of reader; the tokens whose slot description names that reader are
 * checked at once and then every 100 ms for a second.
 */
void keystore_reader_event(void *arg, const char *reader, int present);
/*
 * At most cap signatures in flight per token (0: no cap); more fail at
 * once with TS_ERR_P11_TOKEN_BUSY.  Set it below the worker count so a
 * hung token never holds every worker.  Call before serving.
 */
void keystore_set_token_cap(struct keystore *ks, unsigned cap);
#endif /* TS_AGENT_KEYSTORE_H */
