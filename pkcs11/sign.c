/*
 * sign.c - signing, raw ECDSA to DER, and the CK_RV to TS_ERR_* table.
 *
 * One signature = borrow a pooled session, C_SignInit, (a context-specific
 * C_Login for CKA_ALWAYS_AUTHENTICATE keys), one C_Sign into a buffer of
 * the size the key needs (no size-query round trip), return the session.
 * A session that saw an error between C_SignInit and the end of C_Sign may
 * still hold an active operation, so it is closed rather than pooled.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "pkcs11/internal.h"
#include "pkcs11/pin.h"
#include "pkcs11/sign.h"
#include "pkcs11/token.h"

static const struct rv_entry {
	CK_RV rv;
	const char *name;
	int err;
} rv_table[] = {
#define RV(x, e)         \
	{                \
		x, #x, e \
	}
	RV(CKR_OK, 0),
	RV(CKR_CANCEL, TS_ERR_INTERRUPTED),
	RV(CKR_HOST_MEMORY, TS_ERR_ALLOC),
	RV(CKR_SLOT_ID_INVALID, TS_ERR_P11_TOKEN_NOT_FOUND),
	RV(CKR_GENERAL_ERROR, TS_ERR_P11_DEVICE),
	RV(CKR_FUNCTION_FAILED, TS_ERR_P11_FUNCTION),
	RV(CKR_ARGUMENTS_BAD, TS_ERR_P11_FUNCTION),
	RV(CKR_NO_EVENT, TS_ERR_P11_FUNCTION),
	RV(CKR_NEED_TO_CREATE_THREADS, TS_ERR_P11_MODULE),
	RV(CKR_CANT_LOCK, TS_ERR_P11_MODULE),
	RV(CKR_ATTRIBUTE_READ_ONLY, TS_ERR_P11_FUNCTION),
	RV(CKR_ATTRIBUTE_SENSITIVE, TS_ERR_P11_BAD_ATTRIBUTE),
	RV(CKR_ATTRIBUTE_TYPE_INVALID, TS_ERR_P11_BAD_ATTRIBUTE),
	RV(CKR_ATTRIBUTE_VALUE_INVALID, TS_ERR_P11_BAD_ATTRIBUTE),
	RV(CKR_ACTION_PROHIBITED, TS_ERR_PERMISSION),
	RV(CKR_DATA_INVALID, TS_ERR_INVALID_ARG),
	RV(CKR_DATA_LEN_RANGE, TS_ERR_INVALID_ARG),
	RV(CKR_DEVICE_ERROR, TS_ERR_P11_DEVICE),
	RV(CKR_DEVICE_MEMORY, TS_ERR_P11_DEVICE),
	RV(CKR_DEVICE_REMOVED, TS_ERR_P11_TOKEN_REMOVED),
	RV(CKR_ENCRYPTED_DATA_INVALID, TS_ERR_P11_FUNCTION),
	RV(CKR_ENCRYPTED_DATA_LEN_RANGE, TS_ERR_P11_FUNCTION),
	RV(CKR_FUNCTION_CANCELED, TS_ERR_INTERRUPTED),
	RV(CKR_FUNCTION_NOT_PARALLEL, TS_ERR_P11_FUNCTION),
	RV(CKR_FUNCTION_NOT_SUPPORTED, TS_ERR_UNSUPPORTED),
	RV(CKR_KEY_HANDLE_INVALID, TS_ERR_P11_KEY_NOT_FOUND),
	RV(CKR_KEY_SIZE_RANGE, TS_ERR_P11_KEY_TYPE),
	RV(CKR_KEY_TYPE_INCONSISTENT, TS_ERR_P11_KEY_TYPE),
	RV(CKR_KEY_NOT_NEEDED, TS_ERR_P11_FUNCTION),
	RV(CKR_KEY_CHANGED, TS_ERR_P11_FUNCTION),
	RV(CKR_KEY_NEEDED, TS_ERR_P11_FUNCTION),
	RV(CKR_KEY_INDIGESTIBLE, TS_ERR_P11_FUNCTION),
	RV(CKR_KEY_FUNCTION_NOT_PERMITTED, TS_ERR_PERMISSION),
	RV(CKR_KEY_NOT_WRAPPABLE, TS_ERR_P11_FUNCTION),
	RV(CKR_KEY_UNEXTRACTABLE, TS_ERR_P11_FUNCTION),
	RV(CKR_MECHANISM_INVALID, TS_ERR_P11_MECHANISM),
	RV(CKR_MECHANISM_PARAM_INVALID, TS_ERR_P11_MECHANISM),
	RV(CKR_OBJECT_HANDLE_INVALID, TS_ERR_P11_KEY_NOT_FOUND),
	RV(CKR_OPERATION_ACTIVE, TS_ERR_P11_SESSION),
	RV(CKR_OPERATION_NOT_INITIALIZED, TS_ERR_P11_SESSION),
	RV(CKR_PIN_INCORRECT, TS_ERR_P11_PIN_INCORRECT),
	RV(CKR_PIN_INVALID, TS_ERR_P11_PIN_INCORRECT),
	RV(CKR_PIN_LEN_RANGE, TS_ERR_P11_PIN_INCORRECT),
	RV(CKR_PIN_EXPIRED, TS_ERR_P11_PIN_LOCKED),
	RV(CKR_PIN_LOCKED, TS_ERR_P11_PIN_LOCKED),
	RV(CKR_SESSION_CLOSED, TS_ERR_P11_SESSION),
	RV(CKR_SESSION_COUNT, TS_ERR_P11_TOKEN_BUSY),
	RV(CKR_SESSION_HANDLE_INVALID, TS_ERR_P11_SESSION),
	RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED, TS_ERR_P11_SESSION),
	RV(CKR_SESSION_READ_ONLY, TS_ERR_P11_SESSION),
	RV(CKR_SESSION_EXISTS, TS_ERR_P11_SESSION),
	RV(CKR_SESSION_READ_ONLY_EXISTS, TS_ERR_P11_SESSION),
	RV(CKR_SESSION_READ_WRITE_SO_EXISTS, TS_ERR_P11_SESSION),
	RV(CKR_SIGNATURE_INVALID, TS_ERR_SIG_INVALID),
	RV(CKR_SIGNATURE_LEN_RANGE, TS_ERR_SIG_INVALID),
	RV(CKR_TEMPLATE_INCOMPLETE, TS_ERR_P11_FUNCTION),
	RV(CKR_TEMPLATE_INCONSISTENT, TS_ERR_P11_FUNCTION),
	RV(CKR_TOKEN_NOT_PRESENT, TS_ERR_P11_TOKEN_REMOVED),
	RV(CKR_TOKEN_NOT_RECOGNIZED, TS_ERR_P11_DEVICE),
	RV(CKR_TOKEN_WRITE_PROTECTED, TS_ERR_PERMISSION),
	RV(CKR_USER_ALREADY_LOGGED_IN, 0),
	RV(CKR_USER_NOT_LOGGED_IN, TS_ERR_P11_NOT_LOGGED_IN),
	RV(CKR_USER_PIN_NOT_INITIALIZED, TS_ERR_P11_PIN_LOCKED),
	RV(CKR_USER_TYPE_INVALID, TS_ERR_P11_FUNCTION),
	RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN, TS_ERR_P11_SESSION),
	RV(CKR_USER_TOO_MANY_TYPES, TS_ERR_P11_SESSION),
	RV(CKR_RANDOM_NO_RNG, TS_ERR_P11_DEVICE),
	RV(CKR_DOMAIN_PARAMS_INVALID, TS_ERR_P11_KEY_TYPE),
	RV(CKR_CURVE_NOT_SUPPORTED, TS_ERR_P11_KEY_TYPE),
	RV(CKR_BUFFER_TOO_SMALL, TS_ERR_P11_FUNCTION),
	RV(CKR_SAVED_STATE_INVALID, TS_ERR_P11_FUNCTION),
	RV(CKR_INFORMATION_SENSITIVE, TS_ERR_P11_BAD_ATTRIBUTE),
	RV(CKR_STATE_UNSAVEABLE, TS_ERR_P11_FUNCTION),
	RV(CKR_CRYPTOKI_NOT_INITIALIZED, TS_ERR_P11_MODULE),
	RV(CKR_CRYPTOKI_ALREADY_INITIALIZED, TS_ERR_P11_MODULE),
	RV(CKR_MUTEX_BAD, TS_ERR_P11_MODULE),
	RV(CKR_MUTEX_NOT_LOCKED, TS_ERR_P11_MODULE),
	RV(CKR_FUNCTION_REJECTED, TS_ERR_PERMISSION),
#undef RV
};

int
p11_rv_to_err(unsigned long rv)
{
	size_t i;

	for (i = 0; i < sizeof(rv_table) / sizeof(rv_table[0]); i++)
		if (rv_table[i].rv == rv)
			return rv_table[i].err;
	/* vendor-defined and future codes */
	return TS_ERR_P11_FUNCTION;
}

const char *
p11_rv_name(unsigned long rv)
{
	size_t i;

	for (i = 0; i < sizeof(rv_table) / sizeof(rv_table[0]); i++)
		if (rv_table[i].rv == rv)
			return rv_table[i].name;
	return rv >= CKR_VENDOR_DEFINED ? "CKR_VENDOR_DEFINED+"
					: "CKR_(unknown)";
}

size_t
p11_hash_len(enum p11_hash alg)
{
	switch (alg) {
	case P11_HASH_SHA256:
		return 32;
	case P11_HASH_SHA384:
		return 48;
	case P11_HASH_SHA512:
		return 64;
	default:
		return 0;
	}
}

/* RFC 8017 9.2 note 1: DigestInfo prefixes. */
static const uint8_t di_sha256[19] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
	0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
	0x20 };
static const uint8_t di_sha384[19] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
	0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
	0x30 };
static const uint8_t di_sha512[19] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
	0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
	0x40 };

/* Appends one minimal DER INTEGER (formats.md 9.1 steps 1-3). */
static size_t
der_int(uint8_t *out, const uint8_t *v, size_t len)
{
	size_t o = 0;

	while (len > 1 && *v == 0) {
		v++;
		len--;
	}
	out[o++] = 0x02;
	out[o++] = (uint8_t)(len + (*v & 0x80 ? 1 : 0));
	if (*v & 0x80)
		out[o++] = 0x00;
	memcpy(out + o, v, len);
	return o + len;
}

int
p11_ecdsa_raw_to_der(
    const uint8_t *raw, size_t rawlen, uint8_t **derp, size_t *derlenp)
{
	uint8_t body[2 * (2 + 1 + 66)], *der;
	size_t half, blen, o = 0;

	*derp = NULL;
	*derlenp = 0;
	if (rawlen == 0 || rawlen % 2 != 0 || rawlen > 2 * 66)
		return TS_ERR_P11_BAD_ATTRIBUTE;
	half = rawlen / 2;
	blen = der_int(body, raw, half);
	blen += der_int(body + blen, raw + half, half);
	/* content over 127 bytes (P-521) needs the long form 81 xx */
	if ((der = malloc(blen + 3)) == NULL)
		return TS_ERR_ALLOC;
	der[o++] = 0x30;
	if (blen > 127)
		der[o++] = 0x81;
	der[o++] = (uint8_t)blen;
	memcpy(der + o, body, blen);
	*derp = der;
	*derlenp = o + blen;
	return 0;
}

/*
 * Context-specific login for a CKA_ALWAYS_AUTHENTICATE key, between
 * C_SignInit and C_Sign on the same session (PKCS#11 v2.40 5.6).
 */
static int
context_login(
    struct p11_key *key, CK_SESSION_HANDLE s, const struct p11_pin *pin)
{
	struct p11_token *tok = key->tok;
	struct p11_pin *kept = NULL;
	const char *data = NULL;
	size_t len = 0;
	CK_RV rv;
	int r;

	if (pin == NULL) {
		pthread_mutex_lock(&tok->lock);
		r = tok->kept_pin != NULL ? p11_pin_dup(tok->kept_pin, &kept)
					  : 0;
		pthread_mutex_unlock(&tok->lock);
		if (r != 0)
			return r;
		pin = kept;
	}
	if (pin == NULL && !p11_token_protected_auth(tok)) {
		error_f("key %.64s needs the PIN for every signature and none "
			"is available",
		    key->label);
		return TS_ERR_P11_PIN_REQUIRED;
	}
	if (pin != NULL)
		data = p11_pin_data(pin, &len);
	rv = tok->prov->f->C_Login(s, CKU_CONTEXT_SPECIFIC,
	    (CK_UTF8CHAR_PTR)(uintptr_t)data, (CK_ULONG)len);
	p11_pin_free(kept);
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		rv = CKR_OK;
	if (rv != CKR_OK)
		error_f("key %.64s: context-specific login: %s", key->label,
		    p11_rv_name(rv));
	return p11_token_rv(tok, rv, "C_Login(CONTEXT_SPECIFIC)");
}

/* One C_SignInit/C_Sign of in with mech; *outp gets key->sig_len bytes. */
static int
sign_raw(struct p11_key *key, CK_MECHANISM_TYPE mt, const uint8_t *in,
    size_t inlen, const struct p11_pin *pin, uint8_t **outp, size_t *outlenp)
{
	struct p11_token *tok = key->tok;
	CK_FUNCTION_LIST_PTR f = tok->prov->f;
	CK_MECHANISM mech = { mt, NULL, 0 };
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_OBJECT_HANDLE h;
	CK_ULONG siglen;
	uint8_t *sig = NULL;
	unsigned gen = 0;
	int aa, attempt, bad = 0, r = TS_ERR_INTERNAL;
	CK_RV rv = CKR_OK;

	*outp = NULL;
	*outlenp = 0;
	if (key->sig_len == 0 || key->sig_len > P11_SIG_MAX_LEN) {
		r = TS_ERR_P11_KEY_TYPE;
		goto out;
	}
	if ((sig = malloc(key->sig_len)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((r = p11_session_get(tok, &s, &gen)) != 0)
		goto out;
	/* a cached handle can go stale (token reset): look it up again once */
	for (attempt = 0; attempt < 2; attempt++) {
		pthread_mutex_lock(&tok->lock);
		h = key->priv;
		aa = key->always_auth;
		pthread_mutex_unlock(&tok->lock);
		if (h == CK_INVALID_HANDLE) {
			if ((r = p11_key_find_private(key, s, &h)) != 0)
				goto out;
			pthread_mutex_lock(&tok->lock);
			key->priv = h;
			pthread_mutex_unlock(&tok->lock);
		}
		rv = f->C_SignInit(s, &mech, h);
		if ((rv == CKR_KEY_HANDLE_INVALID ||
			rv == CKR_OBJECT_HANDLE_INVALID) &&
		    attempt == 0) {
			pthread_mutex_lock(&tok->lock);
			key->priv = CK_INVALID_HANDLE;
			pthread_mutex_unlock(&tok->lock);
			continue;
		}
		break;
	}
	if (rv != CKR_OK) {
		bad = p11_rv_session_dead(rv);
		r = p11_token_rv(tok, rv, "C_SignInit");
		goto out;
	}
	if (aa && (r = context_login(key, s, pin)) != 0) {
		bad = 1; /* the sign operation is still active */
		goto out;
	}
	siglen = (CK_ULONG)key->sig_len;
	rv = f->C_Sign(
	    s, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)inlen, sig, &siglen);
	if (rv != CKR_OK) {
		/* BUFFER_TOO_SMALL leaves the operation active */
		bad = 1;
		r = p11_token_rv(tok, rv, "C_Sign");
		goto out;
	}
	/* the token decides nothing about lengths */
	if (siglen != key->sig_len) {
		error_f("key %.64s: token returned a %lu-byte signature, "
			"want %zu",
		    key->label, (unsigned long)siglen, key->sig_len);
		r = TS_ERR_P11_BAD_ATTRIBUTE;
		goto out;
	}
	*outp = sig;
	*outlenp = key->sig_len;
	sig = NULL;
	r = 0;
out:
	if (s != CK_INVALID_HANDLE)
		p11_session_put(tok, s, gen, bad);
	free(sig);
	return r;
}

int
p11_sign_digest(struct p11_key *key, enum p11_hash alg, const uint8_t *digest,
    size_t dlen, const struct p11_pin *pin, uint8_t **sigp, size_t *siglenp)
{
	uint8_t buf[19 + 64], *raw = NULL;
	const uint8_t *di;
	size_t rawlen = 0;
	int r = TS_ERR_INTERNAL;

	*sigp = NULL;
	*siglenp = 0;
	if (p11_hash_len(alg) == 0 || dlen != p11_hash_len(alg)) {
		error_f("digest is %zu bytes; the hash wants %zu", dlen,
		    p11_hash_len(alg));
		return TS_ERR_INVALID_ARG;
	}
	switch (key->type) {
	case P11_KEY_EC_P256:
	case P11_KEY_EC_P384:
	case P11_KEY_EC_P521:
		if ((r = sign_raw(key, CKM_ECDSA, digest, dlen, pin, &raw,
			 &rawlen)) != 0)
			goto out;
		r = p11_ecdsa_raw_to_der(raw, rawlen, sigp, siglenp);
		break;
	case P11_KEY_RSA:
		di = alg == P11_HASH_SHA256  ? di_sha256
		    : alg == P11_HASH_SHA384 ? di_sha384
					     : di_sha512;
		memcpy(buf, di, 19);
		memcpy(buf + 19, digest, dlen);
		r = sign_raw(
		    key, CKM_RSA_PKCS, buf, 19 + dlen, pin, sigp, siglenp);
		break;
	default:
		error_f("key %.64s (%s) cannot sign a digest; sign the whole "
			"message",
		    key->label, p11_key_type_name(key));
		r = TS_ERR_P11_KEY_TYPE;
		break;
	}
out:
	free(raw);
	return r;
}

int
p11_sign_message(struct p11_key *key, const uint8_t *msg, size_t len,
    const struct p11_pin *pin, uint8_t **sigp, size_t *siglenp)
{
	uint8_t md[32];
	unsigned int mdlen = 0;

	*sigp = NULL;
	*siglenp = 0;
	/* pure Ed25519: the token hashes; no prehash (formats.md 9.3) */
	if (key->type == P11_KEY_ED25519)
		return sign_raw(key, CKM_EDDSA, msg, len, pin, sigp, siglenp);
	if (EVP_Digest(msg, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != sizeof(md))
		return ts_err_ossl("EVP_Digest");
	return p11_sign_digest(
	    key, P11_HASH_SHA256, md, sizeof(md), pin, sigp, siglenp);
}
