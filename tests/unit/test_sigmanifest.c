/*
 * test_sigmanifest.c - .sig manifests: exact bytes of manifest and config
 * as cosign/ggcr write them (formats.md 2.2, 2.3), dedupe (2.4), the merge
 * used by the read-modify-write loop, and every parser rejection.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/sigmanifest.h"
#include "common/err.h"

static const char payload1[] =
    "{\"critical\":{\"identity\":{\"docker-reference\":\"192.168.64.2:5000/"
    "cosign-signed-single-sample\"},\"image\":{\"docker-manifest-digest\":"
    "\"sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a0"
    "0\"},\"type\":\"cosign container image signature\"},\"optional\":null}";
#define SIG1                                  \
	"MEYCIQDmtamqYPjMg81nqeBhptrPls44aA/" \
	"r7PwLmspINJY4MwIhANKRpqe2E9UCBtGFdPoz/8jAbaQm4uP4h+IpwKTE6ClR"
#define SIG2                                     \
	"MEQCID1ChQZ8l7JeDTEFJ2F9BXAQSVlnp5P8q+" \
	"l4UJrZnTHqAiB2aeJdrdFVSKgfxt5xidTHIx/QCg6H+g8AXwu1G3d5oQ=="

static struct siglayer *
layer(const char *payload, const char *sig)
{
	struct siglayer *l = NULL;

	assert_int_equal(siglayer_new_signature((const uint8_t *)payload,
			     strlen(payload), sig, &l),
	    0);
	return l;
}

static char *
hexdigest(const void *data, size_t len)
{
	struct digest d;
	char *s = malloc(DIGEST_STR_MAX);

	assert_int_equal(digest_compute(DIGEST_ALG_SHA256, data, len, &d), 0);
	assert_int_equal(digest_format(&d, s, DIGEST_STR_MAX), 0);
	return s;
}

static void
test_render_golden(void **state)
{
	struct sigmanifest *m = sigmanifest_new();
	struct siglayer *l = layer(payload1, SIG1);
	uint8_t *mb, *cb;
	size_t mlen, clen;
	char want[4096], *pd, *cd;
	int added;

	(void)state;
	assert_int_equal(sigmanifest_append(m, l, &added), 0);
	assert_int_equal(added, 1);
	assert_int_equal(sigmanifest_render(m, &mb, &mlen, &cb, &clen), 0);
	pd = hexdigest(payload1, strlen(payload1));
	snprintf(want, sizeof(want),
	    "{\"architecture\":\"\",\"created\":\"0001-01-01T00:00:00Z\","
	    "\"history\":[{\"created\":\"0001-01-01T00:00:00Z\"}],\"os\":\"\","
	    "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]},"
	    "\"config\":{}}",
	    pd);
	assert_int_equal(clen, strlen(want));
	assert_memory_equal(cb, want, clen);
	cd = hexdigest(cb, clen);
	snprintf(want, sizeof(want),
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image."
	    "manifest.v1+json\",\"config\":{\"mediaType\":\"application/"
	    "vnd.oci."
	    "image.config.v1+json\",\"size\":%zu,\"digest\":\"%s\"},\"layers\":"
	    "[{\"mediaType\":\"application/vnd.dev.cosign.simplesigning.v1+json"
	    "\",\"size\":%zu,\"digest\":\"%s\",\"annotations\":{\"dev."
	    "cosignproject.cosign/signature\":\"%s\"}}]}",
	    clen, cd, strlen(payload1), pd, SIG1);
	assert_int_equal(mlen, strlen(want));
	assert_memory_equal(mb, want, mlen);
	free(mb);
	free(cb);
	free(pd);
	free(cd);
	siglayer_free(l);
	sigmanifest_free(m);
}

static void
test_append_dedupe_parse_roundtrip(void **state)
{
	struct sigmanifest *m = sigmanifest_new(), *p = NULL;
	struct siglayer *a = layer(payload1, SIG1), *b = layer(payload1, SIG2);
	struct siglayer *c = layer(payload1, SIG1);
	uint8_t *mb, *cb, *mb2, *cb2;
	size_t mlen, clen, mlen2, clen2;
	const char *k, *v;
	char why[256];
	int added;

	(void)state;
	assert_int_equal(sigmanifest_append(m, a, &added), 0);
	assert_int_equal(added, 1);
	/* same payload + same signature: no duplicate */
	assert_int_equal(sigmanifest_append(m, c, &added), 0);
	assert_int_equal(added, 0);
	/* same payload blob, another signature: a second layer */
	assert_int_equal(sigmanifest_append(m, b, &added), 0);
	assert_int_equal(added, 1);
	/* one more annotation makes it different (c/image rule) */
	assert_int_equal(siglayer_set_annotation(c, SIG_ANN_CHAIN, ""), 0);
	assert_false(siglayer_equal(a, c));
	assert_int_equal(sigmanifest_append(m, c, &added), 0);
	assert_int_equal(added, 1);
	assert_int_equal(sigmanifest_layer_count(m), 3);
	assert_int_equal(sigmanifest_render(m, &mb, &mlen, &cb, &clen), 0);
	assert_int_equal(
	    sigmanifest_parse(mb, mlen, OCI_MANIFEST_MEDIA_TYPE "; charset=x",
		&p, why, sizeof(why)),
	    0);
	assert_int_equal(sigmanifest_layer_count(p), 3);
	assert_int_equal(sigmanifest_signature_count(p), 3);
	assert_true(siglayer_equal(sigmanifest_layer(p, 2), c));
	/* annotations come back sorted */
	assert_int_equal(
	    siglayer_annotation_at(sigmanifest_layer(p, 2), 0, &k, &v), 0);
	assert_string_equal(k, SIG_ANN_SIGNATURE);
	assert_int_equal(
	    siglayer_annotation_at(sigmanifest_layer(p, 2), 1, &k, &v), 0);
	assert_string_equal(k, SIG_ANN_CHAIN);
	assert_string_equal(
	    siglayer_annotation(sigmanifest_layer(p, 1), SIG_ANN_SIGNATURE),
	    SIG2);
	/* re-rendering a parsed manifest gives the same bytes */
	assert_int_equal(sigmanifest_render(p, &mb2, &mlen2, &cb2, &clen2), 0);
	assert_int_equal(mlen, mlen2);
	assert_memory_equal(mb, mb2, mlen);
	assert_memory_equal(cb, cb2, clen);
	free(mb);
	free(cb);
	free(mb2);
	free(cb2);
	siglayer_free(a);
	siglayer_free(b);
	siglayer_free(c);
	sigmanifest_free(m);
	sigmanifest_free(p);
}

static void
test_merge(void **state)
{
	struct siglayer *ours = layer(payload1, SIG1);
	struct siglayer *theirs = layer(payload1, SIG2);
	const struct siglayer *list[1];
	struct sigmanifest *fresh = sigmanifest_new(), *merged, *again;
	size_t missing;
	int added;

	(void)state;
	list[0] = ours;
	/* tag absent: merged is just ours */
	assert_int_equal(
	    sigmanifest_merge(NULL, list, 1, &merged, &missing), 0);
	assert_int_equal(missing, 1);
	assert_int_equal(sigmanifest_layer_count(merged), 1);
	sigmanifest_free(merged);
	/* someone else won the race: keep theirs first, add ours */
	assert_int_equal(sigmanifest_append(fresh, theirs, &added), 0);
	assert_int_equal(
	    sigmanifest_merge(fresh, list, 1, &merged, &missing), 0);
	assert_int_equal(missing, 1);
	assert_int_equal(sigmanifest_layer_count(merged), 2);
	assert_true(siglayer_equal(sigmanifest_layer(merged, 0), theirs));
	assert_true(siglayer_equal(sigmanifest_layer(merged, 1), ours));
	/* read back after our PUT: nothing missing, no PUT needed */
	assert_int_equal(
	    sigmanifest_merge(merged, list, 1, &again, &missing), 0);
	assert_int_equal(missing, 0);
	assert_int_equal(sigmanifest_layer_count(again), 2);
	assert_true(sigmanifest_contains(again, ours));
	sigmanifest_free(again);
	sigmanifest_free(merged);
	sigmanifest_free(fresh);
	siglayer_free(ours);
	siglayer_free(theirs);
}

#define CFG                                        \
	"\"config\":{\"mediaType\":\"application/" \
	"vnd.oci.image.config.v1+json\","          \
	"\"size\":2,\"digest\":\"sha256:"          \
	"44136fa355b3678a1146ad16f7e8649e94fb4fc2" \
	"1fe77e8310c060f61caaff8a\"}"
#define LAYER(mt, size, dig, ann)                                       \
	"{\"mediaType\":\"" mt "\",\"size\":" size ",\"digest\":\"" dig \
	"\"" ann "}"
#define D44       \
	"sha256:" \
	"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
#define OCI "application/vnd.oci.image.manifest.v1+json"

static void
test_parse_other_layers(void **state)
{
	const char *doc =
	    "{\"schemaVersion\":2,\"mediaType\":\"" OCI "\"," CFG
	    ",\"layers\":[" LAYER("text/plain", "2", D44, "") "," LAYER(
		SIG_LAYER_MEDIA_TYPE, "2", D44,
		",\"annotations\":{\"x\":\"y\"}") "],"
						  "\"annotations\":{\"m\":"
						  "\"n\"},\"subject\":{}}";
	struct sigmanifest *m;
	char why[256];

	(void)state;
	assert_int_equal(sigmanifest_parse((const uint8_t *)doc, strlen(doc),
			     NULL, &m, why, sizeof(why)),
	    0);
	assert_int_equal(sigmanifest_layer_count(m), 2);
	assert_int_equal(sigmanifest_signature_count(m), 1);
	assert_int_equal(sigmanifest_other_count(m), 1);
	assert_false(siglayer_is_signature(sigmanifest_layer(m, 0)));
	/* a signature layer without the signature annotation is parsed */
	assert_null(
	    siglayer_annotation(sigmanifest_layer(m, 1), SIG_ANN_SIGNATURE));
	sigmanifest_free(m);
}

struct bad {
	const char *ct;
	const char *doc;
	int code;
	const char *why;
};

static const struct bad bad_cases[] = {
	{ "application/vnd.docker.distribution.manifest.v2+json",
	    "{\"schemaVersion\":2," CFG ",\"layers\":[]}",
	    TS_ERR_MANIFEST_INVALID, "not an OCI image manifest" },
	{ NULL,
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker."
	    "distribution.manifest.v2+json\"," CFG ",\"layers\":[]}",
	    TS_ERR_MANIFEST_INVALID, "not an OCI image manifest" },
	{ OCI,
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker."
	    "distribution.manifest.v2+json\"," CFG ",\"layers\":[]}",
	    TS_ERR_MANIFEST_INVALID, "not an OCI image manifest" },
	{ NULL, "{\"schemaVersion\":2," CFG ",\"layers\":[]}",
	    TS_ERR_MANIFEST_INVALID, "no mediaType" },
	{ OCI, "{\"schemaVersion\":1," CFG ",\"layers\":[]}",
	    TS_ERR_MANIFEST_INVALID, "schemaVersion" },
	{ OCI, "{\"schemaVersion\":\"2\"," CFG ",\"layers\":[]}",
	    TS_ERR_MANIFEST_INVALID, "schemaVersion" },
	{ OCI, "{\"schemaVersion\":2,\"manifests\":[]," CFG ",\"layers\":[]}",
	    TS_ERR_MANIFEST_INVALID, "index" },
	{ OCI, "{\"schemaVersion\":2,\"layers\":[]}", TS_ERR_MANIFEST_INVALID,
	    "config" },
	{ OCI, "{\"schemaVersion\":2," CFG "}", TS_ERR_MANIFEST_INVALID,
	    "layers" },
	{ OCI, "{\"schemaVersion\":2," CFG ",\"layers\":{}}",
	    TS_ERR_MANIFEST_INVALID, "not an array" },
	{ OCI, "{\"schemaVersion\":2," CFG ",\"layers\":[1]}",
	    TS_ERR_MANIFEST_INVALID, "layers[0] is not an object" },
	{ OCI,
	    "{\"schemaVersion\":2," CFG
	    ",\"layers\":[" LAYER("a", "-1", D44, "") "]}",
	    TS_ERR_MANIFEST_INVALID, "layers[0].size" },
	{ OCI,
	    "{\"schemaVersion\":2," CFG
	    ",\"layers\":[" LAYER("a", "1.5", D44, "") "]}",
	    TS_ERR_MANIFEST_INVALID, "layers[0].size" },
	{ OCI,
	    "{\"schemaVersion\":2," CFG
	    ",\"layers\":[" LAYER("a", "2", "sha256:abc", "") "]}",
	    TS_ERR_MANIFEST_INVALID, "layers[0].digest" },
	{ OCI,
	    "{\"schemaVersion\":2," CFG ",\"layers\":[" LAYER(
		"a", "2", D44, ",\"annotations\":{\"k\":1}") "]}",
	    TS_ERR_MANIFEST_INVALID, "not a string" },
	{ OCI,
	    "{\"schemaVersion\":2," CFG
	    ",\"layers\":[" LAYER("a", "2", D44, ",\"annotations\":[]") "]}",
	    TS_ERR_MANIFEST_INVALID, "not an object" },
	{ OCI, "{\"schemaVersion\":2," CFG ",\"layers\":[],\"layers\":[]}",
	    TS_ERR_MANIFEST_INVALID, "duplicate" },
	{ OCI, "{\"schemaVersion\":2," CFG ",\"layers\":[]} x",
	    TS_ERR_MANIFEST_INVALID, "invalid JSON" },
	{ OCI, "", TS_ERR_MANIFEST_INVALID, "invalid JSON" },
};

static void
test_parse_rejects(void **state)
{
	struct sigmanifest *m;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		m = (struct sigmanifest *)1;
		why[0] = '\0';
		if (sigmanifest_parse((const uint8_t *)bad_cases[i].doc,
			strlen(bad_cases[i].doc), bad_cases[i].ct, &m, why,
			sizeof(why)) != bad_cases[i].code)
			fail_msg("case %zu: wrong result (%s)", i, why);
		assert_null(m);
		if (strstr(why, bad_cases[i].why) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why,
			    bad_cases[i].why);
	}
}

static void
test_limits(void **state)
{
	struct sigmanifest *m = sigmanifest_new(), *p;
	struct siglayer *l;
	char sig[32], why[256];
	uint8_t *mb, *cb, *big;
	size_t i, mlen, clen;
	int added;

	(void)state;
	/* exactly SIGMANIFEST_MAX_LAYERS layers: fine; one more: refused */
	for (i = 0; i < SIGMANIFEST_MAX_LAYERS; i++) {
		snprintf(sig, sizeof(sig), "sig%zu", i);
		l = layer(payload1, sig);
		assert_int_equal(sigmanifest_append(m, l, &added), 0);
		assert_int_equal(added, 1);
		siglayer_free(l);
	}
	l = layer(payload1, "one-too-many");
	assert_int_equal(sigmanifest_append(m, l, &added), TS_ERR_TOO_LARGE);
	assert_int_equal(added, 0);
	siglayer_free(l);
	assert_int_equal(sigmanifest_render(m, &mb, &mlen, &cb, &clen), 0);
	assert_int_equal(
	    sigmanifest_parse(mb, mlen, OCI, &p, why, sizeof(why)), 0);
	assert_int_equal(sigmanifest_layer_count(p), SIGMANIFEST_MAX_LAYERS);
	sigmanifest_free(p);
	/* a registry manifest with 1001 layers is refused */
	{
		const char *tail = "]}";
		size_t n = mlen + 200;
		char *doc = malloc(n);
		size_t off = mlen - 2; /* strip "]}" */

		memcpy(doc, mb, off);
		off += (size_t)snprintf(doc + off, n - off, ",%s%s",
		    "{\"mediaType\":\"a\",\"size\":2,\"digest\":\"" D44 "\"}",
		    tail);
		assert_int_equal(sigmanifest_parse((uint8_t *)doc, off, OCI, &p,
				     why, sizeof(why)),
		    TS_ERR_TOO_LARGE);
		assert_non_null(strstr(why, "limit"));
		free(doc);
	}
	free(mb);
	free(cb);
	sigmanifest_free(m);
	/* one byte over the size cap */
	big = malloc(SIGMANIFEST_MAX_LEN + 1);
	memset(big, ' ', SIGMANIFEST_MAX_LEN + 1);
	assert_int_equal(sigmanifest_parse(big, SIGMANIFEST_MAX_LEN + 1, OCI,
			     &p, why, sizeof(why)),
	    TS_ERR_TOO_LARGE);
	free(big);
	/* nothing to render */
	m = sigmanifest_new();
	assert_int_equal(
	    sigmanifest_render(m, &mb, &mlen, &cb, &clen), TS_ERR_INVALID_ARG);
	assert_null(mb);
	sigmanifest_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_golden),
		cmocka_unit_test(test_append_dedupe_parse_roundtrip),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_parse_other_layers),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
