/*
 * sigmanifest.c - parse, append to, merge and render cosign .sig manifests
 * (formats.md 2.2-2.4).
 *
 * Rendering reproduces ggcr's json.Marshal of v1.Manifest and of the
 * ConfigFile cosign builds from an empty image, so a manifest we write for
 * the same payloads and signatures is byte-identical to cosign's.  The
 * config is regenerated from the layers each time (as cosign rewrites it on
 * append): no verifier reads it (formats.md 2.3).  Unknown manifest fields
 * (subject, artifactType, config extras) are dropped on rewrite, as ggcr
 * drops unknown fields; top-level annotations are kept.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/sigmanifest.h"
#include "common/err.h"
#include "common/json.h"
#include "common/wbuf.h"

struct annotations {
	size_t n;
	char **keys; /* sorted bytewise, unique */
	char **values;
};

struct siglayer {
	char *media_type;
	int64_t size;
	struct digest digest;
	struct annotations ann;
};

struct sigmanifest {
	struct siglayer **layers;
	size_t n_layers;
	struct annotations ann;
};

/* ---- annotations: a small sorted string map ---- */

static void
ann_clear(struct annotations *a)
{
	size_t i;

	for (i = 0; i < a->n; i++) {
		free(a->keys[i]);
		free(a->values[i]);
	}
	free(a->keys);
	free(a->values);
	memset(a, 0, sizeof(*a));
}

static const char *
ann_get(const struct annotations *a, const char *key)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->keys[i], key) == 0)
			return a->values[i];
	return NULL;
}

/* Inserts or replaces, keeping keys sorted. */
static int
ann_set(struct annotations *a, const char *key, const char *value)
{
	char **nk, **nv, *k = NULL, *v = NULL;
	size_t i, pos;
	int c;

	for (pos = 0; pos < a->n; pos++) {
		if ((c = strcmp(a->keys[pos], key)) == 0) {
			if ((v = strdup(value)) == NULL)
				return TS_ERR_ALLOC;
			free(a->values[pos]);
			a->values[pos] = v;
			return 0;
		}
		if (c > 0)
			break;
	}
	if (a->n >= SIGMANIFEST_MAX_ANNOTATIONS)
		return TS_ERR_TOO_LARGE;
	if ((k = strdup(key)) == NULL || (v = strdup(value)) == NULL)
		goto oom;
	if ((nk = realloc(a->keys, (a->n + 1) * sizeof(*nk))) == NULL)
		goto oom;
	a->keys = nk;
	if ((nv = realloc(a->values, (a->n + 1) * sizeof(*nv))) == NULL)
		goto oom;
	a->values = nv;
	for (i = a->n; i > pos; i--) {
		a->keys[i] = a->keys[i - 1];
		a->values[i] = a->values[i - 1];
	}
	a->keys[pos] = k;
	a->values[pos] = v;
	a->n++;
	return 0;
oom:
	free(k);
	free(v);
	return TS_ERR_ALLOC;
}

static int
ann_copy(struct annotations *dst, const struct annotations *src)
{
	size_t i;
	int r;

	for (i = 0; i < src->n; i++)
		if ((r = ann_set(dst, src->keys[i], src->values[i])) != 0)
			return r;
	return 0;
}

static int
ann_equal(const struct annotations *a, const struct annotations *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->keys[i], b->keys[i]) != 0 ||
		    strcmp(a->values[i], b->values[i]) != 0)
			return 0;
	return 1;
}

/* "annotations": absent, or an object of strings (Go map[string]string). */
static int
ann_parse(const json_t *o, const char *what, struct annotations *a, char *why,
    size_t why_len)
{
	json_t *obj, *v;
	const char *k;
	int r;

	r = tsjson_get_object(o, "annotations", what, &obj, why, why_len);
	if (r == TS_ERR_NOT_FOUND) {
		/* null is what Go accepts for a map too */
		return 0;
	}
	if (r != 0) {
		if (json_is_null(json_object_get(o, "annotations"))) {
			if (why != NULL && why_len > 0)
				why[0] = '\0';
			return 0;
		}
		return TS_ERR_MANIFEST_INVALID;
	}
	json_object_foreach(obj, k, v)
	{
		if (!json_is_string(v)) {
			ts_errbuf(why, why_len,
			    "%s annotation \"%.100s\" is not a string", what,
			    k);
			return TS_ERR_MANIFEST_INVALID;
		}
		if ((r = ann_set(a, k, json_string_value(v))) != 0) {
			if (r == TS_ERR_TOO_LARGE)
				ts_errbuf(why, why_len,
				    "%s has more than %d annotations", what,
				    SIGMANIFEST_MAX_ANNOTATIONS);
			return r == TS_ERR_TOO_LARGE ? TS_ERR_MANIFEST_INVALID
						     : r;
		}
	}
	return 0;
}

/* ---- layers ---- */

void
siglayer_free(struct siglayer *l)
{
	if (l == NULL)
		return;
	free(l->media_type);
	ann_clear(&l->ann);
	free(l);
}

struct siglayer *
siglayer_dup(const struct siglayer *l)
{
	struct siglayer *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->media_type = strdup(l->media_type)) == NULL ||
	    ann_copy(&c->ann, &l->ann) != 0) {
		siglayer_free(c);
		return NULL;
	}
	c->size = l->size;
	c->digest = l->digest;
	return c;
}

int
siglayer_new_signature(const uint8_t *payload, size_t payload_len,
    const char *sig_b64, struct siglayer **out)
{
	struct siglayer *l = NULL;
	int r = TS_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || (payload == NULL && payload_len > 0) ||
	    sig_b64 == NULL || payload_len > INT64_MAX) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->media_type = strdup(SIG_LAYER_MEDIA_TYPE)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	l->size = (int64_t)payload_len;
	if ((r = digest_compute(
		 DIGEST_ALG_SHA256, payload, payload_len, &l->digest)) != 0 ||
	    (r = ann_set(&l->ann, SIG_ANN_SIGNATURE, sig_b64)) != 0)
		goto out;
	*out = l;
	l = NULL;
	r = 0;
out:
	siglayer_free(l);
	return r;
}

int
siglayer_set_annotation(struct siglayer *l, const char *key, const char *value)
{
	if (l == NULL || key == NULL || value == NULL)
		return TS_ERR_INVALID_ARG;
	return ann_set(&l->ann, key, value);
}

const char *
siglayer_media_type(const struct siglayer *l)
{
	return l->media_type;
}

int64_t
siglayer_size(const struct siglayer *l)
{
	return l->size;
}

const struct digest *
siglayer_digest(const struct siglayer *l)
{
	return &l->digest;
}

int
siglayer_is_signature(const struct siglayer *l)
{
	return strcmp(l->media_type, SIG_LAYER_MEDIA_TYPE) == 0;
}

const char *
siglayer_annotation(const struct siglayer *l, const char *key)
{
	return ann_get(&l->ann, key);
}

size_t
siglayer_annotation_count(const struct siglayer *l)
{
	return l->ann.n;
}

int
siglayer_annotation_at(
    const struct siglayer *l, size_t i, const char **key, const char **value)
{
	*key = NULL;
	*value = NULL;
	if (i >= l->ann.n)
		return TS_ERR_NOT_FOUND;
	*key = l->ann.keys[i];
	*value = l->ann.values[i];
	return 0;
}

int
siglayer_equal(const struct siglayer *a, const struct siglayer *b)
{
	return strcmp(a->media_type, b->media_type) == 0 &&
	    a->size == b->size && digest_equal(&a->digest, &b->digest) &&
	    ann_equal(&a->ann, &b->ann);
}

/*
 * A descriptor: mediaType string, size non-negative integer, digest valid;
 * what names it in messages ("layers[3]").
 */
static int
descriptor_parse(const json_t *o, const char *what, struct siglayer **out,
    char *why, size_t why_len)
{
	struct siglayer *l = NULL;
	const char *mt, *ds, *dwhy = NULL;
	json_t *size;
	size_t dlen;
	int r = TS_ERR_MANIFEST_INVALID;

	*out = NULL;
	if (!json_is_object(o)) {
		ts_errbuf(why, why_len, "%s is not an object", what);
		goto out;
	}
	if (tsjson_get_string(o, "mediaType", what, &mt, NULL, why, why_len) !=
		0 ||
	    tsjson_get_string(o, "digest", what, &ds, &dlen, why, why_len) != 0)
		goto out;
	if ((size = json_object_get(o, "size")) == NULL ||
	    !json_is_integer(size) || json_integer_value(size) < 0) {
		ts_errbuf(why, why_len,
		    "%s.size is missing or not a "
		    "non-negative integer",
		    what);
		goto out;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->media_type = strdup(mt)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	l->size = (int64_t)json_integer_value(size);
	if (digest_parse(ds, dlen, &l->digest, &dwhy) != 0) {
		ts_errbuf(why, why_len, "%s.digest \"%.100s\": %s", what, ds,
		    dwhy == NULL ? "invalid" : dwhy);
		goto out;
	}
	if ((r = ann_parse(o, what, &l->ann, why, why_len)) != 0)
		goto out;
	*out = l;
	l = NULL;
	r = 0;
out:
	siglayer_free(l);
	return r;
}

/* ---- manifests ---- */

struct sigmanifest *
sigmanifest_new(void)
{
	return calloc(1, sizeof(struct sigmanifest));
}

void
sigmanifest_free(struct sigmanifest *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n_layers; i++)
		siglayer_free(m->layers[i]);
	free(m->layers);
	ann_clear(&m->ann);
	free(m);
}

/* Takes ownership of l on success. */
static int
push_layer(struct sigmanifest *m, struct siglayer *l)
{
	struct siglayer **nl;

	if (m->n_layers >= SIGMANIFEST_MAX_LAYERS)
		return TS_ERR_TOO_LARGE;
	if ((nl = realloc(m->layers, (m->n_layers + 1) * sizeof(*nl))) == NULL)
		return TS_ERR_ALLOC;
	m->layers = nl;
	m->layers[m->n_layers++] = l;
	return 0;
}

/* Compares a media type ignoring parameters (";charset=..."). */
static int
media_type_is(const char *have, const char *want)
{
	size_t n = strlen(want);

	while (*have == ' ' || *have == '\t')
		have++;
	if (strncasecmp(have, want, n) != 0)
		return 0;
	have += n;
	while (*have == ' ' || *have == '\t')
		have++;
	return *have == '\0' || *have == ';';
}

int
sigmanifest_parse(const uint8_t *data, size_t len, const char *content_type,
    struct sigmanifest **out, char *why, size_t why_len)
{
	struct sigmanifest *m = NULL;
	struct siglayer *l = NULL, *cfg = NULL;
	json_t *root = NULL, *layers, *sv, *mtv;
	char what[32];
	size_t i;
	int r = TS_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (out == NULL || (data == NULL && len > 0)) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if (len > SIGMANIFEST_MAX_LEN) {
		ts_errbuf(why, why_len,
		    "signature manifest of %zu bytes exceeds "
		    "the %d-byte limit",
		    len, SIGMANIFEST_MAX_LEN);
		r = TS_ERR_TOO_LARGE;
		goto out;
	}
	if (content_type != NULL &&
	    !media_type_is(content_type, OCI_MANIFEST_MEDIA_TYPE)) {
		ts_errbuf(why, why_len,
		    "signature manifest has media type \"%.100s\", not an "
		    "OCI image manifest (containers/image refuses it)",
		    content_type);
		r = TS_ERR_MANIFEST_INVALID;
		goto out;
	}
	if ((r = tsjson_parse(data, len, SIGMANIFEST_MAX_LEN, TSJSON_OBJECT,
		 &root, why, why_len)) != 0) {
		if (r != TS_ERR_ALLOC)
			r = TS_ERR_MANIFEST_INVALID;
		goto out;
	}
	r = TS_ERR_MANIFEST_INVALID;
	if ((sv = json_object_get(root, "schemaVersion")) == NULL ||
	    !json_is_integer(sv) || json_integer_value(sv) != 2) {
		ts_errbuf(why, why_len, "manifest schemaVersion is not 2");
		goto out;
	}
	mtv = json_object_get(root, "mediaType");
	if (mtv != NULL &&
	    (!json_is_string(mtv) ||
		strcmp(json_string_value(mtv), OCI_MANIFEST_MEDIA_TYPE) != 0)) {
		ts_errbuf(why, why_len,
		    "manifest mediaType \"%.100s\" is not an OCI image "
		    "manifest",
		    json_is_string(mtv) ? json_string_value(mtv) : "?");
		goto out;
	}
	if (mtv == NULL && content_type == NULL) {
		ts_errbuf(why, why_len,
		    "manifest has no mediaType and no Content-Type says OCI");
		goto out;
	}
	if (json_object_get(root, "manifests") != NULL) {
		ts_errbuf(why, why_len, "an index, not an image manifest");
		goto out;
	}
	if ((r = descriptor_parse(json_object_get(root, "config"), "config",
		 &cfg, why, why_len)) != 0)
		goto out;
	if (tsjson_get_array(
		root, "layers", "manifest", &layers, why, why_len) != 0) {
		r = TS_ERR_MANIFEST_INVALID;
		goto out;
	}
	if (json_array_size(layers) > SIGMANIFEST_MAX_LAYERS) {
		ts_errbuf(why, why_len,
		    "manifest has %zu layers, over the limit "
		    "of %d",
		    json_array_size(layers), SIGMANIFEST_MAX_LAYERS);
		r = TS_ERR_TOO_LARGE;
		goto out;
	}
	if ((m = sigmanifest_new()) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < json_array_size(layers); i++) {
		snprintf(what, sizeof(what), "layers[%zu]", i);
		if ((r = descriptor_parse(json_array_get(layers, i), what, &l,
			 why, why_len)) != 0 ||
		    (r = push_layer(m, l)) != 0)
			goto out;
		l = NULL;
	}
	if ((r = ann_parse(root, "manifest", &m->ann, why, why_len)) != 0)
		goto out;
	*out = m;
	m = NULL;
	r = 0;
out:
	siglayer_free(l);
	siglayer_free(cfg);
	sigmanifest_free(m);
	json_decref(root);
	return r;
}

size_t
sigmanifest_layer_count(const struct sigmanifest *m)
{
	return m->n_layers;
}

const struct siglayer *
sigmanifest_layer(const struct sigmanifest *m, size_t i)
{
	return i < m->n_layers ? m->layers[i] : NULL;
}

size_t
sigmanifest_signature_count(const struct sigmanifest *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->n_layers; i++)
		n += siglayer_is_signature(m->layers[i]) ? 1 : 0;
	return n;
}

size_t
sigmanifest_other_count(const struct sigmanifest *m)
{
	return m->n_layers - sigmanifest_signature_count(m);
}

int
sigmanifest_contains(const struct sigmanifest *m, const struct siglayer *l)
{
	size_t i;

	for (i = 0; i < m->n_layers; i++)
		if (siglayer_equal(m->layers[i], l))
			return 1;
	return 0;
}

int
sigmanifest_append(struct sigmanifest *m, const struct siglayer *l, int *added)
{
	struct siglayer *c;
	int r;

	if (added != NULL)
		*added = 0;
	if (m == NULL || l == NULL)
		return TS_ERR_INVALID_ARG;
	if (sigmanifest_contains(m, l))
		return 0;
	if (m->n_layers >= SIGMANIFEST_MAX_LAYERS)
		return TS_ERR_TOO_LARGE;
	if ((c = siglayer_dup(l)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = push_layer(m, c)) != 0) {
		siglayer_free(c);
		return r;
	}
	if (added != NULL)
		*added = 1;
	return 0;
}

int
sigmanifest_merge(const struct sigmanifest *fresh,
    const struct siglayer *const *ours, size_t n, struct sigmanifest **merged,
    size_t *missing)
{
	struct sigmanifest *m = NULL;
	size_t i, miss = 0;
	int added, r = TS_ERR_INTERNAL;

	if (merged != NULL)
		*merged = NULL;
	if (missing != NULL)
		*missing = 0;
	if (merged == NULL || missing == NULL || (ours == NULL && n > 0))
		return TS_ERR_INVALID_ARG;
	if ((m = sigmanifest_new()) == NULL)
		return TS_ERR_ALLOC;
	if (fresh != NULL) {
		if ((r = ann_copy(&m->ann, &fresh->ann)) != 0)
			goto out;
		for (i = 0; i < fresh->n_layers; i++) {
			struct siglayer *c = siglayer_dup(fresh->layers[i]);

			if (c == NULL) {
				r = TS_ERR_ALLOC;
				goto out;
			}
			if ((r = push_layer(m, c)) != 0) {
				siglayer_free(c);
				goto out;
			}
		}
	}
	for (i = 0; i < n; i++) {
		if ((r = sigmanifest_append(m, ours[i], &added)) != 0)
			goto out;
		miss += added ? 1 : 0;
	}
	*merged = m;
	*missing = miss;
	m = NULL;
	r = 0;
out:
	sigmanifest_free(m);
	return r;
}

/* ---- rendering ---- */

static int
put_digest(struct wbuf *b, const struct digest *d)
{
	char s[DIGEST_STR_MAX];
	int r;

	if ((r = digest_format(d, s, sizeof(s))) != 0)
		return r;
	return tsjson_put_string_go(b, s, strlen(s));
}

static int
put_ann(struct wbuf *b, const struct annotations *a)
{
	size_t i;
	int r;

	if ((r = wbuf_put_u8(b, '{')) != 0)
		return r;
	for (i = 0; i < a->n; i++) {
		if ((i > 0 && (r = wbuf_put_u8(b, ',')) != 0) ||
		    (r = tsjson_put_string_go(
			 b, a->keys[i], strlen(a->keys[i]))) != 0 ||
		    (r = wbuf_put_u8(b, ':')) != 0 ||
		    (r = tsjson_put_string_go(
			 b, a->values[i], strlen(a->values[i]))) != 0)
			return r;
	}
	return wbuf_put_u8(b, '}');
}

/* ggcr v1.Descriptor order: mediaType, size, digest, annotations. */
static int
put_descriptor(struct wbuf *b, const char *media_type, int64_t size,
    const struct digest *d, const struct annotations *a)
{
	char num[32];
	int r;

	snprintf(num, sizeof(num), "%lld", (long long)size);
	if ((r = tsjson_put_raw(b, "{\"mediaType\":")) != 0 ||
	    (r = tsjson_put_string_go(b, media_type, strlen(media_type))) !=
		0 ||
	    (r = tsjson_put_raw(b, ",\"size\":")) != 0 ||
	    (r = tsjson_put_raw(b, num)) != 0 ||
	    (r = tsjson_put_raw(b, ",\"digest\":")) != 0 ||
	    (r = put_digest(b, d)) != 0)
		return r;
	if (a != NULL && a->n > 0 &&
	    ((r = tsjson_put_raw(b, ",\"annotations\":")) != 0 ||
		(r = put_ann(b, a)) != 0))
		return r;
	return wbuf_put_u8(b, '}');
}

static int
take(struct wbuf *b, uint8_t **out, size_t *out_len)
{
	size_t n = wbuf_len(b);
	uint8_t *p;
	int r;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = wbuf_get(b, p, n)) != 0) {
		free(p);
		return r;
	}
	*out = p;
	*out_len = n;
	return 0;
}

/* formats.md 2.3: ggcr ConfigFile of an empty image plus one layer each. */
static int
render_config(const struct sigmanifest *m, struct wbuf *b)
{
	size_t i;
	int r;

	if ((r = tsjson_put_raw(b,
		 "{\"architecture\":\"\",\"created\":"
		 "\"0001-01-01T00:00:00Z\",\"history\":[")) != 0)
		return r;
	for (i = 0; i < m->n_layers; i++)
		if ((r = tsjson_put_raw(b,
			 i == 0 ? "{\"created\":\"0001-01-01T00:00:00Z\"}"
				: ",{\"created\":\"0001-01-01T00:00:00Z\"}")) !=
		    0)
			return r;
	if ((r = tsjson_put_raw(b,
		 "],\"os\":\"\",\"rootfs\":{\"type\":"
		 "\"layers\",\"diff_ids\":[")) != 0)
		return r;
	for (i = 0; i < m->n_layers; i++)
		if ((i > 0 && (r = wbuf_put_u8(b, ',')) != 0) ||
		    (r = put_digest(b, &m->layers[i]->digest)) != 0)
			return r;
	return tsjson_put_raw(b, "]},\"config\":{}}");
}

int
sigmanifest_render(const struct sigmanifest *m, uint8_t **manifest,
    size_t *manifest_len, uint8_t **config, size_t *config_len)
{
	struct wbuf *mb = NULL, *cb = NULL;
	struct digest cfgd;
	uint8_t *mo = NULL, *co = NULL;
	size_t mlen = 0, clen = 0, i;
	int r = TS_ERR_INTERNAL;

	if (manifest != NULL)
		*manifest = NULL;
	if (config != NULL)
		*config = NULL;
	if (manifest_len != NULL)
		*manifest_len = 0;
	if (config_len != NULL)
		*config_len = 0;
	if (m == NULL || manifest == NULL || manifest_len == NULL ||
	    config == NULL || config_len == NULL || m->n_layers == 0) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((mb = wbuf_new(SIGMANIFEST_MAX_LEN)) == NULL ||
	    (cb = wbuf_new(SIGMANIFEST_MAX_LEN)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((r = render_config(m, cb)) != 0 ||
	    (r = take(cb, &co, &clen)) != 0 ||
	    (r = digest_compute(DIGEST_ALG_SHA256, co, clen, &cfgd)) != 0)
		goto out;
	/* ggcr v1.Manifest order (formats.md 2.2) */
	if ((r = tsjson_put_raw(mb,
		 "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST_MEDIA_TYPE
		 "\",\"config\":")) != 0 ||
	    (r = put_descriptor(
		 mb, OCI_CONFIG_MEDIA_TYPE, (int64_t)clen, &cfgd, NULL)) != 0 ||
	    (r = tsjson_put_raw(mb, ",\"layers\":[")) != 0)
		goto out;
	for (i = 0; i < m->n_layers; i++) {
		const struct siglayer *l = m->layers[i];

		if ((i > 0 && (r = wbuf_put_u8(mb, ',')) != 0) ||
		    (r = put_descriptor(
			 mb, l->media_type, l->size, &l->digest, &l->ann)) != 0)
			goto out;
	}
	if ((r = wbuf_put_u8(mb, ']')) != 0)
		goto out;
	if (m->ann.n > 0 &&
	    ((r = tsjson_put_raw(mb, ",\"annotations\":")) != 0 ||
		(r = put_ann(mb, &m->ann)) != 0))
		goto out;
	if ((r = wbuf_put_u8(mb, '}')) != 0 || (r = take(mb, &mo, &mlen)) != 0)
		goto out;
	*manifest = mo;
	*manifest_len = mlen;
	*config = co;
	*config_len = clen;
	mo = co = NULL;
	r = 0;
out:
	if (r == TS_ERR_WIRE_BUF_FULL)
		r = TS_ERR_TOO_LARGE;
	free(mo);
	free(co);
	wbuf_free(mb);
	wbuf_free(cb);
	return r;
}
