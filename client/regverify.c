/*
 * regverify.c - fetch signatures from a registry for the verifier.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/commands.h"
#include "client/http.h"
#include "client/oci.h"
#include "client/ref.h"
#include "client/regverify.h"
#include "client/sigmanifest.h"
#include "client/verify.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/log.h"
#include "common/payload.h"

/* Worse of two exit statuses for a --recursive run. */
static int
worse(int a, int b)
{
	static const int order[] = { TS_EXIT_OK, TS_EXIT_NO_SIGNATURES,
		TS_EXIT_INVALID, TS_EXIT_FAILURE, TS_EXIT_REGISTRY,
		TS_EXIT_USAGE };
	size_t i, ia = 0, ib = 0;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (order[i] == a)
			ia = i;
		if (order[i] == b)
			ib = i;
	}
	return ia >= ib ? a : b;
}

static int
verify_one_digest(struct oci *o, const struct ref *ref, const struct digest *d,
    const struct verify_key *k, struct verify_policy *pol, FILE *out,
    FILE *summary)
{
	struct oci_manifest *sm = NULL;
	struct sigmanifest *sig = NULL;
	struct verify_candidate *c = NULL;
	uint8_t **blobs = NULL;
	char why[256], (*src)[32] = NULL;
	size_t n = 0, i, len;
	int r, status = TS_EXIT_REGISTRY;

	pol->digest = d;
	r = oci_sig_get(o, ref_repository(ref), d, &sm);
	if (r == TS_ERR_SIG_NONE) {
		status = verify_and_report(k, NULL, 0, pol, 0, out, summary);
		goto out;
	}
	if (r != 0)
		goto out;
	if ((r = sigmanifest_parse(sm->data, sm->len, sm->media_type, &sig, why,
		 sizeof(why))) != 0) {
		error("%s: signature manifest: %s", ref_string(ref), why);
		goto out;
	}
	n = sigmanifest_layer_count(sig);
	c = calloc(n ? n : 1, sizeof(*c));
	blobs = calloc(n ? n : 1, sizeof(*blobs));
	src = calloc(n ? n : 1, sizeof(*src));
	if (c == NULL || blobs == NULL || src == NULL) {
		status = TS_EXIT_FAILURE;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct siglayer *l = sigmanifest_layer(sig, i);

		c[i].media_type = siglayer_media_type(l);
		c[i].sig_b64 = siglayer_annotation(l, SIG_ANN_SIGNATURE);
		c[i].certificate = siglayer_annotation(l, SIG_ANN_CERTIFICATE);
		snprintf(src[i], sizeof(src[i]), "layer %zu", i + 1);
		c[i].source = src[i];
		if (!siglayer_is_signature(l))
			continue;
		/* the payload bytes as stored; their digest is checked */
		r = oci_blob_get(o, ref_repository(ref), siglayer_digest(l),
		    PAYLOAD_MAX_LEN, &blobs[i], &len);
		if (r != 0) {
			error("%s: layer %zu: payload unavailable: %s",
			    ref_string(ref), i + 1, ts_err(r));
			goto out;
		}
		c[i].payload = blobs[i];
		c[i].payload_len = len;
	}
	status = verify_and_report(k, c, n, pol, 0, out, summary);
out:
	for (i = 0; blobs != NULL && i < n; i++)
		free(blobs[i]);
	free(blobs);
	free(src);
	free(c);
	sigmanifest_free(sig);
	oci_manifest_free(sm);
	return status;
}

int
regverify_image(const struct verify_key *k, struct verify_policy *pol,
    const char *image, const struct http_opts *hopts, int recursive, FILE *out,
    FILE *summary)
{
	struct http_opts none = { 0 };
	struct http_client *http = NULL;
	struct oci *o = NULL;
	struct ref *ref = NULL;
	struct oci_manifest *m = NULL;
	struct digest *ch = NULL, d;
	char why[256];
	size_t nch = 0, i;
	int r, status = TS_EXIT_REGISTRY;

	if (ref_parse(image, &ref, why, sizeof(why)) != 0) {
		error("%.200s: %s", image, why);
		return TS_EXIT_USAGE;
	}
	if (http_global_init() != 0 ||
	    (http = http_client_new(hopts ? hopts : &none)) == NULL ||
	    (o = oci_new(http, ref, "pull")) == NULL) {
		status = TS_EXIT_FAILURE;
		goto out;
	}
	if ((r = oci_manifest_get(o, ref, &m)) != 0) {
		error("%s: cannot resolve the image: %s", ref_string(ref),
		    ts_err(r));
		goto out;
	}
	d = m->digest;
	status = verify_one_digest(o, ref, &d, k, pol, out, summary);
	if (recursive && oci_manifest_is_index(m)) {
		if ((r = oci_index_children(m, &ch, &nch)) != 0) {
			status = TS_EXIT_REGISTRY;
			goto out;
		}
		for (i = 0; i < nch; i++)
			status = worse(status,
			    verify_one_digest(
				o, ref, &ch[i], k, pol, out, summary));
	}
out:
	pol->digest = NULL;
	free(ch);
	oci_manifest_free(m);
	oci_free(o);
	http_client_free(http);
	ref_free(ref);
	return status;
}
