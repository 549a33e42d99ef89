/*
 * fuzz_verify.c - the verifier's own parsers on hostile input: docker
 * reference normalisation (identities), Go-compatible base64, and
 * verify_one() end to end with the containers/image fixture key.  Input:
 * "IDENTITY\nSIGNATURE_B64\nPAYLOAD...".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/verify.h"
#include "common/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cosign_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFNLqFhf4fiN6o/glAuYnq2jYUeL0\n"
    "vRuLu/z39pmbVwS9ff5AYnlwaP9sxREajdLY9ynM6G1sy6AAmb7Z63TsLg==\n"
    "-----END PUBLIC KEY-----\n";

static char *
field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	char *s;

	if (nl == NULL)
		return NULL;
	if ((s = strndup((const char *)*p, (size_t)(nl - *p))) == NULL)
		abort();
	*p = nl + 1;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct verify_key *k;
	const uint8_t *p = data, *end = data + size;
	struct verify_policy pol;
	struct payload *parsed = NULL;
	struct digest d;
	char *ident, *sig, *n, *t, *dg, why[512];
	uint8_t *raw;
	size_t rawlen;
	int r;

	if (k == NULL &&
	    verify_key_load_pem((const uint8_t *)cosign_pub, strlen(cosign_pub),
		&k, NULL, 0) != 0)
		abort();
	if ((ident = field(&p, end)) == NULL)
		return 0;
	if ((sig = field(&p, end)) == NULL) {
		free(ident);
		return 0;
	}
	if (verify_ref_normalize(ident, &n, &t, &dg) == 0) {
		/* a normalised name normalises to itself */
		char *n2, *t2, *d2;

		if (verify_ref_normalize(n, &n2, &t2, &d2) != 0 ||
		    strcmp(n, n2) != 0 || t2 != NULL || d2 != NULL)
			abort();
		free(n2);
		free(n);
		free(t);
		free(dg);
	}
	if (verify_base64_decode(
		sig, strlen(sig), VERIFY_SIG_MAX_LEN, &raw, &rawlen) == 0) {
		if (rawlen == 0 || rawlen > VERIFY_SIG_MAX_LEN)
			abort();
		free(raw);
	}
	memset(&pol, 0, sizeof(pol));
	if (digest_compute(DIGEST_ALG_SHA256, "x", 1, &d) != 0)
		abort();
	pol.digest = &d;
	pol.identity = ident;
	pol.identity_mode = VERIFY_ID_AUTO;
	why[0] = '\0';
	r = verify_one(
	    k, p, (size_t)(end - p), sig, &pol, &parsed, why, sizeof(why));
	if (r == 0 ? parsed == NULL : (parsed != NULL || why[0] == '\0'))
		abort();
	payload_free(parsed);
	free(ident);
	free(sig);
	return 0;
}
