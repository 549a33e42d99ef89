/*
 * policy.c - minimal peer policy: uid/gid allow lists and the raw digest
 * permission.  Reference counted so a SIGHUP reload can swap it while
 * workers still hold the old one.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "agent/policy.h"
#include "common/err.h"

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
	if (peer->transport != PEER_UNIX)
		return TS_ERR_POLICY_PEER; /* TLS: issue 5's rules */
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

int
policy_check_payload(const struct policy *p, const struct agent_peer *peer,
    const char *key_id, const struct payload *pl, char *why, size_t whylen)
{
	(void)p;
	(void)peer;
	(void)key_id;
	(void)pl;
	if (whylen > 0)
		why[0] = '\0';
	/* XXX issue 5: repository globs and required annotations. */
	return 0;
}
