/*
 * sign.h - signing with a token key (formats.md section 9).
 *
 * Thread-safe: each call borrows a session from the token's pool for the
 * duration of one C_SignInit/C_Sign (plus a context-specific C_Login for
 * CKA_ALWAYS_AUTHENTICATE keys), so several threads sign at once on one
 * token without sharing a session.  Every CK_RV is converted to a
 * TS_ERR_P11_* code here (p11_rv_to_err).
 */
#ifndef TS_PKCS11_SIGN_H
#define TS_PKCS11_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define P11_SIG_MAX_LEN 1024 /* RSA-8192 is the largest signature we make */

struct p11_key;
struct p11_pin;

enum p11_hash { P11_HASH_SHA256 = 1, P11_HASH_SHA384, P11_HASH_SHA512 };

/*
 * Signs a digest of hash alg: ECDSA keys give minimal DER ECDSA-Sig-Value
 * (converted from the token's raw r||s), RSA keys PKCS#1 v1.5 with the
 * DigestInfo for alg (CKM_RSA_PKCS).  Ed25519 keys cannot sign a digest
 * (TS_ERR_P11_KEY_TYPE).  pin is used only for a CKA_ALWAYS_AUTHENTICATE
 * key; NULL then means the PIN kept by p11_token_login(P11_LOGIN_KEEP_PIN),
 * else the protected authentication path.  Returns 0 and *sigp (malloc'd,
 * caller frees) with *siglenp, TS_ERR_INVALID_ARG (digest length does not
 * match alg), TS_ERR_P11_NOT_LOGGED_IN, TS_ERR_P11_PIN_REQUIRED, or another
 * TS_ERR_P11_* code.
 */
int p11_sign_digest(struct p11_key *key, enum p11_hash alg,
    const uint8_t *digest, size_t dlen, const struct p11_pin *pin,
    uint8_t **sigp, size_t *siglenp) __attribute__((warn_unused_result));

/*
 * Signs a whole message: Ed25519 pure (CKM_EDDSA, 64 raw bytes); ECDSA and
 * RSA keys hash it with SHA-256 first and sign as p11_sign_digest().
 * Returns as p11_sign_digest().
 */
int p11_sign_message(struct p11_key *key, const uint8_t *msg, size_t len,
    const struct p11_pin *pin, uint8_t **sigp, size_t *siglenp)
    __attribute__((warn_unused_result));

/* Returns the digest length of alg (32/48/64), or 0 for an unknown alg. */
size_t p11_hash_len(enum p11_hash alg);

/*
 * Converts a raw ECDSA r||s (even length, each half the curve order size,
 * at most 2*66 bytes) into minimal DER ECDSA-Sig-Value.  Returns 0 and
 * *derp (malloc'd, caller frees) with *derlenp, TS_ERR_P11_BAD_ATTRIBUTE
 * (odd/zero/oversized length) or TS_ERR_ALLOC.
 */
int p11_ecdsa_raw_to_der(const uint8_t *raw, size_t rawlen, uint8_t **derp,
    size_t *derlenp) __attribute__((warn_unused_result));

/*
 * Returns the TS_ERR_P11_* code for a PKCS#11 return value (0 for CKR_OK).
 * rv is a CK_RV; unsigned long keeps pkcs11.h out of this header.
 */
int p11_rv_to_err(unsigned long rv);
/* Returns the static CKR_* name of rv ("CKR_PIN_INCORRECT"), never NULL. */
const char *p11_rv_name(unsigned long rv);

#endif /* TS_PKCS11_SIGN_H */
