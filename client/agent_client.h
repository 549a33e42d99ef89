/*
 * agent_client.h - talking to tokensign-agent (docs/PROTOCOL.md).
 *
 * agent_connect() opens $TOKENSIGN_AUTH_SOCK (or a given path) and does the
 * HELLO/version exchange; every call after that is one request and one
 * reply, the reply capped at TS_PROTO_MAX_FRAME and read with a timeout.
 * PROGRESS notices before a reply are skipped.  When the agent answers
 * FAILURE the call returns the agent's TS_ERR_* code and
 * agent_last_error() gives the agent's message.  Not thread-safe per
 * connection: use one connection per thread.
 */
#ifndef TS_CLIENT_AGENT_CLIENT_H
#define TS_CLIENT_AGENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#define AGENT_CLIENT_TIMEOUT_MS 120000 /* confirmation prompts take time */

struct agent_conn;

struct agent_key {
	char *id; /* 16 hex chars, stable */
	char *type; /* "ecdsa-p256", "rsa", "ed25519", ... */
	unsigned bits;
	char *label;
	char *uri; /* RFC 7512 */
	char *token; /* token label */
	uint8_t *spki; /* DER */
	size_t spki_len;
	uint8_t fingerprint[32]; /* SHA-256 of spki */
	uint32_t flags; /* TS_KEY_* */
};

struct agent_keylist {
	struct agent_key *keys;
	size_t n;
};

struct agent_batch_item {
	int kind; /* TS_BATCH_PAYLOAD or TS_BATCH_DIGEST */
	int hash; /* TS_HASH_* for digests */
	const uint8_t *data;
	size_t len;
	int r; /* out: 0 or TS_ERR_* */
	uint8_t *sig; /* out: malloc'd on success (caller frees) */
	size_t siglen;
};

struct agent_status_token {
	char *label;
	char *uri;
	int present;
	int logged_in;
};

struct agent_status_key {
	char *id;
	char *label;
	uint64_t signatures;
	uint64_t errors;
};

struct agent_status {
	uint32_t version;
	uint32_t flags; /* TS_STATUS_* */
	uint64_t uptime;
	uint64_t signatures;
	uint64_t errors;
	uint32_t connections;
	struct agent_status_token *tokens;
	size_t ntokens;
	struct agent_status_key *keys;
	size_t nkeys;
};

/*
 * Connects to path (NULL: $TOKENSIGN_AUTH_SOCK) and exchanges HELLO.
 * Returns 0 and *cp (close with agent_close), TS_ERR_AGENT_CONNECT (no
 * socket / not set; reason logged at debug), TS_ERR_WIRE_VERSION, or the
 * agent's refusal (TS_ERR_POLICY_PEER).
 */
int agent_connect(const char *path, struct agent_conn **cp)
    __attribute__((warn_unused_result));
/* Closes; NULL is fine. */
void agent_close(struct agent_conn *c);
/* Sets the per-reply timeout in ms (-1: none). */
void agent_set_timeout(struct agent_conn *c, int timeout_ms);
/* Returns the message of the last FAILURE ("" when none; borrowed). */
const char *agent_last_error(const struct agent_conn *c);
/* Returns the agent's name from HELLO (borrowed). */
const char *agent_name(const struct agent_conn *c);

/*
 * Prints "tokensign: what: <the agent's message, or ts_err(r)>" on stderr
 * (c may be NULL) and returns the exit status for r (client/commands.h).
 */
int agent_perror(const struct agent_conn *c, int r, const char *what);

/* Lists keys into *lp (free with agent_keylist_free).  0 or TS_ERR_*. */
int agent_list_keys(struct agent_conn *c, struct agent_keylist **lp)
    __attribute__((warn_unused_result));
void agent_keylist_free(struct agent_keylist *l);
/*
 * Finds the key named by ref (key id, label, or a PKCS#11 URI whose
 * attributes must all match); ref NULL picks the only key.  Returns 0 and
 * *kp (borrowed from l), TS_ERR_P11_KEY_NOT_FOUND, TS_ERR_P11_KEY_AMBIGUOUS
 * (also: ref NULL with several keys) or TS_ERR_P11_URI.
 */
int agent_keylist_find(const struct agent_keylist *l, const char *ref,
    const struct agent_key **kp) __attribute__((warn_unused_result));
/* Writes the key's SPKI as PEM into *pemp (malloc'd).  0 or TS_ERR_*. */
int agent_key_pem(const struct agent_key *k, char **pemp)
    __attribute__((warn_unused_result));

/*
 * Signs a simple-signing payload (the agent checks it) / a digest of
 * hash (TS_HASH_*) with the key named by key (id, label or URI).  Returns 0
 * and *sigp (malloc'd; DER for ECDSA) with *siglenp, or TS_ERR_*.
 */
int agent_sign_payload(struct agent_conn *c, const char *key,
    const uint8_t *payload, size_t len, uint8_t **sigp, size_t *siglenp)
    __attribute__((warn_unused_result));
int agent_sign_digest(struct agent_conn *c, const char *key, int hash,
    const uint8_t *digest, size_t dlen, uint8_t **sigp, size_t *siglenp)
    __attribute__((warn_unused_result));
/*
 * Signs n items in one round trip.  Returns 0 when the agent answered
 * (each item's r/sig says how it went) or the refusal of the whole batch.
 */
int agent_sign_batch(struct agent_conn *c, const char *key,
    struct agent_batch_item *items, size_t n)
    __attribute__((warn_unused_result));

/* LOCK / UNLOCK with a passphrase.  0 or TS_ERR_* (AGENT_BAD_PASS). */
int agent_lock(struct agent_conn *c, const void *pass, size_t len)
    __attribute__((warn_unused_result));
int agent_unlock(struct agent_conn *c, const void *pass, size_t len)
    __attribute__((warn_unused_result));

/* STATUS into *sp (free with agent_status_free).  0 or TS_ERR_*. */
int agent_status(struct agent_conn *c, struct agent_status **sp)
    __attribute__((warn_unused_result));
void agent_status_free(struct agent_status *s);

#endif /* TS_CLIENT_AGENT_CLIENT_H */
