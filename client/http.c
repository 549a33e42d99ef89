/*
 * http.c - libcurl behind a small request/response API.  Design notes in
 * docs/internals/registry.md.  libcurl redirect following is off: we follow
 * redirects ourselves so the rule "never send Authorization to another
 * origin" (formats.md 5.3) is visible in one place.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/*
 * libcurl is loaded with dlopen() on first use, not linked: libcurl pulls
 * in GnuTLS, Kerberos, LDAP and a dozen more libraries whose load-time
 * initialisation alone costs more than the 5 ms start-up budget of
 * `tokensign version` (docs/performance-registry.md).  The calls below go
 * through a table filled once; the macros keep the code reading as plain
 * libcurl.  The type-checking macros of curl.h are off because they would
 * wrap our macros.
 */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>
#include <openssl/rand.h>

#include "client/http.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"

struct http_share {
	CURLSH *sh;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	int refs;
	pthread_mutex_t ref_lock;
};

struct http_client {
	CURL *h;
	struct http_share *share;
	char *ca_file;
	int insecure;
	char **allow_http;
	size_t n_allow_http;
	long timeout_s;
	int max_retries;
	uint64_t nreq;
	uint64_t nconn;
};

struct http_resp {
	long status;
	uint8_t *body;
	size_t len, cap, max;
	int too_large;
	char **hname, **hval;
	size_t nh, hbytes;
	int hdr_overflow;
	char *url;
};

#define HTTP_LIBCURL "libcurl.so.4"

static struct {
	CURLcode (*global_init)(long);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *);
	void (*easy_reset)(CURL *);
	CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
	CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
	CURLcode (*easy_perform)(CURL *);
	const char *(*easy_strerror)(CURLcode);
	CURLSH *(*share_init)(void);
	CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
	CURLSHcode (*share_cleanup)(CURLSH *);
	struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
	void (*slist_free_all)(struct curl_slist *);
	CURLU *(*url)(void);
	void (*url_cleanup)(CURLU *);
	CURLUcode (*url_set)(CURLU *, CURLUPart, const char *, unsigned int);
	CURLUcode (*url_get)(const CURLU *, CURLUPart, char **, unsigned int);
	void (*free)(void *);
} lc;
static pthread_once_t lc_once = PTHREAD_ONCE_INIT;
static int lc_status = TS_ERR_INTERNAL;

struct lc_sym {
	const char *name;
	size_t off;
};

#define LC_SYM(field, name)                           \
	{                                             \
		name, offsetof(__typeof__(lc), field) \
	}
static const struct lc_sym lc_syms[] = {
	LC_SYM(global_init, "curl_global_init"),
	LC_SYM(easy_init, "curl_easy_init"),
	LC_SYM(easy_cleanup, "curl_easy_cleanup"),
	LC_SYM(easy_reset, "curl_easy_reset"),
	LC_SYM(easy_setopt, "curl_easy_setopt"),
	LC_SYM(easy_getinfo, "curl_easy_getinfo"),
	LC_SYM(easy_perform, "curl_easy_perform"),
	LC_SYM(easy_strerror, "curl_easy_strerror"),
	LC_SYM(share_init, "curl_share_init"),
	LC_SYM(share_setopt, "curl_share_setopt"),
	LC_SYM(share_cleanup, "curl_share_cleanup"),
	LC_SYM(slist_append, "curl_slist_append"),
	LC_SYM(slist_free_all, "curl_slist_free_all"),
	LC_SYM(url, "curl_url"),
	LC_SYM(url_cleanup, "curl_url_cleanup"),
	LC_SYM(url_set, "curl_url_set"),
	LC_SYM(url_get, "curl_url_get"),
	LC_SYM(free, "curl_free"),
};

static void
lc_load(void)
{
	void *h, *f;
	size_t i;

	/* never unloaded: curl_global_cleanup is not safe with threads */
	if ((h = dlopen(HTTP_LIBCURL, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		error("cannot load %s (install libcurl4): %.200s", HTTP_LIBCURL,
		    dlerror());
		lc_status = TS_ERR_HTTP;
		return;
	}
	for (i = 0; i < sizeof(lc_syms) / sizeof(lc_syms[0]); i++) {
		if ((f = dlsym(h, lc_syms[i].name)) == NULL) {
			error("%s lacks %s", HTTP_LIBCURL, lc_syms[i].name);
			lc_status = TS_ERR_HTTP;
			return;
		}
		memcpy((char *)&lc + lc_syms[i].off, &f, sizeof(f));
	}
	if (lc.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		lc_status = TS_ERR_HTTP;
		return;
	}
	lc_status = 0;
}

int
http_global_init(void)
{
	pthread_once(&lc_once, lc_load);
	return lc_status;
}

/* curl.h defines some of these as macros already */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#define curl_easy_init	    lc.easy_init
#define curl_easy_cleanup   lc.easy_cleanup
#define curl_easy_reset	    lc.easy_reset
#define curl_easy_setopt    lc.easy_setopt
#define curl_easy_getinfo   lc.easy_getinfo
#define curl_easy_perform   lc.easy_perform
#define curl_easy_strerror  lc.easy_strerror
#define curl_share_init	    lc.share_init
#define curl_share_setopt   lc.share_setopt
#define curl_share_cleanup  lc.share_cleanup
#define curl_slist_append   lc.slist_append
#define curl_slist_free_all lc.slist_free_all
#define curl_url	    lc.url
#define curl_url_cleanup    lc.url_cleanup
#define curl_url_set	    lc.url_set
#define curl_url_get	    lc.url_get
#define curl_free	    lc.free

int
http_opts_handle(struct http_opts *o, int opt, const char *arg)
{
	const char **n;

	switch (opt) {
	case HTTP_OPT_CA_FILE:
		o->ca_file = arg;
		return 1;
	case HTTP_OPT_INSECURE:
		o->insecure = 1;
		return 1;
	case HTTP_OPT_ALLOW_HTTP:
		if (arg == NULL || arg[0] == '\0' || strchr(arg, '/') != NULL) {
			error("--allow-http-registry wants HOST[:PORT], not "
			      "'%.100s'",
			    arg ? arg : "");
			return TS_ERR_INVALID_ARG;
		}
		/* the array is ours; the strings are argv's */
		n = realloc((void *)(uintptr_t)o->allow_http,
		    (o->n_allow_http + 1) * sizeof(char *));
		if (n == NULL)
			return TS_ERR_ALLOC;
		n[o->n_allow_http++] = arg;
		o->allow_http = n;
		return 1;
	default:
		return 0;
	}
}

void
http_opts_cleanup(struct http_opts *o)
{
	free((void *)(uintptr_t)o->allow_http);
	o->allow_http = NULL;
	o->n_allow_http = 0;
}

static void
share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *u)
{
	struct http_share *s = u;

	(void)h;
	(void)access;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&s->locks[data]);
}

static void
share_unlock(CURL *h, curl_lock_data data, void *u)
{
	struct http_share *s = u;

	(void)h;
	if (data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&s->locks[data]);
}

static struct http_share *
share_new(void)
{
	struct http_share *s;
	int i;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->sh = curl_share_init()) == NULL) {
		free(s);
		return NULL;
	}
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s->locks[i], NULL);
	pthread_mutex_init(&s->ref_lock, NULL);
	s->refs = 1;
	curl_share_setopt(s->sh, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(s->sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(s->sh, CURLSHOPT_USERDATA, s);
	/*
	 * DNS and TLS sessions only: each client keeps its own connection,
	 * so parallel jobs never wait on one another's socket.
	 */
	curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(s->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	return s;
}

static void
share_unref(struct http_share *s)
{
	int refs, i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->ref_lock);
	refs = --s->refs;
	pthread_mutex_unlock(&s->ref_lock);
	if (refs > 0)
		return;
	curl_share_cleanup(s->sh);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&s->locks[i]);
	pthread_mutex_destroy(&s->ref_lock);
	free(s);
}

void
http_client_free(struct http_client *c)
{
	size_t i;

	if (c == NULL)
		return;
	if (c->h != NULL)
		curl_easy_cleanup(c->h);
	share_unref(c->share);
	free(c->ca_file);
	for (i = 0; i < c->n_allow_http; i++)
		free(c->allow_http[i]);
	free(c->allow_http);
	free(c);
}

static struct http_client *
client_alloc(const struct http_opts *o, struct http_share *share)
{
	struct http_client *c;
	size_t i;

	if (http_global_init() != 0)
		return NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->h = curl_easy_init()) == NULL)
		goto fail;
	c->insecure = o->insecure;
	c->timeout_s = o->timeout_s > 0 ? o->timeout_s : HTTP_TOTAL_TIMEOUT_S;
	c->max_retries = o->max_retries < 0 ? 0
	    : o->max_retries == 0	    ? HTTP_MAX_RETRIES
					    : o->max_retries;
	if (o->ca_file != NULL && (c->ca_file = strdup(o->ca_file)) == NULL)
		goto fail;
	if (o->n_allow_http > 0) {
		c->allow_http = calloc(o->n_allow_http, sizeof(char *));
		if (c->allow_http == NULL)
			goto fail;
		for (i = 0; i < o->n_allow_http; i++) {
			if ((c->allow_http[i] = strdup(o->allow_http[i])) ==
			    NULL)
				goto fail;
			c->n_allow_http++;
		}
	}
	if (share == NULL) {
		if ((c->share = share_new()) == NULL)
			goto fail;
	} else {
		pthread_mutex_lock(&share->ref_lock);
		share->refs++;
		pthread_mutex_unlock(&share->ref_lock);
		c->share = share;
	}
	return c;
fail:
	http_client_free(c);
	return NULL;
}

struct http_client *
http_client_new(const struct http_opts *opts)
{
	struct http_opts none = { 0 };
	struct http_client *c;

	if (opts == NULL)
		opts = &none;
	if (opts->ca_file != NULL && access(opts->ca_file, R_OK) != 0) {
		error("cannot read CA file %.200s", opts->ca_file);
		return NULL;
	}
	if ((c = client_alloc(opts, NULL)) == NULL)
		return NULL;
	if (c->insecure)
		logit("WARNING: TLS certificate verification is disabled "
		      "(--allow-insecure-registry): a network attacker can "
		      "read and change registry traffic");
	return c;
}

struct http_client *
http_client_new_sibling(struct http_client *c)
{
	struct http_opts o = { 0 };

	o.ca_file = c->ca_file;
	o.insecure = c->insecure;
	o.allow_http = (const char *const *)c->allow_http;
	o.n_allow_http = c->n_allow_http;
	o.timeout_s = c->timeout_s;
	o.max_retries = c->max_retries == 0 ? -1 : c->max_retries;
	return client_alloc(&o, c->share);
}

uint64_t
http_client_requests(const struct http_client *c)
{
	return c->nreq;
}

uint64_t
http_client_connections(const struct http_client *c)
{
	return c->nconn;
}

/* Splits host[:port] / [v6]:port into the bare host in buf. */
static int
bare_host(const char *hostport, char *buf, size_t len)
{
	const char *end;
	size_t n;

	if (hostport[0] == '[') {
		if ((end = strchr(hostport, ']')) == NULL)
			return -1;
		hostport++;
	} else if ((end = strchr(hostport, ':')) == NULL)
		end = hostport + strlen(hostport);
	n = (size_t)(end - hostport);
	if (n == 0 || n >= len)
		return -1;
	memcpy(buf, hostport, n);
	buf[n] = '\0';
	return 0;
}

int
http_host_is_loopback(const char *hostport)
{
	char h[256];
	struct in_addr a4;
	struct in6_addr a6;

	if (bare_host(hostport, h, sizeof(h)) != 0)
		return 0;
	if (strcasecmp(h, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return 0;
}

static int
http_allowed(const struct http_client *c, const char *hostport)
{
	char h[256];
	size_t i;

	if (http_host_is_loopback(hostport))
		return 1;
	if (bare_host(hostport, h, sizeof(h)) != 0)
		return 0;
	for (i = 0; i < c->n_allow_http; i++)
		if (strcasecmp(c->allow_http[i], hostport) == 0 ||
		    strcasecmp(c->allow_http[i], h) == 0)
			return 1;
	return 0;
}

const char *
http_scheme_for(const struct http_client *c, const char *hostport)
{
	return http_allowed(c, hostport) ? "http" : "https";
}

void
http_resp_free(struct http_resp *r)
{
	size_t i;

	if (r == NULL)
		return;
	free(r->body);
	for (i = 0; i < r->nh; i++) {
		free(r->hname[i]);
		free(r->hval[i]);
	}
	free(r->hname);
	free(r->hval);
	free(r->url);
	free(r);
}

static void
resp_clear_headers(struct http_resp *r)
{
	size_t i;

	for (i = 0; i < r->nh; i++) {
		free(r->hname[i]);
		free(r->hval[i]);
	}
	r->nh = 0;
	r->hbytes = 0;
}

static size_t
write_cb(char *p, size_t sz, size_t nm, void *u)
{
	struct http_resp *r = u;
	size_t n = sz * nm, ncap;
	uint8_t *nb;

	if (n > r->max - r->len) {
		r->too_large = 1;
		return 0; /* aborts the transfer */
	}
	if (r->len + n + 1 > r->cap) {
		ncap = r->cap ? r->cap : 1024;
		while (ncap < r->len + n + 1)
			ncap *= 2;
		if ((nb = realloc(r->body, ncap)) == NULL)
			return 0;
		r->body = nb;
		r->cap = ncap;
	}
	memcpy(r->body + r->len, p, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static size_t
header_cb(char *p, size_t sz, size_t nm, void *u)
{
	struct http_resp *r = u;
	size_t n = sz * nm, nl, vl;
	const char *colon, *v;
	char **nn, **nv;

	if (n > HTTP_MAX_HEADERS - r->hbytes) {
		r->hdr_overflow = 1;
		return 0;
	}
	r->hbytes += n;
	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue): forget the old one */
		resp_clear_headers(r);
		r->hbytes = n;
		return n;
	}
	if ((colon = memchr(p, ':', n)) == NULL)
		return n; /* blank line or junk */
	nl = (size_t)(colon - p);
	v = colon + 1;
	vl = n - nl - 1;
	while (vl > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl > 0 &&
	    (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ' ||
		v[vl - 1] == '\t'))
		vl--;
	if (r->nh >= HTTP_MAX_HEADER_COUNT) {
		r->hdr_overflow = 1;
		return 0;
	}
	nn = realloc(r->hname, (r->nh + 1) * sizeof(char *));
	if (nn == NULL)
		return 0;
	r->hname = nn;
	nv = realloc(r->hval, (r->nh + 1) * sizeof(char *));
	if (nv == NULL)
		return 0;
	r->hval = nv;
	r->hname[r->nh] = strndup(p, nl);
	r->hval[r->nh] = strndup(v, vl);
	if (r->hname[r->nh] == NULL || r->hval[r->nh] == NULL) {
		free(r->hname[r->nh]);
		free(r->hval[r->nh]);
		return 0;
	}
	r->nh++;
	return n;
}

long
http_resp_status(const struct http_resp *r)
{
	return r->status;
}

const uint8_t *
http_resp_body(const struct http_resp *r)
{
	return r->body != NULL ? r->body : (const uint8_t *)"";
}

size_t
http_resp_body_len(const struct http_resp *r)
{
	return r->len;
}

const char *
http_resp_header(const struct http_resp *r, const char *name, size_t idx)
{
	size_t i;

	for (i = 0; i < r->nh; i++)
		if (strcasecmp(r->hname[i], name) == 0 && idx-- == 0)
			return r->hval[i];
	return NULL;
}

const char *
http_resp_url(const struct http_resp *r)
{
	return r->url != NULL ? r->url : "";
}

/* Copies printable ASCII of s[0..n) into buf, other bytes as '?'. */
static void
sanitise(const uint8_t *s, size_t n, char *buf, size_t len)
{
	size_t i, j = 0;

	if (len == 0)
		return;
	for (i = 0; i < n && j + 1 < len; i++)
		buf[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
	buf[j] = '\0';
}

int
http_resp_error_code(const struct http_resp *r, char *buf, size_t len)
{
	json_t *doc = NULL, *errs, *e0, *code;
	int found = 0;

	if (len > 0)
		buf[0] = '\0';
	if (r->len == 0 ||
	    tsjson_parse(r->body, r->len, HTTP_MAX_ERROR, TSJSON_OBJECT, &doc,
		NULL, 0) != 0)
		return 0;
	if ((errs = json_object_get(doc, "errors")) != NULL &&
	    json_is_array(errs) && (e0 = json_array_get(errs, 0)) != NULL &&
	    (code = json_object_get(e0, "code")) != NULL &&
	    json_is_string(code)) {
		sanitise((const uint8_t *)json_string_value(code),
		    json_string_length(code), buf, len);
		found = 1;
	}
	json_decref(doc);
	return found;
}

void
http_resp_describe(const struct http_resp *r, char *buf, size_t len)
{
	json_t *doc = NULL, *errs, *e, *code, *msg, *detail;
	char c[64], m[200], d[200];
	char *dj = NULL;
	size_t i, off;

	snprintf(buf, len, "HTTP %ld", r->status);
	if (r->len == 0)
		return;
	if (tsjson_parse(r->body, r->len, HTTP_MAX_ERROR, TSJSON_OBJECT, &doc,
		NULL, 0) == 0 &&
	    (errs = json_object_get(doc, "errors")) != NULL &&
	    json_is_array(errs) && json_array_size(errs) > 0) {
		for (i = 0; i < json_array_size(errs) && i < 3; i++) {
			e = json_array_get(errs, i);
			code = json_object_get(e, "code");
			msg = json_object_get(e, "message");
			detail = json_object_get(e, "detail");
			c[0] = m[0] = d[0] = '\0';
			if (json_is_string(code))
				sanitise(
				    (const uint8_t *)json_string_value(code),
				    json_string_length(code), c, sizeof(c));
			if (json_is_string(msg))
				sanitise(
				    (const uint8_t *)json_string_value(msg),
				    json_string_length(msg), m, sizeof(m));
			if (detail != NULL && !json_is_null(detail) &&
			    (dj = json_dumps(detail,
				 JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
				sanitise((const uint8_t *)dj, strlen(dj), d,
				    sizeof(d));
				free(dj);
				dj = NULL;
			}
			off = strlen(buf);
			snprintf(buf + off, len - off, "%s %s: %s%s%s%s",
			    i == 0 ? ":" : ";", c[0] ? c : "?", m,
			    d[0] ? " (" : "", d, d[0] ? ")" : "");
		}
	} else {
		off = strlen(buf);
		if (off + 3 < len) {
			memcpy(buf + off, ": ", 3);
			sanitise(r->body, r->len > 160 ? 160 : r->len,
			    buf + off + 2, len - off - 2);
		}
	}
	json_decref(doc);
}

char *
http_url_resolve(const char *base, const char *ref)
{
	CURLU *u;
	char *s = NULL, *out = NULL;

	if (http_global_init() != 0)
		return NULL;
	if ((u = curl_url()) == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
		out = strdup(s);
	curl_free(s);
	curl_url_cleanup(u);
	return out;
}

char *
http_url_add_query(const char *url, const char *name, const char *value)
{
	CURLU *u;
	char *q = NULL, *s = NULL, *out = NULL;
	size_t n = strlen(name) + strlen(value) + 2;

	if (http_global_init() != 0)
		return NULL;
	if ((q = malloc(n)) == NULL)
		return NULL;
	snprintf(q, n, "%s=%s", name, value);
	if ((u = curl_url()) != NULL &&
	    curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_QUERY, q,
		CURLU_APPENDQUERY | CURLU_URLENCODE) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
		out = strdup(s);
	curl_free(s);
	curl_url_cleanup(u);
	free(q);
	return out;
}

static int
form_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

char *
http_form_encode(const char *const *kv, size_t n)
{
	static const char hx[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t i, len = 1;
	char *out, *o;

	for (i = 0; i < 2 * n; i++) /* worst case: every byte %XX */
		len += 3 * strlen(kv[i]) + 1;
	if ((o = out = malloc(len)) == NULL)
		return NULL;
	for (i = 0; i < 2 * n; i++) {
		if (i > 0)
			*o++ = i % 2 == 1 ? '=' : '&';
		for (p = (const unsigned char *)kv[i]; *p != '\0'; p++) {
			if (form_unreserved(*p))
				*o++ = (char)*p;
			else {
				*o++ = '%';
				*o++ = hx[*p >> 4];
				*o++ = hx[*p & 15];
			}
		}
	}
	*o = '\0';
	return out;
}

/* scheme://host:port of url into buf, for same-origin checks. */
static int
url_origin(const char *url, char *buf, size_t len, char *hostport, size_t hlen,
    int *is_http)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *port = NULL;
	int r = -1;

	if ((u = curl_url()) == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
		CURLUE_OK)
		goto out;
	if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
		goto out;
	*is_http = strcasecmp(scheme, "http") == 0;
	snprintf(buf, len, "%s://%s:%s", scheme, host, port);
	snprintf(hostport, hlen, "%s:%s", host, port);
	r = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return r;
}

/* Warning texts already shown: once per process, whatever the job. */
static char **warn_seen;
static size_t warn_nseen;
static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;

#define HTTP_MAX_WARNINGS 32

static void
show_warnings(const struct http_resp *r)
{
	const char *w, *q1, *q2;
	char text[256], **nw;
	size_t i, k;

	for (k = 0; (w = http_resp_header(r, "Warning", k)) != NULL; k++) {
		/* warn-code SP warn-agent SP "text": only 299 is shown */
		if (strncmp(w, "299 ", 4) != 0)
			continue;
		if ((q1 = strchr(w, '"')) == NULL ||
		    (q2 = strrchr(w, '"')) == q1)
			continue;
		sanitise((const uint8_t *)q1 + 1, (size_t)(q2 - q1 - 1), text,
		    sizeof(text));
		pthread_mutex_lock(&warn_lock);
		for (i = 0; i < warn_nseen; i++)
			if (strcmp(warn_seen[i], text) == 0)
				break;
		if (i == warn_nseen && warn_nseen < HTTP_MAX_WARNINGS &&
		    (nw = realloc(warn_seen,
			 (warn_nseen + 1) * sizeof(char *))) != NULL) {
			warn_seen = nw;
			if ((warn_seen[warn_nseen] = strdup(text)) != NULL) {
				warn_nseen++;
				logit("registry warning: %s", text);
			}
		}
		pthread_mutex_unlock(&warn_lock);
	}
}

static int
status_retryable(long s)
{
	return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static int
curl_retryable(CURLcode rc)
{
	return rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
	    rc == CURLE_GOT_NOTHING || rc == CURLE_COULDNT_CONNECT ||
	    rc == CURLE_PARTIAL_FILE;
}

static void
sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Backoff before attempt n (1-based): 200ms * 2^(n-1) + jitter, or RA. */
static long
backoff_ms(int n, const struct http_resp *r)
{
	const char *ra;
	unsigned char j[2] = { 0, 0 };
	long ms, secs = -1;
	char *end;

	if (r != NULL && (ra = http_resp_header(r, "Retry-After", 0)) != NULL &&
	    ra[0] >= '0' && ra[0] <= '9') {
		secs = strtol(ra, &end, 10);
		if (*end != '\0' || secs < 0)
			secs = -1;
	}
	if (secs >= 0)
		return (secs > HTTP_RETRY_AFTER_MAX_S ? HTTP_RETRY_AFTER_MAX_S
						      : secs) *
		    1000L;
	(void)RAND_bytes(j, sizeof(j));
	ms = 200L << (n - 1 > 6 ? 6 : n - 1);
	return ms + ((j[0] << 8) | j[1]) % 200;
}

/* One attempt; no retry, no redirect. */
static int
perform_once(struct http_client *c, const char *method, const char *url,
    const struct http_req *req, const char *auth, struct http_resp *r,
    CURLcode *crc)
{
	struct curl_slist *hl = NULL, *t;
	char *ah = NULL;
	size_t i, n;
	long nc = 0;
	int rr = TS_ERR_ALLOC;

	CURL *h = c->h;

	curl_easy_reset(h); /* keeps the connection cache */
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SHARE, c->share->sh);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(
	    h, CURLOPT_CONNECTTIMEOUT, (long)HTTP_CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tokensign/0.1");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max);
	if (c->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(
		    h, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
		curl_easy_setopt(
		    h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	if ((t = curl_slist_append(hl, "Expect:")) == NULL)
		goto out;
	hl = t;
	if (req->body == NULL && strcmp(method, "GET") != 0 &&
	    strcmp(method, "HEAD") != 0) {
		/* curl would send form-urlencoded for an empty POST */
		if ((t = curl_slist_append(hl, "Content-Type:")) == NULL)
			goto out;
		hl = t;
	}
	for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
		if ((t = curl_slist_append(hl, req->headers[i])) == NULL)
			goto out;
		hl = t;
	}
	if (auth != NULL) {
		n = strlen(auth) + 16;
		if ((ah = malloc(n)) == NULL)
			goto out;
		snprintf(ah, n, "Authorization: %s", auth);
		if ((t = curl_slist_append(hl, ah)) == NULL)
			goto out;
		hl = t;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);

	c->nreq++;
	*crc = curl_easy_perform(h);
	if (curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nc) == CURLE_OK)
		c->nconn += (uint64_t)nc;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	rr = 0;
out:
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
	if (ah != NULL) {
		explicit_bzero(ah, strlen(ah));
		free(ah);
	}
	return rr;
}

static struct http_resp *
resp_new(size_t max)
{
	struct http_resp *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->max = max;
	return r;
}

int
http_do(
    struct http_client *c, const struct http_req *req, struct http_resp **out)
{
	struct http_resp *r = NULL;
	char *url = NULL, *next = NULL;
	char origin0[512], origin[512], hp[300];
	const char *method = req->method, *auth = req->authorization, *loc;
	size_t max = req->max_body ? req->max_body : HTTP_MAX_ERROR;
	CURLcode crc = CURLE_OK;
	int attempt = 0, redirects = 0, is_http = 0, rr = TS_ERR_INTERNAL;
	struct http_req cur = *req;

	*out = NULL;
	if ((url = strdup(req->url)) == NULL)
		return TS_ERR_ALLOC;
	if (url_origin(
		url, origin0, sizeof(origin0), hp, sizeof(hp), &is_http) != 0) {
		error("bad URL %.200s", url);
		rr = TS_ERR_INVALID_ARG;
		goto out;
	}
	for (;;) {
		if (url_origin(url, origin, sizeof(origin), hp, sizeof(hp),
			&is_http) != 0) {
			error("registry sent a bad URL %.200s", url);
			rr = TS_ERR_REG_PROTOCOL;
			goto out;
		}
		if (is_http && !http_allowed(c, hp)) {
			error("refusing plain HTTP to %.200s: only loopback "
			      "hosts or hosts named with --allow-http-registry "
			      "may use it",
			    hp);
			rr = TS_ERR_PERMISSION;
			goto out;
		}
		/* never send credentials to another origin (5.3) */
		if (cur.body_secret && cur.body != NULL &&
		    strcmp(origin, origin0) != 0) {
			error("%s %.200s: redirected to %.200s; not sending "
			      "the credential in the body to another origin",
			    method, req->url, origin);
			rr = TS_ERR_REG_AUTH;
			goto out;
		}
		if (auth != NULL && strcmp(origin, origin0) != 0) {
			debug_f("redirected to %.200s: dropping Authorization",
			    origin);
			auth = NULL;
		}
		http_resp_free(r);
		if ((r = resp_new(max)) == NULL) {
			rr = TS_ERR_ALLOC;
			goto out;
		}
		if ((rr = perform_once(c, method, url, &cur, auth, r, &crc)) !=
		    0)
			goto out;
		debug2_f(
		    "%s %.200s -> %d %ld", method, url, (int)crc, r->status);
		if (r->too_large || crc == CURLE_FILESIZE_EXCEEDED) {
			error("%s %.200s: response body over the %zu-byte cap",
			    method, url, max);
			rr = TS_ERR_TOO_LARGE;
			goto out;
		}
		if (r->hdr_overflow) {
			error("%s %.200s: too many or too large headers",
			    method, url);
			rr = TS_ERR_REG_PROTOCOL;
			goto out;
		}
		if (crc != CURLE_OK || status_retryable(r->status)) {
			if (attempt < c->max_retries &&
			    (crc == CURLE_OK || curl_retryable(crc))) {
				long ms = backoff_ms(
				    attempt + 1, crc == CURLE_OK ? r : NULL);

				attempt++;
				verbose("%s %.200s: %s; retry %d/%d in %ld ms",
				    method, url,
				    crc != CURLE_OK
					? curl_easy_strerror(crc)
					: (r->status == 429
						  ? "too many requests"
						  : "server error"),
				    attempt, c->max_retries, ms);
				sleep_ms(ms);
				continue;
			}
			if (crc != CURLE_OK) {
				error("%s %.200s: %s", method, url,
				    curl_easy_strerror(crc));
				rr = crc == CURLE_OPERATION_TIMEDOUT
				    ? TS_ERR_TIMEOUT
				    : (crc == CURLE_SSL_CACERT ||
					  crc ==
					      CURLE_PEER_FAILED_VERIFICATION ||
					  crc == CURLE_SSL_CONNECT_ERROR)
				    ? TS_ERR_TLS
				    : TS_ERR_HTTP;
				goto out;
			}
		}
		show_warnings(r);
		if ((r->status == 301 || r->status == 302 || r->status == 303 ||
			r->status == 307 || r->status == 308) &&
		    (loc = http_resp_header(r, "Location", 0)) != NULL) {
			if (++redirects > HTTP_MAX_REDIRECTS) {
				error("%s %.200s: too many redirects", method,
				    req->url);
				rr = TS_ERR_REG_PROTOCOL;
				goto out;
			}
			if ((next = http_url_resolve(url, loc)) == NULL) {
				error("bad redirect Location %.200s", loc);
				rr = TS_ERR_REG_PROTOCOL;
				goto out;
			}
			free(url);
			url = next;
			next = NULL;
			if (r->status == 303 ||
			    ((r->status == 301 || r->status == 302) &&
				strcmp(method, "POST") == 0)) {
				method = "GET";
				cur.body = NULL;
				cur.body_len = 0;
			}
			continue;
		}
		break;
	}
	r->url = url;
	url = NULL;
	*out = r;
	r = NULL;
	rr = 0;
out:
	free(url);
	free(next);
	http_resp_free(r);
	return rr;
}
