/*
 * fuzz_ref.c - image reference parser: any bytes must parse or fail
 * cleanly, and a parsed reference must re-parse to the same thing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, why[256];
	struct ref *r = NULL, *r2 = NULL;

	if (size > REF_MAX_LEN + 16)
		return 0;
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (ref_parse(s, &r, why, sizeof(why)) == 0) {
		/* round trip: the canonical string parses to the same ref */
		if (ref_parse(ref_string(r), &r2, why, sizeof(why)) != 0 ||
		    strcmp(ref_string(r), ref_string(r2)) != 0 ||
		    strcmp(ref_identity(r), ref_identity(r2)) != 0)
			abort();
	}
	ref_free(r2);
	ref_free(r);
	free(s);
	return 0;
}
