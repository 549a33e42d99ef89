/*
 * test_policyrules.c - the policy file parser and its decisions: identity
 * matching (TLS CN/SAN, Unix uid/gid), default deny, key, repository glob,
 * raw digest, required annotations, rate limit with an injected clock,
 * concurrency, reload (outcome changes, counters carry over, bad file keeps
 * the old rules), thread safety, and strict parsing of bad files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "agent/policyrules.h"

static const char POLICY[] =
    "{\"version\": 1, \"rules\": ["
    " {\"name\": \"team-a\","
    "  \"match\": {\"tls_uri\": \"spiffe://ci.example/runner-a\"},"
    "  \"keys\": [\"release-p256\", \"sha256:aaaa\"],"
    "  \"repositories\": [\"registry.example.com/team-a/*\","
    "                     \"registry.example.com/shared/**\"],"
    "  \"required_annotations\": [\"ci-run-id\"],"
    "  \"rate_per_minute\": 5, \"max_concurrent\": 2},"
    " {\"name\": \"team-b\", \"comment\": \"CN match, raw allowed\","
    "  \"match\": {\"tls_cn\": [\"runner-b\", \"runner-b2\"]},"
    "  \"keys\": \"*\", \"repositories\": \"registry.example.com/team-b/*\","
    "  \"raw_digest\": true},"
    " {\"name\": \"local-admin\","
    "  \"match\": {\"uid\": [0, 1000]},"
    "  \"keys\": [\"*\"], \"repositories\": [\"**\"]},"
    " {\"name\": \"signers-group\","
    "  \"match\": {\"gid\": 4242}, \"keys\": [\"release-p256\"],"
    "  \"repositories\": [\"**\"], \"raw_digest\": false}"
    "]}";

static const char *const uris_a[] = { "spiffe://ci.example/runner-a" };
static const char *const dns_a[] = { "runner-a.ci.example" };
static const char *const uris_x[] = { "spiffe://ci.example/runner-x" };

static struct policyrules_peer
tls_peer(const char *cn, const char *const *uris, size_t nuris)
{
	struct policyrules_peer p = { .transport = POLICYRULES_PEER_TLS };

	p.cn = cn;
	p.uris = uris;
	p.nuris = nuris;
	p.dns = dns_a;
	p.ndns = 1;
	return p;
}

static struct policyrules_peer
unix_peer(uid_t uid, gid_t gid)
{
	struct policyrules_peer p = { .transport = POLICYRULES_PEER_UNIX };

	p.uid = uid;
	p.gid = gid;
	return p;
}

static const char *const ak[] = { "ci-run-id", "creator" };
static const char *const av[] = { "run-1234", "tokensign" };

static struct policyrules_request
payload_req(const char *key, const char *ref)
{
	struct policyrules_request r = { .op = POLICYRULES_OP_PAYLOAD };

	r.key_id = "sha256:0000";
	r.key_label = key;
	r.docker_reference = ref;
	r.annot_keys = ak;
	r.annot_values = av;
	r.nannot = 2;
	return r;
}

static struct policyrules *
load(const char *s)
{
	struct policyrules *p = NULL;
	char err[256];
	int r;

	r = policyrules_load_buf(s, strlen(s), &p, err, sizeof(err));
	if (r != 0)
		fail_msg("policy does not load: %s (%s)", err, ts_err(r));
	return p;
}

/* Checks and releases at once; returns the code, fills d. */
static int
decide(struct policyrules *p, const struct policyrules_peer *peer,
    const struct policyrules_request *req, uint64_t now,
    struct policyrules_decision *d)
{
	struct policyrules_ticket *t = NULL;
	int r;

	r = policyrules_check(p, peer, req, now, d, &t);
	if (r == 0 && req->decide_only) {
		assert_null(t);
		assert_int_equal(d->allowed, 1);
	} else if (r == 0) {
		assert_non_null(t);
		assert_int_equal(d->allowed, 1);
	} else {
		assert_null(t);
		assert_int_equal(d->allowed, 0);
		assert_int_equal(d->code, r);
	}
	policyrules_release(t);
	return r;
}

static void
test_allowed_repo(void **state)
{
	struct policyrules *p = load(POLICY);
	struct policyrules_peer a = tls_peer("runner-a", uris_a, 1);
	struct policyrules_request q;
	struct policyrules_decision d;

	(void)state;
	assert_int_equal(policyrules_count(p), 4);
	q = payload_req("release-p256", "registry.example.com/team-a/app");
	assert_int_equal(decide(p, &a, &q, 0, &d), 0);
	assert_string_equal(d.rule, "team-a");
	/* key matched by id instead of label */
	q.key_label = NULL;
	q.key_id = "sha256:aaaa";
	assert_int_equal(decide(p, &a, &q, 0, &d), 0);
	/* '**' crosses '/' */
	q = payload_req(
	    "release-p256", "registry.example.com/shared/base/images/alpine");
	assert_int_equal(decide(p, &a, &q, 0, &d), 0);
	policyrules_free(p);
}

static void
test_other_repo_denied(void **state)
{
	struct policyrules *p = load(POLICY);
	struct policyrules_peer a = tls_peer("runner-a", uris_a, 1);
	struct policyrules_request q;
	struct policyrules_decision d;

	(void)state;
	q = payload_req("release-p256", "registry.example.com/team-b/app");
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DENIED);
	assert_string_equal(d.rule, "team-a");
	assert_non_null(strstr(d.message, "team-b/app"));
	assert_non_null(strstr(d.message, "not allowed"));
	/* '*' does not cross '/' */
	q = payload_req(
	    "release-p256", "registry.example.com/team-a/nested/app");
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DENIED);
	/* another registry with the same path */
	q = payload_req("release-p256", "evil.example.com/team-a/app");
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DENIED);
	/* prefix tricks */
	q = payload_req("release-p256", "registry.example.com/team-a");
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DENIED);
	q = payload_req("release-p256", NULL);
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DENIED);
	policyrules_free(p);
}

static void
test_key_denial_reveals_nothing(void **state)
{
	struct policyrules *p = load(POLICY);
	struct policyrules_peer a = tls_peer("runner-a", uris_a, 1);
	struct policyrules_request q;
	struct policyrules_decision d1, d2;

	(void)state;
	q = payload_req("other-key", "registry.example.com/team-a/app");
	assert_int_equal(decide(p, &a, &q, 0, &d1), TS_ERR_POLICY_DENIED);
	q = payload_req(
	    "no-such-key-at-all", "registry.example.com/team-a/app");
	q.key_id = "sha256:ffff";
	assert_int_equal(decide(p, &a, &q, 0, &d2), TS_ERR_POLICY_DENIED);
	/* same words for both, naming the rule but no key */
	assert_string_equal(d1.message, d2.message);
	assert_string_equal(d1.rule, "team-a");
	assert_null(strstr(d1.message, "release-p256"));
	assert_null(strstr(d1.message, "aaaa"));
	assert_null(strstr(d1.message, "other-key"));
	policyrules_free(p);
}

static void
test_default_deny_and_matching(void **state)
{
	struct policyrules *p = load(POLICY);
	struct policyrules_peer x = tls_peer("runner-a", uris_x, 1);
	struct policyrules_peer b = tls_peer("runner-b2", NULL, 0);
	struct policyrules_peer u;
	struct policyrules_request q;
	struct policyrules_decision d;
	gid_t groups[] = { 10, 4242 };

	(void)state;
	/* CN runner-a but the wrong URI: team-a needs the URI */
	q = payload_req("release-p256", "registry.example.com/team-a/app");
	assert_int_equal(decide(p, &x, &q, 0, &d), TS_ERR_POLICY_PEER);
	assert_string_equal(d.rule, "default-deny");
	/* CN list */
	q = payload_req("anything", "registry.example.com/team-b/app");
	assert_int_equal(decide(p, &b, &q, 0, &d), 0);
	assert_string_equal(d.rule, "team-b");
	/* TLS rules never match Unix peers, and the other way round */
	u = unix_peer(1000, 1000);
	assert_int_equal(decide(p, &u, &q, 0, &d), 0);
	assert_string_equal(d.rule, "local-admin");
	u = unix_peer(1001, 1001);
	assert_int_equal(decide(p, &u, &q, 0, &d), TS_ERR_POLICY_PEER);
	/* supplementary group */
	u.groups = groups;
	u.ngroups = 2;
	q = payload_req("release-p256", "any.example/x");
	assert_int_equal(decide(p, &u, &q, 0, &d), 0);
	assert_string_equal(d.rule, "signers-group");
	policyrules_free(p);

	/* an empty rule list denies everyone */
	p = load("{\"version\": 1, \"rules\": []}");
	u = unix_peer(0, 0);
	assert_int_equal(decide(p, &u, &q, 0, &d), TS_ERR_POLICY_PEER);
	policyrules_free(p);
}

static void
test_raw_digest(void **state)
{
	struct policyrules *p = load(POLICY);
	struct policyrules_peer a = tls_peer("runner-a", uris_a, 1);
	struct policyrules_peer b = tls_peer("runner-b", NULL, 0);
	struct policyrules_peer u = unix_peer(1000, 1000);
	struct policyrules_peer g = unix_peer(5, 4242);
	struct policyrules_request q = { .op = POLICYRULES_OP_DIGEST };
	struct policyrules_decision d;

	(void)state;
	q.key_label = "release-p256";
	/* TLS default: no */
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DIGEST);
	assert_string_equal(d.rule, "team-a");
	assert_non_null(strstr(d.message, "raw digest"));
	/* explicit yes for TLS */
	assert_int_equal(decide(p, &b, &q, 0, &d), 0);
	/* Unix default: yes; explicit no honoured */
	assert_int_equal(decide(p, &u, &q, 0, &d), 0);
	assert_int_equal(decide(p, &g, &q, 0, &d), TS_ERR_POLICY_DIGEST);
	policyrules_free(p);
}

static void
test_missing_annotation(void **state)
{
	struct policyrules *p = load(POLICY);
	struct policyrules_peer a = tls_peer("runner-a", uris_a, 1);
	struct policyrules_request q;
	struct policyrules_decision d;
	const char *const k1[] = { "creator" }, *const v1[] = { "x" };
	const char *const k2[] = { "ci-run-id" }, *const v2[] = { "" };

	(void)state;
	q = payload_req("release-p256", "registry.example.com/team-a/app");
	q.annot_keys = k1;
	q.annot_values = v1;
	q.nannot = 1;
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DENIED);
	assert_non_null(strstr(d.message, "required annotation"));
	assert_non_null(strstr(d.message, "ci-run-id"));
	q.nannot = 0;
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DENIED);
	/* present but empty is missing */
	q.annot_keys = k2;
	q.annot_values = v2;
	q.nannot = 1;
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DENIED);
	policyrules_free(p);
}

static void
test_rate_limit(void **state)
{
	struct policyrules *p = load(POLICY);
	struct policyrules_peer a = tls_peer("runner-a", uris_a, 1);
	struct policyrules_request q;
	struct policyrules_decision d;
	uint64_t t0 = 1000000;
	int i;

	(void)state;
	q = payload_req("release-p256", "registry.example.com/team-a/app");
	for (i = 0; i < 5; i++)
		assert_int_equal(decide(p, &a, &q, t0 + (uint64_t)i, &d), 0);
	/* the N+1th in the window */
	assert_int_equal(decide(p, &a, &q, t0 + 10, &d), TS_ERR_POLICY_RATE);
	assert_string_equal(d.rule, "team-a");
	assert_non_null(strstr(d.message,
	    "rate limit of 5 signatures per "
	    "minute"));
	/* a denial for another reason does not consume tokens or help */
	assert_int_equal(decide(p, &a, &q, t0 + 11000, &d), TS_ERR_POLICY_RATE);
	/* one signature comes back every 12 s */
	assert_int_equal(decide(p, &a, &q, t0 + 12010, &d), 0);
	assert_int_equal(decide(p, &a, &q, t0 + 12011, &d), TS_ERR_POLICY_RATE);
	/* after a full idle minute the bucket is full again, not fuller */
	for (i = 0; i < 5; i++)
		assert_int_equal(decide(p, &a, &q, t0 + 600000, &d), 0);
	assert_int_equal(
	    decide(p, &a, &q, t0 + 600000, &d), TS_ERR_POLICY_RATE);
	/* a batch costs its size; a batch bigger than the limit never fits */
	q.count = 3;
	assert_int_equal(decide(p, &a, &q, t0 + 636000, &d), 0);
	assert_int_equal(
	    decide(p, &a, &q, t0 + 636000, &d), TS_ERR_POLICY_RATE);
	q.count = 6;
	assert_int_equal(
	    decide(p, &a, &q, t0 + 10000000, &d), TS_ERR_POLICY_RATE);
	/* decide-only (items 2..n of a batch) consumes nothing */
	q.count = 0;
	q.decide_only = 1;
	for (i = 0; i < 20; i++)
		assert_int_equal(decide(p, &a, &q, t0 + 10000000, &d), 0);
	q.decide_only = 0;
	for (i = 0; i < 5; i++)
		assert_int_equal(decide(p, &a, &q, t0 + 10000000, &d), 0);
	assert_int_equal(
	    decide(p, &a, &q, t0 + 10000000, &d), TS_ERR_POLICY_RATE);
	policyrules_free(p);
}

static void
test_concurrency_limit(void **state)
{
	struct policyrules *p = load(POLICY);
	struct policyrules_peer a = tls_peer("runner-a", uris_a, 1);
	struct policyrules_request q;
	struct policyrules_decision d;
	struct policyrules_ticket *t1, *t2, *t3;

	(void)state;
	q = payload_req("release-p256", "registry.example.com/team-a/app");
	assert_int_equal(policyrules_check(p, &a, &q, 0, &d, &t1), 0);
	assert_int_equal(policyrules_check(p, &a, &q, 0, &d, &t2), 0);
	assert_int_equal(
	    policyrules_check(p, &a, &q, 0, &d, &t3), TS_ERR_POLICY_BUSY);
	assert_null(t3);
	assert_non_null(strstr(d.message, "at most 2"));
	policyrules_release(t1);
	/* the busy refusal did not eat a rate token: 3 left of 5 */
	assert_int_equal(policyrules_check(p, &a, &q, 0, &d, &t3), 0);
	/* further items of a request holding a slot: rate only, no slot */
	q.no_slot = 1;
	assert_int_equal(policyrules_check(p, &a, &q, 0, &d, &t1), 0);
	assert_null(t1);
	q.no_slot = 0;
	/* ... and it spent a token: 4 of 5 used, the slots still full */
	assert_int_equal(
	    policyrules_check(p, &a, &q, 0, &d, &t1), TS_ERR_POLICY_BUSY);
	policyrules_release(t2);
	policyrules_release(t3);
	assert_int_equal(decide(p, &a, &q, 0, &d), 0);
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_RATE);
	policyrules_free(p);
}

static void
test_reload(void **state)
{
	struct policyrules *p = load(POLICY);
	struct policyrules_peer a = tls_peer("runner-a", uris_a, 1);
	struct policyrules_request q;
	struct policyrules_decision d;
	struct policyrules_ticket *t1, *t2;
	char err[256];
	const char *bad = "{\"version\": 1, \"rules\": [{\"name\": \"x\"}]}";
	const char *newp =
	    "{\"version\": 1, \"rules\": ["
	    " {\"name\": \"team-a\","
	    "  \"match\": {\"tls_uri\": \"spiffe://ci.example/runner-a\"},"
	    "  \"keys\": \"*\", \"repositories\": \"registry.example.com/**\","
	    "  \"rate_per_minute\": 5, \"max_concurrent\": 2}]}";
	char path[] = "/tmp/ts-policy-XXXXXX";
	FILE *f;
	int fd;

	(void)state;
	q = payload_req("release-p256", "registry.example.com/team-b/app");
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_DENIED);
	q = payload_req("release-p256", "registry.example.com/team-a/app");
	assert_int_equal(policyrules_check(p, &a, &q, 0, &d, &t1), 0);
	assert_int_equal(decide(p, &a, &q, 0, &d), 0);

	/* a bad file is refused with a reason and the old rules stay */
	assert_int_equal(
	    policyrules_reload_buf(p, bad, strlen(bad), err, sizeof(err)),
	    TS_ERR_CONFIG);
	assert_non_null(strstr(err, "\"match\" is required"));
	assert_int_equal(policyrules_count(p), 4);

	/* through a real file, as SIGHUP does */
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	assert_int_equal(fputs(newp, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(policyrules_reload(p, path, err, sizeof(err)), 0);
	unlink(path);
	assert_int_equal(policyrules_count(p), 1);
	q = payload_req("release-p256", "registry.example.com/team-b/app");
	assert_int_equal(policyrules_check(p, &a, &q, 0, &d, &t2), 0);
	/* same rule name: the in-flight request from before still counts */
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_BUSY);
	policyrules_release(t1); /* a ticket from the old rule set */
	/* ... and so do the 3 tokens spent: 2 left of 5 */
	assert_int_equal(decide(p, &a, &q, 0, &d), 0);
	assert_int_equal(decide(p, &a, &q, 0, &d), 0);
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_RATE);
	policyrules_release(t2);
	/* unknown identity now: runner-b's rule is gone */
	a = tls_peer("runner-b", NULL, 0);
	assert_int_equal(decide(p, &a, &q, 0, &d), TS_ERR_POLICY_PEER);
	assert_int_equal(
	    policyrules_reload(p, "/nonexistent/policy.json", err, sizeof(err)),
	    TS_ERR_CONFIG);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(policyrules_count(p), 1);
	/* tickets outlive the holder */
	a = tls_peer("runner-a", uris_a, 1);
	assert_int_equal(policyrules_check(p, &a, &q, 120000, &d, &t1), 0);
	policyrules_free(p);
	policyrules_release(t1);
}

struct hammer {
	struct policyrules *p;
	int allowed;
};

static void *
hammer_thread(void *arg)
{
	struct hammer *h = arg;
	struct policyrules_peer u = unix_peer(7, 7);
	struct policyrules_request q = { .op = POLICYRULES_OP_DIGEST };
	struct policyrules_decision d;
	struct policyrules_ticket *t;
	int i;

	q.key_label = "k";
	for (i = 0; i < 2000; i++) {
		if (policyrules_check(h->p, &u, &q, 5, &d, &t) == 0) {
			h->allowed++;
			policyrules_release(t);
		}
	}
	return NULL;
}

static void
test_threads(void **state)
{
	struct policyrules *p =
	    load("{\"version\": 1, \"rules\": [{"
		 "\"name\": \"u\", \"match\": {\"uid\": 7},"
		 "\"keys\": \"*\", \"rate_per_minute\": 777}]}");
	struct hammer h[8];
	pthread_t th[8];
	int i, total = 0;

	(void)state;
	for (i = 0; i < 8; i++) {
		h[i].p = p;
		h[i].allowed = 0;
		assert_int_equal(
		    pthread_create(&th[i], NULL, hammer_thread, &h[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		total += h[i].allowed;
	}
	/* the clock stood still: exactly the bucket, never more */
	assert_int_equal(total, 777);
	policyrules_free(p);
}

static void
expect_bad(const char *s, int code, const char *msg)
{
	struct policyrules *p = NULL;
	char err[256];

	assert_int_equal(
	    policyrules_load_buf(s, strlen(s), &p, err, sizeof(err)), code);
	assert_null(p);
	if (strstr(err, msg) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, msg);
}

static void
test_parse_errors(void **state)
{
	char *big;

	(void)state;
	expect_bad("", TS_ERR_PARSE, "line");
	expect_bad("[]", TS_ERR_CONFIG, "must be an object");
	expect_bad("{\"rules\": []}", TS_ERR_CONFIG, "\"version\"");
	expect_bad(
	    "{\"version\": 2, \"rules\": []}", TS_ERR_CONFIG, "must be 1");
	expect_bad("{\"version\": 1, \"rules\": [], \"rulez\": 1}",
	    TS_ERR_CONFIG, "unknown top-level field \"rulez\"");
	expect_bad("{\"version\": 1, \"version\": 1, \"rules\": []}",
	    TS_ERR_PARSE, "duplicate");
	expect_bad("{\"version\": 1, \"rules\": []} x", TS_ERR_PARSE, "end");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a b\", "
		   "\"match\": {\"uid\": 1}}]}",
	    TS_ERR_CONFIG, "\"name\" must be");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {}}]}",
	    TS_ERR_CONFIG, "names no identity");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"uid\": 1, \"tls_cn\": \"x\"}}]}",
	    TS_ERR_CONFIG, "not both");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"uid\": -1}}]}",
	    TS_ERR_CONFIG, "not an id");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"tls_san\": \"x\"}}]}",
	    TS_ERR_CONFIG, "unknown match field \"tls_san\"");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"uid\": 1}, \"repositores\": \"x\"}]}",
	    TS_ERR_CONFIG, "unknown field \"repositores\"");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"uid\": 1}, \"repositories\": \"a/***\"}]}",
	    TS_ERR_CONFIG, "repository pattern");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"uid\": 1}, \"repositories\": []}]}",
	    TS_ERR_CONFIG, "must list 1..");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"tls_cn\": \"\"}}]}",
	    TS_ERR_CONFIG, "is empty");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"tls_cn\": \"a\\nb\"}}]}",
	    TS_ERR_CONFIG, "control characters");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"tls_cn\": \"a\\u0000b\"}}]}",
	    TS_ERR_PARSE, "NUL");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"uid\": 1}, \"raw_digest\": 1}]}",
	    TS_ERR_CONFIG, "true or false");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"uid\": 1}, \"rate_per_minute\": 1.5}]}",
	    TS_ERR_CONFIG, "rate_per_minute");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"uid\": 1}, \"max_concurrent\": 99999999}]}",
	    TS_ERR_CONFIG, "max_concurrent");
	expect_bad("{\"version\": 1, \"rules\": ["
		   "{\"name\": \"a\", \"match\": {\"uid\": 1}},"
		   "{\"name\": \"a\", \"match\": {\"uid\": 2}}]}",
	    TS_ERR_CONFIG, "used twice");
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"transport\": \"udp\"}}]}",
	    TS_ERR_CONFIG, "\"transport\" must be");
	/* one byte over the size cap */
	assert_non_null(big = malloc(POLICYRULES_MAX_FILE + 2));
	memset(big, ' ', POLICYRULES_MAX_FILE + 1);
	big[POLICYRULES_MAX_FILE + 1] = '\0';
	expect_bad(big, TS_ERR_TOO_LARGE, "larger than");
	free(big);
	expect_bad("{\"version\": 1, \"rules\": [{\"name\": \"a\", "
		   "\"match\": {\"uid\": 1}, \"keys\": [1]}]}",
	    TS_ERR_CONFIG, "\"keys\"[0] is not a string");
}

static void
test_transport_wildcard(void **state)
{
	struct policyrules *p =
	    load("{\"version\": 1, \"rules\": [{\"name\": \"any-tls\", "
		 "\"match\": {\"transport\": \"tls\"}, \"keys\": \"*\", "
		 "\"repositories\": \"**\"}]}");
	struct policyrules_peer a = tls_peer("whoever", NULL, 0);
	struct policyrules_peer u = unix_peer(0, 0);
	struct policyrules_request q = payload_req("k", "r.example/x/y");
	struct policyrules_decision d;

	(void)state;
	assert_int_equal(decide(p, &a, &q, 0, &d), 0);
	assert_int_equal(decide(p, &u, &q, 0, &d), TS_ERR_POLICY_PEER);
	/* no "repositories" in a rule: no payload at all */
	policyrules_free(p);
	p = load("{\"version\": 1, \"rules\": [{\"name\": \"u\", "
		 "\"match\": {\"uid\": 0}, \"keys\": \"*\"}]}");
	assert_int_equal(decide(p, &u, &q, 0, &d), TS_ERR_POLICY_DENIED);
	/* no "keys": no key */
	policyrules_free(p);
	p = load("{\"version\": 1, \"rules\": [{\"name\": \"u\", "
		 "\"match\": {\"uid\": 0}, \"repositories\": \"**\"}]}");
	assert_int_equal(decide(p, &u, &q, 0, &d), TS_ERR_POLICY_DENIED);
	policyrules_free(p);
}

static void
test_glob(void **state)
{
	(void)state;
	assert_true(policyrules_glob_match("a/*", "a/b"));
	assert_true(policyrules_glob_match("a/*", "a/"));
	assert_false(policyrules_glob_match("a/*", "a/b/c"));
	assert_true(policyrules_glob_match("a/**", "a/b/c"));
	assert_true(policyrules_glob_match("a/**/c", "a/b/x/c"));
	assert_true(policyrules_glob_match("a/**/c", "a//c"));
	assert_false(policyrules_glob_match("a/**/c", "a/c"));
	assert_true(policyrules_glob_match("a/?", "a/b"));
	assert_false(policyrules_glob_match("a/?", "a//"));
	assert_false(policyrules_glob_match("a/?", "a/bc"));
	assert_true(
	    policyrules_glob_match("r.io/team-*/app", "r.io/team-x/app"));
	assert_false(
	    policyrules_glob_match("r.io/team-*/app", "r.io/team-x/y/app"));
	assert_true(policyrules_glob_match("**", ""));
	assert_true(policyrules_glob_match("", ""));
	assert_false(policyrules_glob_match("", "a"));
	assert_false(policyrules_glob_match("abc", "ab"));
	assert_false(policyrules_glob_match("Reg/x", "reg/x")); /* case */
	/* pathological: many stars against a long non-match stays fast */
	assert_false(policyrules_glob_match(
	    "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allowed_repo),
		cmocka_unit_test(test_other_repo_denied),
		cmocka_unit_test(test_key_denial_reveals_nothing),
		cmocka_unit_test(test_default_deny_and_matching),
		cmocka_unit_test(test_raw_digest),
		cmocka_unit_test(test_missing_annotation),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_concurrency_limit),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_transport_wildcard),
		cmocka_unit_test(test_glob),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
