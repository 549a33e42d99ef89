/*
 * fuzz_payload.c - the strict simple-signing payload parser.  Anything it
 * accepts must round-trip through the builder (when optional holds only
 * strings) and re-parse to the same digest and reference.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
roundtrip(const struct payload *p)
{
	struct payload_kv kv[PAYLOAD_MAX_ANNOTATIONS];
	struct payload *q = NULL;
	uint8_t *out = NULL;
	size_t i, n = payload_optional_count(p), len;
	const char *k, *v;

	if (n > PAYLOAD_MAX_ANNOTATIONS)
		return;
	for (i = 0; i < n; i++) {
		if (payload_optional_at(p, i, &k, &v) != 0 || v == NULL)
			return; /* non-string values are not buildable */
		kv[i].key = k;
		kv[i].value = v;
	}
	if (payload_build(payload_docker_reference(p),
		payload_manifest_digest(p), kv, n, &out, &len) != 0)
		return; /* e.g. empty reference */
	if (payload_parse(out, len, &q, NULL, 0) != 0)
		abort();
	if (!digest_equal(
		payload_manifest_digest(p), payload_manifest_digest(q)) ||
	    strcmp(payload_docker_reference(p), payload_docker_reference(q)) !=
		0)
		abort();
	payload_free(q);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct payload *p = NULL;
	char why[256];

	if (payload_parse(data, size, &p, why, sizeof(why)) == 0) {
		roundtrip(p);
		payload_free(p);
	} else if (p != NULL || why[0] == '\0')
		abort(); /* failures leave no result and always say why */
	return 0;
}
