/*
 * sign_backend.h - who makes the signatures for `tokensign sign`: the
 * agent (the normal case: the key stays on the token) or, for tests and
 * air-gapped use, a PEM private key file ("file:PATH").  Both sign the
 * whole payload as cosign does (formats.md 9.4): ECDSA P-256 and RSA
 * PKCS#1 v1.5 over SHA-256 of the payload (ECDSA as DER), Ed25519 pure.
 */
#ifndef TS_CLIENT_SIGN_BACKEND_H
#define TS_CLIENT_SIGN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

struct sign_backend;

/*
 * Opens the signer for key: "file:PATH" is a PEM private key file; any
 * other value (or NULL: the agent's only/default key) is a key reference
 * resolved by the agent at $TOKENSIGN_AUTH_SOCK.  Returns 0 and *out
 * (caller sign_backend_close()s), or an error (logged).
 */
int sign_backend_open(const char *key, struct sign_backend **out)
    __attribute__((warn_unused_result));
void sign_backend_close(struct sign_backend *b);
/*
 * Signs payloads[0..n): sigs[i] (malloc'd raw signature bytes, caller
 * frees) and sig_lens[i].  All or nothing: on error nothing is returned.
 */
int sign_backend_sign(struct sign_backend *b, const uint8_t *const *payloads,
    const size_t *lens, size_t n, uint8_t **sigs, size_t *sig_lens)
    __attribute__((warn_unused_result));

/*
 * Returns 1 when sig_b64 (a layer's signature annotation) is a valid
 * signature of payload by this backend's key, else 0.  Used to skip
 * re-signing an image already signed with the same key and payload, as
 * cosign does (ECDSA signatures differ on every run, so byte equality of
 * layers is not enough).
 */
int sign_backend_verifies(const struct sign_backend *b, const uint8_t *payload,
    size_t len, const char *sig_b64);

#endif /* TS_CLIENT_SIGN_BACKEND_H */
