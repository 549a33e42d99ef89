/*
 * oci.c - registry API calls.  Every call goes through oci_do(), which adds
 * the Authorization header, answers one 401 with the auth module and
 * retries once, and turns error statuses into TS_ERR_* codes with the
 * registry's own message logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/http.h"
#include "client/oci.h"
#include "client/ref.h"
#include "client/registry_auth.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"

struct oci {
	struct http_client *http;
	struct regauth *auth;
	char *registry;
	char *base; /* "scheme://host" */
	char *actions;
};

struct oci *
oci_new(struct http_client *http, const struct ref *ref, const char *actions)
{
	struct oci *o;
	size_t n;
	const char *host = ref_api_host(ref);

	if ((o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	o->http = http;
	n = strlen(host) + 10;
	o->registry = strdup(ref_registry(ref));
	o->actions = strdup(actions);
	o->auth = regauth_new(ref_registry(ref));
	if ((o->base = malloc(n)) != NULL)
		snprintf(
		    o->base, n, "%s://%s", http_scheme_for(http, host), host);
	if (o->registry == NULL || o->actions == NULL || o->auth == NULL ||
	    o->base == NULL) {
		oci_free(o);
		return NULL;
	}
	return o;
}

void
oci_free(struct oci *o)
{
	if (o == NULL)
		return;
	regauth_free(o->auth);
	free(o->registry);
	free(o->base);
	free(o->actions);
	free(o);
}

struct http_client *
oci_http(struct oci *o)
{
	return o->http;
}

void
oci_manifest_free(struct oci_manifest *m)
{
	if (m == NULL)
		return;
	free(m->data);
	free(m->media_type);
	free(m);
}

static char *
mkurl(const struct oci *o, const char *repo, const char *kind, const char *last)
{
	size_t n =
	    strlen(o->base) + strlen(repo) + strlen(kind) + strlen(last) + 8;
	char *u = malloc(n);

	if (u != NULL)
		snprintf(u, n, "%s/v2/%s/%s/%s", o->base, repo, kind, last);
	return u;
}

/*
 * One request with auth: on 401, the challenge is answered once and the
 * request repeated.  Returns 0 and the final response for any status.
 */
static int
oci_do(struct oci *o, const char *repo, struct http_req *req,
    struct http_resp **out)
{
	struct http_resp *resp = NULL;
	char *auth = NULL;
	int r, tries;

	*out = NULL;
	for (tries = 0; tries < 2; tries++) {
		if ((r = regauth_header(o->auth, repo, &auth)) != 0)
			goto out;
		req->authorization = auth;
		r = http_do(o->http, req, &resp);
		req->authorization = NULL;
		if (auth != NULL) {
			explicit_bzero(auth, strlen(auth));
			free(auth);
			auth = NULL;
		}
		if (r != 0)
			goto out;
		if (http_resp_status(resp) != 401)
			break;
		/* a second 401 makes the auth module say what was refused */
		if ((r = regauth_challenge(
			 o->auth, o->http, resp, repo, o->actions)) != 0)
			goto out;
		if (tries == 1)
			break;
		http_resp_free(resp);
		resp = NULL;
	}
	*out = resp;
	resp = NULL;
	r = 0;
out:
	http_resp_free(resp);
	return r;
}

/* Maps an unexpected status to an error code and logs what happened. */
static int
status_error(
    const struct oci *o, const char *what, const struct http_resp *resp)
{
	char desc[600];
	long s = http_resp_status(resp);

	http_resp_describe(resp, desc, sizeof(desc));
	error("%s on %.200s: %s", what, o->registry, desc);
	if (s == 401 || s == 403)
		return TS_ERR_REG_AUTH;
	if (s == 404)
		return TS_ERR_REG_NOT_FOUND;
	if (s == 413)
		return TS_ERR_TOO_LARGE;
	return TS_ERR_HTTP_STATUS;
}

/* Content-Type without parameters, lowercased, into buf. */
static void
content_type(const struct http_resp *resp, char *buf, size_t len)
{
	const char *ct = http_resp_header(resp, "Content-Type", 0);
	size_t i = 0;

	buf[0] = '\0';
	if (ct == NULL)
		return;
	while (ct[i] != '\0' && ct[i] != ';' && ct[i] != ' ' && i + 1 < len) {
		buf[i] =
		    (char)((ct[i] >= 'A' && ct[i] <= 'Z') ? ct[i] - 'A' + 'a'
							  : ct[i]);
		i++;
	}
	buf[i] = '\0';
}

static int
known_type(const char *t)
{
	return strcmp(t, OCI_MT_MANIFEST) == 0 ||
	    strcmp(t, OCI_MT_INDEX) == 0 || strcmp(t, OCI_MT_DOCKER_V2) == 0 ||
	    strcmp(t, OCI_MT_DOCKER_LIST) == 0;
}

int
oci_manifest_is_index(const struct oci_manifest *m)
{
	return strcmp(m->media_type, OCI_MT_INDEX) == 0 ||
	    strcmp(m->media_type, OCI_MT_DOCKER_LIST) == 0;
}

/* Checks bytes, Content-Type and mediaType; fills m->media_type. */
static int
check_manifest(
    const char *what, const struct http_resp *resp, struct oci_manifest *m)
{
	char ct[128], why[TSJSON_WHY_MAX];
	json_t *doc = NULL, *mt, *sv;
	const char *mts = NULL;
	int r = TS_ERR_MANIFEST_INVALID;

	content_type(resp, ct, sizeof(ct));
	if (tsjson_parse(m->data, m->len, HTTP_MAX_MANIFEST, TSJSON_OBJECT,
		&doc, why, sizeof(why)) != 0) {
		error("%s: the registry sent a manifest that is not a JSON "
		      "object: %s",
		    what, why);
		goto out;
	}
	if ((sv = json_object_get(doc, "schemaVersion")) != NULL &&
	    json_is_integer(sv) && json_integer_value(sv) == 1) {
		error("%s: Docker schema 1 manifests are not supported", what);
		goto out;
	}
	if ((mt = json_object_get(doc, "mediaType")) != NULL) {
		if (!json_is_string(mt)) {
			error("%s: manifest mediaType is not a string", what);
			goto out;
		}
		mts = json_string_value(mt);
	}
	/* formats.md 5.2: reject a Content-Type that differs from mediaType */
	if (mts != NULL && ct[0] != '\0' && strcmp(mts, ct) != 0) {
		error("%s: Content-Type '%.100s' differs from the manifest's "
		      "mediaType '%.100s'",
		    what, ct, mts);
		goto out;
	}
	if (mts == NULL)
		mts = ct;
	if (mts[0] == '\0') {
		error("%s: manifest has neither Content-Type nor mediaType",
		    what);
		goto out;
	}
	if (!known_type(mts)) {
		error("%s: unsupported manifest type '%.100s'", what, mts);
		goto out;
	}
	if ((m->media_type = strdup(mts)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	r = 0;
out:
	json_decref(doc);
	return r;
}

/* Copies a response body into a new manifest (NUL-terminated for parsers). */
static int
manifest_from_body(const struct http_resp *resp, struct oci_manifest **out)
{
	struct oci_manifest *m;
	size_t len = http_resp_body_len(resp);

	*out = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return TS_ERR_ALLOC;
	if ((m->data = malloc(len + 1)) == NULL) {
		free(m);
		return TS_ERR_ALLOC;
	}
	if (len != 0)
		memcpy(m->data, http_resp_body(resp), len);
	m->data[len] = '\0';
	m->len = len;
	*out = m;
	return 0;
}

int
oci_manifest_get_raw(struct oci *o, const char *repo, const char *tagdg,
    const struct digest *expect, size_t max, struct oci_manifest **out)
{
	const char *hdrs[] = { OCI_ACCEPT_ALL, NULL };
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;
	struct oci_manifest *m = NULL;
	struct digest hd;
	const char *dch;
	char what[600], ds[DIGEST_STR_MAX], ds2[DIGEST_STR_MAX];
	char *url = NULL;
	int r = TS_ERR_INTERNAL;

	*out = NULL;
	snprintf(what, sizeof(what), "manifest %.200s/%.200s:%.100s",
	    o->registry, repo, tagdg);
	if ((url = mkurl(o, repo, "manifests", tagdg)) == NULL)
		return TS_ERR_ALLOC;
	req.method = "GET";
	req.url = url;
	req.headers = hdrs;
	req.max_body = max;
	if ((r = oci_do(o, repo, &req, &resp)) != 0) {
		if (r == TS_ERR_TOO_LARGE)
			error("%s is larger than the %zu-byte cap", what, max);
		goto out;
	}
	if (http_resp_status(resp) != 200) {
		r = status_error(o, what, resp);
		goto out;
	}
	if ((r = manifest_from_body(resp, &m)) != 0)
		goto out;
	/* trust only a digest computed from the bytes (5.2) */
	if (expect != NULL) {
		if (digest_verify(expect, m->data, m->len) != 0) {
			if (digest_format(expect, ds, sizeof(ds)) != 0)
				ds[0] = 0;
			error(
			    "%s: the bytes served do not hash to %s", what, ds);
			r = TS_ERR_DIGEST_MISMATCH;
			goto out;
		}
		m->digest = *expect;
	} else {
		if ((r = digest_compute(
			 DIGEST_ALG_SHA256, m->data, m->len, &m->digest)) != 0)
			goto out;
		if ((dch = http_resp_header(
			 resp, "Docker-Content-Digest", 0)) != NULL &&
		    digest_parse_str(dch, &hd, NULL) == 0 &&
		    hd.alg == DIGEST_ALG_SHA256 &&
		    !digest_equal(&hd, &m->digest)) {
			if (digest_format(&m->digest, ds, sizeof(ds)) != 0)
				ds[0] = 0;
			if (digest_format(&hd, ds2, sizeof(ds2)) != 0)
				ds2[0] = 0;
			error("%s: registry says digest %s but the bytes hash "
			      "to %s",
			    what, ds2, ds);
			r = TS_ERR_DIGEST_MISMATCH;
			goto out;
		}
	}
	if ((r = check_manifest(what, resp, m)) != 0)
		goto out;
	*out = m;
	m = NULL;
	r = 0;
out:
	oci_manifest_free(m);
	http_resp_free(resp);
	free(url);
	return r;
}

int
oci_manifest_get(
    struct oci *o, const struct ref *ref, struct oci_manifest **out)
{
	char ds[DIGEST_STR_MAX];
	const struct digest *d = ref_digest(ref);

	*out = NULL;
	if (d != NULL) {
		if (digest_format(d, ds, sizeof(ds)) != 0)
			return TS_ERR_INTERNAL;
		return oci_manifest_get_raw(
		    o, ref_repository(ref), ds, d, HTTP_MAX_MANIFEST, out);
	}
	return oci_manifest_get_raw(
	    o, ref_repository(ref), ref_tag(ref), NULL, HTTP_MAX_MANIFEST, out);
}

int
oci_manifest_head(
    struct oci *o, const char *repo, const char *tagdg, struct digest *out)
{
	const char *hdrs[] = { OCI_ACCEPT_ALL, NULL };
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;
	const char *dch;
	char what[600], *url;
	int r;

	memset(out, 0, sizeof(*out));
	snprintf(what, sizeof(what), "HEAD manifest %.200s/%.200s:%.100s",
	    o->registry, repo, tagdg);
	if ((url = mkurl(o, repo, "manifests", tagdg)) == NULL)
		return TS_ERR_ALLOC;
	req.method = "HEAD";
	req.url = url;
	req.headers = hdrs;
	if ((r = oci_do(o, repo, &req, &resp)) != 0)
		goto out;
	if (http_resp_status(resp) == 404) {
		r = TS_ERR_REG_NOT_FOUND;
		goto out;
	}
	if (http_resp_status(resp) != 200) {
		r = status_error(o, what, resp);
		goto out;
	}
	if ((dch = http_resp_header(resp, "Docker-Content-Digest", 0)) ==
		NULL ||
	    digest_parse_str(dch, out, NULL) != 0) {
		r = TS_ERR_REG_PROTOCOL;
		goto out;
	}
	r = 0;
out:
	http_resp_free(resp);
	free(url);
	return r;
}

int
oci_manifest_put(struct oci *o, const char *repo, const char *tag,
    const char *media_type, const uint8_t *data, size_t len, struct digest *out)
{
	char ct[200];
	const char *hdrs[] = { ct, NULL };
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;
	struct digest d;
	const char *dch;
	char what[600], *url;
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	snprintf(ct, sizeof(ct), "Content-Type: %s", media_type);
	snprintf(what, sizeof(what), "PUT manifest %.200s/%.200s:%.100s",
	    o->registry, repo, tag);
	if ((r = digest_compute(DIGEST_ALG_SHA256, data, len, &d)) != 0)
		return r;
	if ((url = mkurl(o, repo, "manifests", tag)) == NULL)
		return TS_ERR_ALLOC;
	req.method = "PUT";
	req.url = url;
	req.headers = hdrs;
	req.body = data;
	req.body_len = len;
	if ((r = oci_do(o, repo, &req, &resp)) != 0)
		goto out;
	if (http_resp_status(resp) != 201 && http_resp_status(resp) != 200) {
		r = status_error(o, what, resp);
		goto out;
	}
	/* the registry must store our bytes exactly (5.2) */
	if ((dch = http_resp_header(resp, "Docker-Content-Digest", 0)) !=
	    NULL) {
		struct digest hd;

		if (digest_parse_str(dch, &hd, NULL) != 0 ||
		    (hd.alg == DIGEST_ALG_SHA256 && !digest_equal(&hd, &d))) {
			error("%s: registry stored other bytes (digest %.100s)",
			    what, dch);
			r = TS_ERR_DIGEST_MISMATCH;
			goto out;
		}
	}
	if (out != NULL)
		*out = d;
	r = 0;
out:
	http_resp_free(resp);
	free(url);
	return r;
}

int
oci_sig_get(struct oci *o, const char *repo, const struct digest *d,
    struct oci_manifest **out)
{
	const char *hdrs[] = { OCI_ACCEPT_ALL, NULL };
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;
	struct oci_manifest *m = NULL;
	char tag[DIGEST_TAG_MAX], code[64], what[600], *url = NULL;
	char ct[128];
	int r;

	*out = NULL;
	if ((r = digest_tag(d, ".sig", tag, sizeof(tag))) != 0)
		return r;
	snprintf(what, sizeof(what), "signature manifest %.200s/%.200s:%s",
	    o->registry, repo, tag);
	if ((url = mkurl(o, repo, "manifests", tag)) == NULL)
		return TS_ERR_ALLOC;
	req.method = "GET";
	req.url = url;
	req.headers = hdrs;
	req.max_body = HTTP_MAX_MANIFEST;
	if ((r = oci_do(o, repo, &req, &resp)) != 0) {
		if (r == TS_ERR_TOO_LARGE)
			error("%s is larger than the %d-byte cap", what,
			    HTTP_MAX_MANIFEST);
		goto out;
	}
	if (http_resp_status(resp) == 404) {
		/* MANIFEST_UNKNOWN: no signatures, not an error (5.4) */
		if (http_resp_error_code(resp, code, sizeof(code)) &&
		    (strcmp(code, "MANIFEST_UNKNOWN") == 0 ||
			strcmp(code, "NAME_UNKNOWN") == 0)) {
			r = TS_ERR_SIG_NONE;
			goto out;
		}
		r = status_error(o, what, resp);
		goto out;
	}
	if (http_resp_status(resp) != 200) {
		r = status_error(o, what, resp);
		goto out;
	}
	if ((r = manifest_from_body(resp, &m)) != 0)
		goto out;
	if ((r = digest_compute(
		 DIGEST_ALG_SHA256, m->data, m->len, &m->digest)) != 0)
		goto out;
	content_type(resp, ct, sizeof(ct));
	if ((m->media_type = strdup(ct)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	*out = m;
	m = NULL;
	r = 0;
out:
	oci_manifest_free(m);
	http_resp_free(resp);
	free(url);
	return r;
}

int
oci_index_children(const struct oci_manifest *m, struct digest **out, size_t *n)
{
	json_t *doc = NULL, *arr, *e, *dv;
	struct digest *ds = NULL;
	char why[TSJSON_WHY_MAX];
	const char *dw = NULL;
	size_t i, cnt;
	int r = TS_ERR_MANIFEST_INVALID;

	*out = NULL;
	*n = 0;
	if (tsjson_parse(m->data, m->len, HTTP_MAX_MANIFEST, TSJSON_OBJECT,
		&doc, why, sizeof(why)) != 0) {
		error("index: %s", why);
		goto out;
	}
	if (!json_is_array(arr = json_object_get(doc, "manifests"))) {
		error("index has no manifests array");
		goto out;
	}
	cnt = json_array_size(arr);
	if (cnt > OCI_MAX_INDEX_CHILDREN) {
		error(
		    "index has more than %d children", OCI_MAX_INDEX_CHILDREN);
		r = TS_ERR_TOO_LARGE;
		goto out;
	}
	if ((ds = calloc(cnt ? cnt : 1, sizeof(*ds))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	json_array_foreach(arr, i, e)
	{
		if (!json_is_string(dv = json_object_get(e, "digest")) ||
		    digest_parse_str(json_string_value(dv), &ds[i], &dw) != 0) {
			error("index child %zu has a bad digest%s%s", i,
			    dw ? ": " : "", dw ? dw : "");
			goto out;
		}
	}
	*out = ds;
	*n = cnt;
	ds = NULL;
	r = 0;
out:
	free(ds);
	json_decref(doc);
	return r;
}

int
oci_blob_exists(
    struct oci *o, const char *repo, const struct digest *d, int *exists)
{
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;
	char ds[DIGEST_STR_MAX], *url;
	int r;

	*exists = 0;
	if ((r = digest_format(d, ds, sizeof(ds))) != 0)
		return r;
	if ((url = mkurl(o, repo, "blobs", ds)) == NULL)
		return TS_ERR_ALLOC;
	req.method = "HEAD";
	req.url = url;
	if ((r = oci_do(o, repo, &req, &resp)) != 0)
		goto out;
	if (http_resp_status(resp) == 200)
		*exists = 1;
	else if (http_resp_status(resp) != 404) {
		r = status_error(o, "HEAD blob", resp);
		goto out;
	}
	r = 0;
out:
	http_resp_free(resp);
	free(url);
	return r;
}

int
oci_blob_get(struct oci *o, const char *repo, const struct digest *d,
    size_t max, uint8_t **out, size_t *len)
{
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;
	char ds[DIGEST_STR_MAX], what[400], *url;
	uint8_t *b;
	int r;

	*out = NULL;
	*len = 0;
	if ((r = digest_format(d, ds, sizeof(ds))) != 0)
		return r;
	snprintf(what, sizeof(what), "blob %.200s/%.100s", repo, ds);
	if ((url = mkurl(o, repo, "blobs", ds)) == NULL)
		return TS_ERR_ALLOC;
	req.method = "GET";
	req.url = url;
	req.max_body = max;
	if ((r = oci_do(o, repo, &req, &resp)) != 0)
		goto out;
	if (http_resp_status(resp) != 200) {
		r = status_error(o, what, resp);
		goto out;
	}
	if (digest_verify(d, http_resp_body(resp), http_resp_body_len(resp)) !=
	    0) {
		error("%s: content does not match its digest", what);
		r = TS_ERR_DIGEST_MISMATCH;
		goto out;
	}
	if ((b = malloc(http_resp_body_len(resp) + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	memcpy(b, http_resp_body(resp), http_resp_body_len(resp));
	b[http_resp_body_len(resp)] = '\0';
	*out = b;
	*len = http_resp_body_len(resp);
	r = 0;
out:
	http_resp_free(resp);
	free(url);
	return r;
}

int
oci_upload_start(struct oci *o, const char *repo, char **location)
{
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;
	const char *loc;
	char what[400], *url;
	int r;

	*location = NULL;
	snprintf(what, sizeof(what), "starting an upload to %.200s", repo);
	if ((url = mkurl(o, repo, "blobs", "uploads/")) == NULL)
		return TS_ERR_ALLOC;
	req.method = "POST";
	req.url = url;
	if ((r = oci_do(o, repo, &req, &resp)) != 0)
		goto out;
	if (http_resp_status(resp) != 202) {
		r = status_error(o, what, resp);
		goto out;
	}
	if ((loc = http_resp_header(resp, "Location", 0)) == NULL ||
	    loc[0] == '\0') {
		error("%s: registry sent no Location", what);
		r = TS_ERR_REG_PROTOCOL;
		goto out;
	}
	/* Location may be relative (5.3) */
	if ((*location = http_url_resolve(http_resp_url(resp), loc)) == NULL) {
		error("%s: bad Location '%.200s'", what, loc);
		r = TS_ERR_REG_PROTOCOL;
		goto out;
	}
	r = 0;
out:
	http_resp_free(resp);
	free(url);
	return r;
}

int
oci_upload_finish(struct oci *o, const char *repo, const char *location,
    const uint8_t *data, size_t len, const struct digest *d)
{
	const char *hdrs[] = { "Content-Type: application/octet-stream", NULL };
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;
	char ds[DIGEST_STR_MAX], what[400], *url;
	int r;

	if ((r = digest_format(d, ds, sizeof(ds))) != 0)
		return r;
	snprintf(
	    what, sizeof(what), "uploading blob %.100s to %.200s", ds, repo);
	/* Location already has a query (?_state=...): add, never paste */
	if ((url = http_url_add_query(location, "digest", ds)) == NULL) {
		error("%s: bad upload Location", what);
		return TS_ERR_REG_PROTOCOL;
	}
	req.method = "PUT";
	req.url = url;
	req.headers = hdrs;
	req.body = data;
	req.body_len = len;
	if ((r = oci_do(o, repo, &req, &resp)) != 0)
		goto out;
	if (http_resp_status(resp) != 201) {
		r = status_error(o, what, resp);
		goto out;
	}
	r = 0;
out:
	http_resp_free(resp);
	free(url);
	return r;
}

void
oci_upload_cancel(struct oci *o, const char *repo, const char *location)
{
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;

	req.method = "DELETE";
	req.url = location;
	if (oci_do(o, repo, &req, &resp) == 0)
		debug_f("cancel upload: HTTP %ld", http_resp_status(resp));
	http_resp_free(resp);
}

int
oci_blob_put(struct oci *o, const char *repo, const uint8_t *data, size_t len,
    const struct digest *d, int check_exists, char **location)
{
	char *loc = NULL;
	int r, exists = 0;

	if (location != NULL) {
		loc = *location;
		*location = NULL;
	}
	if (check_exists) {
		if ((r = oci_blob_exists(o, repo, d, &exists)) != 0)
			goto out;
		if (exists) {
			r = 0;
			if (loc != NULL)
				oci_upload_cancel(o, repo, loc);
			goto out;
		}
	}
	if (loc == NULL && (r = oci_upload_start(o, repo, &loc)) != 0)
		goto out;
	r = oci_upload_finish(o, repo, loc, data, len, d);
	if (r == TS_ERR_REG_NOT_FOUND || r == TS_ERR_HTTP_STATUS) {
		/* a stale upload session: start a fresh one once */
		free(loc);
		loc = NULL;
		if ((r = oci_upload_start(o, repo, &loc)) != 0)
			goto out;
		r = oci_upload_finish(o, repo, loc, data, len, d);
	}
out:
	free(loc);
	return r;
}
