/*
 * sshproto.h - the ssh-agent protocol (RFC 9987, formerly
 * draft-miller-ssh-agent) on the agent's socket: REQUEST_IDENTITIES (11)
 * -> IDENTITIES_ANSWER (12) and SIGN_REQUEST (13) -> SIGN_RESPONSE (14).
 * Every other ssh-agent message (add/remove identities, lock, smartcard,
 * extensions) is answered with SSH_AGENT_FAILURE (5): keys live on the
 * token and are managed by tokensign's own configuration, and the agent's
 * lock is tokensign's LOCK/UNLOCK (docs/integrations.md explains why).
 *
 * Socket-free: sshproto_handle() takes one parsed frame body and appends
 * one reply frame body (type byte + fields, no length prefix).  The key
 * store, policy, confirmation, PIN and audit are reached through the
 * caller's struct sshproto_ops, so this module knows no agent internals
 * and is unit-tested and fuzzed on its own.
 */
#ifndef TS_AGENT_SSHPROTO_H
#define TS_AGENT_SSHPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/sshkey.h"

struct wbuf;

/* ssh-agent message numbers we read or write (RFC 9987 section 6.1). */
#define SSH_AGENT_FAILURE		  5
#define SSH_AGENT_SUCCESS		  6
#define SSH_AGENTC_REQUEST_IDENTITIES	  11
#define SSH_AGENT_IDENTITIES_ANSWER	  12
#define SSH_AGENTC_SIGN_REQUEST		  13
#define SSH_AGENT_SIGN_RESPONSE		  14
#define SSH_AGENTC_ADD_IDENTITY		  17
#define SSH_AGENTC_REMOVE_IDENTITY	  18
#define SSH_AGENTC_REMOVE_ALL_IDENTITIES  19
#define SSH_AGENTC_ADD_SMARTCARD_KEY	  20
#define SSH_AGENTC_REMOVE_SMARTCARD_KEY	  21
#define SSH_AGENTC_LOCK			  22
#define SSH_AGENTC_UNLOCK		  23
#define SSH_AGENTC_ADD_ID_CONSTRAINED	  25
#define SSH_AGENTC_ADD_SC_KEY_CONSTRAINED 26
#define SSH_AGENTC_EXTENSION		  27

/* The ssh-agent protocol owns message numbers below this. */
#define SSHPROTO_TYPE_LIMIT 100
/* Largest data an ssh client asks us to sign (OpenSSH caps at 256 KiB). */
#define SSHPROTO_MAX_DATA (256 * 1024)

/* Hash the agent applies before signing (0: the whole data, Ed25519). */
enum sshproto_hash {
	SSHPROTO_HASH_NONE = 0,
	SSHPROTO_HASH_SHA256 = 1, /* same numbers as TS_HASH_* (proto.h) */
	SSHPROTO_HASH_SHA512 = 3,
};

/* One key the caller offers to ssh clients. */
struct sshproto_key {
	const uint8_t *spki; /* SPKI DER, borrowed */
	size_t spki_len;
	const char *comment; /* label shown by ssh-add -L; may be NULL */
	/*
	 * Optional: the key's OpenSSH blob, precomputed (borrowed); NULL
	 * makes the handler derive it from spki on every request.  SPKI
	 * decoding costs ~100 us in OpenSSL 3, so the agent passes cached
	 * blobs (sshproto_blob_cached).
	 */
	const uint8_t *blob;
	size_t blob_len;
};

/* What one SIGN_REQUEST asks the caller to do. */
struct sshproto_sign {
	size_t key_index; /* into the list the caller gave */
	enum sshkey_sigalg alg;
	enum sshproto_hash hash;
	/* hash != NONE: the digest; NONE: the whole data (Ed25519) */
	const uint8_t *in;
	size_t in_len;
	/* SHA-256 of the data ssh sent, for the audit line in every case */
	uint8_t data_sha256[32];
	uint32_t flags; /* as sent */
};

struct sshproto_ops {
	/*
	 * Fills *keys / *n with the keys this peer may use over ssh (policy
	 * applied: a key whose ssh switch is off for this peer is left out).
	 * The array stays owned by the caller and valid until the handler
	 * returns.  Returns 0 or a TS_ERR_* code.
	 */
	int (*list)(void *arg, const struct sshproto_key **keys, size_t *n);
	/*
	 * Signs under policy, confirmation, PIN and audit ("ssh signature",
	 * req->data_sha256).  Returns 0 and a malloc'd signature in *sig as
	 * the token layer returns it (DER for ECDSA, raw for Ed25519/RSA)
	 * plus, for RSA, the modulus length in bytes in *modulus_len; or a
	 * TS_ERR_* code (the client sees only SSH_AGENT_FAILURE).
	 */
	int (*sign)(void *arg, const struct sshproto_sign *req, uint8_t **sig,
	    size_t *siglen, size_t *modulus_len);
};

/*
 * Returns the OpenSSH blob of SPKI key spki from a process-wide cache
 * (content-keyed, at most SSHPROTO_BLOB_CACHE entries, never freed, so the
 * pointer stays valid), computing it on first use.  Returns 0 with a
 * borrowed *blob, or the errors of sshkey_blob_from_spki (a key ssh cannot
 * use is TS_ERR_UNSUPPORTED and is remembered as such too).  Thread-safe.
 */
#define SSHPROTO_BLOB_CACHE 256
int sshproto_blob_cached(const uint8_t *spki, size_t spki_len,
    const uint8_t **blob, size_t *blob_len) __attribute__((warn_unused_result));

/* Returns 1 when type belongs to the ssh-agent protocol (1..99), else 0. */
int sshproto_is_ssh_type(uint8_t type);

/*
 * Handles one ssh-agent request of message type `type` whose body (the
 * bytes after the type) is in body, and appends the reply (type byte then
 * fields) to reply.  Protocol errors, refusals and unsupported messages
 * all become the one-byte SSH_AGENT_FAILURE reply, as ssh-agent does.
 * Returns 0 when a reply was written (success or FAILURE), or
 * TS_ERR_ALLOC / TS_ERR_WIRE_BUF_FULL when not even FAILURE fits.
 * The reason for a FAILURE is logged at debug level.
 */
int sshproto_handle(const struct sshproto_ops *ops, void *arg, uint8_t type,
    struct wbuf *body, struct wbuf *reply) __attribute__((warn_unused_result));

/* Per-key ssh switch from the configuration. */
enum sshproto_key_policy {
	SSHPROTO_KEY_DEFAULT = 0, /* on for the agent's uid on Unix, else off */
	SSHPROTO_KEY_ON = 1, /* on for every peer policy lets in */
	SSHPROTO_KEY_OFF = 2, /* never over ssh */
};

/*
 * Returns 1 when a key with setting kp may be used over the ssh protocol
 * by a peer on transport `is_unix` (1: Unix socket, 0: TLS) with uid
 * peer_uid, in an agent running as agent_uid; else 0.  The default keeps
 * ssh off for TLS clients: a remote CI job signing images has no business
 * logging in to hosts with the same key.
 */
int sshproto_key_allowed(
    enum sshproto_key_policy kp, int is_unix, uid_t peer_uid, uid_t agent_uid);

/*
 * Adds the two ssh-agent rows (11 REQUEST_IDENTITIES, 13 SIGN_REQUEST) to
 * the agent's dispatch table with dispatch_register().  Call once at
 * start-up, before serving.  Returns 0 or dispatch_register()'s error.
 */
int sshproto_register(void) __attribute__((warn_unused_result));

/*
 * The two rows' handlers (dispatch_fn); they bind
 * sshproto_handle() to the keystore, the per-key ssh switch, the lock,
 * confirmation and the audit log ("ssh signature" with the data's
 * SHA-256).  Signatures as dispatch_fn; they always write a reply.
 */
struct dispatch_ctx;
struct agent_peer;
int sshproto_dispatch_identities(struct dispatch_ctx *c,
    struct agent_peer *peer, struct wbuf *req, struct wbuf *reply, char *why,
    size_t whylen);
int sshproto_dispatch_sign(struct dispatch_ctx *c, struct agent_peer *peer,
    struct wbuf *req, struct wbuf *reply, char *why, size_t whylen);

#endif /* TS_AGENT_SSHPROTO_H */
