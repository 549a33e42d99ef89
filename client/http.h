/*
 * http.h - the client's HTTP transport, the only user of libcurl
 * (style.md 1).  One struct http_client owns one curl easy handle, so
 * every request of a call reuses one keep-alive connection per host.
 * Parallel jobs each take their own client; the clients may share DNS and
 * TLS session caches through http_client_new_sibling().
 *
 * Policy enforced here, for every request:
 *   - HTTPS with the system CAs (or --ca-file); plain HTTP only for a
 *     loopback host (127.0.0.0/8, ::1, localhost) or a host named with
 *     --allow-http-registry (http_scheme_for decides, http_do refuses);
 *   - --allow-insecure-registry skips TLS verification, with a warning;
 *   - connect and total timeouts;
 *   - a named cap on every body read (HTTP_MAX_*): over it is
 *     TS_ERR_TOO_LARGE, never a truncated body;
 *   - retries with exponential backoff and jitter on 429, 500, 502, 503,
 *     504 and connection resets, honouring Retry-After (capped);
 *   - redirects followed here (not by curl), dropping Authorization when
 *     the scheme, host or port changes;
 *   - "Warning: 299" headers printed once per text per client.
 */
#ifndef TS_CLIENT_HTTP_H
#define TS_CLIENT_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Body caps (style.md 4). */
#define HTTP_MAX_MANIFEST     (4 * 1024 * 1024) /* c/image: manifests >= 4 MB */
#define HTTP_MAX_BLOB	      (4 * 1024 * 1024) /* payloads (c/image cap) */
#define HTTP_MAX_TOKEN	      (64 * 1024) /* token service answers */
#define HTTP_MAX_ERROR	      (64 * 1024) /* error bodies we show */
#define HTTP_MAX_HEADERS      (64 * 1024) /* all header bytes of a reply */
#define HTTP_MAX_HEADER_COUNT 100

#define HTTP_CONNECT_TIMEOUT_S 15
#define HTTP_TOTAL_TIMEOUT_S   120
#define HTTP_MAX_RETRIES       4
#define HTTP_RETRY_AFTER_MAX_S 30
#define HTTP_MAX_REDIRECTS     5

struct http_client;
struct http_resp;

struct http_opts {
	const char *ca_file; /* NULL: system CAs */
	int insecure; /* skip TLS verification */
	const char *const *allow_http; /* hosts allowed plain HTTP */
	size_t n_allow_http;
	long timeout_s; /* 0: HTTP_TOTAL_TIMEOUT_S */
	int max_retries; /* <0: none; 0: HTTP_MAX_RETRIES */
};

struct http_req {
	const char *method; /* "GET", "HEAD", "POST", "PUT", "DELETE" */
	const char *url;
	const char *const *headers; /* "Name: value", NULL-terminated */
	const char *authorization; /* value of Authorization, or NULL */
	const void *body;
	size_t body_len;
	int body_secret; /* the body carries a credential: same origin only */
	size_t max_body; /* cap for the reply body; 0: HTTP_MAX_ERROR */
};

/*
 * Command-line options every registry command takes.  Put
 * HTTP_LONGOPTS in a struct option table and pass each getopt_long result
 * to http_opts_handle(), which returns 1 when it took the option, 0 when
 * it is not one of these, or a negative error.  http_opts_cleanup() frees
 * what http_opts_handle() allocated.
 */
#define HTTP_OPT_CA_FILE    0x1000
#define HTTP_OPT_ALLOW_HTTP 0x1001
#define HTTP_OPT_INSECURE   0x1002
#define HTTP_LONGOPTS                                                 \
	{ "ca-file", 1, NULL, HTTP_OPT_CA_FILE },                     \
	    { "allow-http-registry", 1, NULL, HTTP_OPT_ALLOW_HTTP },  \
	{                                                             \
		"allow-insecure-registry", 0, NULL, HTTP_OPT_INSECURE \
	}
#define HTTP_OPTS_USAGE                                                  \
	"  --ca-file FILE             trust these CAs instead of the "   \
	"system's\n"                                                     \
	"  --allow-http-registry HOST allow plain HTTP to HOST[:PORT]\n" \
	"  --allow-insecure-registry  skip TLS certificate verification\n"
int http_opts_handle(struct http_opts *o, int opt, const char *arg)
    __attribute__((warn_unused_result));
void http_opts_cleanup(struct http_opts *o);

/* Global init (curl_global_init); call once from main or a test. */
int http_global_init(void) __attribute__((warn_unused_result));

/*
 * Returns a new client (caller http_client_free()s it), or NULL on OOM or
 * when the CA file is unreadable.  opts is copied.
 */
struct http_client *http_client_new(const struct http_opts *opts);
/* A client for another job sharing c's options and DNS/TLS caches. */
struct http_client *http_client_new_sibling(struct http_client *c);
void http_client_free(struct http_client *c);
/* Requests sent (every attempt, including retries and redirects). */
uint64_t http_client_requests(const struct http_client *c);
/* Connections opened so far. */
uint64_t http_client_connections(const struct http_client *c);

/*
 * Returns "http" or "https" for host[:port]: http only when the host is
 * loopback or allowed by opts; NULL when... never NULL.
 */
const char *http_scheme_for(const struct http_client *c, const char *hostport);
/* Returns 1 when host[:port] names a loopback address. */
int http_host_is_loopback(const char *hostport);

/*
 * Performs req.  Returns 0 with a response for ANY HTTP status (caller
 * http_resp_free()s it); TS_ERR_HTTP on transport failure after retries
 * (message logged), TS_ERR_TOO_LARGE for a body over its cap,
 * TS_ERR_PERMISSION for plain HTTP to a host not allowed it.
 */
int http_do(struct http_client *c, const struct http_req *req,
    struct http_resp **out) __attribute__((warn_unused_result));

void http_resp_free(struct http_resp *r);
long http_resp_status(const struct http_resp *r);
/* Body bytes, borrowed (NUL-terminated for convenience), and length. */
const uint8_t *http_resp_body(const struct http_resp *r);
size_t http_resp_body_len(const struct http_resp *r);
/*
 * Returns the value of the idx'th header named name (case-insensitive,
 * trimmed), borrowed, or NULL.
 */
const char *http_resp_header(
    const struct http_resp *r, const char *name, size_t idx);
/* The URL that answered (after redirects), borrowed. */
const char *http_resp_url(const struct http_resp *r);
/*
 * Writes a one-line description of an error response into buf: status,
 * and the registry's {"errors":[{code,message,detail}]} when the body has
 * it, else the start of a text body (sanitised, truncated).
 */
void http_resp_describe(const struct http_resp *r, char *buf, size_t len);
/*
 * Returns the first errors[].code of a registry error body, copied into
 * buf, or 0 when there is none (buf = "").
 */
int http_resp_error_code(const struct http_resp *r, char *buf, size_t len);

/*
 * Resolves ref (absolute or relative URL) against base into a new
 * malloc'd absolute URL, or NULL.
 */
char *http_url_resolve(const char *base, const char *ref);
/*
 * Returns a new URL with query parameter name=value appended (value
 * percent-encoded), using '&' when url already has a query; NULL on error.
 */
char *http_url_add_query(const char *url, const char *name, const char *value);
/*
 * Returns "n1=v1&n2=v2..." for the n pairs kv[2i], kv[2i+1], every byte
 * outside RFC 3986's unreserved set percent-encoded: an
 * application/x-www-form-urlencoded body.  NULL when out of memory.  The
 * caller wipes it if a value was secret.
 */
char *http_form_encode(const char *const *kv, size_t n);

#endif /* TS_CLIENT_HTTP_H */
