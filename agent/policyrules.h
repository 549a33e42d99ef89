/*
 * policyrules.h - the build-farm policy: which peer may sign what (issue 5).
 *
 * A JSON policy file (docs/policy.md) holds an ordered list of rules.  The
 * first rule whose "match" fits the peer decides; a peer no rule matches is
 * denied ("default-deny").  A rule says which keys, which repositories
 * (globs on the payload's docker-reference), whether raw SIGN_DIGEST is
 * allowed, which annotations the payload's "optional" must carry, and the
 * rate and concurrency limits.
 *
 * struct policyrules is a thread-safe holder: policyrules_check() may run on
 * any thread; policyrules_reload() swaps the rule set atomically and keeps
 * the old one on a parse error.  Rate and concurrency counters belong to a
 * rule *name* and carry over a reload, so SIGHUP neither resets a rate
 * window nor forgets in-flight requests.
 *
 * Clock: the caller passes a monotonic time in milliseconds, so tests inject
 * time instead of sleeping.
 *
 * This module knows nothing about sockets, TLS or payload parsing: the
 * caller fills struct policyrules_peer from SO_PEERCRED or the TLS identity,
 * and struct policyrules_request from the parsed payload.
 */
#ifndef TS_AGENT_POLICYRULES_H
#define TS_AGENT_POLICYRULES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct policyrules;
struct policyrules_ticket;

/* Hard limits of the file format, checked by the parser. */
#define POLICYRULES_MAX_FILE	  (1024 * 1024)
#define POLICYRULES_MAX_RULES	  1024
#define POLICYRULES_MAX_LIST	  256 /* entries per list in one rule */
#define POLICYRULES_MAX_STRING	  512 /* bytes per string */
#define POLICYRULES_MAX_RATE	  1000000 /* signatures per minute */
#define POLICYRULES_MAX_CONC	  65536
#define POLICYRULES_RULE_NAME_MAX 64

enum policyrules_transport {
	POLICYRULES_PEER_UNIX = 1,
	POLICYRULES_PEER_TLS,
};

/* Who is asking.  Strings and arrays are borrowed for the call. */
struct policyrules_peer {
	enum policyrules_transport transport;
	/* unix */
	uid_t uid;
	gid_t gid;
	const gid_t *groups; /* supplementary groups, may be NULL */
	size_t ngroups;
	/* tls: verified certificate identity */
	const char *cn; /* may be NULL */
	const char *const *uris;
	size_t nuris;
	const char *const *dns;
	size_t ndns;
};

enum policyrules_op {
	POLICYRULES_OP_PAYLOAD = 1, /* SIGN_PAYLOAD: reference is known */
	POLICYRULES_OP_DIGEST, /* SIGN_DIGEST: raw digest, blind */
};

/* What is asked.  Strings and arrays are borrowed for the call. */
struct policyrules_request {
	enum policyrules_op op;
	const char *key_id; /* agent's stable key id (fingerprint) */
	const char *key_label; /* key label, may be NULL */
	const char *key_uri; /* key PKCS#11 URI, may be NULL */
	/* OP_PAYLOAD only */
	const char *docker_reference;
	const char *const *annot_keys; /* payload "optional" string members */
	const char *const *annot_values;
	size_t nannot;
	unsigned int count; /* signatures this request makes; 0 means 1 */
	/*
	 * Decide only: consume no rate tokens, take no slot, return no
	 * ticket.  For items 2..n of a SIGN_BATCH whose first item was
	 * checked with count = n (one slot and n tokens for the batch).
	 */
	int decide_only;
	/*
	 * Consume rate tokens but take no concurrency slot and return no
	 * ticket: further items of a request that already holds a slot.
	 */
	int no_slot;
};

/* Outcome; rule and message are safe to show to the client and audit. */
struct policyrules_decision {
	int allowed;
	int code; /* 0 or TS_ERR_POLICY_* */
	char rule[POLICYRULES_RULE_NAME_MAX + 1]; /* deciding rule name */
	char message[200];
};

/*
 * Parses a policy file; returns 0 and a holder in *out, or TS_ERR_CONFIG /
 * TS_ERR_PARSE / TS_ERR_TOO_LARGE with a message (file:line:col or the rule
 * name and field) in errbuf.
 */
int policyrules_load_file(const char *path, struct policyrules **out,
    char *errbuf, size_t errlen) __attribute__((warn_unused_result));
/* Same from memory (buf need not be NUL-terminated). */
int policyrules_load_buf(const char *buf, size_t len, struct policyrules **out,
    char *errbuf, size_t errlen) __attribute__((warn_unused_result));
/*
 * Parses path and swaps it in; on error returns it, fills errbuf and keeps
 * the current rules.  Safe while other threads call policyrules_check().
 */
int policyrules_reload(struct policyrules *p, const char *path, char *errbuf,
    size_t errlen) __attribute__((warn_unused_result));
/* Same from memory. */
int policyrules_reload_buf(struct policyrules *p, const char *buf, size_t len,
    char *errbuf, size_t errlen) __attribute__((warn_unused_result));
/* Frees the holder; outstanding tickets stay valid.  NULL is fine. */
void policyrules_free(struct policyrules *p);
/* Returns the number of rules currently loaded. */
size_t policyrules_count(struct policyrules *p);

/*
 * Decides.  When allowed, it consumes request->count rate tokens, takes a
 * concurrency slot and returns 0 with a ticket in *ticket that the caller
 * MUST release with policyrules_release() when the request is finished.
 * When denied it returns the TS_ERR_POLICY_* code also in d->code and
 * *ticket stays NULL.  d is always filled.  now_ms: monotonic clock.
 *
 * WARNING: the denial message names the rule and the reason category but
 * never lists keys or patterns, so a client cannot probe which keys exist.
 */
int policyrules_check(struct policyrules *p,
    const struct policyrules_peer *peer, const struct policyrules_request *req,
    uint64_t now_ms, struct policyrules_decision *d,
    struct policyrules_ticket **ticket) __attribute__((warn_unused_result));
/* Ends a request: frees its concurrency slot.  NULL is fine. */
void policyrules_release(struct policyrules_ticket *t);

/*
 * Returns 1 when repository pattern pat matches ref: '*' matches any run of
 * characters except '/', '**' any run including '/', '?' one character
 * except '/'; everything else literal, case-sensitive, whole string.
 */
int policyrules_glob_match(const char *pat, const char *ref);

/*
 * Returns 1 when some rule matches peer (connect-time check: a client no
 * rule names is refused before it can send a request), else 0; the rule
 * name is copied to rule (may be NULL).
 */
int policyrules_peer_known(struct policyrules *p,
    const struct policyrules_peer *peer, char *rule, size_t rulelen);

/*
 * Agent glue: a policyrules_peer view of a struct agent_peer (agent/peer.h)
 * whose TLS names were packed by listen_tls.c.  The view borrows from ap.
 */
#define POLICYRULES_AGENT_NAMES 32
struct agent_peer;
struct policyrules_agent_peer {
	struct policyrules_peer p;
	const char *uris[POLICYRULES_AGENT_NAMES];
	const char *dns[POLICYRULES_AGENT_NAMES];
};
void policyrules_peer_from_agent(
    const struct agent_peer *ap, struct policyrules_agent_peer *out);

#endif /* TS_AGENT_POLICYRULES_H */
