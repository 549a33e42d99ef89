/*
 * fuzz_p11key.c - public key material as a hostile token returns it
 * (pkcs11/key.c: p11_key_set_ec, p11_key_set_rsa).
 *
 * Input: byte 0 selects the path (0: CKK_EC, 1: CKK_EC_EDWARDS, 2: RSA);
 * byte 1 is the length of the first attribute (CKA_EC_PARAMS, or the RSA
 * public exponent), which follows; the rest is the second attribute
 * (CKA_EC_POINT, or the modulus).
 * Oracle: an accepted key's SPKI parses with OpenSSL and re-encodes to the
 * same bytes, and its signature length fits P11_SIG_MAX_LEN.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "pkcs11/internal.h"
#include "pkcs11/sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct p11_key *k;
	const uint8_t *a, *b, *p;
	size_t alen, blen;
	EVP_PKEY *pk;
	uint8_t *re = NULL;
	int r, relen;

	ts_log_set_level(TS_LOG_QUIET);
	if (len < 2 || (size_t)data[1] > len - 2)
		return 0;
	alen = data[1];
	a = data + 2;
	b = a + alen;
	blen = len - 2 - alen;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return 0;
	if ((k->label = strdup("fuzz")) == NULL) {
		free(k);
		return 0;
	}
	switch (data[0] % 3) {
	case 0:
		r = p11_key_set_ec(k, CKK_EC, a, alen, b, blen);
		break;
	case 1:
		r = p11_key_set_ec(k, CKK_EC_EDWARDS, a, alen, b, blen);
		break;
	default:
		r = p11_key_set_rsa(k, b, blen, a, alen);
		break;
	}
	if (r == 0) {
		if (k->spki == NULL || k->pem == NULL || k->sig_len == 0 ||
		    k->sig_len > P11_SIG_MAX_LEN)
			abort();
		p = k->spki;
		if ((pk = d2i_PUBKEY(NULL, &p, (long)k->spkilen)) == NULL ||
		    p != k->spki + k->spkilen)
			abort();
		relen = i2d_PUBKEY(pk, &re);
		if (relen < 0 || (size_t)relen != k->spkilen ||
		    memcmp(re, k->spki, k->spkilen) != 0)
			abort();
		OPENSSL_free(re);
		EVP_PKEY_free(pk);
	} else if (k->spki != NULL) {
		abort(); /* never half-built */
	}
	p11_key_free(k);
	return 0;
}
