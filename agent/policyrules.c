/*
 * policyrules.c - the build-farm policy file and its decisions.
 *
 * File format in docs/policy.md; design notes in
 * docs/internals/policyrules.md.  Parsing is strict: unknown members,
 * duplicate keys, wrong types, empty or oversized strings and control
 * characters are errors naming the rule and field, because a typo in a
 * policy ("repositores") must not silently widen or narrow it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/err.h"
#include "common/log.h"
#include "agent/peer.h"
#include "agent/policyrules.h"

#define MS_PER_MINUTE	  60000ULL
#define GLOB_MAX_REF	  1024 /* longer references never match */
#define POLICY_VERSION	  1
#define DEFAULT_DENY_RULE "default-deny"

/*
 * Rate and concurrency state of one rule name.  Shared between the rule
 * sets before and after a reload and with outstanding tickets, hence
 * refcounted and locked on its own.
 */
struct rule_counters {
	pthread_mutex_t mu;
	unsigned int refs;
	/* token bucket in units of 1/60000 signature: +rate per ms */
	uint64_t tokens;
	uint64_t last_ms;
	int primed;
	unsigned int inflight;
};

struct strlist {
	char **v;
	size_t n;
};

struct rule {
	char *name;
	enum policyrules_transport transport;
	/* match: any-of within a list, all-of across lists */
	struct strlist cn, uri, dns;
	long long *uids;
	size_t nuids;
	long long *gids;
	size_t ngids;
	/* permissions */
	struct strlist keys;
	int any_key;
	struct strlist repos;
	int raw_digest;
	struct strlist annots;
	uint32_t rate; /* per minute, 0 = unlimited */
	uint32_t max_conc; /* 0 = unlimited */
	struct rule_counters *ctr;
};

struct ruleset {
	struct rule *rules;
	size_t n;
};

struct policyrules {
	pthread_rwlock_t lock; /* read: check; write: swap */
	struct ruleset *cur;
};

struct policyrules_ticket {
	struct rule_counters *ctr;
};

/* counters */

static struct rule_counters *
counters_new(void)
{
	struct rule_counters *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return NULL;
	}
	c->refs = 1;
	return c;
}

static void
counters_ref(struct rule_counters *c)
{
	pthread_mutex_lock(&c->mu);
	c->refs++;
	pthread_mutex_unlock(&c->mu);
}

static void
counters_unref(struct rule_counters *c)
{
	unsigned int left;

	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	left = --c->refs;
	pthread_mutex_unlock(&c->mu);
	if (left == 0) {
		pthread_mutex_destroy(&c->mu);
		free(c);
	}
}

/* rule sets */

static void
strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void
rule_cleanup(struct rule *r)
{
	free(r->name);
	strlist_free(&r->cn);
	strlist_free(&r->uri);
	strlist_free(&r->dns);
	free(r->uids);
	free(r->gids);
	strlist_free(&r->keys);
	strlist_free(&r->repos);
	strlist_free(&r->annots);
	counters_unref(r->ctr);
}

static void
ruleset_free(struct ruleset *rs)
{
	size_t i;

	if (rs == NULL)
		return;
	for (i = 0; i < rs->n; i++)
		rule_cleanup(&rs->rules[i]);
	free(rs->rules);
	free(rs);
}

/* parsing */

struct perr {
	char *buf;
	size_t len;
};

static int perr_set(struct perr *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
perr_set(struct perr *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e->buf != NULL && e->len > 0) {
		va_start(ap, fmt);
		vsnprintf(e->buf, e->len, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int
text_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > POLICYRULES_MAX_STRING)
		return 0;
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	}
	return 1;
}

/* A string, or an array of strings, into l (any-of semantics). */
static int
parse_strlist(json_t *v, struct strlist *l, const char *rule, const char *field,
    struct perr *e)
{
	json_t *item;
	size_t i, n;
	const char *s;

	if (json_is_string(v)) {
		n = 1;
	} else if (json_is_array(v)) {
		n = json_array_size(v);
		if (n == 0 || n > POLICYRULES_MAX_LIST)
			return perr_set(e, TS_ERR_CONFIG,
			    "rule \"%s\": \"%s\" must list 1..%d strings", rule,
			    field, POLICYRULES_MAX_LIST);
	} else {
		return perr_set(e, TS_ERR_CONFIG,
		    "rule \"%s\": \"%s\" must be a string or an array of "
		    "strings",
		    rule, field);
	}
	if ((l->v = calloc(n, sizeof(*l->v))) == NULL)
		return TS_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		item = json_is_string(v) ? v : json_array_get(v, i);
		if (!json_is_string(item))
			return perr_set(e, TS_ERR_CONFIG,
			    "rule \"%s\": \"%s\"[%zu] is not a string", rule,
			    field, i);
		s = json_string_value(item);
		if (!text_ok(s, json_string_length(item)))
			return perr_set(e, TS_ERR_CONFIG,
			    "rule \"%s\": \"%s\"[%zu] is empty, longer than "
			    "%d bytes or has control characters",
			    rule, field, i, POLICYRULES_MAX_STRING);
		if ((l->v[i] = strdup(s)) == NULL)
			return TS_ERR_ALLOC;
		l->n = i + 1;
	}
	return 0;
}

static int
parse_idlist(json_t *v, long long **out, size_t *nout, const char *rule,
    const char *field, struct perr *e)
{
	json_t *item;
	size_t i, n;
	long long x;

	n = json_is_array(v) ? json_array_size(v) : 1;
	if (!json_is_array(v) && !json_is_integer(v))
		return perr_set(e, TS_ERR_CONFIG,
		    "rule \"%s\": \"%s\" must be an integer or an array of "
		    "integers",
		    rule, field);
	if (n == 0 || n > POLICYRULES_MAX_LIST)
		return perr_set(e, TS_ERR_CONFIG,
		    "rule \"%s\": \"%s\" must list 1..%d ids", rule, field,
		    POLICYRULES_MAX_LIST);
	if ((*out = calloc(n, sizeof(**out))) == NULL)
		return TS_ERR_ALLOC;
	for (i = 0; i < n; i++) {
		item = json_is_array(v) ? json_array_get(v, i) : v;
		if (!json_is_integer(item) ||
		    (x = json_integer_value(item)) < 0 || x > 0x7fffffffLL)
			return perr_set(e, TS_ERR_CONFIG,
			    "rule \"%s\": \"%s\"[%zu] is not an id 0..2^31-1",
			    rule, field, i);
		(*out)[i] = x;
		*nout = i + 1;
	}
	return 0;
}

static int
parse_limit(json_t *v, uint32_t max, uint32_t *out, const char *rule,
    const char *field, struct perr *e)
{
	long long x;

	if (!json_is_integer(v) || (x = json_integer_value(v)) < 0 ||
	    x > (long long)max)
		return perr_set(e, TS_ERR_CONFIG,
		    "rule \"%s\": \"%s\" must be an integer 0..%u (0: no "
		    "limit)",
		    rule, field, max);
	*out = (uint32_t)x;
	return 0;
}

/* Rule names end up in audit lines and client messages: keep them tame. */
static int
name_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > POLICYRULES_RULE_NAME_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '_' ||
			c == '.'))
			return 0;
	}
	return 1;
}

/* Repository patterns: no whitespace, and '*' runs of at most two. */
static int
pattern_ok(const char *p)
{
	size_t i, run = 0;

	for (i = 0; p[i] != '\0'; i++) {
		if (p[i] == ' ' || p[i] == '[' || p[i] == '\\')
			return 0;
		run = p[i] == '*' ? run + 1 : 0;
		if (run > 2)
			return 0;
	}
	return 1;
}

static int
parse_match(json_t *m, struct rule *r, struct perr *e)
{
	const char *k;
	json_t *v;
	int tls = 0, unx = 0, any = 0, rv;

	if (!json_is_object(m))
		return perr_set(e, TS_ERR_CONFIG,
		    "rule \"%s\": \"match\" must be an object", r->name);
	json_object_foreach(m, k, v)
	{
		if (strcmp(k, "transport") == 0) {
			if (!json_is_string(v))
				goto badtransport;
			if (strcmp(json_string_value(v), "tls") == 0)
				tls = 1;
			else if (strcmp(json_string_value(v), "unix") == 0)
				unx = 1;
			else
				goto badtransport;
			continue;
		}
		any = 1;
		if (strcmp(k, "tls_cn") == 0) {
			tls = 1;
			rv = parse_strlist(v, &r->cn, r->name, k, e);
		} else if (strcmp(k, "tls_uri") == 0) {
			tls = 1;
			rv = parse_strlist(v, &r->uri, r->name, k, e);
		} else if (strcmp(k, "tls_dns") == 0) {
			tls = 1;
			rv = parse_strlist(v, &r->dns, r->name, k, e);
		} else if (strcmp(k, "uid") == 0) {
			unx = 1;
			rv =
			    parse_idlist(v, &r->uids, &r->nuids, r->name, k, e);
		} else if (strcmp(k, "gid") == 0) {
			unx = 1;
			rv =
			    parse_idlist(v, &r->gids, &r->ngids, r->name, k, e);
		} else {
			return perr_set(e, TS_ERR_CONFIG,
			    "rule \"%s\": unknown match field \"%.64s\"",
			    r->name, k);
		}
		if (rv != 0)
			return rv;
	}
	if (tls && unx)
		return perr_set(e, TS_ERR_CONFIG,
		    "rule \"%s\": a rule matches either TLS or Unix peers, "
		    "not both",
		    r->name);
	if (!tls && !unx)
		return perr_set(e, TS_ERR_CONFIG,
		    "rule \"%s\": \"match\" names no identity (use "
		    "\"transport\" to match every peer of a transport)",
		    r->name);
	(void)any;
	r->transport = tls ? POLICYRULES_PEER_TLS : POLICYRULES_PEER_UNIX;
	return 0;
badtransport:
	return perr_set(e, TS_ERR_CONFIG,
	    "rule \"%s\": \"transport\" must be \"tls\" or \"unix\"", r->name);
}

static int
parse_rule(json_t *o, size_t idx, struct rule *r, struct perr *e)
{
	const char *k;
	json_t *v, *name, *match;
	size_t i;
	int rv, have_raw = 0;

	if (!json_is_object(o))
		return perr_set(
		    e, TS_ERR_CONFIG, "rules[%zu] is not an object", idx);
	name = json_object_get(o, "name");
	if (!json_is_string(name) ||
	    !name_ok(json_string_value(name), json_string_length(name)))
		return perr_set(e, TS_ERR_CONFIG,
		    "rules[%zu]: \"name\" must be 1..%d of [A-Za-z0-9._-]", idx,
		    POLICYRULES_RULE_NAME_MAX);
	if ((r->name = strdup(json_string_value(name))) == NULL)
		return TS_ERR_ALLOC;
	if ((match = json_object_get(o, "match")) == NULL)
		return perr_set(e, TS_ERR_CONFIG,
		    "rule \"%s\": \"match\" is required", r->name);
	if ((rv = parse_match(match, r, e)) != 0)
		return rv;
	json_object_foreach(o, k, v)
	{
		rv = 0;
		if (strcmp(k, "name") == 0 || strcmp(k, "match") == 0 ||
		    strcmp(k, "comment") == 0) {
			continue;
		} else if (strcmp(k, "keys") == 0) {
			rv = parse_strlist(v, &r->keys, r->name, k, e);
		} else if (strcmp(k, "repositories") == 0) {
			rv = parse_strlist(v, &r->repos, r->name, k, e);
			for (i = 0; rv == 0 && i < r->repos.n; i++) {
				if (!pattern_ok(r->repos.v[i]))
					rv = perr_set(e, TS_ERR_CONFIG,
					    "rule \"%s\": repository pattern "
					    "\"%.100s\": no spaces, '[', '\\' "
					    "or '***'",
					    r->name, r->repos.v[i]);
			}
		} else if (strcmp(k, "raw_digest") == 0) {
			if (!json_is_boolean(v))
				rv = perr_set(e, TS_ERR_CONFIG,
				    "rule \"%s\": \"raw_digest\" must be "
				    "true or false",
				    r->name);
			r->raw_digest = json_is_true(v);
			have_raw = 1;
		} else if (strcmp(k, "required_annotations") == 0) {
			rv = parse_strlist(v, &r->annots, r->name, k, e);
		} else if (strcmp(k, "rate_per_minute") == 0) {
			rv = parse_limit(
			    v, POLICYRULES_MAX_RATE, &r->rate, r->name, k, e);
		} else if (strcmp(k, "max_concurrent") == 0) {
			rv = parse_limit(v, POLICYRULES_MAX_CONC, &r->max_conc,
			    r->name, k, e);
		} else {
			rv = perr_set(e, TS_ERR_CONFIG,
			    "rule \"%s\": unknown field \"%.64s\"", r->name, k);
		}
		if (rv != 0)
			return rv;
	}
	for (i = 0; i < r->keys.n; i++) {
		if (strcmp(r->keys.v[i], "*") == 0)
			r->any_key = 1;
	}
	/* Blind digest signing: off for the network, on for local peers. */
	if (!have_raw)
		r->raw_digest = r->transport == POLICYRULES_PEER_UNIX;
	return 0;
}

static int
parse_ruleset(const char *buf, size_t len, struct ruleset **out, struct perr *e)
{
	struct ruleset *rs = NULL;
	json_t *root = NULL, *rules, *v;
	json_error_t jerr;
	const char *k;
	size_t i, j, n;
	int rv = TS_ERR_INTERNAL;

	*out = NULL;
	if (len > POLICYRULES_MAX_FILE) {
		rv = perr_set(e, TS_ERR_TOO_LARGE,
		    "policy larger than %d bytes", POLICYRULES_MAX_FILE);
		goto out;
	}
	if ((root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		rv = perr_set(e, TS_ERR_PARSE, "line %d column %d: %.100s",
		    jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		rv = perr_set(e, TS_ERR_CONFIG, "policy must be an object");
		goto out;
	}
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "version") == 0) {
			if (!json_is_integer(v) ||
			    json_integer_value(v) != POLICY_VERSION) {
				rv = perr_set(e, TS_ERR_CONFIG,
				    "\"version\" must be %d", POLICY_VERSION);
				goto out;
			}
		} else if (strcmp(k, "rules") != 0 &&
		    strcmp(k, "comment") != 0) {
			rv = perr_set(e, TS_ERR_CONFIG,
			    "unknown top-level field \"%.64s\"", k);
			goto out;
		}
	}
	if (json_object_get(root, "version") == NULL) {
		rv = perr_set(e, TS_ERR_CONFIG, "\"version\": %d is required",
		    POLICY_VERSION);
		goto out;
	}
	rules = json_object_get(root, "rules");
	if (!json_is_array(rules) ||
	    (n = json_array_size(rules)) > POLICYRULES_MAX_RULES) {
		rv = perr_set(e, TS_ERR_CONFIG,
		    "\"rules\" must be an array of at most %d rules",
		    POLICYRULES_MAX_RULES);
		goto out;
	}
	if ((rs = calloc(1, sizeof(*rs))) == NULL ||
	    (n > 0 && (rs->rules = calloc(n, sizeof(*rs->rules))) == NULL)) {
		rv = TS_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < n; i++) {
		rs->n = i + 1;
		if ((rv = parse_rule(
			 json_array_get(rules, i), i, &rs->rules[i], e)) != 0)
			goto out;
		for (j = 0; j < i; j++) {
			if (strcmp(rs->rules[j].name, rs->rules[i].name) == 0) {
				rv = perr_set(e, TS_ERR_CONFIG,
				    "rule name \"%s\" used twice",
				    rs->rules[i].name);
				goto out;
			}
		}
		if ((rs->rules[i].ctr = counters_new()) == NULL) {
			rv = TS_ERR_ALLOC;
			goto out;
		}
	}
	*out = rs;
	rs = NULL;
	rv = 0;
out:
	if (rv == TS_ERR_ALLOC)
		perr_set(e, rv, "out of memory");
	json_decref(root);
	ruleset_free(rs);
	return rv;
}

static int
read_file(const char *path, char **out, size_t *outlen, struct perr *e)
{
	FILE *f = NULL;
	char *buf = NULL;
	size_t n;
	int rv = TS_ERR_INTERNAL;

	*out = NULL;
	*outlen = 0;
	if ((f = fopen(path, "re")) == NULL) {
		rv = perr_set(
		    e, TS_ERR_CONFIG, "%.200s: %s", path, strerror(errno));
		goto out;
	}
	if ((buf = malloc(POLICYRULES_MAX_FILE + 1)) == NULL) {
		rv = TS_ERR_ALLOC;
		goto out;
	}
	n = fread(buf, 1, POLICYRULES_MAX_FILE + 1, f);
	if (ferror(f)) {
		rv = perr_set(e, TS_ERR_CONFIG, "%.200s: read error", path);
		goto out;
	}
	if (n > POLICYRULES_MAX_FILE) {
		rv = perr_set(e, TS_ERR_TOO_LARGE,
		    "%.200s: larger than %d bytes", path, POLICYRULES_MAX_FILE);
		goto out;
	}
	*out = buf;
	*outlen = n;
	buf = NULL;
	rv = 0;
out:
	free(buf);
	if (f != NULL)
		fclose(f);
	return rv;
}

/* public: load, reload, free */

int
policyrules_load_buf(const char *buf, size_t len, struct policyrules **out,
    char *errbuf, size_t errlen)
{
	struct perr e = { errbuf, errlen };
	struct policyrules *p = NULL;
	struct ruleset *rs = NULL;
	int rv = TS_ERR_INTERNAL;

	*out = NULL;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if ((rv = parse_ruleset(buf, len, &rs, &e)) != 0)
		goto out;
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		rv = TS_ERR_ALLOC;
		goto out;
	}
	if (pthread_rwlock_init(&p->lock, NULL) != 0) {
		free(p);
		p = NULL;
		rv = TS_ERR_SYSTEM;
		goto out;
	}
	p->cur = rs;
	rs = NULL;
	*out = p;
	rv = 0;
out:
	ruleset_free(rs);
	return rv;
}

int
policyrules_load_file(
    const char *path, struct policyrules **out, char *errbuf, size_t errlen)
{
	struct perr e = { errbuf, errlen };
	char *buf = NULL;
	size_t len;
	int rv;

	*out = NULL;
	if ((rv = read_file(path, &buf, &len, &e)) == 0)
		rv = policyrules_load_buf(buf, len, out, errbuf, errlen);
	free(buf);
	return rv;
}

int
policyrules_reload_buf(struct policyrules *p, const char *buf, size_t len,
    char *errbuf, size_t errlen)
{
	struct perr e = { errbuf, errlen };
	struct ruleset *rs = NULL, *old;
	size_t i, j;
	int rv;

	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	if ((rv = parse_ruleset(buf, len, &rs, &e)) != 0)
		return rv;
	pthread_rwlock_wrlock(&p->lock);
	old = p->cur;
	/* Same rule name: keep its rate window and in-flight count. */
	for (i = 0; i < rs->n; i++) {
		for (j = 0; j < old->n; j++) {
			if (strcmp(rs->rules[i].name, old->rules[j].name) != 0)
				continue;
			counters_unref(rs->rules[i].ctr);
			counters_ref(old->rules[j].ctr);
			rs->rules[i].ctr = old->rules[j].ctr;
			break;
		}
	}
	p->cur = rs;
	pthread_rwlock_unlock(&p->lock);
	ruleset_free(old);
	return 0;
}

int
policyrules_reload(
    struct policyrules *p, const char *path, char *errbuf, size_t errlen)
{
	struct perr e = { errbuf, errlen };
	char *buf = NULL;
	size_t len;
	int rv;

	if ((rv = read_file(path, &buf, &len, &e)) == 0)
		rv = policyrules_reload_buf(p, buf, len, errbuf, errlen);
	free(buf);
	return rv;
}

void
policyrules_free(struct policyrules *p)
{
	if (p == NULL)
		return;
	ruleset_free(p->cur);
	pthread_rwlock_destroy(&p->lock);
	free(p);
}

size_t
policyrules_count(struct policyrules *p)
{
	size_t n;

	pthread_rwlock_rdlock(&p->lock);
	n = p->cur->n;
	pthread_rwlock_unlock(&p->lock);
	return n;
}

/* matching */

int
policyrules_glob_match(const char *pat, const char *ref)
{
	/*
	 * Dynamic programming over (pattern position, reference prefix):
	 * linear memory and O(|pat| * |ref|) time whatever the stars, so a
	 * hostile pattern or reference cannot make matching exponential.
	 */
	unsigned char a[GLOB_MAX_REF + 1], b[GLOB_MAX_REF + 1];
	unsigned char *prev = a, *cur = b, *t;
	size_t m = strlen(ref), i, j;

	if (m > GLOB_MAX_REF)
		return 0;
	memset(prev, 0, m + 1);
	prev[0] = 1;
	for (i = 0; pat[i] != '\0'; i++) {
		memset(cur, 0, m + 1);
		if (pat[i] == '*' && pat[i + 1] == '*') {
			i++;
			for (j = 0; j <= m; j++)
				cur[j] = prev[j] || (j > 0 && cur[j - 1]);
		} else if (pat[i] == '*') {
			for (j = 0; j <= m; j++)
				cur[j] = prev[j] ||
				    (j > 0 && cur[j - 1] && ref[j - 1] != '/');
		} else if (pat[i] == '?') {
			for (j = 1; j <= m; j++)
				cur[j] = prev[j - 1] && ref[j - 1] != '/';
		} else {
			for (j = 1; j <= m; j++)
				cur[j] = prev[j - 1] && ref[j - 1] == pat[i];
		}
		t = prev;
		prev = cur;
		cur = t;
	}
	return prev[m];
}

static int
in_list(const struct strlist *l, const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], s) == 0)
			return 1;
	}
	return 0;
}

static int
any_in_list(const struct strlist *l, const char *const *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (in_list(l, v[i]))
			return 1;
	}
	return 0;
}

static int
id_in(const long long *ids, size_t n, long long x)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (ids[i] == x)
			return 1;
	}
	return 0;
}

static int
rule_matches(const struct rule *r, const struct policyrules_peer *peer)
{
	size_t i;
	int g;

	if (r->transport != peer->transport)
		return 0;
	if (peer->transport == POLICYRULES_PEER_TLS) {
		if (r->cn.n > 0 && !in_list(&r->cn, peer->cn))
			return 0;
		if (r->uri.n > 0 &&
		    !any_in_list(&r->uri, peer->uris, peer->nuris))
			return 0;
		if (r->dns.n > 0 &&
		    !any_in_list(&r->dns, peer->dns, peer->ndns))
			return 0;
		return 1;
	}
	if (r->nuids > 0 && !id_in(r->uids, r->nuids, (long long)peer->uid))
		return 0;
	if (r->ngids > 0) {
		g = id_in(r->gids, r->ngids, (long long)peer->gid);
		for (i = 0; !g && i < peer->ngroups; i++)
			g = id_in(
			    r->gids, r->ngids, (long long)peer->groups[i]);
		if (!g)
			return 0;
	}
	return 1;
}

static int
key_allowed(const struct rule *r, const struct policyrules_request *req)
{
	if (r->any_key)
		return 1;
	return in_list(&r->keys, req->key_id) ||
	    in_list(&r->keys, req->key_label) ||
	    in_list(&r->keys, req->key_uri);
}

static const char *
annotation(const struct policyrules_request *req, const char *key)
{
	size_t i;

	for (i = 0; i < req->nannot; i++) {
		if (req->annot_keys[i] != NULL &&
		    strcmp(req->annot_keys[i], key) == 0)
			return req->annot_values[i];
	}
	return NULL;
}

static int deny(struct policyrules_decision *d, int code, const char *rule,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
deny(struct policyrules_decision *d, int code, const char *rule,
    const char *fmt, ...)
{
	va_list ap;

	d->allowed = 0;
	d->code = code;
	snprintf(d->rule, sizeof(d->rule), "%s", rule);
	va_start(ap, fmt);
	vsnprintf(d->message, sizeof(d->message), fmt, ap);
	va_end(ap);
	return code;
}

/* Takes a slot and count tokens, or says which limit refused. */
static int
take_counters(const struct rule *r, unsigned int count, int slot,
    uint64_t now_ms, struct policyrules_decision *d)
{
	struct rule_counters *c = r->ctr;
	uint64_t cap, cost, elapsed;
	int rv = 0;

	pthread_mutex_lock(&c->mu);
	if (slot && r->max_conc != 0 && c->inflight >= r->max_conc) {
		rv = deny(d, TS_ERR_POLICY_BUSY, r->name,
		    "policy rule \"%s\": too many concurrent requests "
		    "(at most %u)",
		    r->name, r->max_conc);
		goto out;
	}
	if (r->rate != 0) {
		/* token bucket: capacity rate, refilled rate per minute */
		cap = (uint64_t)r->rate * MS_PER_MINUTE;
		cost = (uint64_t)count * MS_PER_MINUTE;
		if (!c->primed) {
			c->tokens = cap;
			c->last_ms = now_ms;
			c->primed = 1;
		}
		if (now_ms > c->last_ms) {
			elapsed = now_ms - c->last_ms;
			if (elapsed > MS_PER_MINUTE)
				elapsed = MS_PER_MINUTE;
			c->tokens += elapsed * r->rate;
			c->last_ms = now_ms;
		}
		if (c->tokens > cap) /* also after a reload lowered it */
			c->tokens = cap;
		if (cost > c->tokens) {
			rv = deny(d, TS_ERR_POLICY_RATE, r->name,
			    "policy rule \"%s\": rate limit of %u signatures "
			    "per minute reached; retry later",
			    r->name, r->rate);
			goto out;
		}
		c->tokens -= cost;
	}
	if (slot)
		c->inflight++;
out:
	pthread_mutex_unlock(&c->mu);
	return rv;
}

int
policyrules_check(struct policyrules *p, const struct policyrules_peer *peer,
    const struct policyrules_request *req, uint64_t now_ms,
    struct policyrules_decision *d, struct policyrules_ticket **ticket)
{
	const struct rule *r = NULL;
	struct policyrules_ticket *t = NULL;
	const char *v;
	unsigned int count;
	size_t i;
	int rv = TS_ERR_INTERNAL;

	*ticket = NULL;
	memset(d, 0, sizeof(*d));
	pthread_rwlock_rdlock(&p->lock);
	for (i = 0; i < p->cur->n; i++) {
		if (rule_matches(&p->cur->rules[i], peer)) {
			r = &p->cur->rules[i];
			break;
		}
	}
	if (r == NULL) {
		rv = deny(d, TS_ERR_POLICY_PEER, DEFAULT_DENY_RULE,
		    "no policy rule for this client");
		goto out;
	}
	/*
	 * Same words whether the key exists or not, and no list of the keys
	 * that would have been allowed: a client learns nothing by probing.
	 */
	if (!key_allowed(r, req)) {
		rv = deny(d, TS_ERR_POLICY_DENIED, r->name,
		    "policy rule \"%s\": this key may not be used", r->name);
		goto out;
	}
	if (req->op == POLICYRULES_OP_DIGEST) {
		if (!r->raw_digest) {
			rv = deny(d, TS_ERR_POLICY_DIGEST, r->name,
			    "policy rule \"%s\": raw digest signing not "
			    "allowed; sign a payload",
			    r->name);
			goto out;
		}
	} else if (req->op == POLICYRULES_OP_PAYLOAD) {
		if (req->docker_reference == NULL) {
			rv = deny(d, TS_ERR_POLICY_DENIED, r->name,
			    "policy rule \"%s\": payload names no repository",
			    r->name);
			goto out;
		}
		for (i = 0; i < r->repos.n; i++) {
			if (policyrules_glob_match(
				r->repos.v[i], req->docker_reference))
				break;
		}
		if (i == r->repos.n) {
			rv = deny(d, TS_ERR_POLICY_DENIED, r->name,
			    "policy rule \"%s\": repository \"%.100s\" not "
			    "allowed",
			    r->name, req->docker_reference);
			goto out;
		}
		for (i = 0; i < r->annots.n; i++) {
			v = annotation(req, r->annots.v[i]);
			if (v == NULL || *v == '\0') {
				rv = deny(d, TS_ERR_POLICY_DENIED, r->name,
				    "policy rule \"%s\": required annotation "
				    "\"%s\" missing",
				    r->name, r->annots.v[i]);
				goto out;
			}
		}
	} else {
		rv = deny(d, TS_ERR_INVALID_ARG, r->name, "unknown operation");
		goto out;
	}
	if (req->decide_only) {
		d->allowed = 1;
		snprintf(d->rule, sizeof(d->rule), "%s", r->name);
		snprintf(d->message, sizeof(d->message),
		    "allowed by rule \"%s\"", r->name);
		rv = 0;
		goto out;
	}
	count = req->count == 0 ? 1 : req->count;
	if (!req->no_slot && (t = calloc(1, sizeof(*t))) == NULL) {
		rv = deny(d, TS_ERR_ALLOC, r->name, "out of memory");
		goto out;
	}
	if ((rv = take_counters(r, count, !req->no_slot, now_ms, d)) != 0)
		goto out;
	if (t != NULL) {
		counters_ref(r->ctr);
		t->ctr = r->ctr;
	}
	d->allowed = 1;
	snprintf(d->rule, sizeof(d->rule), "%s", r->name);
	snprintf(
	    d->message, sizeof(d->message), "allowed by rule \"%s\"", r->name);
	*ticket = t;
	t = NULL;
	rv = 0;
out:
	pthread_rwlock_unlock(&p->lock);
	free(t);
	return rv;
}

void
policyrules_release(struct policyrules_ticket *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->ctr->mu);
	if (t->ctr->inflight > 0)
		t->ctr->inflight--;
	pthread_mutex_unlock(&t->ctr->mu);
	counters_unref(t->ctr);
	free(t);
}

int
policyrules_peer_known(struct policyrules *p,
    const struct policyrules_peer *peer, char *rule, size_t rulelen)
{
	size_t i;
	int found = 0;

	pthread_rwlock_rdlock(&p->lock);
	for (i = 0; i < p->cur->n; i++) {
		if (rule_matches(&p->cur->rules[i], peer)) {
			if (rule != NULL && rulelen > 0)
				snprintf(
				    rule, rulelen, "%s", p->cur->rules[i].name);
			found = 1;
			break;
		}
	}
	pthread_rwlock_unlock(&p->lock);
	return found;
}

void
policyrules_peer_from_agent(
    const struct agent_peer *ap, struct policyrules_agent_peer *out)
{
	const char *s, *end;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (ap->transport != PEER_TLS) {
		out->p.transport = POLICYRULES_PEER_UNIX;
		out->p.uid = ap->uid;
		out->p.gid = ap->gid;
		out->p.groups = ap->groups;
		out->p.ngroups = ap->ngroups > 0 ? (size_t)ap->ngroups : 0;
		return;
	}
	out->p.transport = POLICYRULES_PEER_TLS;
	out->p.uris = out->uris;
	out->p.dns = out->dns;
	/* "c:CN\0u:URI\0d:DNS\0..." as packed by listen_tls.c */
	s = ap->tls_names;
	end = ap->tls_names + ap->tls_names_len;
	while (s < end &&
	    (len = strnlen(s, (size_t)(end - s))) < (size_t)(end - s)) {
		if (len > 2 && s[1] == ':') {
			if (s[0] == 'c' && out->p.cn == NULL)
				out->p.cn = s + 2;
			else if (s[0] == 'u' &&
			    out->p.nuris < POLICYRULES_AGENT_NAMES)
				out->uris[out->p.nuris++] = s + 2;
			else if (s[0] == 'd' &&
			    out->p.ndns < POLICYRULES_AGENT_NAMES)
				out->dns[out->p.ndns++] = s + 2;
		}
		s += len + 1;
	}
}
