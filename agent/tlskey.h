/*
 * tlskey.h - the TLS server key on a PKCS#11 token (issue 5).
 *
 * `--tls-key pkcs11:token=...;object=...` names a key on a token that the
 * agent opened through its --module(s).  tlskey_open() finds it (first in
 * the agent's key table, so signing logs in again after a PIN timeout like
 * any other signature; else directly on a token of the same provider
 * instance, which must then already be logged in) and wraps it in an
 * OpenSSL EVP_PKEY whose signing goes to p11_sign_digest().  Only EC keys
 * (P-256, P-384, P-521): TLS 1.3 needs RSA-PSS for RSA keys and the
 * pkcs11/ layer signs RSA with PKCS#1 v1.5 only.
 *
 * Thread-safe once built (p11_sign_digest is); the agent calls it from the
 * event loop during handshakes.  Design in docs/internals/tls.md.
 */
#ifndef TS_AGENT_TLSKEY_H
#define TS_AGENT_TLSKEY_H

#include <stddef.h>
#include <stdint.h>

struct tlskey;
struct keystore;
struct evp_pkey_st; /* OpenSSL's EVP_PKEY, for agent/tls.c only */

/* Returns 1 when s is a PKCS#11 URI ("pkcs11:" prefix), else 0. */
int tlskey_is_uri(const char *s);

/*
 * Finds the one key named by uri: in ks (may be NULL), else on the tokens
 * of modules[0..nmodules) opened with allowlist (the same provider
 * instances the agent uses).  Returns 0 and *out, TS_ERR_P11_URI,
 * TS_ERR_P11_KEY_NOT_FOUND, TS_ERR_P11_KEY_AMBIGUOUS, TS_ERR_P11_KEY_TYPE
 * (not an EC key), TS_ERR_P11_NOT_LOGGED_IN (private key not visible) or
 * another TS_ERR_*; the reason is logged.  ks, if used, must outlive *out.
 */
int tlskey_open(const char *uri, struct keystore *ks, char *const *modules,
    size_t nmodules, const char *allowlist, struct tlskey **out)
    __attribute__((warn_unused_result));
/*
 * Frees the key and releases its provider references.  Call after every
 * SSL_CTX/connection using it is gone.  NULL is fine.
 */
void tlskey_free(struct tlskey *k);

/* Returns the EVP_PKEY (borrowed; take a reference to keep it). */
struct evp_pkey_st *tlskey_evp(const struct tlskey *k);
/* Returns the key's SubjectPublicKeyInfo DER (borrowed) and *lenp. */
const uint8_t *tlskey_spki_der(const struct tlskey *k, size_t *lenp);
/* Returns the key's canonical RFC 7512 URI (borrowed). */
const char *tlskey_uri(const struct tlskey *k);
/* Returns how many handshake signatures were made / failed. */
uint64_t tlskey_signatures(const struct tlskey *k);
uint64_t tlskey_errors(const struct tlskey *k);

#endif /* TS_AGENT_TLSKEY_H */
