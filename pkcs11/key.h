/*
 * key.h - a signing key on a token.
 *
 * A struct p11_key is a key pair found on a token (public key object plus
 * the private key with the same CKA_ID and label), owned by its token and
 * valid until the provider is freed.  Every field here was validated when
 * the key was loaded: lengths checked, EC points decoded (wrapped in an
 * OCTET STRING or bare), curves and RSA sizes checked; keys failing the
 * checks are skipped (logged), never half-built.
 */
#ifndef TS_PKCS11_KEY_H
#define TS_PKCS11_KEY_H

#include <stddef.h>
#include <stdint.h>

#define P11_FINGERPRINT_LEN 32 /* SHA-256 of the SPKI DER */

struct p11_key;
struct p11_token;
struct p11_uri;

enum p11_key_type {
	P11_KEY_UNKNOWN = 0,
	P11_KEY_RSA, /* 2048..8192 bits */
	P11_KEY_EC_P256, /* secp256r1 */
	P11_KEY_EC_P384, /* secp384r1 */
	P11_KEY_EC_P521, /* secp521r1 */
	P11_KEY_ED25519 /* CKK_EC_EDWARDS, curve edwards25519 */
};

/* Returns the key type. */
enum p11_key_type p11_key_type(const struct p11_key *key);
/* Returns a static name: "rsa", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519". */
const char *p11_key_type_name(const struct p11_key *key);
/* Returns the key size in bits (RSA modulus; 256/384/521/255 for curves). */
unsigned p11_key_bits(const struct p11_key *key);
/* Returns CKA_LABEL as text (borrowed; "" when the key has none). */
const char *p11_key_label(const struct p11_key *key);
/* Returns CKA_ID bytes (borrowed) and *lenp (0 and non-NULL when empty). */
const uint8_t *p11_key_id(const struct p11_key *key, size_t *lenp);
/* Returns the SubjectPublicKeyInfo DER (borrowed) and *lenp. */
const uint8_t *p11_key_spki_der(const struct p11_key *key, size_t *lenp);
/* Returns the SPKI as "-----BEGIN PUBLIC KEY-----" PEM text (borrowed). */
const char *p11_key_spki_pem(const struct p11_key *key);
/* Returns the 32-byte SHA-256 of the SPKI DER (borrowed). */
const uint8_t *p11_key_fingerprint(const struct p11_key *key);
/* Returns "SHA256:" + unpadded base64 of the fingerprint, as ssh (borrowed). */
const char *p11_key_fingerprint_str(const struct p11_key *key);
/*
 * Returns 1 when the private key has CKA_ALWAYS_AUTHENTICATE (a
 * context-specific login per signature), 0 otherwise or when not yet known
 * (the flag is only readable once logged in).
 */
int p11_key_always_auth(const struct p11_key *key);
/* Returns 1 when the matching private key has been seen (after login). */
int p11_key_has_private(const struct p11_key *key);
/* Returns 1 while the key is on a present token, 0 after it vanished. */
int p11_key_present(const struct p11_key *key);
/*
 * Returns the canonical RFC 7512 URI (token, manufacturer, serial, model,
 * object, id fully percent-encoded, type=private; borrowed).
 */
const char *p11_key_uri(const struct p11_key *key);
/*
 * Returns 1 when the key matches uri's object, id and type attributes
 * (token attributes are checked with p11_token_match_uri), else 0.
 */
int p11_key_match_uri(const struct p11_key *key, const struct p11_uri *uri);
/* Returns the owning token (borrowed). */
struct p11_token *p11_key_token(const struct p11_key *key);

#endif /* TS_PKCS11_KEY_H */
