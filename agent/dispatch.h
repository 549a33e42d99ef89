/*
 * dispatch.h - the agent's message table and dispatch_message().
 *
 * Socket-free: it takes one complete message (type byte + body, without
 * the length) and writes one complete framed reply, so the fuzzer and the
 * unit tests call it directly.  It may block on the token (it runs on a
 * worker thread, never on the event loop).
 *
 * The table (style.md section 1) is one row per message type: {type, name,
 * handler, flags}.  Issue 7 adds the ssh-agent rows (11, 13) to the same
 * table; docs/PROTOCOL.md explains why the numbers never collide.
 */
#ifndef TS_AGENT_DISPATCH_H
#define TS_AGENT_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "agent/peer.h"

struct wbuf;
struct keystore;
struct policy;
struct audit;
struct dispatch_ctx;

/* Row flags. */
#define DISPATCH_F_NO_HELLO 0x01 /* allowed before HELLO (ssh protocol) */
#define DISPATCH_F_SSH	    0x02 /* failures are a bare SSH_AGENT_FAILURE */
#define DISPATCH_F_SIGN	    0x04 /* a signing request: refused when locked */

#define DISPATCH_WHY_MAX 256 /* detail text a handler adds to FAILURE */
/* A signature slower than this gets a PROGRESS "Touch your ..." notice. */
#define DISPATCH_PROGRESS_MS 500

/*
 * A handler reads its request from req (positioned after the type byte)
 * and appends its reply (type byte + body) to reply.  It returns 0, or a
 * TS_ERR_* code and optionally a detail in why: the dispatcher then
 * discards reply and sends FAILURE.
 */
typedef int (*dispatch_fn)(struct dispatch_ctx *c, struct agent_peer *peer,
    struct wbuf *req, struct wbuf *reply, char *why, size_t whylen);

struct dispatch_entry {
	uint8_t type;
	const char *name;
	dispatch_fn fn;
	unsigned flags;
};

/*
 * Returns a new context over ks (borrowed), pol (a reference is taken)
 * and audit (borrowed, may be NULL), or NULL on OOM.  agent_uid is the
 * agent's own uid (for the default policy).
 */
struct dispatch_ctx *dispatch_ctx_new(
    struct keystore *ks, struct policy *pol, struct audit *audit);
void dispatch_ctx_free(struct dispatch_ctx *c);
/* Swaps in a new policy (reference taken); in-flight requests keep theirs. */
void dispatch_set_policy(struct dispatch_ctx *c, struct policy *pol);
/* Returns a new reference to the current policy (caller unrefs). */
struct policy *dispatch_get_policy(struct dispatch_ctx *c);
/* Sets the askpass program for keys that need confirmation (copied). */
void dispatch_set_askpass(struct dispatch_ctx *c, const char *path);
/* The loop reports the number of open connections here (for STATUS). */
void dispatch_set_connections(struct dispatch_ctx *c, unsigned n);
/* Returns the audit log (borrowed, may be NULL). */
struct audit *dispatch_audit(struct dispatch_ctx *c);

/*
 * Handles one message msg[0..len) (type byte first) from peer and appends
 * one framed reply (u32 length, type, body) to reply, FAILURE included.
 * Returns 0 when a reply was written, or TS_ERR_ALLOC / TS_ERR_INTERNAL
 * when none could be: the caller then drops the connection.
 */
int dispatch_message(struct dispatch_ctx *c, struct agent_peer *peer,
    const uint8_t *msg, size_t len, struct wbuf *reply)
    __attribute__((warn_unused_result));

/*
 * Appends a framed FAILURE (code is a TS_ERR_* value, message is truncated
 * to TS_PROTO_MAX_MESSAGE).  Returns 0 or TS_ERR_WIRE_BUF_FULL.
 */
int dispatch_failure(struct wbuf *reply, int code, const char *message)
    __attribute__((warn_unused_result));

/* Returns the row for type, or NULL (exposed for tests and docs). */
const struct dispatch_entry *dispatch_lookup(uint8_t type);

/*
 * Adds rows from another protocol module (issue 7: agent/sshproto.c adds
 * the ssh-agent rows 11 and 13).  Call at start-up, before any request.
 * A row whose type is already taken, or that lies in our range
 * TS_MSG_FIRST..TS_MSG_LAST, is refused (TS_ERR_EXISTS /
 * TS_ERR_INVALID_ARG).  The rows must outlive the process.
 */
int dispatch_register(const struct dispatch_entry *rows, size_t n)
    __attribute__((warn_unused_result));

/*
 * For handlers in other files: the key table, whether the agent is
 * locked, the confirmation step (0 or TS_ERR_AGENT_CONFIRM with the reason
 * in why), and the signature counters (r: the request's result).
 */
struct keystore *dispatch_keystore(struct dispatch_ctx *c);
int dispatch_is_locked(struct dispatch_ctx *c);
struct ks_key;
int dispatch_confirm(struct dispatch_ctx *c, struct agent_peer *peer,
    struct ks_key *k, const char *what, char *why, size_t whylen);
void dispatch_count(struct dispatch_ctx *c, int r);

#ifdef DISPATCH_INTERNAL
/*
 * Tests and the fuzzer only: no unlock delay and a 1-round passphrase KDF,
 * so thousands of LOCK/UNLOCK inputs run fast.
 */
void dispatch_set_test_mode(struct dispatch_ctx *c, int on);
#endif

#endif /* TS_AGENT_DISPATCH_H */
