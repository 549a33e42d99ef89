/*
 * ref.c - image reference parsing and Docker Hub normalisation.  The
 * grammar is docker/distribution's reference/regexp.go, applied component
 * by component with the bounded tokenizer rather than by regular
 * expression, so each failure names what is wrong.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ref.h"
#include "common/err.h"
#include "common/strparse.h"

struct ref {
	char *registry; /* "docker.io" or host[:port] */
	char *api_host;
	char *repository;
	char *tag; /* NULL when only a digest was given */
	int tag_given;
	int has_digest;
	struct digest digest;
	char *identity;
	char *string;
};

static int __attribute__((format(printf, 3, 4)))
fail(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && why_len > 0) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return TS_ERR_REF_INVALID;
}

void
ref_free(struct ref *r)
{
	if (r == NULL)
		return;
	free(r->registry);
	free(r->api_host);
	free(r->repository);
	free(r->tag);
	free(r->identity);
	free(r->string);
	free(r);
}

static int
is_lower_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int
is_host_char(int c)
{
	return strparse_is_alnum(c) || c == '-';
}

static int
is_tag_char(int c)
{
	return strparse_is_alnum(c) || c == '_' || c == '.' || c == '-';
}

static int
is_ipv6_char(int c)
{
	return strparse_is_digit(c) || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/* host := label ('.' label)* [':' port] | '[' ipv6 ']' [':' port] */
static int
check_host(const char *h, size_t len, char *why, size_t why_len)
{
	struct strparse sp;
	struct strslice s;
	uint64_t port;

	strparse_init(&sp, h, len);
	if (strparse_single(&sp, '[') == 0) {
		if (strparse_span(&sp, is_ipv6_char, 45, &s) != 0 ||
		    strparse_single(&sp, ']') != 0)
			return fail(why, why_len,
			    "bad IPv6 address in registry host '%.100s'", h);
	} else {
		for (;;) {
			if (strparse_span(&sp, is_host_char, 63, &s) != 0)
				return fail(why, why_len,
				    "bad registry host '%.*s'", (int)len, h);
			if (s.ptr[0] == '-' || s.ptr[s.len - 1] == '-')
				return fail(why, why_len,
				    "registry host label may not start or "
				    "end with '-': '%.*s'",
				    (int)len, h);
			if (strparse_single(&sp, '.') != 0)
				break;
		}
	}
	if (strparse_single(&sp, ':') == 0) {
		if (strparse_number(&sp, 65535, &port) != 0 || port == 0)
			return fail(why, why_len,
			    "bad port in registry host '%.*s'", (int)len, h);
	}
	if (strparse_left(&sp) != 0)
		return fail(
		    why, why_len, "bad registry host '%.*s'", (int)len, h);
	return 0;
}

/*
 * path-component := alnum+ (separator alnum+)*, separator := '.' | '_' |
 * '__' | '-'+ ; components joined by '/'.  Uppercase is refused with its
 * own message: docker names are lowercase.
 */
static int
check_path(const char *p, size_t len, char *why, size_t why_len)
{
	struct strparse sp;
	struct strslice s;
	size_t i;
	int c, dbl = 0;

	for (i = 0; i < len; i++)
		if (p[i] >= 'A' && p[i] <= 'Z')
			return fail(why, why_len,
			    "repository name must be lowercase: '%.*s'",
			    (int)(len > 200 ? 200 : len), p);
	strparse_init(&sp, p, len);
	for (;;) {
		/* one component */
		for (;;) {
			if (strparse_span(&sp, is_lower_alnum, len, &s) != 0)
				return fail(why, why_len,
				    "bad repository name '%.*s': components "
				    "are [a-z0-9] separated by '.', '_', "
				    "'__' or '-'",
				    (int)(len > 200 ? 200 : len), p);
			c = strparse_peek(&sp);
			if (c != '.' && c != '_' && c != '-')
				break;
			/* '.', '_', '__' or '-'+: consume the separator */
			if (strparse_single(&sp, (char)c) != 0)
				return TS_ERR_INTERNAL;
			while ((c == '-' || (c == '_' && !dbl++)) &&
			    strparse_peek(&sp) == c &&
			    strparse_single(&sp, (char)c) == 0)
				;
			dbl = 0;
		}
		if (strparse_left(&sp) == 0)
			return 0;
		if (strparse_single(&sp, '/') != 0)
			return fail(why, why_len,
			    "bad character '%c' in repository name", c);
	}
}

static char *
xdupn(const char *s, size_t n)
{
	char *r = malloc(n + 1);

	if (r != NULL) {
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

static int
build_strings(struct ref *r)
{
	char dg[DIGEST_STR_MAX] = "";
	size_t n;
	const char *idreg;

	if (r->has_digest && digest_format(&r->digest, dg, sizeof(dg)) != 0)
		return TS_ERR_INTERNAL;
	idreg = strcmp(r->registry, REF_HUB_REGISTRY) == 0 ? REF_HUB_IDENTITY
							   : r->registry;
	n = strlen(idreg) + strlen(r->repository) + 2;
	if ((r->identity = malloc(n)) == NULL)
		return TS_ERR_ALLOC;
	snprintf(r->identity, n, "%s/%s", idreg, r->repository);
	n = strlen(r->registry) + strlen(r->repository) +
	    (r->tag ? strlen(r->tag) : 0) + strlen(dg) + 4;
	if ((r->string = malloc(n)) == NULL)
		return TS_ERR_ALLOC;
	snprintf(r->string, n, "%s/%s%s%s%s%s", r->registry, r->repository,
	    r->tag ? ":" : "", r->tag ? r->tag : "", r->has_digest ? "@" : "",
	    dg);
	return 0;
}

int
ref_parse(const char *s, struct ref **out, char *why, size_t why_len)
{
	struct ref *r = NULL;
	const char *at, *slash, *colon, *name, *host = NULL, *path;
	const char *dwhy = NULL;
	size_t len, name_len, host_len = 0, path_len, i;
	int rr = TS_ERR_INTERNAL;

	*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (s == NULL || (len = strlen(s)) == 0)
		return fail(why, why_len, "empty image reference");
	if (len > REF_MAX_LEN)
		return fail(why, why_len, "image reference too long");
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return fail(why, why_len,
			    "image reference holds a space, control or "
			    "non-ASCII byte");
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return TS_ERR_ALLOC;

	/* [name][@digest] */
	name = s;
	name_len = len;
	if ((at = strchr(s, '@')) != NULL) {
		name_len = (size_t)(at - s);
		if (strchr(at + 1, '@') != NULL) {
			rr = fail(
			    why, why_len, "more than one '@' in '%.100s'", s);
			goto out;
		}
		if ((rr = digest_parse_str(at + 1, &r->digest, &dwhy)) != 0) {
			rr = fail(why, why_len, "bad digest '%.80s': %s",
			    at + 1, dwhy ? dwhy : ts_err(rr));
			goto out;
		}
		r->has_digest = 1;
	}
	if (name_len == 0) {
		rr = fail(
		    why, why_len, "missing repository name in '%.100s'", s);
		goto out;
	}
	/* tag: a ':' after the last '/' */
	slash = memrchr(name, '/', name_len);
	colon = memrchr(slash ? slash : name, ':',
	    name_len - (size_t)((slash ? slash : name) - name));
	if (colon != NULL) {
		size_t tl = name_len - (size_t)(colon - name) - 1;
		struct strparse sp;
		struct strslice ts;

		strparse_init(&sp, colon + 1, tl);
		if (tl == 0 || tl > REF_TAG_MAX ||
		    !(strparse_is_alnum(colon[1]) || colon[1] == '_') ||
		    strparse_span(&sp, is_tag_char, REF_TAG_MAX, &ts) != 0 ||
		    strparse_left(&sp) != 0) {
			rr = fail(why, why_len,
			    "bad tag '%.*s': [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
			    (int)(tl > 130 ? 130 : tl), colon + 1);
			goto out;
		}
		if ((r->tag = xdupn(colon + 1, tl)) == NULL) {
			rr = TS_ERR_ALLOC;
			goto out;
		}
		r->tag_given = 1;
		name_len = (size_t)(colon - name);
	}
	if (name_len > REF_NAME_MAX) {
		rr = fail(why, why_len, "repository name longer than %d bytes",
		    REF_NAME_MAX);
		goto out;
	}
	/* domain: first component with '.' or ':', "localhost", or upper */
	path = name;
	path_len = name_len;
	if ((slash = memchr(name, '/', name_len)) != NULL) {
		size_t fl = (size_t)(slash - name);
		int is_host = fl == 9 && memcmp(name, "localhost", 9) == 0;

		for (i = 0; i < fl && !is_host; i++)
			if (name[i] == '.' || name[i] == ':' ||
			    (name[i] >= 'A' && name[i] <= 'Z'))
				is_host = 1;
		if (is_host) {
			host = name;
			host_len = fl;
			path = slash + 1;
			path_len = name_len - fl - 1;
		}
	}
	if (path_len == 0) {
		rr = fail(
		    why, why_len, "missing repository name in '%.100s'", s);
		goto out;
	}
	if (host != NULL &&
	    (rr = check_host(host, host_len, why, why_len)) != 0)
		goto out;
	if ((rr = check_path(path, path_len, why, why_len)) != 0)
		goto out;

	if (host == NULL ||
	    (host_len == 9 && memcmp(host, "docker.io", 9) == 0) ||
	    (host_len == 15 && memcmp(host, "index.docker.io", 15) == 0)) {
		r->registry = strdup(REF_HUB_REGISTRY);
		r->api_host = strdup(REF_HUB_API_HOST);
		if (memchr(path, '/', path_len) == NULL) {
			if ((r->repository = malloc(path_len + 9)) != NULL) {
				memcpy(r->repository, "library/", 8);
				memcpy(r->repository + 8, path, path_len);
				r->repository[path_len + 8] = '\0';
			}
		} else
			r->repository = xdupn(path, path_len);
	} else {
		r->registry = xdupn(host, host_len);
		r->api_host = xdupn(host, host_len);
		r->repository = xdupn(path, path_len);
	}
	if (r->registry == NULL || r->api_host == NULL ||
	    r->repository == NULL) {
		rr = TS_ERR_ALLOC;
		goto out;
	}
	/* the cap applies to the normalised name, so it survives a re-parse */
	if (strlen(r->registry) + 1 + strlen(r->repository) > REF_NAME_MAX) {
		rr = fail(why, why_len,
		    "repository name longer than %d bytes once normalised",
		    REF_NAME_MAX);
		goto out;
	}
	if (r->tag == NULL && !r->has_digest &&
	    (r->tag = strdup("latest")) == NULL) {
		rr = TS_ERR_ALLOC;
		goto out;
	}
	if ((rr = build_strings(r)) != 0)
		goto out;
	*out = r;
	r = NULL;
	rr = 0;
out:
	ref_free(r);
	return rr;
}

struct ref *
ref_with_digest(const struct ref *r, const struct digest *d)
{
	struct ref *n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->registry = strdup(r->registry);
	n->api_host = strdup(r->api_host);
	n->repository = strdup(r->repository);
	n->tag = NULL;
	n->tag_given = 0;
	n->has_digest = 1;
	n->digest = *d;
	if (n->registry == NULL || n->api_host == NULL ||
	    n->repository == NULL || build_strings(n) != 0) {
		ref_free(n);
		return NULL;
	}
	return n;
}

const char *
ref_registry(const struct ref *r)
{
	return r->registry;
}

const char *
ref_api_host(const struct ref *r)
{
	return r->api_host;
}

const char *
ref_repository(const struct ref *r)
{
	return r->repository;
}

const char *
ref_tag(const struct ref *r)
{
	return r->tag;
}

int
ref_tag_given(const struct ref *r)
{
	return r->tag_given;
}

const struct digest *
ref_digest(const struct ref *r)
{
	return r->has_digest ? &r->digest : NULL;
}

int
ref_is_hub(const struct ref *r)
{
	return strcmp(r->registry, REF_HUB_REGISTRY) == 0;
}

const char *
ref_identity(const struct ref *r)
{
	return r->identity;
}

const char *
ref_string(const struct ref *r)
{
	return r->string;
}
