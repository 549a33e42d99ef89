/*
 * fuzz_wwwauth.c - WWW-Authenticate parser: any bytes parse or fail cleanly
 * within the caps; every parsed challenge has a scheme and bounded params.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/registry_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wwwauth wa;
	size_t i, j;

	memset(&wa, 0, sizeof(wa));
	(void)!wwwauth_parse((const char *)data, size, &wa);
	if (wa.n > WWWAUTH_MAX_CHALLENGES)
		abort();
	for (i = 0; i < wa.n; i++) {
		if (wa.ch[i].scheme == NULL || wa.ch[i].scheme[0] == '\0' ||
		    wa.ch[i].nparams > WWWAUTH_MAX_PARAMS)
			abort();
		for (j = 0; j < wa.ch[i].nparams; j++)
			if (strlen(wa.ch[i].params[j].value) >
			    WWWAUTH_MAX_VALUE)
				abort();
	}
	wwwauth_clear(&wa);
	return 0;
}
