/*
 * tlskey.c - the TLS server key on a PKCS#11 token, as an OpenSSL EVP_PKEY.
 *
 * OpenSSL 3 offers two ways to make an EVP_PKEY sign elsewhere: a provider
 * (keymgmt + signature dispatch tables, loaded into a library context that
 * the SSL_CTX would then have to use) or the legacy EC_KEY_METHOD with a
 * custom sign callback.  We use the second: it is about sixty lines, an
 * EVP_PKEY whose EC_KEY has a non-default method is treated by OpenSSL 3.0
 * as a "foreign" legacy key and every signature (EVP_DigestSign in the
 * handshake) goes through the method, and nothing else in the process
 * changes (no provider registration, default library context untouched).
 * The price is the deprecated EC_KEY API, confined to this file with a
 * narrowly scoped pragma.  XXX move to a small built-in provider when the
 * EC_KEY API is removed (OpenSSL 4).
 *
 * EC only: TLS 1.3 signs with RSA-PSS for RSA keys, and pkcs11/sign.h
 * offers PKCS#1 v1.5 only (CKM_RSA_PKCS); RSA server keys on a token are
 * refused with a clear error rather than working in TLS 1.2 only.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/log.h"
#include "agent/keystore.h"
#include "agent/tlskey.h"
#include "pkcs11/key.h"
#include "pkcs11/provider.h"
#include "pkcs11/sign.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

#define TLSKEY_MAX_PROVIDERS 16

struct tlskey {
	struct keystore *ks; /* borrowed; NULL when found off the table */
	struct ks_key *kk; /* in ks, or NULL */
	struct p11_key *key; /* borrowed from its provider */
	struct p11_provider *provs[TLSKEY_MAX_PROVIDERS]; /* references held */
	size_t nprovs;
	EVP_PKEY *pkey;
	uint64_t nsig;
	uint64_t nerr;
};

int
tlskey_is_uri(const char *s)
{
	return s != NULL && strncmp(s, "pkcs11:", 7) == 0;
}

/* One token signature over a handshake digest; DER ECDSA into *sigp. */
static int
tlskey_sign_der(struct tlskey *k, const unsigned char *dgst, int dlen,
    uint8_t **sigp, size_t *siglenp)
{
	enum p11_hash alg;
	int r;

	*sigp = NULL;
	*siglenp = 0;
	/*
	 * CKM_ECDSA signs the digest as given; the hash only has to match
	 * its length for p11_sign_digest's check.  TLS 1.3 binds the hash to
	 * the curve; TLS 1.2 may pair any of these with any curve.
	 */
	switch (dlen) {
	case 32:
		alg = P11_HASH_SHA256;
		break;
	case 48:
		alg = P11_HASH_SHA384;
		break;
	case 64:
		alg = P11_HASH_SHA512;
		break;
	default:
		error_f("TLS key: unsupported digest length %d", dlen);
		__atomic_fetch_add(&k->nerr, 1, __ATOMIC_RELAXED);
		return TS_ERR_UNSUPPORTED;
	}
	if (k->kk != NULL)
		r = keystore_sign_digest(
		    k->ks, k->kk, (int)alg, dgst, (size_t)dlen, sigp, siglenp);
	else
		r = p11_sign_digest(
		    k->key, alg, dgst, (size_t)dlen, NULL, sigp, siglenp);
	if (r != 0) {
		error_fr(r, "TLS key %.200s: token signature failed",
		    p11_key_uri(k->key));
		__atomic_fetch_add(&k->nerr, 1, __ATOMIC_RELAXED);
		return r;
	}
	__atomic_fetch_add(&k->nsig, 1, __ATOMIC_RELAXED);
	return 0;
}

/*
 * The legacy EC_KEY_METHOD: deprecated since OpenSSL 3.0 but the only
 * API that redirects an EVP_PKEY's signatures without a provider.  The
 * pragma covers exactly the functions below.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

static EC_KEY_METHOD *tlskey_method;
static int tlskey_exidx = -1;

static int
ec_sign_cb(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
    unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *rp, EC_KEY *ec)
{
	struct tlskey *k = EC_KEY_get_ex_data(ec, tlskey_exidx);
	uint8_t *der = NULL;
	size_t derlen = 0;
	int max = ECDSA_size(ec);

	(void)type;
	(void)kinv;
	(void)rp;
	*siglen = 0;
	if (k == NULL || max <= 0 ||
	    tlskey_sign_der(k, dgst, dlen, &der, &derlen) != 0)
		return 0;
	if (derlen > (size_t)max) { /* the layer returns minimal DER */
		error_f("TLS key: token signature too long (%zu)", derlen);
		free(der);
		return 0;
	}
	memcpy(sig, der, derlen);
	*siglen = (unsigned int)derlen;
	free(der);
	return 1;
}

static ECDSA_SIG *
ec_sign_sig_cb(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *rp, EC_KEY *ec)
{
	struct tlskey *k = EC_KEY_get_ex_data(ec, tlskey_exidx);
	uint8_t *der = NULL;
	const unsigned char *p;
	size_t derlen = 0;
	ECDSA_SIG *s = NULL;

	(void)kinv;
	(void)rp;
	if (k == NULL || tlskey_sign_der(k, dgst, dlen, &der, &derlen) != 0)
		return NULL;
	p = der;
	s = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	free(der);
	return s;
}

/* Builds the method once; the loop thread is the only caller. */
static int
method_init(void)
{
	int (*setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;

	if (tlskey_method != NULL)
		return 0;
	if (tlskey_exidx < 0 &&
	    (tlskey_exidx =
		    EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)
		return ts_err_ossl("EC_KEY_get_ex_new_index");
	if ((tlskey_method = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) == NULL)
		return ts_err_ossl("EC_KEY_METHOD_new");
	EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), NULL, &setup, NULL);
	EC_KEY_METHOD_set_sign(
	    tlskey_method, ec_sign_cb, setup, ec_sign_sig_cb);
	return 0;
}

/* Wraps the token key's public half in an EVP_PKEY signing through k. */
static int
make_pkey(struct tlskey *k)
{
	const uint8_t *der;
	const unsigned char *p;
	size_t len = 0;
	EC_KEY *ec = NULL;
	EVP_PKEY *pk = NULL;
	int r = TS_ERR_INTERNAL;

	if ((r = method_init()) != 0)
		goto out;
	der = p11_key_spki_der(k->key, &len);
	p = der;
	if ((ec = d2i_EC_PUBKEY(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		r = ts_err_ossl("TLS key SPKI");
		goto out;
	}
	if (!EC_KEY_set_method(ec, tlskey_method) ||
	    !EC_KEY_set_ex_data(ec, tlskey_exidx, k)) {
		r = ts_err_ossl("EC_KEY_set_method");
		goto out;
	}
	if ((pk = EVP_PKEY_new()) == NULL || !EVP_PKEY_assign_EC_KEY(pk, ec)) {
		r = ts_err_ossl("EVP_PKEY_assign_EC_KEY");
		goto out;
	}
	ec = NULL; /* owned by pk */
	k->pkey = pk;
	pk = NULL;
	r = 0;
out:
	EC_KEY_free(ec);
	EVP_PKEY_free(pk);
	return r;
}

#pragma GCC diagnostic pop

/* Looks for the key on the modules' tokens, keeping provider references. */
static int
find_on_modules(struct tlskey *k, const char *uri, char *const *modules,
    size_t nmodules, const char *allowlist)
{
	struct p11_uri *u = NULL;
	struct p11_provider *prov = NULL;
	struct p11_key *key;
	char why[200];
	size_t i;
	int r = TS_ERR_INTERNAL;

	why[0] = '\0';
	if ((r = p11_uri_parse(uri, &u, why, sizeof(why))) != 0) {
		error("--tls-key %.200s: %s", uri, why);
		goto out;
	}
	r = TS_ERR_P11_KEY_NOT_FOUND;
	for (i = 0; i < nmodules && i < TLSKEY_MAX_PROVIDERS; i++) {
		/* Another reference to the instance the agent opened. */
		if (p11_provider_open(modules[i], allowlist, &prov) != 0) {
			prov = NULL;
			continue;
		}
		if (!p11_provider_match_uri(prov, u)) {
			p11_provider_free(prov);
			prov = NULL;
			continue;
		}
		r = p11_provider_find_key(prov, u, &key);
		if (r == TS_ERR_P11_KEY_NOT_FOUND ||
		    r == TS_ERR_P11_TOKEN_NOT_FOUND) {
			p11_provider_free(prov);
			prov = NULL;
			r = TS_ERR_P11_KEY_NOT_FOUND;
			continue;
		}
		if (r != 0)
			goto out;
		if (k->key != NULL) {
			error(
			    "--tls-key %.200s names keys in two modules", uri);
			r = TS_ERR_P11_KEY_AMBIGUOUS;
			goto out;
		}
		k->key = key;
		k->provs[k->nprovs++] = prov;
		prov = NULL;
	}
	r = k->key != NULL ? 0 : TS_ERR_P11_KEY_NOT_FOUND;
out:
	p11_provider_free(prov);
	p11_uri_free(u);
	return r;
}

int
tlskey_open(const char *uri, struct keystore *ks, char *const *modules,
    size_t nmodules, const char *allowlist, struct tlskey **out)
{
	struct tlskey *k = NULL;
	struct ks_key *kk = NULL;
	struct p11_uri *u = NULL;
	enum p11_key_type t;
	char why[200];
	int r = TS_ERR_INTERNAL;

	*out = NULL;
	if (!tlskey_is_uri(uri)) {
		r = TS_ERR_P11_URI;
		goto out;
	}
	why[0] = '\0';
	if ((r = p11_uri_parse(uri, &u, why, sizeof(why))) != 0) {
		error("--tls-key %.200s: %s", uri, why);
		goto out;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	/*
	 * The agent's key table first (signing then re-logs in as needed);
	 * the key leaves the table clients see: whoever could sign digests
	 * with it could sign a TLS 1.3 CertificateVerify as the agent.
	 */
	r = ks != NULL ? keystore_reserve(ks, uri, &kk)
		       : TS_ERR_P11_KEY_NOT_FOUND;
	if (r == 0) {
		k->ks = ks;
		k->kk = kk;
		k->key = ks_key_p11(kk);
		/* the canonical URI: the one given may carry pin-value */
		logit("TLS server key %s (key id %s) is withheld from clients",
		    p11_key_uri(k->key), ks_key_id(kk));
	} else if (r == TS_ERR_P11_KEY_NOT_FOUND) {
		if ((r = find_on_modules(
			 k, uri, modules, nmodules, allowlist)) != 0) {
			error_fr(r,
			    "--tls-key %.200s: no such key on the agent's "
			    "tokens",
			    uri);
			goto out;
		}
	} else {
		error_fr(r, "--tls-key %.200s", uri);
		goto out;
	}
	t = p11_key_type(k->key);
	if (t != P11_KEY_EC_P256 && t != P11_KEY_EC_P384 &&
	    t != P11_KEY_EC_P521) {
		error("--tls-key %.200s is a %s key: only ECDSA keys (P-256, "
		      "P-384, P-521) can be TLS keys on a token (TLS 1.3 "
		      "needs RSA-PSS, which the token layer does not offer)",
		    uri, p11_key_type_name(k->key));
		r = TS_ERR_P11_KEY_TYPE;
		goto out;
	}
	if (!p11_key_has_private(k->key)) {
		error("--tls-key %.200s: the private key is not visible: its "
		      "token %.100s is not logged in (give the agent its PIN)",
		    uri, p11_token_label(p11_key_token(k->key)));
		r = TS_ERR_P11_NOT_LOGGED_IN;
		goto out;
	}
	if ((r = make_pkey(k)) != 0)
		goto out;
	debug_f("TLS key %s (%s)", p11_key_uri(k->key),
	    k->kk != NULL ? "agent key table" : "direct");
	*out = k;
	k = NULL;
	r = 0;
out:
	p11_uri_free(u);
	tlskey_free(k);
	return r;
}

void
tlskey_free(struct tlskey *k)
{
	size_t i;

	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	for (i = 0; i < k->nprovs; i++)
		p11_provider_free(k->provs[i]);
	free(k);
}

struct evp_pkey_st *
tlskey_evp(const struct tlskey *k)
{
	return k->pkey;
}

const uint8_t *
tlskey_spki_der(const struct tlskey *k, size_t *lenp)
{
	return p11_key_spki_der(k->key, lenp);
}

const char *
tlskey_uri(const struct tlskey *k)
{
	return p11_key_uri(k->key);
}

uint64_t
tlskey_signatures(const struct tlskey *k)
{
	return __atomic_load_n(&k->nsig, __ATOMIC_RELAXED);
}

uint64_t
tlskey_errors(const struct tlskey *k)
{
	return __atomic_load_n(&k->nerr, __ATOMIC_RELAXED);
}
