/*
 * fuzz_p11uri.c - PKCS#11 URI parser (pkcs11/uri.c).
 *
 * Oracle: whatever parses must format, the formatted text must parse
 * again, and formatting that must give the same text (canonical form is a
 * fixed point); the id bytes must survive the round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pkcs11/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct p11_uri *a = NULL, *b = NULL;
	char *text, *s1 = NULL, *s2 = NULL, err[P11_URI_ERRBUF_SIZE];
	const uint8_t *ida, *idb;
	size_t la, lb;
	const int all =
	    P11_URI_FMT_MODULE | P11_URI_FMT_PIN_SOURCE | P11_URI_FMT_PIN_VALUE;

	if ((text = malloc(len + 1)) == NULL)
		return 0;
	memcpy(text, data, len);
	text[len] = '\0';
	if (p11_uri_parse(text, &a, err, sizeof(err)) != 0)
		goto out;
	if (p11_uri_format(a, all, &s1) != 0)
		goto out;
	if (p11_uri_parse(s1, &b, err, sizeof(err)) != 0)
		abort(); /* canonical output must parse */
	if (p11_uri_format(b, all, &s2) != 0)
		goto out;
	if (strcmp(s1, s2) != 0)
		abort();
	ida = p11_uri_get_id(a, &la);
	idb = p11_uri_get_id(b, &lb);
	if ((ida == NULL) != (idb == NULL) || la != lb ||
	    (la > 0 && memcmp(ida, idb, la) != 0))
		abort();
out:
	free(s1);
	free(s2);
	p11_uri_free(a);
	p11_uri_free(b);
	free(text);
	return 0;
}
