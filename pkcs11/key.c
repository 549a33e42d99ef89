/*
 * key.c - key discovery and validation.
 *
 * Everything a token returns is treated as hostile (style.md section 4):
 * attributes are read with a size query then a data call, both checked
 * against a named maximum; EC points are accepted wrapped in a DER OCTET
 * STRING or bare (formats.md 9.1) and must decode to a point on the named
 * curve; RSA moduli must be 2048..8192 bits with a sane exponent.  A key
 * failing any check is skipped with a log line, never half-built.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/log.h"
#include "pkcs11/internal.h"
#include "pkcs11/key.h"
#include "pkcs11/sign.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

#define P11_FIND_BATCH 64

int
p11_get_attr(struct p11_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, size_t maxlen, uint8_t **valp, size_t *lenp)
{
	CK_ATTRIBUTE a;
	uint8_t *v = NULL;
	CK_ULONG want;
	CK_RV rv;

	*valp = NULL;
	*lenp = 0;
	a.type = type;
	a.pValue = NULL;
	a.ulValueLen = 0;
	rv = tok->prov->f->C_GetAttributeValue(s, o, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return TS_ERR_NOT_FOUND;
	if (rv != CKR_OK)
		return p11_token_rv(tok, rv, "C_GetAttributeValue");
	if (a.ulValueLen > maxlen) {
		error_f("token %.32s: attribute 0x%lx is %lu bytes (max %zu)",
		    tok->label, (unsigned long)type,
		    (unsigned long)a.ulValueLen, maxlen);
		return TS_ERR_P11_BAD_ATTRIBUTE;
	}
	want = a.ulValueLen;
	if ((v = calloc(1, (size_t)want + 1)) == NULL)
		return TS_ERR_ALLOC;
	if (want > 0) {
		a.pValue = v;
		rv = tok->prov->f->C_GetAttributeValue(s, o, &a, 1);
		if (rv != CKR_OK) {
			free(v);
			return p11_token_rv(tok, rv, "C_GetAttributeValue");
		}
		/* the second answer must not claim more than we gave it */
		if (a.ulValueLen > want ||
		    a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
			free(v);
			error_f("token %.32s: attribute 0x%lx changed size",
			    tok->label, (unsigned long)type);
			return TS_ERR_P11_BAD_ATTRIBUTE;
		}
	}
	*valp = v;
	*lenp = (size_t)a.ulValueLen;
	return 0;
}

static int
get_fixed(struct p11_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, void *v, size_t len)
{
	CK_ATTRIBUTE a;
	CK_RV rv;

	a.type = type;
	a.pValue = v;
	a.ulValueLen = (CK_ULONG)len;
	rv = tok->prov->f->C_GetAttributeValue(s, o, &a, 1);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return TS_ERR_NOT_FOUND;
	if (rv != CKR_OK)
		return p11_token_rv(tok, rv, "C_GetAttributeValue");
	if (a.ulValueLen != len)
		return TS_ERR_P11_BAD_ATTRIBUTE;
	return 0;
}

int
p11_get_ulong(struct p11_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, CK_ULONG *vp)
{
	*vp = 0;
	return get_fixed(tok, s, o, type, vp, sizeof(*vp));
}

int
p11_get_bool(struct p11_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    CK_ATTRIBUTE_TYPE type, int *vp)
{
	CK_BBOOL b = CK_FALSE;
	int r;

	*vp = 0;
	if ((r = get_fixed(tok, s, o, type, &b, sizeof(b))) != 0)
		return r;
	*vp = b != CK_FALSE;
	return 0;
}

void
p11_key_free(struct p11_key *key)
{
	if (key == NULL)
		return;
	free(key->label);
	free(key->id);
	free(key->spki);
	free(key->pem);
	free(key->uri);
	free(key);
}

/* Fills spki, pem and fingerprint from pkey. */
static int
key_finish(struct p11_key *key, EVP_PKEY *pkey)
{
	unsigned char *der = NULL, *p;
	BIO *bio = NULL;
	BUF_MEM *bm;
	char b64[48];
	unsigned int mdlen = 0;
	int len, n, r = TS_ERR_CRYPTO;

	if ((len = i2d_PUBKEY(pkey, NULL)) <= 0 ||
	    (der = malloc((size_t)len)) == NULL) {
		r = len <= 0 ? ts_err_ossl("i2d_PUBKEY") : TS_ERR_ALLOC;
		goto out;
	}
	p = der;
	if (i2d_PUBKEY(pkey, &p) != len) {
		r = ts_err_ossl("i2d_PUBKEY");
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, pkey) != 1) {
		r = ts_err_ossl("PEM_write_bio_PUBKEY");
		goto out;
	}
	BIO_get_mem_ptr(bio, &bm);
	if ((key->pem = malloc(bm->length + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	memcpy(key->pem, bm->data, bm->length);
	key->pem[bm->length] = '\0';
	if (EVP_Digest(der, (size_t)len, key->fp, &mdlen, EVP_sha256(), NULL) !=
		1 ||
	    mdlen != sizeof(key->fp)) {
		r = ts_err_ossl("EVP_Digest");
		goto out;
	}
	n = EVP_EncodeBlock((unsigned char *)b64, key->fp, sizeof(key->fp));
	while (n > 0 && b64[n - 1] == '=')
		n--;
	b64[n] = '\0';
	snprintf(key->fpstr, sizeof(key->fpstr), "SHA256:%s", b64);
	key->spki = der;
	key->spkilen = (size_t)len;
	der = NULL;
	r = 0;
out:
	free(der);
	BIO_free(bio);
	return r;
}

int
p11_key_set_rsa(struct p11_key *key, const uint8_t *n, size_t nlen,
    const uint8_t *e, size_t elen)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn = NULL, *be = NULL;
	int bits, r = TS_ERR_P11_KEY_TYPE;

	while (nlen > 0 && *n == 0) {
		n++;
		nlen--;
	}
	while (elen > 0 && *e == 0) {
		e++;
		elen--;
	}
	if (nlen == 0 || elen == 0 || elen > 8 || (e[elen - 1] & 1) == 0 ||
	    (elen == 1 && e[0] < 3)) {
		error_f("RSA key %.64s: bad public exponent", key->label);
		goto out;
	}
	if ((bn = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (be = BN_bin2bn(e, (int)elen, NULL)) == NULL) {
		r = ts_err_ossl("BN_bin2bn");
		goto out;
	}
	bits = BN_num_bits(bn);
	if (bits < P11_RSA_MIN_BITS || bits > P11_RSA_MAX_BITS ||
	    !BN_is_odd(bn)) {
		error_f("RSA key %.64s: %d-bit modulus unsupported (want "
			"%d..%d, odd)",
		    key->label, bits, P11_RSA_MIN_BITS, P11_RSA_MAX_BITS);
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		r = ts_err_ossl("RSA fromdata");
		goto out;
	}
	key->type = P11_KEY_RSA;
	key->bits = (unsigned)bits;
	key->sig_len = ((size_t)bits + 7) / 8;
	r = key_finish(key, pkey);
out:
	BN_free(bn);
	BN_free(be);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return r;
}

static const struct curve {
	const uint8_t *der;
	size_t len;
	enum p11_key_type type;
	const char *group;
	size_t field; /* bytes per coordinate; point size for Ed25519 */
	unsigned bits;
} curves[] = {
	{ (const uint8_t *)"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07", 10,
	    P11_KEY_EC_P256, "prime256v1", 32, 256 },
	{ (const uint8_t *)"\x06\x05\x2b\x81\x04\x00\x22", 7, P11_KEY_EC_P384,
	    "secp384r1", 48, 384 },
	{ (const uint8_t *)"\x06\x05\x2b\x81\x04\x00\x23", 7, P11_KEY_EC_P521,
	    "secp521r1", 66, 521 },
	/* id-Ed25519 (RFC 8410) */
	{ (const uint8_t *)"\x06\x03\x2b\x65\x70", 5, P11_KEY_ED25519, NULL, 32,
	    255 },
	/* GnuPG's OID, written by OpenSC pkcs11-tool */
	{ (const uint8_t *)"\x06\x09\x2b\x06\x01\x04\x01\xda\x47\x0f\x01", 11,
	    P11_KEY_ED25519, NULL, 32, 255 },
	/* PKCS#11 3.0 allows the curve name as a PrintableString */
	{ (const uint8_t *)"\x13\x0c"
			   "edwards25519",
	    14, P11_KEY_ED25519, NULL, 32, 255 },
};

/* Returns 1 when p[0..len) is a valid encoding of a point on c. */
static int
point_size_ok(const struct curve *c, const uint8_t *p, size_t len)
{
	if (c->type == P11_KEY_ED25519)
		return len == c->field;
	if (len == 1 + 2 * c->field && p[0] == 0x04)
		return 1;
	return len == 1 + c->field && (p[0] == 0x02 || p[0] == 0x03);
}

/*
 * Finds the point inside CKA_EC_POINT: a DER OCTET STRING around it
 * (PKCS#11's rule) or the bare point (some tokens).  Lengths decide, so a
 * bare point that happens to start with 0x04 is not misread.
 */
static int
unwrap_point(const struct curve *c, const uint8_t *p, size_t len,
    const uint8_t **ptp, size_t *ptlenp)
{
	size_t hdr = 0, l = 0;

	*ptp = NULL;
	*ptlenp = 0;
	if (len >= 2 && p[0] == 0x04) {
		if (p[1] < 0x80) {
			hdr = 2;
			l = p[1];
		} else if (p[1] == 0x81 && len >= 3 && p[2] >= 0x80) {
			hdr = 3;
			l = p[2];
		}
		if (hdr != 0 && len - hdr == l &&
		    point_size_ok(c, p + hdr, l)) {
			*ptp = p + hdr;
			*ptlenp = l;
			return 0;
		}
	}
	if (point_size_ok(c, p, len)) {
		*ptp = p;
		*ptlenp = len;
		return 0;
	}
	return TS_ERR_P11_BAD_ATTRIBUTE;
}

int
p11_key_set_ec(struct p11_key *key, CK_KEY_TYPE ck_type, const uint8_t *params,
    size_t plen, const uint8_t *point, size_t ptlen)
{
	const struct curve *c = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *op = NULL;
	EVP_PKEY_CTX *ctx = NULL, *cctx = NULL;
	EVP_PKEY *pkey = NULL;
	const uint8_t *pt;
	size_t i, len;
	int r = TS_ERR_P11_KEY_TYPE;

	for (i = 0; i < sizeof(curves) / sizeof(curves[0]); i++) {
		if (plen == curves[i].len &&
		    memcmp(params, curves[i].der, plen) == 0) {
			c = &curves[i];
			break;
		}
	}
	if (c == NULL) {
		error_f("key %.64s: unsupported curve", key->label);
		goto out;
	}
	if ((ck_type == CKK_EC) != (c->type != P11_KEY_ED25519)) {
		error_f(
		    "key %.64s: key type does not fit its curve", key->label);
		goto out;
	}
	if (unwrap_point(c, point, ptlen, &pt, &len) != 0) {
		error_f("key %.64s: malformed EC point (%zu bytes)", key->label,
		    ptlen);
		r = TS_ERR_P11_BAD_ATTRIBUTE;
		goto out;
	}
	if (c->type == P11_KEY_ED25519) {
		pkey = EVP_PKEY_new_raw_public_key(
		    EVP_PKEY_ED25519, NULL, pt, len);
		if (pkey == NULL) {
			r = ts_err_ossl("Ed25519 public key");
			goto out;
		}
		key->sig_len = 64;
	} else {
		if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
		    !OSSL_PARAM_BLD_push_utf8_string(
			bld, OSSL_PKEY_PARAM_GROUP_NAME, c->group, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(
			bld, OSSL_PKEY_PARAM_PUB_KEY, pt, len) ||
		    (op = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
		    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) ==
			NULL ||
		    EVP_PKEY_fromdata_init(ctx) != 1 ||
		    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, op) !=
			1) {
			error_f(
			    "key %.64s: EC point not on the curve", key->label);
			ts_err_ossl("EC fromdata");
			r = TS_ERR_P11_BAD_ATTRIBUTE;
			goto out;
		}
		if ((cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) ==
			NULL ||
		    EVP_PKEY_public_check(cctx) != 1) {
			error_f("key %.64s: EC point fails the public key "
				"check",
			    key->label);
			ts_err_ossl("EVP_PKEY_public_check");
			r = TS_ERR_P11_BAD_ATTRIBUTE;
			goto out;
		}
		key->sig_len = 2 * c->field;
	}
	key->type = c->type;
	key->bits = c->bits;
	r = key_finish(key, pkey);
out:
	OSSL_PARAM_free(op);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_CTX_free(cctx);
	EVP_PKEY_free(pkey);
	return r;
}

/* Collects up to P11_MAX_OBJECTS handles of objects of class cls. */
static int
find_objects(struct p11_token *tok, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl,
    CK_ULONG ntmpl, size_t max, CK_OBJECT_HANDLE **hp, size_t *np)
{
	CK_FUNCTION_LIST_PTR f = tok->prov->f;
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG cnt;
	size_t n = 0;
	CK_RV rv;
	int r = TS_ERR_INTERNAL;

	*hp = NULL;
	*np = 0;
	if ((h = calloc(max + P11_FIND_BATCH, sizeof(*h))) == NULL)
		return TS_ERR_ALLOC;
	if ((rv = f->C_FindObjectsInit(s, tmpl, ntmpl)) != CKR_OK) {
		r = p11_token_rv(tok, rv, "C_FindObjectsInit");
		goto out;
	}
	while (n < max) {
		cnt = 0;
		rv = f->C_FindObjects(s, h + n, P11_FIND_BATCH, &cnt);
		if (rv != CKR_OK) {
			f->C_FindObjectsFinal(s);
			r = p11_token_rv(tok, rv, "C_FindObjects");
			goto out;
		}
		if (cnt > P11_FIND_BATCH) {
			f->C_FindObjectsFinal(s);
			r = TS_ERR_P11_BAD_ATTRIBUTE;
			goto out;
		}
		if (cnt == 0)
			break;
		n += cnt;
	}
	if (n >= max) {
		n = max;
		debug_f("token %.32s: more than %zu objects; the rest are "
			"ignored",
		    tok->label, max);
	}
	if ((rv = f->C_FindObjectsFinal(s)) != CKR_OK) {
		r = p11_token_rv(tok, rv, "C_FindObjectsFinal");
		goto out;
	}
	*hp = h;
	*np = n;
	h = NULL;
	r = 0;
out:
	free(h);
	return r;
}

static int
key_make_uri(struct p11_key *key)
{
	struct p11_token *tok = key->tok;
	struct p11_uri *uri;
	int r;

	if ((uri = p11_uri_new()) == NULL)
		return TS_ERR_ALLOC;
	if ((r = p11_uri_set(uri, P11_URI_TOKEN, tok->label)) != 0 ||
	    (r = p11_uri_set(uri, P11_URI_MANUFACTURER, tok->manufacturer)) !=
		0 ||
	    (r = p11_uri_set(uri, P11_URI_SERIAL, tok->serial)) != 0 ||
	    (r = p11_uri_set(uri, P11_URI_MODEL, tok->model)) != 0)
		goto out;
	if (*key->label != '\0' &&
	    (r = p11_uri_set(uri, P11_URI_OBJECT, key->label)) != 0)
		goto out;
	if (key->idlen > 0 &&
	    (r = p11_uri_set_id(uri, key->id, key->idlen)) != 0)
		goto out;
	p11_uri_set_type(uri, P11_URI_TYPE_PRIVATE);
	r = p11_uri_format(uri, 0, &key->uri);
out:
	p11_uri_free(uri);
	return r;
}

/* Reads CKA_ID and CKA_LABEL (both may be empty). */
static int
read_id_label(struct p11_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    struct p11_key *key)
{
	size_t llen;
	int r;

	r = p11_get_attr(tok, s, o, CKA_ID, 255, &key->id, &key->idlen);
	if (r == TS_ERR_NOT_FOUND)
		r = (key->id = calloc(1, 1)) == NULL ? TS_ERR_ALLOC : 0;
	if (r != 0)
		return r;
	r = p11_get_attr(
	    tok, s, o, CKA_LABEL, 255, (uint8_t **)&key->label, &llen);
	if (r == TS_ERR_NOT_FOUND)
		r = (key->label = calloc(1, 1)) == NULL ? TS_ERR_ALLOC : 0;
	if (r != 0)
		return r;
	if (strlen(key->label) != llen) {
		error_f(
		    "token %.32s: key label contains a NUL byte", tok->label);
		return TS_ERR_P11_BAD_ATTRIBUTE;
	}
	return 0;
}

/* Builds a key from a public key object (or a private RSA key). */
static int
key_from_object(struct p11_token *tok, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
    struct p11_key **keyp)
{
	struct p11_key *key = NULL;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	CK_ULONG kt;
	int r = TS_ERR_INTERNAL;

	*keyp = NULL;
	if ((key = calloc(1, sizeof(*key))) == NULL)
		return TS_ERR_ALLOC;
	key->tok = tok;
	key->priv = CK_INVALID_HANDLE;
	key->present = 1;
	if ((r = p11_get_ulong(tok, s, o, CKA_KEY_TYPE, &kt)) != 0 ||
	    (r = read_id_label(tok, s, o, key)) != 0)
		goto out;
	key->ck_type = kt;
	switch (kt) {
	case CKK_RSA:
		if ((r = p11_get_attr(tok, s, o, CKA_MODULUS,
			 P11_RSA_MAX_BITS / 8 + 1, &a, &alen)) != 0 ||
		    (r = p11_get_attr(
			 tok, s, o, CKA_PUBLIC_EXPONENT, 16, &b, &blen)) != 0)
			goto out;
		r = p11_key_set_rsa(key, a, alen, b, blen);
		break;
	case CKK_EC:
	case CKK_EC_EDWARDS:
		if ((r = p11_get_attr(
			 tok, s, o, CKA_EC_PARAMS, 64, &a, &alen)) != 0 ||
		    (r = p11_get_attr(
			 tok, s, o, CKA_EC_POINT, 256, &b, &blen)) != 0)
			goto out;
		r = p11_key_set_ec(key, kt, a, alen, b, blen);
		break;
	default:
		debug_f("token %.32s: key %.64s: type 0x%lx skipped",
		    tok->label, key->label, (unsigned long)kt);
		r = TS_ERR_P11_KEY_TYPE;
		break;
	}
	if (r != 0 || (r = key_make_uri(key)) != 0)
		goto out;
	*keyp = key;
	key = NULL;
out:
	free(a);
	free(b);
	p11_key_free(key);
	return r;
}

int
p11_keys_scan(struct p11_token *tok, struct p11_key ***keysp, size_t *nkeysp)
{
	CK_OBJECT_CLASS cls;
	CK_ATTRIBUTE tmpl = { CKA_CLASS, &cls, sizeof(cls) };
	CK_OBJECT_HANDLE *pub = NULL, *priv = NULL;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	struct p11_key **keys = NULL, *k, probe;
	size_t npub = 0, npriv = 0, nkeys = 0, i, j;
	unsigned gen = 0;
	int aa, r = TS_ERR_INTERNAL;

	*keysp = NULL;
	*nkeysp = 0;
	memset(&probe, 0, sizeof(probe));
	if ((r = p11_session_get(tok, &s, &gen)) != 0)
		goto out;
	cls = CKO_PUBLIC_KEY;
	if ((r = find_objects(
		 tok, s, &tmpl, 1, P11_MAX_OBJECTS, &pub, &npub)) != 0)
		goto out;
	cls = CKO_PRIVATE_KEY;
	if ((r = find_objects(
		 tok, s, &tmpl, 1, P11_MAX_OBJECTS, &priv, &npriv)) != 0)
		goto out;
	if ((keys = calloc(npub + npriv + 1, sizeof(*keys))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < npub; i++) {
		if ((r = key_from_object(tok, s, pub[i], &k)) != 0) {
			if (r == TS_ERR_ALLOC || r == TS_ERR_P11_TOKEN_REMOVED)
				goto out;
			continue; /* logged; a bad key hides no good one */
		}
		keys[nkeys++] = k;
	}
	/* pair each private key with its public half: same id and label */
	for (i = 0; i < npriv; i++) {
		free(probe.id);
		free(probe.label);
		memset(&probe, 0, sizeof(probe));
		if (read_id_label(tok, s, priv[i], &probe) != 0)
			continue;
		if (p11_get_bool(
			tok, s, priv[i], CKA_ALWAYS_AUTHENTICATE, &aa) != 0)
			aa = 0;
		for (j = 0, k = NULL; j < nkeys; j++) {
			if (keys[j]->idlen == probe.idlen &&
			    memcmp(keys[j]->id, probe.id, probe.idlen) == 0 &&
			    strcmp(keys[j]->label, probe.label) == 0) {
				k = keys[j];
				break;
			}
		}
		if (k == NULL) {
			/* no public object: RSA keys carry n and e */
			if (key_from_object(tok, s, priv[i], &k) != 0)
				continue;
			keys[nkeys++] = k;
		} else if (k->has_private) {
			/* two private keys for one public: sign refuses */
			debug_f("token %.32s: two private keys named %.64s",
			    tok->label, probe.label);
			k->priv = CK_INVALID_HANDLE;
			continue;
		}
		k->has_private = 1;
		k->always_auth = aa;
		k->priv = priv[i];
	}
	*keysp = keys;
	*nkeysp = nkeys;
	keys = NULL;
	r = 0;
out:
	free(probe.id);
	free(probe.label);
	if (keys != NULL) {
		for (i = 0; i < nkeys; i++)
			p11_key_free(keys[i]);
		free(keys);
	}
	free(pub);
	free(priv);
	if (s != CK_INVALID_HANDLE)
		p11_session_put(tok, s, gen, r == TS_ERR_P11_SESSION);
	return r;
}

int
p11_key_find_private(
    struct p11_key *key, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *hp)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[3];
	CK_OBJECT_HANDLE *h = NULL;
	CK_ULONG nt = 0;
	size_t n = 0;
	int r;

	*hp = CK_INVALID_HANDLE;
	tmpl[nt].type = CKA_CLASS;
	tmpl[nt].pValue = &cls;
	tmpl[nt++].ulValueLen = sizeof(cls);
	tmpl[nt].type = CKA_ID;
	tmpl[nt].pValue = key->id;
	tmpl[nt++].ulValueLen = key->idlen;
	tmpl[nt].type = CKA_LABEL;
	tmpl[nt].pValue = key->label;
	tmpl[nt++].ulValueLen = strlen(key->label);
	if ((r = find_objects(key->tok, s, tmpl, nt, 2, &h, &n)) != 0)
		return r;
	if (n == 1)
		*hp = h[0];
	else if (n == 0)
		r = key->tok->logged_in ? TS_ERR_P11_KEY_NOT_FOUND
					: TS_ERR_P11_NOT_LOGGED_IN;
	else
		r = TS_ERR_P11_KEY_AMBIGUOUS;
	free(h);
	return r;
}

int
p11_key_match_uri(const struct p11_key *key, const struct p11_uri *uri)
{
	const uint8_t *id;
	size_t idlen;

	switch (p11_uri_get_type(uri)) {
	case P11_URI_TYPE_ANY:
	case P11_URI_TYPE_PUBLIC:
	case P11_URI_TYPE_PRIVATE:
		break;
	default:
		return 0;
	}
	if ((id = p11_uri_get_id(uri, &idlen)) != NULL &&
	    (idlen != key->idlen ||
		(idlen > 0 && memcmp(id, key->id, idlen) != 0)))
		return 0;
	return p11_uri_match_text(
	    uri, P11_URI_OBJECT, key->label, strlen(key->label));
}

enum p11_key_type
p11_key_type(const struct p11_key *key)
{
	return key->type;
}

const char *
p11_key_type_name(const struct p11_key *key)
{
	switch (key->type) {
	case P11_KEY_RSA:
		return "rsa";
	case P11_KEY_EC_P256:
		return "ecdsa-p256";
	case P11_KEY_EC_P384:
		return "ecdsa-p384";
	case P11_KEY_EC_P521:
		return "ecdsa-p521";
	case P11_KEY_ED25519:
		return "ed25519";
	default:
		return "unknown";
	}
}

unsigned
p11_key_bits(const struct p11_key *key)
{
	return key->bits;
}

const char *
p11_key_label(const struct p11_key *key)
{
	return key->label;
}

const uint8_t *
p11_key_id(const struct p11_key *key, size_t *lenp)
{
	*lenp = key->idlen;
	return key->id;
}

const uint8_t *
p11_key_spki_der(const struct p11_key *key, size_t *lenp)
{
	*lenp = key->spkilen;
	return key->spki;
}

const char *
p11_key_spki_pem(const struct p11_key *key)
{
	return key->pem;
}

const uint8_t *
p11_key_fingerprint(const struct p11_key *key)
{
	return key->fp;
}

const char *
p11_key_fingerprint_str(const struct p11_key *key)
{
	return key->fpstr;
}

int
p11_key_always_auth(const struct p11_key *key)
{
	return __atomic_load_n(&key->always_auth, __ATOMIC_RELAXED);
}

int
p11_key_has_private(const struct p11_key *key)
{
	return __atomic_load_n(&key->has_private, __ATOMIC_RELAXED);
}

int
p11_key_present(const struct p11_key *key)
{
	return __atomic_load_n(&key->present, __ATOMIC_RELAXED);
}

const char *
p11_key_uri(const struct p11_key *key)
{
	return key->uri;
}

struct p11_token *
p11_key_token(const struct p11_key *key)
{
	return key->tok;
}
