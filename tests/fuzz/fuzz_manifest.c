/*
 * fuzz_manifest.c - the .sig manifest parser.  Whatever it accepts must
 * render, re-parse to the same layers, and merge with itself to nothing.
 */
#include <stdint.h>
#include <stdlib.h>

#include "client/sigmanifest.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct sigmanifest *m)
{
	const struct siglayer *ls[SIGMANIFEST_MAX_LAYERS];
	struct sigmanifest *p = NULL, *merged = NULL;
	uint8_t *mb = NULL, *cb = NULL;
	size_t i, n = sigmanifest_layer_count(m), mlen, clen, missing;

	if (sigmanifest_signature_count(m) + sigmanifest_other_count(m) != n)
		abort();
	if (n == 0)
		return;
	if (sigmanifest_render(m, &mb, &mlen, &cb, &clen) != 0)
		return; /* e.g. over the size cap once re-escaped */
	if (sigmanifest_parse(mb, mlen, NULL, &p, NULL, 0) != 0 ||
	    sigmanifest_layer_count(p) != n)
		abort();
	for (i = 0; i < n; i++) {
		if (!siglayer_equal(
			sigmanifest_layer(m, i), sigmanifest_layer(p, i)))
			abort();
		ls[i] = sigmanifest_layer(m, i);
	}
	if (sigmanifest_merge(p, ls, n, &merged, &missing) != 0 || missing != 0)
		abort();
	sigmanifest_free(merged);
	sigmanifest_free(p);
	free(mb);
	free(cb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sigmanifest *m = NULL;

	if (sigmanifest_parse(data, size, NULL, &m, NULL, 0) == 0) {
		check(m);
		sigmanifest_free(m);
	} else if (m != NULL)
		abort();
	return 0;
}
