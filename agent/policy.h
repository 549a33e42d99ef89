/*
 * policy.h - which peer may do what (minimal for issue 3; the rule file of
 * issue 5 lives in agent/policyrules.[ch] and plugs in here).
 *
 * A struct policy is immutable once built and shared by reference between
 * the loop and the workers; a reload builds a new one and swaps it in
 * (dispatch_set_policy), so a check never sees half a policy.
 *
 * Defaults: peers with the agent's own uid or root may connect; raw
 * SIGN_DIGEST is allowed for the agent's own uid on the Unix socket; every
 * well-formed simple-signing payload may be signed.
 */
#ifndef TS_AGENT_POLICY_H
#define TS_AGENT_POLICY_H

#include <stddef.h>
#include <sys/types.h>

#include "agent/peer.h"

#define POLICY_MAX_IDS 64

struct payload;
struct policy;

/* Returns a new policy with the defaults above for agent uid self, or NULL. */
struct policy *policy_new(uid_t self);
/* Takes / drops a reference; the last drop frees.  NULL is fine. */
struct policy *policy_ref(struct policy *p);
void policy_unref(struct policy *p);

/*
 * Replaces the default uid/group lists (called while building, before the
 * policy is shared).  Returns 0 or TS_ERR_TOO_LARGE.
 */
int policy_allow_uid(struct policy *p, uid_t uid)
    __attribute__((warn_unused_result));
int policy_allow_gid(struct policy *p, gid_t gid)
    __attribute__((warn_unused_result));
int policy_allow_digest_uid(struct policy *p, uid_t uid)
    __attribute__((warn_unused_result));
/* Switches raw digest signing off for everyone (0) or back to lists (1). */
void policy_set_digest_enabled(struct policy *p, int on);

/* Returns 0 when peer may talk to the agent, else TS_ERR_POLICY_PEER. */
int policy_check_peer(const struct policy *p, const struct agent_peer *peer);
/* Returns 0 when peer may sign raw digests, else TS_ERR_POLICY_DIGEST. */
int policy_check_digest(const struct policy *p, const struct agent_peer *peer);
/*
 * Returns 0 when peer may sign the parsed payload pl with key_id, else
 * TS_ERR_POLICY_DENIED with the rule named in why.
 */
int policy_check_payload(const struct policy *p, const struct agent_peer *peer,
    const char *key_id, const struct payload *pl, char *why, size_t whylen);

#endif /* TS_AGENT_POLICY_H */
