/*
 * sshkey.c - SPKI <-> OpenSSH key blobs, DER/raw <-> SSH signature blobs.
 *
 * Why canonical output matters: ssh-agent clients identify a key by its
 * blob, so the blob we list (REQUEST_IDENTITIES) must be byte-identical to
 * the one we match in SIGN_REQUEST.  We always write minimal mpints
 * (RFC 4251 section 5) and refuse non-minimal ones on input, so a byte
 * compare is the match.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/sshkey.h"
#include "common/wbuf.h"

#define NAME_ECDSA  "ecdsa-sha2-nistp256"
#define NAME_CURVE  "nistp256"
#define NAME_ED	    "ssh-ed25519"
#define NAME_RSA    "ssh-rsa"
#define NAME_RSA256 "rsa-sha2-256"
#define NAME_RSA512 "rsa-sha2-512"

#define P256_LEN    32
#define P256_Q_LEN  (1 + 2 * P256_LEN)
#define ED25519_LEN 32
#define ED25519_SIG 64

const char *
sshkey_type_name(enum sshkey_type t)
{
	switch (t) {
	case SSHKEY_ECDSA_P256:
		return NAME_ECDSA;
	case SSHKEY_ED25519:
		return NAME_ED;
	case SSHKEY_RSA:
		return NAME_RSA;
	default:
		return "unknown";
	}
}

const char *
sshkey_sigalg_name(enum sshkey_sigalg a)
{
	switch (a) {
	case SSHKEY_SIG_ECDSA_P256_SHA256:
		return NAME_ECDSA;
	case SSHKEY_SIG_ED25519:
		return NAME_ED;
	case SSHKEY_SIG_RSA_SHA256:
		return NAME_RSA256;
	case SSHKEY_SIG_RSA_SHA512:
		return NAME_RSA512;
	case SSHKEY_SIG_RSA_SHA1:
		return NAME_RSA;
	default:
		return "unknown";
	}
}

/* Restores out to start_len unread bytes after a failed multi-part put. */
static void
rewind_to(struct wbuf *out, size_t start_len)
{
	size_t now = wbuf_len(out);

	if (now > start_len && wbuf_consume_end(out, now - start_len) != 0)
		abort(); /* cannot happen: we only drop what we wrote */
}

/* Writes big-endian unsigned bin[0..len) as a minimal SSH mpint. */
static int
put_mpint(struct wbuf *b, const uint8_t *bin, size_t len)
{
	int r;
	int pad;

	while (len > 0 && bin[0] == 0) {
		bin++;
		len--;
	}
	pad = len > 0 && (bin[0] & 0x80) != 0;
	if ((r = wbuf_put_u32(b, (uint32_t)(len + pad))) != 0)
		return r;
	if (pad && (r = wbuf_put_u8(b, 0)) != 0)
		return r;
	return len == 0 ? 0 : wbuf_put(b, bin, len);
}

static int
put_bn(struct wbuf *b, const BIGNUM *bn)
{
	uint8_t tmp[SSHKEY_RSA_MAX_BITS / 8];
	int n;
	int r;

	n = BN_num_bytes(bn);
	if (BN_is_negative(bn) || n < 0 || (size_t)n > sizeof(tmp))
		return TS_ERR_INVALID_ARG;
	if (BN_bn2bin(bn, tmp) != n)
		return TS_ERR_CRYPTO;
	r = put_mpint(b, tmp, (size_t)n);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return r;
}

/*
 * Reads a positive minimal mpint; *bin borrows the magnitude (no leading
 * zero), *len may be 0 for the value zero.  Fails without consuming.
 */
static int
get_mpint_direct(struct wbuf *b, const uint8_t **bin, size_t *len)
{
	const uint8_t *p;
	size_t n;
	int r;

	*bin = NULL;
	*len = 0;
	if ((r = wbuf_get_string_direct(b, &p, &n)) != 0)
		return r;
	if (n > 0 && (p[0] & 0x80) != 0)
		return TS_ERR_INVALID_ARG; /* negative */
	if (n > 0 && p[0] == 0 && (n == 1 || (p[1] & 0x80) == 0))
		return TS_ERR_INVALID_ARG; /* not minimal */
	if (n > 0 && p[0] == 0) {
		p++;
		n--;
	}
	*bin = p;
	*len = n;
	return 0;
}

/* Compares a wire string to a name. */
static int
str_is(const uint8_t *s, size_t len, const char *name)
{
	return len == strlen(name) && memcmp(s, name, len) == 0;
}

static int
spki_decode(const uint8_t *spki, size_t len, EVP_PKEY **out)
{
	const unsigned char *p = spki;
	EVP_PKEY *pk;

	*out = NULL;
	if (spki == NULL || len == 0 || len > SSHKEY_BLOB_MAX * 2)
		return TS_ERR_KEY_INVALID;
	if ((pk = d2i_PUBKEY(NULL, &p, (long)len)) == NULL) {
		ERR_clear_error();
		return TS_ERR_KEY_INVALID;
	}
	if (p != spki + len) {
		EVP_PKEY_free(pk);
		return TS_ERR_KEY_INVALID;
	}
	*out = pk;
	return 0;
}

static int
blob_ecdsa(EVP_PKEY *pk, struct wbuf *out)
{
	char group[64];
	BIGNUM *x = NULL, *y = NULL;
	uint8_t q[P256_Q_LEN];
	int r = TS_ERR_INTERNAL;

	if (!EVP_PKEY_get_utf8_string_param(
		pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL)) {
		r = TS_ERR_KEY_INVALID;
		goto out;
	}
	if (strcmp(group, "prime256v1") != 0) {
		r = TS_ERR_UNSUPPORTED;
		goto out;
	}
	if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
	    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y)) {
		r = ts_err_ossl("EC public point");
		goto out;
	}
	q[0] = 0x04; /* uncompressed, RFC 5656 section 3.1 via SEC1 2.3.3 */
	if (BN_bn2binpad(x, q + 1, P256_LEN) != P256_LEN ||
	    BN_bn2binpad(y, q + 1 + P256_LEN, P256_LEN) != P256_LEN) {
		r = TS_ERR_KEY_INVALID;
		goto out;
	}
	if ((r = wbuf_put_cstring(out, NAME_ECDSA)) != 0 ||
	    (r = wbuf_put_cstring(out, NAME_CURVE)) != 0 ||
	    (r = wbuf_put_string(out, q, sizeof(q))) != 0)
		goto out;
	r = 0;
out:
	BN_free(x);
	BN_free(y);
	return r;
}

static int
blob_ed25519(EVP_PKEY *pk, struct wbuf *out)
{
	uint8_t raw[ED25519_LEN];
	size_t rawlen = sizeof(raw);
	int r;

	if (!EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) ||
	    rawlen != ED25519_LEN)
		return ts_err_ossl("Ed25519 public key");
	if ((r = wbuf_put_cstring(out, NAME_ED)) != 0 ||
	    (r = wbuf_put_string(out, raw, rawlen)) != 0)
		return r;
	return 0;
}

static int
blob_rsa(EVP_PKEY *pk, struct wbuf *out)
{
	BIGNUM *n = NULL, *e = NULL;
	int bits;
	int r = TS_ERR_INTERNAL;

	bits = EVP_PKEY_get_bits(pk);
	if (bits < SSHKEY_RSA_MIN_BITS || bits > SSHKEY_RSA_MAX_BITS) {
		r = TS_ERR_UNSUPPORTED;
		goto out;
	}
	if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e)) {
		r = ts_err_ossl("RSA public key");
		goto out;
	}
	/* RFC 4253 6.6: "ssh-rsa" mpint e, mpint n (e first). */
	if ((r = wbuf_put_cstring(out, NAME_RSA)) != 0 ||
	    (r = put_bn(out, e)) != 0 || (r = put_bn(out, n)) != 0)
		goto out;
	r = 0;
out:
	BN_free(n);
	BN_free(e);
	return r;
}

int
sshkey_blob_from_spki(
    const uint8_t *spki, size_t len, struct wbuf *out, enum sshkey_type *type)
{
	EVP_PKEY *pk = NULL;
	enum sshkey_type t = SSHKEY_UNKNOWN;
	size_t start;
	int r = TS_ERR_INTERNAL;

	if (type != NULL)
		*type = SSHKEY_UNKNOWN;
	if (out == NULL)
		return TS_ERR_INVALID_ARG;
	start = wbuf_len(out);
	if ((r = spki_decode(spki, len, &pk)) != 0)
		goto out;
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		t = SSHKEY_ECDSA_P256;
		r = blob_ecdsa(pk, out);
		break;
	case EVP_PKEY_ED25519:
		t = SSHKEY_ED25519;
		r = blob_ed25519(pk, out);
		break;
	case EVP_PKEY_RSA:
		t = SSHKEY_RSA;
		r = blob_rsa(pk, out);
		break;
	default:
		r = TS_ERR_UNSUPPORTED;
		break;
	}
	if (r != 0)
		goto out;
	if (type != NULL)
		*type = t;
	r = 0;
out:
	if (r != 0)
		rewind_to(out, start);
	EVP_PKEY_free(pk);
	return r;
}

/*
 * Parses a key blob into its parts (all borrowed from b's data).  For RSA,
 * a = e and c = n; for ECDSA a = Q; for Ed25519 a = the key.
 */
static int
blob_parts(const uint8_t *blob, size_t len, enum sshkey_type *type,
    const uint8_t **a, size_t *alen, const uint8_t **c, size_t *clen)
{
	struct wbuf *b = NULL;
	const uint8_t *name, *curve;
	size_t namelen, curvelen;
	int r = TS_ERR_INTERNAL;

	*type = SSHKEY_UNKNOWN;
	*a = *c = NULL;
	*alen = *clen = 0;
	if (blob == NULL || len == 0 || len > SSHKEY_BLOB_MAX)
		return TS_ERR_KEY_INVALID;
	if ((b = wbuf_from(blob, len)) == NULL)
		return TS_ERR_ALLOC;
	if (wbuf_get_string_direct(b, &name, &namelen) != 0) {
		r = TS_ERR_KEY_INVALID;
		goto out;
	}
	if (str_is(name, namelen, NAME_ECDSA)) {
		if (wbuf_get_string_direct(b, &curve, &curvelen) != 0 ||
		    !str_is(curve, curvelen, NAME_CURVE) ||
		    wbuf_get_string_direct(b, a, alen) != 0 ||
		    *alen != P256_Q_LEN || (*a)[0] != 0x04) {
			r = TS_ERR_KEY_INVALID;
			goto out;
		}
		*type = SSHKEY_ECDSA_P256;
	} else if (str_is(name, namelen, NAME_ED)) {
		if (wbuf_get_string_direct(b, a, alen) != 0 ||
		    *alen != ED25519_LEN) {
			r = TS_ERR_KEY_INVALID;
			goto out;
		}
		*type = SSHKEY_ED25519;
	} else if (str_is(name, namelen, NAME_RSA)) {
		if (get_mpint_direct(b, a, alen) != 0 ||
		    get_mpint_direct(b, c, clen) != 0 || *alen == 0 ||
		    ((*a)[*alen - 1] & 1) == 0 ||
		    *clen < SSHKEY_RSA_MIN_BITS / 8 ||
		    *clen > SSHKEY_RSA_MAX_BITS / 8 ||
		    ((*c)[*clen - 1] & 1) == 0) {
			r = TS_ERR_KEY_INVALID;
			goto out;
		}
		*type = SSHKEY_RSA;
	} else {
		r = TS_ERR_UNSUPPORTED;
		goto out;
	}
	if (wbuf_len(b) != 0) {
		r = TS_ERR_KEY_INVALID;
		goto out;
	}
	r = 0;
out:
	if (r != 0) {
		*type = SSHKEY_UNKNOWN;
		*a = *c = NULL;
		*alen = *clen = 0;
	}
	wbuf_free(b);
	return r;
}

int
sshkey_blob_parse(const uint8_t *blob, size_t len, enum sshkey_type *type)
{
	const uint8_t *a, *c;
	size_t alen, clen;
	enum sshkey_type t;
	int r;

	if (type != NULL)
		*type = SSHKEY_UNKNOWN;
	if ((r = blob_parts(blob, len, &t, &a, &alen, &c, &clen)) != 0)
		return r;
	if (type != NULL)
		*type = t;
	return 0;
}

int
sshkey_blob_to_spki(
    const uint8_t *blob, size_t len, uint8_t **spki, size_t *spki_len)
{
	const uint8_t *a, *c;
	size_t alen, clen;
	enum sshkey_type t;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *n = NULL, *e = NULL;
	unsigned char *der = NULL;
	int derlen;
	int r = TS_ERR_INTERNAL;

	*spki = NULL;
	*spki_len = 0;
	if ((r = blob_parts(blob, len, &t, &a, &alen, &c, &clen)) != 0)
		goto out;
	if (t == SSHKEY_ED25519) {
		pk = EVP_PKEY_new_raw_public_key(
		    EVP_PKEY_ED25519, NULL, a, alen);
		if (pk == NULL) {
			r = ts_err_ossl("Ed25519 key from blob");
			goto out;
		}
	} else {
		if ((bld = OSSL_PARAM_BLD_new()) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		if (t == SSHKEY_ECDSA_P256) {
			if (!OSSL_PARAM_BLD_push_utf8_string(bld,
				OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
			    !OSSL_PARAM_BLD_push_octet_string(
				bld, OSSL_PKEY_PARAM_PUB_KEY, a, alen)) {
				r = ts_err_ossl("EC params");
				goto out;
			}
		} else {
			if ((e = BN_bin2bn(a, (int)alen, NULL)) == NULL ||
			    (n = BN_bin2bn(c, (int)clen, NULL)) == NULL ||
			    !OSSL_PARAM_BLD_push_BN(
				bld, OSSL_PKEY_PARAM_RSA_N, n) ||
			    !OSSL_PARAM_BLD_push_BN(
				bld, OSSL_PKEY_PARAM_RSA_E, e)) {
				r = ts_err_ossl("RSA params");
				goto out;
			}
		}
		if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
		    (ctx = EVP_PKEY_CTX_new_from_name(
			 NULL, t == SSHKEY_RSA ? "RSA" : "EC", NULL)) == NULL ||
		    EVP_PKEY_fromdata_init(ctx) <= 0 ||
		    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <=
			0) {
			/* e.g. an EC point that is not on the curve */
			ERR_clear_error();
			r = TS_ERR_KEY_INVALID;
			goto out;
		}
		if (t == SSHKEY_ECDSA_P256) {
			EVP_PKEY_CTX_free(ctx);
			if ((ctx = EVP_PKEY_CTX_new_from_pkey(
				 NULL, pk, NULL)) == NULL ||
			    EVP_PKEY_public_check(ctx) != 1) {
				ERR_clear_error();
				r = TS_ERR_KEY_INVALID;
				goto out;
			}
		}
	}
	if ((derlen = i2d_PUBKEY(pk, &der)) <= 0) {
		r = ts_err_ossl("i2d_PUBKEY");
		goto out;
	}
	*spki = der;
	*spki_len = (size_t)derlen;
	der = NULL;
	r = 0;
out:
	OPENSSL_free(der);
	BN_free(n);
	BN_free(e);
	EVP_PKEY_free(pk);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

int
sshkey_blob_match(
    const uint8_t *blob, size_t len, const uint8_t *spki, size_t slen)
{
	struct wbuf *ours = NULL;
	int r = TS_ERR_INTERNAL;

	if ((ours = wbuf_new(SSHKEY_BLOB_MAX)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = sshkey_blob_from_spki(spki, slen, ours, NULL)) != 0) {
		r = r == TS_ERR_ALLOC ? r : TS_ERR_NOT_FOUND;
		goto out;
	}
	/* Key blobs are public: a plain compare leaks nothing. */
	if (blob == NULL || wbuf_len(ours) != len ||
	    memcmp(wbuf_ptr(ours), blob, len) != 0) {
		r = TS_ERR_NOT_FOUND;
		goto out;
	}
	r = 0;
out:
	wbuf_free(ours);
	return r;
}

/* Returns a malloc'd standard base64 (padded) of data, or NULL. */
static char *
b64(const uint8_t *data, size_t len)
{
	char *s;
	size_t n = 4 * ((len + 2) / 3) + 1;

	if ((s = malloc(n)) == NULL)
		return NULL;
	if (EVP_EncodeBlock((unsigned char *)s, data, (int)len) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

int
sshkey_authorized_line(
    const uint8_t *spki, size_t len, const char *comment, char **line)
{
	struct wbuf *blob = NULL;
	enum sshkey_type t;
	char *enc = NULL, *s = NULL;
	const char *name;
	size_t clen = 0, n, off, i;
	int r = TS_ERR_INTERNAL;

	*line = NULL;
	if ((blob = wbuf_new(SSHKEY_BLOB_MAX)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = sshkey_blob_from_spki(spki, len, blob, &t)) != 0)
		goto out;
	if ((enc = b64(wbuf_ptr(blob), wbuf_len(blob))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if (comment != NULL)
		clen = strnlen(comment, SSHKEY_COMMENT_MAX);
	name = sshkey_type_name(t);
	n = strlen(name) + 1 + strlen(enc) + (clen ? 1 + clen : 0) + 1;
	if ((s = malloc(n)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	off = (size_t)snprintf(s, n, "%s %s", name, enc);
	if (clen > 0) {
		s[off++] = ' ';
		for (i = 0; i < clen; i++) {
			unsigned char ch = (unsigned char)comment[i];

			/* one key, one line, three fields (sshd(8) AUTH..) */
			s[off++] = (ch <= 0x20 || ch == 0x7f) ? '_' : (char)ch;
		}
		s[off] = '\0';
	}
	*line = s;
	s = NULL;
	r = 0;
out:
	free(s);
	free(enc);
	wbuf_free(blob);
	return r;
}

int
sshkey_fingerprint(const uint8_t *blob, size_t len, char *buf, size_t buflen)
{
	uint8_t md[32];
	char enc[48];
	size_t n;

	if (buflen > 0)
		buf[0] = '\0';
	if (blob == NULL ||
	    EVP_Digest(blob, len, md, NULL, EVP_sha256(), NULL) != 1)
		return ts_err_ossl("SHA-256");
	if (EVP_EncodeBlock((unsigned char *)enc, md, sizeof(md)) != 44)
		return TS_ERR_INTERNAL;
	n = 43; /* drop the single '=' pad, as ssh-keygen -l prints it */
	if (buflen < 7 + n + 1)
		return TS_ERR_TOO_LARGE;
	(void)snprintf(buf, buflen, "SHA256:%.*s", (int)n, enc);
	return 0;
}

int
sshkey_sigalg_for(enum sshkey_type t, uint32_t flags, enum sshkey_sigalg *alg)
{
	*alg = SSHKEY_SIG_NONE;
	switch (t) {
	case SSHKEY_ECDSA_P256:
		*alg = SSHKEY_SIG_ECDSA_P256_SHA256;
		return 0;
	case SSHKEY_ED25519:
		*alg = SSHKEY_SIG_ED25519;
		return 0;
	case SSHKEY_RSA:
		if (flags & SSHKEY_AGENT_RSA_SHA2_512) {
			*alg = SSHKEY_SIG_RSA_SHA512;
			return 0;
		}
		if (flags & SSHKEY_AGENT_RSA_SHA2_256) {
			*alg = SSHKEY_SIG_RSA_SHA256;
			return 0;
		}
		/*
		 * "ssh-rsa" means SHA-1, which OpenSSH itself disabled by
		 * default in 8.8; a client that still asks for it talks to
		 * a server we should not help it reach with a token key.
		 */
		*alg = SSHKEY_SIG_RSA_SHA1;
		return TS_ERR_UNSUPPORTED;
	default:
		return TS_ERR_INVALID_ARG;
	}
}

static int
sig_ecdsa_body(const uint8_t *der, size_t derlen, struct wbuf *body)
{
	const unsigned char *p = der;
	ECDSA_SIG *es = NULL;
	const BIGNUM *br, *bs;
	uint8_t rb[P256_LEN], sb[P256_LEN];
	int r = TS_ERR_INTERNAL;

	if (der == NULL || derlen == 0 || derlen > 80 ||
	    (es = d2i_ECDSA_SIG(NULL, &p, (long)derlen)) == NULL ||
	    p != der + derlen) {
		ERR_clear_error();
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	ECDSA_SIG_get0(es, &br, &bs);
	if (BN_is_zero(br) || BN_is_zero(bs) || BN_is_negative(br) ||
	    BN_is_negative(bs) || BN_num_bytes(br) > P256_LEN ||
	    BN_num_bytes(bs) > P256_LEN ||
	    BN_bn2binpad(br, rb, P256_LEN) != P256_LEN ||
	    BN_bn2binpad(bs, sb, P256_LEN) != P256_LEN) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((r = put_mpint(body, rb, sizeof(rb))) != 0 ||
	    (r = put_mpint(body, sb, sizeof(sb))) != 0)
		goto out;
	r = 0;
out:
	ECDSA_SIG_free(es);
	return r;
}

int
sshkey_sig_encode(enum sshkey_sigalg alg, const uint8_t *sig, size_t siglen,
    size_t modulus_len, struct wbuf *out)
{
	struct wbuf *body = NULL;
	size_t start;
	int r = TS_ERR_INTERNAL;

	if (out == NULL || sig == NULL)
		return TS_ERR_INVALID_ARG;
	start = wbuf_len(out);
	if ((body = wbuf_new(SSHKEY_BLOB_MAX)) == NULL)
		return TS_ERR_ALLOC;
	switch (alg) {
	case SSHKEY_SIG_ECDSA_P256_SHA256:
		/* RFC 5656 3.1.2: string(mpint r || mpint s) */
		if ((r = sig_ecdsa_body(sig, siglen, body)) != 0)
			goto out;
		if ((r = wbuf_put_cstring(out, NAME_ECDSA)) != 0 ||
		    (r = wbuf_put_stringb(out, body)) != 0)
			goto out;
		break;
	case SSHKEY_SIG_ED25519:
		if (siglen != ED25519_SIG) {
			r = TS_ERR_INVALID_ARG;
			goto out;
		}
		if ((r = wbuf_put_cstring(out, NAME_ED)) != 0 ||
		    (r = wbuf_put_string(out, sig, siglen)) != 0)
			goto out;
		break;
	case SSHKEY_SIG_RSA_SHA256:
	case SSHKEY_SIG_RSA_SHA512:
		/* RFC 8332 3: the signature is exactly modulus-length */
		if (siglen != modulus_len || siglen < SSHKEY_RSA_MIN_BITS / 8 ||
		    siglen > SSHKEY_RSA_MAX_BITS / 8) {
			r = TS_ERR_INVALID_ARG;
			goto out;
		}
		if ((r = wbuf_put_cstring(out, sshkey_sigalg_name(alg))) != 0 ||
		    (r = wbuf_put_string(out, sig, siglen)) != 0)
			goto out;
		break;
	case SSHKEY_SIG_RSA_SHA1:
		r = TS_ERR_UNSUPPORTED;
		goto out;
	default:
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	r = 0;
out:
	if (r != 0)
		rewind_to(out, start);
	wbuf_free(body);
	return r;
}

static int
sig_ecdsa_der(struct wbuf *body, uint8_t **der, size_t *derlen)
{
	const uint8_t *rp, *sp;
	size_t rl, sl;
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *d = NULL;
	int n;
	int r = TS_ERR_INTERNAL;

	if (get_mpint_direct(body, &rp, &rl) != 0 ||
	    get_mpint_direct(body, &sp, &sl) != 0 || wbuf_len(body) != 0 ||
	    rl == 0 || sl == 0 || rl > P256_LEN || sl > P256_LEN) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(rp, (int)rl, NULL)) == NULL ||
	    (bs = BN_bin2bn(sp, (int)sl, NULL)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if (!ECDSA_SIG_set0(es, br, bs)) {
		r = ts_err_ossl("ECDSA_SIG_set0");
		goto out;
	}
	br = bs = NULL; /* owned by es */
	if ((n = i2d_ECDSA_SIG(es, &d)) <= 0) {
		r = ts_err_ossl("i2d_ECDSA_SIG");
		goto out;
	}
	*der = d;
	*derlen = (size_t)n;
	d = NULL;
	r = 0;
out:
	OPENSSL_free(d);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

int
sshkey_sig_decode(const uint8_t *blob, size_t len, enum sshkey_sigalg *alg,
    uint8_t **sig, size_t *siglen)
{
	struct wbuf *b = NULL, *body = NULL;
	const uint8_t *name;
	size_t namelen;
	uint8_t *der = NULL;
	size_t derlen = 0;
	enum sshkey_sigalg a = SSHKEY_SIG_NONE;
	int r = TS_ERR_INTERNAL;

	*alg = SSHKEY_SIG_NONE;
	*sig = NULL;
	*siglen = 0;
	if (blob == NULL || len == 0 || len > SSHKEY_BLOB_MAX)
		return TS_ERR_INVALID_ARG;
	if ((b = wbuf_from(blob, len)) == NULL)
		return TS_ERR_ALLOC;
	if (wbuf_get_string_direct(b, &name, &namelen) != 0 ||
	    wbuf_get_stringb(b, &body) != 0 || wbuf_len(b) != 0) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if (str_is(name, namelen, NAME_ECDSA))
		a = SSHKEY_SIG_ECDSA_P256_SHA256;
	else if (str_is(name, namelen, NAME_ED))
		a = SSHKEY_SIG_ED25519;
	else if (str_is(name, namelen, NAME_RSA256))
		a = SSHKEY_SIG_RSA_SHA256;
	else if (str_is(name, namelen, NAME_RSA512))
		a = SSHKEY_SIG_RSA_SHA512;
	else if (str_is(name, namelen, NAME_RSA))
		a = SSHKEY_SIG_RSA_SHA1;
	else {
		r = TS_ERR_UNSUPPORTED;
		goto out;
	}
	if (a == SSHKEY_SIG_ECDSA_P256_SHA256) {
		if ((r = sig_ecdsa_der(body, &der, &derlen)) != 0)
			goto out;
	} else {
		derlen = wbuf_len(body);
		if ((a == SSHKEY_SIG_ED25519 && derlen != ED25519_SIG) ||
		    (a != SSHKEY_SIG_ED25519 &&
			(derlen < SSHKEY_RSA_MIN_BITS / 8 ||
			    derlen > SSHKEY_RSA_MAX_BITS / 8))) {
			r = TS_ERR_INVALID_ARG;
			goto out;
		}
		if ((der = malloc(derlen)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		if ((r = wbuf_get(body, der, derlen)) != 0)
			goto out;
	}
	*alg = a;
	*sig = der;
	*siglen = derlen;
	der = NULL;
	r = 0;
out:
	free(der);
	wbuf_free(body);
	wbuf_free(b);
	return r;
}
