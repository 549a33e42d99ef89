/*
 * audit.h - the agent's append-only, hash-chained audit log.
 *
 * One JSON object per line for every decision (sign, refusal, peer
 * refused, lock/unlock).  Each line ends with "prev":"<hex>", the SHA-256
 * of the previous line's bytes (without its newline; 64 zeros for the
 * first line), so editing or deleting a line breaks the chain
 * (`tokensign audit verify`).  Lines are appended with O_APPEND and made
 * durable with fdatasync before the decision takes effect; concurrent
 * writers share one fdatasync (group commit).  Never given a PIN or
 * passphrase.  Thread-safe.
 */
#ifndef TS_AGENT_AUDIT_H
#define TS_AGENT_AUDIT_H

#include <stddef.h>

#include "agent/peer.h"

#define AUDIT_LINE_MAX 8192 /* a longer line is cut field by field */

struct audit;

/* What one line records; NULL / 0 fields are left out. */
struct audit_rec {
	const char *event; /* "sign-payload", "sign-digest", "peer", ... */
	const struct agent_peer *peer;
	const char *key_id;
	const char *key_fp; /* "SHA256:..." */
	const char *image; /* docker-reference */
	const char *manifest_digest; /* "sha256:..." */
	const char *hash; /* raw digest algorithm name */
	const char *digest_hex; /* raw digest */
	size_t batch_index; /* 1-based item in a batch, 0 for none */
	int result; /* 0 ok, else TS_ERR_* */
	const char *reason; /* denial reason text */
};

/*
 * Opens (creating 0600) path for appending and reads its last line to
 * continue the chain.  Returns 0 and *ap, TS_ERR_AUDIT_WRITE (the reason
 * logged) or TS_ERR_ALLOC.
 */
int audit_open(const char *path, struct audit **ap)
    __attribute__((warn_unused_result));
/* Closes; NULL is fine. */
void audit_close(struct audit *a);
/* Returns the path (borrowed). */
const char *audit_path(const struct audit *a);
/*
 * Appends one line and waits until it is on disk.  a NULL does nothing.
 * Returns 0 or TS_ERR_AUDIT_WRITE: the caller then refuses the request,
 * so nothing is signed that is not recorded.
 */
int audit_log(struct audit *a, const struct audit_rec *rec);
/* Appends n lines (a batch) with one fdatasync; returns as audit_log(). */
int audit_log_n(struct audit *a, const struct audit_rec *recs, size_t n)
    __attribute__((warn_unused_result));

#endif /* TS_AGENT_AUDIT_H */
