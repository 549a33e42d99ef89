/*
 * payload.c - the cosign simple-signing payload: byte-exact builder and
 * strict parser (formats.md 1.1, 1.2; design in docs/internals/payload.md).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "common/payload.h"
#include "common/wbuf.h"

struct payload {
	json_t *root; /* owns every string below */
	const char *docker_reference;
	const char *digest_str;
	struct digest digest;
	json_t *optional; /* NULL when "optional" is null */
	const char **opt_keys; /* document order */
	size_t n_opt;
	int has_timestamp;
	int64_t timestamp;
};

/* ---- builder ---- */

static int
cmp_kv(const void *a, const void *b)
{
	const struct payload_kv *x = a, *y = b;

	return strcmp(x->key, y->key);
}

int
payload_build(const char *docker_reference, const struct digest *d,
    const struct payload_kv *kv, size_t n, uint8_t **out, size_t *out_len)
{
	struct payload_kv *sorted = NULL;
	struct wbuf *b = NULL;
	char dstr[DIGEST_STR_MAX];
	uint8_t *res = NULL;
	size_t i, len;
	int r = TS_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (out_len != NULL)
		*out_len = 0;
	if (out == NULL || out_len == NULL || docker_reference == NULL ||
	    d == NULL || (kv == NULL && n > 0)) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	len = strlen(docker_reference);
	if (len == 0 || len > PAYLOAD_REF_MAX || n > PAYLOAD_MAX_ANNOTATIONS) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((r = digest_format(d, dstr, sizeof(dstr))) != 0)
		goto out;
	if (n > 0) {
		if ((sorted = calloc(n, sizeof(*sorted))) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (kv[i].key == NULL || kv[i].value == NULL) {
				r = TS_ERR_INVALID_ARG;
				goto out;
			}
			sorted[i] = kv[i];
		}
		/* Go's encoding/json sorts map keys bytewise. */
		qsort(sorted, n, sizeof(*sorted), cmp_kv);
		for (i = 1; i < n; i++) {
			if (strcmp(sorted[i - 1].key, sorted[i].key) == 0) {
				r = TS_ERR_INVALID_ARG;
				goto out;
			}
		}
	}
	if ((b = wbuf_new(PAYLOAD_MAX_LEN)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	/* Struct order of sigstore's SimpleContainerImage (formats.md 1.2). */
	if ((r = tsjson_put_raw(b,
		 "{\"critical\":{\"identity\":{"
		 "\"docker-reference\":")) != 0 ||
	    (r = tsjson_put_string_go(b, docker_reference, len)) != 0 ||
	    (r = tsjson_put_raw(
		 b, "},\"image\":{\"docker-manifest-digest\":")) != 0 ||
	    (r = tsjson_put_string_go(b, dstr, strlen(dstr))) != 0 ||
	    (r = tsjson_put_raw(b, "},\"type\":")) != 0 ||
	    (r = tsjson_put_string_go(
		 b, PAYLOAD_TYPE_COSIGN, strlen(PAYLOAD_TYPE_COSIGN))) != 0 ||
	    (r = tsjson_put_raw(b, "},\"optional\":")) != 0)
		goto out;
	if (n == 0) {
		/* a nil Go map marshals as null, not {} */
		if ((r = tsjson_put_raw(b, "null")) != 0)
			goto out;
	} else {
		if ((r = wbuf_put_u8(b, '{')) != 0)
			goto out;
		for (i = 0; i < n; i++) {
			if ((i > 0 && (r = wbuf_put_u8(b, ',')) != 0) ||
			    (r = tsjson_put_string_go(b, sorted[i].key,
				 strlen(sorted[i].key))) != 0 ||
			    (r = wbuf_put_u8(b, ':')) != 0 ||
			    (r = tsjson_put_string_go(b, sorted[i].value,
				 strlen(sorted[i].value))) != 0)
				goto out;
		}
		if ((r = wbuf_put_u8(b, '}')) != 0)
			goto out;
	}
	if ((r = wbuf_put_u8(b, '}')) != 0)
		goto out;
	len = wbuf_len(b);
	if ((res = malloc(len)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((r = wbuf_get(b, res, len)) != 0)
		goto out;
	*out = res;
	*out_len = len;
	res = NULL;
	r = 0;
out:
	if (r == TS_ERR_WIRE_BUF_FULL)
		r = TS_ERR_TOO_LARGE;
	free(res);
	free(sorted);
	wbuf_free(b);
	return r;
}

/* ---- parser ---- */

void
payload_free(struct payload *p)
{
	if (p == NULL)
		return;
	free(p->opt_keys);
	json_decref(p->root);
	free(p);
}

/*
 * "optional": null, or an object where "creator" must be a string and
 * "timestamp" an integral number; other members are ignored, as
 * containers/image does.
 */
static int
parse_optional(struct payload *p, json_t *opt, char *why, size_t why_len)
{
	const char *k;
	json_t *v;
	size_t i = 0;
	int r;

	if (json_is_null(opt))
		return 0;
	if (!json_is_object(opt)) {
		ts_errbuf(why, why_len,
		    "\"optional\" is neither null nor an "
		    "object");
		return TS_ERR_PAYLOAD_INVALID;
	}
	p->optional = opt;
	if ((v = json_object_get(opt, "creator")) != NULL &&
	    !json_is_string(v)) {
		ts_errbuf(why, why_len, "optional.creator is not a string");
		return TS_ERR_PAYLOAD_INVALID;
	}
	if ((v = json_object_get(opt, "timestamp")) != NULL) {
		if (!json_is_number(v)) {
			ts_errbuf(why, why_len,
			    "optional.timestamp is not a "
			    "number");
			return TS_ERR_PAYLOAD_INVALID;
		}
		if ((r = tsjson_value_int(v, &p->timestamp)) != 0) {
			ts_errbuf(why, why_len,
			    "optional.timestamp is not an "
			    "integer");
			return TS_ERR_PAYLOAD_INVALID;
		}
		p->has_timestamp = 1;
	}
	p->n_opt = json_object_size(opt);
	if (p->n_opt > 0 &&
	    (p->opt_keys = calloc(p->n_opt, sizeof(*p->opt_keys))) == NULL)
		return TS_ERR_ALLOC;
	json_object_foreach(opt, k, v)
	{
		if (i < p->n_opt)
			p->opt_keys[i++] = k;
	}
	p->n_opt = i;
	return 0;
}

int
payload_parse(const uint8_t *data, size_t len, struct payload **out, char *why,
    size_t why_len)
{
	static const char *const top_keys[] = { "critical", "optional" };
	static const char *const crit_keys[] = { "type", "image", "identity" };
	static const char *const image_keys[] = { "docker-manifest-digest" };
	static const char *const ident_keys[] = { "docker-reference" };
	struct payload *p = NULL;
	json_t *crit, *image, *ident;
	const char *type, *dwhy = NULL;
	size_t slen;
	char jwhy[TSJSON_WHY_MAX];
	int r = TS_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	jwhy[0] = '\0';
	if (out == NULL || (data == NULL && len > 0)) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if (len > PAYLOAD_MAX_LEN) {
		ts_errbuf(why, why_len, "payload of %zu bytes exceeds %d", len,
		    PAYLOAD_MAX_LEN);
		r = TS_ERR_PAYLOAD_INVALID;
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	/* Numbers as doubles: containers/image decodes them as float64. */
	r = tsjson_parse(data, len, PAYLOAD_MAX_LEN,
	    TSJSON_OBJECT | TSJSON_NUMBERS_AS_REAL, &p->root, jwhy,
	    sizeof(jwhy));
	if (r == TS_ERR_ALLOC)
		goto out;
	if (r != 0)
		goto bad;
	if ((r = tsjson_exact_keys(
		 p->root, top_keys, 2, "payload", jwhy, sizeof(jwhy))) != 0)
		goto bad;
	if ((r = parse_optional(
		 p, json_object_get(p->root, "optional"), why, why_len)) != 0)
		goto out;
	if ((r = tsjson_get_object(p->root, "critical", "payload", &crit, jwhy,
		 sizeof(jwhy))) != 0 ||
	    (r = tsjson_exact_keys(
		 crit, crit_keys, 3, "critical", jwhy, sizeof(jwhy))) != 0 ||
	    (r = tsjson_get_string(crit, "type", "critical", &type, &slen, jwhy,
		 sizeof(jwhy))) != 0)
		goto bad;
	if (strcmp(type, PAYLOAD_TYPE_COSIGN) != 0 ||
	    slen != strlen(PAYLOAD_TYPE_COSIGN)) {
		ts_errbuf(why, why_len,
		    "unrecognized signature type \"%.100s\" (want \"%s\")",
		    type, PAYLOAD_TYPE_COSIGN);
		r = TS_ERR_PAYLOAD_INVALID;
		goto out;
	}
	if ((r = tsjson_get_object(
		 crit, "image", "critical", &image, jwhy, sizeof(jwhy))) != 0 ||
	    (r = tsjson_exact_keys(image, image_keys, 1, "critical.image", jwhy,
		 sizeof(jwhy))) != 0 ||
	    (r = tsjson_get_string(image, "docker-manifest-digest",
		 "critical.image", &p->digest_str, &slen, jwhy,
		 sizeof(jwhy))) != 0)
		goto bad;
	if (digest_parse(p->digest_str, slen, &p->digest, &dwhy) != 0) {
		ts_errbuf(why, why_len,
		    "critical.image.docker-manifest-digest \"%.100s\": %s",
		    p->digest_str, dwhy == NULL ? "invalid" : dwhy);
		r = TS_ERR_PAYLOAD_INVALID;
		goto out;
	}
	if ((r = tsjson_get_object(crit, "identity", "critical", &ident, jwhy,
		 sizeof(jwhy))) != 0 ||
	    (r = tsjson_exact_keys(ident, ident_keys, 1, "critical.identity",
		 jwhy, sizeof(jwhy))) != 0 ||
	    (r = tsjson_get_string(ident, "docker-reference",
		 "critical.identity", &p->docker_reference, &slen, jwhy,
		 sizeof(jwhy))) != 0)
		goto bad;
	*out = p;
	p = NULL;
	r = 0;
	goto out;
bad:
	/* a structural problem reported by the JSON layer */
	ts_errbuf(why, why_len, "%s", jwhy[0] != '\0' ? jwhy : "malformed");
	r = TS_ERR_PAYLOAD_INVALID;
out:
	payload_free(p);
	return r;
}

const char *
payload_docker_reference(const struct payload *p)
{
	return p->docker_reference;
}

const struct digest *
payload_manifest_digest(const struct payload *p)
{
	return &p->digest;
}

const char *
payload_manifest_digest_str(const struct payload *p)
{
	return p->digest_str;
}

int
payload_has_optional(const struct payload *p)
{
	return p->optional != NULL;
}

int
payload_optional_string(
    const struct payload *p, const char *key, const char **value)
{
	json_t *v;

	*value = NULL;
	if (p->optional == NULL || key == NULL ||
	    (v = json_object_get(p->optional, key)) == NULL)
		return TS_ERR_NOT_FOUND;
	if (!json_is_string(v))
		return TS_ERR_PARSE;
	*value = json_string_value(v);
	return 0;
}

size_t
payload_optional_count(const struct payload *p)
{
	return p->n_opt;
}

int
payload_optional_at(
    const struct payload *p, size_t i, const char **key, const char **value)
{
	json_t *v;

	*key = NULL;
	*value = NULL;
	if (i >= p->n_opt)
		return TS_ERR_NOT_FOUND;
	*key = p->opt_keys[i];
	v = json_object_get(p->optional, *key);
	if (json_is_string(v))
		*value = json_string_value(v);
	return 0;
}

int
payload_timestamp(const struct payload *p, int64_t *out)
{
	*out = 0;
	if (!p->has_timestamp)
		return TS_ERR_NOT_FOUND;
	*out = p->timestamp;
	return 0;
}

int
payload_kv_parse(const char *arg, char **key, char **value)
{
	const char *eq;
	char *k = NULL, *v = NULL;
	int r = TS_ERR_INTERNAL;

	*key = NULL;
	*value = NULL;
	if (arg == NULL || (eq = strchr(arg, '=')) == NULL || eq == arg) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((k = strndup(arg, (size_t)(eq - arg))) == NULL ||
	    (v = strdup(eq + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	*key = k;
	*value = v;
	k = v = NULL;
	r = 0;
out:
	free(k);
	free(v);
	return r;
}
