/*
 * policy.c - minimal peer policy: uid/gid allow lists and the raw digest
 * permission.  Reference counted so a SIGHUP reload can swap it while
 * workers still hold the old one.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/policy.h"
#include "agent/policyrules.h"
#include "common/err.h"
#include "common/payload.h"

struct policy {
	atomic_int refs;
	uid_t uids[POLICY_MAX_IDS];
	size_t nuids;
	gid_t gids[POLICY_MAX_IDS];
	size_t ngids;
	uid_t digest_uids[POLICY_MAX_IDS];
	size_t ndigest;
	int digest_enabled;
	int explicit_uids; /* defaults replaced by policy_allow_uid */
	int explicit_digest;
	struct policyrules *rules; /* issue 5 rule file, borrowed; or NULL */
};

struct policy *
policy_new(uid_t self)
{
	struct policy *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	atomic_init(&p->refs, 1);
	p->uids[p->nuids++] = self;
	if (self != 0)
		p->uids[p->nuids++] = 0;
	p->digest_uids[p->ndigest++] = self;
	p->digest_enabled = 1;
	return p;
}

struct policy *
policy_ref(struct policy *p)
{
	if (p != NULL)
		atomic_fetch_add(&p->refs, 1);
	return p;
}

void
policy_unref(struct policy *p)
{
	if (p != NULL && atomic_fetch_sub(&p->refs, 1) == 1)
		free(p);
}

int
policy_allow_uid(struct policy *p, uid_t uid)
{
	size_t i;

	/* The agent's own uid and root stay allowed: they own the token. */
	for (i = 0; i < p->nuids; i++)
		if (p->uids[i] == uid)
			return 0;
	if (p->nuids >= POLICY_MAX_IDS)
		return TS_ERR_TOO_LARGE;
	p->uids[p->nuids++] = uid;
	return 0;
}

int
policy_allow_gid(struct policy *p, gid_t gid)
{
	if (p->ngids >= POLICY_MAX_IDS)
		return TS_ERR_TOO_LARGE;
	p->gids[p->ngids++] = gid;
	return 0;
}

int
policy_allow_digest_uid(struct policy *p, uid_t uid)
{
	size_t i;

	for (i = 0; i < p->ndigest; i++)
		if (p->digest_uids[i] == uid)
			return 0;
	if (p->ndigest >= POLICY_MAX_IDS)
		return TS_ERR_TOO_LARGE;
	p->digest_uids[p->ndigest++] = uid;
	return 0;
}

void
policy_set_digest_enabled(struct policy *p, int on)
{
	p->digest_enabled = on;
}

int
policy_check_peer(const struct policy *p, const struct agent_peer *peer)
{
	size_t i;
	int j;

	if (peer->transport == PEER_TEST)
		return 0;
	if (peer->transport == PEER_TLS) {
		/* issue 5: a TLS client must be named by some rule */
		struct policyrules_agent_peer pp;

		if (p->rules == NULL)
			return TS_ERR_POLICY_PEER;
		policyrules_peer_from_agent(peer, &pp);
		return policyrules_peer_known(p->rules, &pp.p, NULL, 0)
		    ? 0
		    : TS_ERR_POLICY_PEER;
	}
	if (peer->transport != PEER_UNIX)
		return TS_ERR_POLICY_PEER;
	for (i = 0; i < p->nuids; i++)
		if (p->uids[i] == peer->uid)
			return 0;
	for (i = 0; i < p->ngids; i++) {
		if (p->gids[i] == peer->gid)
			return 0;
		for (j = 0; j < peer->ngroups; j++)
			if (p->gids[i] == peer->groups[j])
				return 0;
	}
	return TS_ERR_POLICY_PEER;
}

int
policy_check_digest(const struct policy *p, const struct agent_peer *peer)
{
	size_t i;

	if (!p->digest_enabled)
		return TS_ERR_POLICY_DIGEST;
	if (peer->transport == PEER_TEST)
		return 0;
	/* Raw digests hide what is signed: never for network peers here. */
	if (peer->transport != PEER_UNIX)
		return TS_ERR_POLICY_DIGEST;
	for (i = 0; i < p->ndigest; i++)
		if (p->digest_uids[i] == peer->uid)
			return 0;
	return TS_ERR_POLICY_DIGEST;
}

void
policy_set_rules(struct policy *p, struct policyrules *rules)
{
	p->rules = rules;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The max_concurrent slot of the request this worker thread is running:
 * taken by the first check of a request, released by policy_request_end()
 * when dispatch_message() returns.  Later items of a batch only spend
 * rate.
 */
static __thread struct policyrules_ticket *held_slot;

void
policy_request_end(void)
{
	policyrules_release(held_slot);
	held_slot = NULL;
}

/* Asks the rule file. */
static int
rules_check(const struct policy *p, const struct agent_peer *peer,
    struct policyrules_request *req, char *why, size_t whylen)
{
	struct policyrules_agent_peer pp;
	struct policyrules_decision d;
	struct policyrules_ticket *t = NULL;
	int r;

	policyrules_peer_from_agent(peer, &pp);
	req->no_slot = held_slot != NULL;
	r = policyrules_check(p->rules, &pp.p, req, mono_ms(), &d, &t);
	if (t != NULL)
		held_slot = t;
	if (r != 0 && whylen > 0)
		snprintf(why, whylen, "%s", d.message);
	return r;
}

int
policy_check_digest_key(const struct policy *p, const struct agent_peer *peer,
    const char *key_id, char *why, size_t whylen)
{
	struct policyrules_request req;

	if (whylen > 0)
		why[0] = '\0';
	if (p->rules == NULL || peer->transport == PEER_TEST)
		return policy_check_digest(p, peer);
	if (!p->digest_enabled)
		return TS_ERR_POLICY_DIGEST;
	memset(&req, 0, sizeof(req));
	req.op = POLICYRULES_OP_DIGEST;
	req.key_id = key_id;
	return rules_check(p, peer, &req, why, whylen);
}

int
policy_check_payload(const struct policy *p, const struct agent_peer *peer,
    const char *key_id, const struct payload *pl, char *why, size_t whylen)
{
	struct policyrules_request req;
	const char **keys = NULL, **vals = NULL, *k, *v;
	size_t i, n;
	int r;

	if (whylen > 0)
		why[0] = '\0';
	if (p->rules == NULL || peer->transport == PEER_TEST)
		return 0;
	memset(&req, 0, sizeof(req));
	req.op = POLICYRULES_OP_PAYLOAD;
	req.key_id = key_id;
	req.docker_reference = payload_docker_reference(pl);
	n = payload_optional_count(pl);
	if (n > 0 &&
	    ((keys = calloc(n, sizeof(*keys))) == NULL ||
		(vals = calloc(n, sizeof(*vals))) == NULL)) {
		free(keys);
		return TS_ERR_ALLOC;
	}
	for (i = 0; i < n; i++) {
		if (payload_optional_at(pl, i, &k, &v) != 0 || v == NULL)
			continue; /* non-string values never satisfy a rule */
		keys[req.nannot] = k;
		vals[req.nannot] = v;
		req.nannot++;
	}
	req.annot_keys = keys;
	req.annot_values = vals;
	r = rules_check(p, peer, &req, why, whylen);
	free(keys);
	free(vals);
	return r;
}
