/*
 * tls.c - mutual-TLS server contexts and non-blocking connections.
 *
 * The only file of the agent that includes OpenSSL's SSL headers.  Design
 * notes in docs/internals/tls.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/log.h"
#include "agent/tls.h"
#include "agent/tlskey.h"

#define TLS_MAX_SAN	   32 /* URI or DNS entries kept per certificate */
#define TLS_MAX_NAME	   512 /* bytes per CN/SAN string */
#define TLS_DEFAULT_DEPTH  4
#define TLS_SESSION_ID_CTX "tokensign-agent"
#define TLS12_CIPHERS	   "ECDHE+AESGCM:ECDHE+CHACHA20"

struct tls_server {
	char *cert_file;
	char *key_file;
	char *client_ca_file;
	char *crl_file;
	int allow_tls12;
	int verify_depth;
	struct tlskey *token_key; /* borrowed, or NULL */
	SSL_CTX *ctx; /* current; every SSL holds its own reference */
	unsigned int generation;
};

struct tls_identity {
	char *cn;
	char *subject;
	char *issuer;
	char *fingerprint;
	char *serial;
	char *uris[TLS_MAX_SAN];
	size_t nuris;
	char *dns[TLS_MAX_SAN];
	size_t ndns;
};

enum tls_conn_state {
	TLS_CONN_HANDSHAKE = 0,
	TLS_CONN_OPEN,
	TLS_CONN_FAILED,
};

struct tls_conn {
	SSL *ssl;
	enum tls_conn_state state;
	enum tls_refusal refusal;
	int verify_err; /* first X509_V_ERR_* the verify callback saw */
	int verify_depth;
	int shut;
	struct tls_identity *id;
	char reason[200];
};

static const char *const refusal_names[] = {
	[TLS_REFUSE_NONE] = "none",
	[TLS_REFUSE_NO_CERT] = "no-cert",
	[TLS_REFUSE_UNTRUSTED] = "untrusted",
	[TLS_REFUSE_EXPIRED] = "expired",
	[TLS_REFUSE_NOT_YET_VALID] = "not-yet-valid",
	[TLS_REFUSE_REVOKED] = "revoked",
	[TLS_REFUSE_CRL] = "crl-unusable",
	[TLS_REFUSE_BAD_CERT] = "bad-cert",
	[TLS_REFUSE_BAD_IDENTITY] = "bad-identity",
	[TLS_REFUSE_PROTOCOL] = "protocol",
	[TLS_REFUSE_EOF] = "eof",
	[TLS_REFUSE_IO] = "io",
};

const char *
tls_refusal_name(enum tls_refusal r)
{
	if ((size_t)r >= sizeof(refusal_names) / sizeof(refusal_names[0]))
		return "unknown";
	return refusal_names[r];
}

static char *
xstrdup_or_null(const char *s, int *fail)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*fail = 1;
	return d;
}

/* An encrypted key file must never make the agent prompt on a tty. */
static int
no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/*
 * Records the first verification failure on the connection; the verdict
 * itself is OpenSSL's (we return ok unchanged).
 */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl;
	struct tls_conn *c;

	if (ok)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(
	    xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl == NULL || (c = SSL_get_app_data(ssl)) == NULL)
		return ok;
	if (c->verify_err == 0) {
		c->verify_err = X509_STORE_CTX_get_error(xs);
		c->verify_depth = X509_STORE_CTX_get_error_depth(xs);
	}
	return ok;
}

static int
load_crls(X509_STORE *st, const char *path)
{
	BIO *bio = NULL;
	X509_CRL *crl = NULL;
	int n = 0, r = TS_ERR_INTERNAL;

	if ((bio = BIO_new_file(path, "r")) == NULL) {
		r = ts_err_ossl("open CRL file");
		error_f("cannot read CRL file %.200s", path);
		r = TS_ERR_CONFIG;
		goto out;
	}
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		if (!X509_STORE_add_crl(st, crl)) {
			r = ts_err_ossl("X509_STORE_add_crl");
			goto out;
		}
		X509_CRL_free(crl);
		crl = NULL;
		n++;
	}
	ERR_clear_error(); /* end of file shows as a PEM error */
	if (n == 0) {
		error_f("%.200s holds no PEM CRL", path);
		r = TS_ERR_CONFIG;
		goto out;
	}
	X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
	r = 0;
out:
	X509_CRL_free(crl);
	BIO_free(bio);
	return r;
}

/*
 * Installs the token key after checking that the certificate (already
 * loaded) carries its public key: the SPKI DER must be identical.  The
 * private half never leaves the token, so SSL_CTX_check_private_key()
 * could only compare the same public keys again.
 */
static int
use_token_key(SSL_CTX *ctx, const struct tls_server *srv)
{
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	unsigned char *der = NULL;
	const uint8_t *want;
	size_t wantlen = 0;
	int len, r = TS_ERR_INTERNAL;

	want = tlskey_spki_der(srv->token_key, &wantlen);
	if (cert == NULL ||
	    (len = i2d_PUBKEY(X509_get0_pubkey(cert), &der)) <= 0) {
		r = ts_err_ossl("server certificate public key");
		goto out;
	}
	if ((size_t)len != wantlen || memcmp(der, want, wantlen) != 0) {
		error_f("server key %.200s on the token does not match "
			"certificate %.200s (the certificate was issued for "
			"another public key)",
		    srv->key_file, srv->cert_file);
		r = TS_ERR_CONFIG;
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(ctx, tlskey_evp(srv->token_key)) != 1) {
		r = ts_err_ossl("token server key");
		error_f("cannot use token key %.200s", srv->key_file);
		r = TS_ERR_CONFIG;
		goto out;
	}
	r = 0;
out:
	OPENSSL_free(der);
	return r;
}

static int
build_ctx(const struct tls_server *srv, SSL_CTX **out)
{
	SSL_CTX *ctx = NULL;
	STACK_OF(X509_NAME) *names = NULL;
	int r = TS_ERR_INTERNAL;

	*out = NULL;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		r = ts_err_ossl("SSL_CTX_new");
		goto out;
	}
	if (!SSL_CTX_set_min_proto_version(
		ctx, srv->allow_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
		r = ts_err_ossl("protocol settings");
		goto out;
	}
	/*
	 * No renegotiation (a TLS 1.2 client could use it to stall the loop),
	 * no compression (CRIME); a peer that drops TCP without close_notify
	 * is an ordinary EOF for a framed protocol.
	 */
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
		SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx,
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase_cb);
	r = TS_ERR_CONFIG;
	if (SSL_CTX_use_certificate_chain_file(ctx, srv->cert_file) != 1) {
		ts_err_ossl("server certificate");
		error_f(
		    "cannot load server certificate %.200s", srv->cert_file);
		goto out;
	}
	if (srv->token_key != NULL) {
		if ((r = use_token_key(ctx, srv)) != 0)
			goto out;
		r = TS_ERR_CONFIG;
	} else if (SSL_CTX_use_PrivateKey_file(
		       ctx, srv->key_file, SSL_FILETYPE_PEM) != 1) {
		ts_err_ossl("server key");
		error_f("cannot load server key %.200s (PEM, unencrypted, "
			"matching the certificate)",
		    srv->key_file);
		goto out;
	}
	if (srv->token_key == NULL && SSL_CTX_check_private_key(ctx) != 1) {
		ts_err_ossl("server key");
		error_f("server key %.200s does not match certificate %.200s",
		    srv->key_file, srv->cert_file);
		goto out;
	}
	if (SSL_CTX_load_verify_locations(ctx, srv->client_ca_file, NULL) !=
	    1) {
		ts_err_ossl("client CA");
		error_f("cannot load client CA %.200s", srv->client_ca_file);
		goto out;
	}
	/* Tell clients which CA we want, so they pick the right cert. */
	if ((names = SSL_load_client_CA_file(srv->client_ca_file)) == NULL) {
		ts_err_ossl("client CA names");
		error_f("no CA certificate in %.200s", srv->client_ca_file);
		goto out;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	names = NULL;
	if (srv->crl_file != NULL &&
	    (r = load_crls(SSL_CTX_get_cert_store(ctx), srv->crl_file)) != 0)
		goto out;
	SSL_CTX_set_verify(
	    ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	SSL_CTX_set_verify_depth(
	    ctx, srv->verify_depth > 0 ? srv->verify_depth : TLS_DEFAULT_DEPTH);
	/* Required for resumption when client certificates are verified. */
	if (!SSL_CTX_set_session_id_context(ctx,
		(const unsigned char *)TLS_SESSION_ID_CTX,
		sizeof(TLS_SESSION_ID_CTX) - 1)) {
		r = ts_err_ossl("session id context");
		goto out;
	}
	*out = ctx;
	ctx = NULL;
	r = 0;
out:
	sk_X509_NAME_pop_free(names, X509_NAME_free);
	SSL_CTX_free(ctx);
	return r;
}

static void
server_strings_free(struct tls_server *s)
{
	free(s->cert_file);
	free(s->key_file);
	free(s->client_ca_file);
	free(s->crl_file);
}

int
tls_server_new(const struct tls_server_opts *opts, struct tls_server **out)
{
	struct tls_server *s = NULL;
	int fail = 0, r = TS_ERR_INTERNAL;

	*out = NULL;
	if (opts == NULL || opts->cert_file == NULL || opts->key_file == NULL ||
	    opts->client_ca_file == NULL) {
		error_f("TLS needs a certificate, a key and a client CA");
		r = TS_ERR_CONFIG;
		goto out;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	s->cert_file = xstrdup_or_null(opts->cert_file, &fail);
	s->key_file = xstrdup_or_null(opts->key_file, &fail);
	s->client_ca_file = xstrdup_or_null(opts->client_ca_file, &fail);
	s->crl_file = xstrdup_or_null(opts->crl_file, &fail);
	if (fail) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	s->allow_tls12 = opts->allow_tls12;
	s->verify_depth = opts->verify_depth;
	s->token_key = opts->token_key;
	if ((r = build_ctx(s, &s->ctx)) != 0)
		goto out;
	s->generation = 1;
	*out = s;
	s = NULL;
	r = 0;
out:
	tls_server_free(s);
	return r;
}

int
tls_server_reload(struct tls_server *srv)
{
	SSL_CTX *ctx = NULL;
	int r;

	if ((r = build_ctx(srv, &ctx)) != 0) {
		error_fr(r, "TLS reload failed; keeping the old certificates");
		return r;
	}
	/* Live SSL objects hold their own reference on the old context. */
	SSL_CTX_free(srv->ctx);
	srv->ctx = ctx;
	srv->generation++;
	return 0;
}

void
tls_server_free(struct tls_server *srv)
{
	if (srv == NULL)
		return;
	SSL_CTX_free(srv->ctx);
	server_strings_free(srv);
	free(srv);
}

unsigned int
tls_server_generation(const struct tls_server *srv)
{
	return srv->generation;
}

/* identity */

static void
identity_free(struct tls_identity *id)
{
	size_t i;

	if (id == NULL)
		return;
	free(id->cn);
	free(id->subject);
	free(id->issuer);
	free(id->fingerprint);
	free(id->serial);
	for (i = 0; i < id->nuris; i++)
		free(id->uris[i]);
	for (i = 0; i < id->ndns; i++)
		free(id->dns[i]);
	free(id);
}

/*
 * Identity strings feed policy matching and the audit log: reject embedded
 * NULs ("runner-a\0.evil" must not compare equal to "runner-a") and control
 * characters instead of trying to escape them.
 */
static int
name_ok(const unsigned char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > TLS_MAX_NAME)
		return 0;
	for (i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	}
	return 1;
}

static char *
dup_name(const unsigned char *s, size_t len)
{
	char *d;

	if ((d = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

static char *
name_oneline(const X509_NAME *n)
{
	BIO *bio;
	char *s = NULL, *p;
	long len;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	/* RFC 2253 with control and non-ASCII characters escaped. */
	if (X509_NAME_print_ex(
		bio, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    (len = BIO_get_mem_data(bio, &p)) >= 0 && len <= 4096)
		s = dup_name((const unsigned char *)p, (size_t)len);
	BIO_free(bio);
	return s;
}

static int
identity_cn(X509 *x, struct tls_identity *id)
{
	const X509_NAME *n = X509_get_subject_name(x);
	const X509_NAME_ENTRY *e;
	unsigned char *utf8 = NULL;
	int idx, len, r = TS_ERR_TLS_PEER;

	if ((idx = X509_NAME_get_index_by_NID(n, NID_commonName, -1)) < 0)
		return 0; /* no CN: identity is SAN only */
	/* Two CNs are ambiguous: which one would policy match? */
	if (X509_NAME_get_index_by_NID(n, NID_commonName, idx) >= 0)
		goto out;
	e = X509_NAME_get_entry(n, idx);
	if ((len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e))) < 0)
		goto out;
	if (!name_ok(utf8, (size_t)len))
		goto out;
	if ((id->cn = dup_name(utf8, (size_t)len)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	r = 0;
out:
	OPENSSL_free(utf8);
	return r;
}

static int
identity_san(X509 *x, struct tls_identity *id)
{
	GENERAL_NAMES *gens;
	const GENERAL_NAME *g;
	const ASN1_IA5STRING *s;
	char **slot;
	int i, n, crit = 0, r = TS_ERR_TLS_PEER;

	gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
	if (gens == NULL) {
		/* -1: absent; anything else: present but undecodable */
		return crit == -1 ? 0 : TS_ERR_TLS_PEER;
	}
	n = sk_GENERAL_NAME_num(gens);
	for (i = 0; i < n; i++) {
		g = sk_GENERAL_NAME_value(gens, i);
		if (g->type == GEN_URI) {
			if (id->nuris >= TLS_MAX_SAN)
				goto out;
			s = g->d.uniformResourceIdentifier;
			slot = &id->uris[id->nuris];
		} else if (g->type == GEN_DNS) {
			if (id->ndns >= TLS_MAX_SAN)
				goto out;
			s = g->d.dNSName;
			slot = &id->dns[id->ndns];
		} else
			continue;
		if (!name_ok(ASN1_STRING_get0_data(s),
			(size_t)ASN1_STRING_length(s)))
			goto out;
		if ((*slot = dup_name(ASN1_STRING_get0_data(s),
			 (size_t)ASN1_STRING_length(s))) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		if (g->type == GEN_URI)
			id->nuris++;
		else
			id->ndns++;
	}
	r = 0;
out:
	GENERAL_NAMES_free(gens);
	return r;
}

static int
identity_from_cert(X509 *x, struct tls_identity **out)
{
	struct tls_identity *id = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int r = TS_ERR_INTERNAL;

	*out = NULL;
	if ((id = calloc(1, sizeof(*id))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((r = identity_cn(x, id)) != 0 || (r = identity_san(x, id)) != 0)
		goto out;
	if (id->cn == NULL && id->nuris == 0 && id->ndns == 0) {
		r = TS_ERR_TLS_PEER; /* nothing a policy could match */
		goto out;
	}
	r = TS_ERR_ALLOC;
	if ((id->subject = name_oneline(X509_get_subject_name(x))) == NULL ||
	    (id->issuer = name_oneline(X509_get_issuer_name(x))) == NULL)
		goto out;
	if (!X509_digest(x, EVP_sha256(), md, &mdlen)) {
		r = ts_err_ossl("X509_digest");
		goto out;
	}
	if ((id->fingerprint = malloc(mdlen * 2 + 1)) == NULL)
		goto out;
	for (i = 0; i < mdlen; i++) {
		snprintf(id->fingerprint + 2 * i, 3, "%02x", md[i]);
	}
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) ==
		NULL ||
	    (hex = BN_bn2hex(bn)) == NULL || (id->serial = strdup(hex)) == NULL)
		goto out;
	*out = id;
	id = NULL;
	r = 0;
out:
	OPENSSL_free(hex);
	BN_free(bn);
	identity_free(id);
	return r;
}

const char *
tls_identity_cn(const struct tls_identity *id)
{
	return id->cn;
}

const char *
tls_identity_subject(const struct tls_identity *id)
{
	return id->subject;
}

const char *
tls_identity_issuer(const struct tls_identity *id)
{
	return id->issuer;
}

const char *
tls_identity_fingerprint(const struct tls_identity *id)
{
	return id->fingerprint;
}

const char *
tls_identity_serial(const struct tls_identity *id)
{
	return id->serial;
}

const char *const *
tls_identity_uris(const struct tls_identity *id, size_t *n)
{
	*n = id->nuris;
	return (const char *const *)id->uris;
}

const char *const *
tls_identity_dns(const struct tls_identity *id, size_t *n)
{
	*n = id->ndns;
	return (const char *const *)id->dns;
}

int
tls_identity_describe(const struct tls_identity *id, char *buf, size_t len)
{
	size_t off = 0, i;
	int n;

#define APPEND(...)                                              \
	do {                                                     \
		if (off >= len)                                  \
			return TS_ERR_TOO_LARGE;                 \
		n = snprintf(buf + off, len - off, __VA_ARGS__); \
		if (n < 0 || (size_t)n >= len - off) {           \
			return TS_ERR_TOO_LARGE;                 \
		}                                                \
		off += (size_t)n;                                \
	} while (0)

	if (len == 0)
		return TS_ERR_TOO_LARGE;
	buf[0] = '\0';
	APPEND("cn=%s", id->cn != NULL ? id->cn : "-");
	for (i = 0; i < id->nuris; i++)
		APPEND(" uri=%s", id->uris[i]);
	for (i = 0; i < id->ndns; i++)
		APPEND(" dns=%s", id->dns[i]);
#undef APPEND
	return 0;
}

/* connections */

int
tls_conn_new(struct tls_server *srv, int fd, struct tls_conn **out)
{
	struct tls_conn *c = NULL;
	int r = TS_ERR_INTERNAL;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	ERR_clear_error();
	/* SSL_new takes a reference on srv->ctx: reloads can't free it. */
	if ((c->ssl = SSL_new(srv->ctx)) == NULL || !SSL_set_fd(c->ssl, fd)) {
		r = ts_err_ossl("SSL_new");
		goto out;
	}
	SSL_set_app_data(c->ssl, c);
	SSL_set_accept_state(c->ssl);
	*out = c;
	c = NULL;
	r = 0;
out:
	tls_conn_free(c);
	return r;
}

void
tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	identity_free(c->id);
	free(c);
}

static enum tls_refusal
refusal_from_verify(int err)
{
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return TLS_REFUSE_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return TLS_REFUSE_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED:
		return TLS_REFUSE_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return TLS_REFUSE_UNTRUSTED;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
	case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
	case X509_V_ERR_DIFFERENT_CRL_SCOPE:
		return TLS_REFUSE_CRL;
	default:
		return TLS_REFUSE_BAD_CERT;
	}
}

static enum tls_step conn_fail(struct tls_conn *c, enum tls_refusal why,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum tls_step
conn_fail(struct tls_conn *c, enum tls_refusal why, const char *fmt, ...)
{
	va_list ap;

	c->state = TLS_CONN_FAILED;
	c->refusal = why;
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
	ERR_clear_error();
	return TLS_STEP_FAILED;
}

/* Classifies a failed handshake: certificate verdicts first. */
static enum tls_step
handshake_failed(struct tls_conn *c, int sslerr, int saved_errno)
{
	unsigned long e = ERR_peek_error();

	if (c->verify_err != 0)
		return conn_fail(c, refusal_from_verify(c->verify_err),
		    "client certificate refused: %s (depth %d)",
		    X509_verify_cert_error_string(c->verify_err),
		    c->verify_depth);
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		return conn_fail(
		    c, TLS_REFUSE_NO_CERT, "client sent no certificate");
	if (sslerr == SSL_ERROR_ZERO_RETURN ||
	    (sslerr == SSL_ERROR_SYSCALL && e == 0 && saved_errno == 0) ||
	    (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
		ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING))
		return conn_fail(c, TLS_REFUSE_EOF,
		    "peer closed the connection during the handshake");
	if (sslerr == SSL_ERROR_SYSCALL && e == 0)
		return conn_fail(
		    c, TLS_REFUSE_IO, "handshake: %s", strerror(saved_errno));
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
		return conn_fail(
		    c, TLS_REFUSE_BAD_CERT, "client certificate refused");
	return conn_fail(c, TLS_REFUSE_PROTOCOL, "handshake failed: %s",
	    e != 0 && ERR_reason_error_string(e) != NULL
		? ERR_reason_error_string(e)
		: "protocol error");
}

enum tls_step
tls_conn_handshake(struct tls_conn *c)
{
	X509 *peer;
	int rv, sslerr, saved_errno, r;

	if (c->state == TLS_CONN_OPEN)
		return TLS_STEP_DONE;
	if (c->state == TLS_CONN_FAILED)
		return TLS_STEP_FAILED;
	ERR_clear_error();
	errno = 0;
	rv = SSL_do_handshake(c->ssl);
	saved_errno = errno;
	if (rv != 1) {
		sslerr = SSL_get_error(c->ssl, rv);
		if (sslerr == SSL_ERROR_WANT_READ)
			return TLS_STEP_WANT_READ;
		if (sslerr == SSL_ERROR_WANT_WRITE)
			return TLS_STEP_WANT_WRITE;
		return handshake_failed(c, sslerr, saved_errno);
	}
	/* FAIL_IF_NO_PEER_CERT makes this impossible; check anyway. */
	if ((peer = SSL_get0_peer_certificate(c->ssl)) == NULL ||
	    SSL_get_verify_result(c->ssl) != X509_V_OK)
		return conn_fail(
		    c, TLS_REFUSE_BAD_CERT, "client certificate not verified");
	if ((r = identity_from_cert(peer, &c->id)) != 0)
		return conn_fail(c,
		    r == TS_ERR_ALLOC ? TLS_REFUSE_IO : TLS_REFUSE_BAD_IDENTITY,
		    "client certificate identity unusable: %s",
		    r == TS_ERR_ALLOC ? "out of memory"
				      : "bad, duplicate or missing CN/SAN");
	c->state = TLS_CONN_OPEN;
	return TLS_STEP_DONE;
}

enum tls_refusal
tls_conn_refusal(const struct tls_conn *c)
{
	return c->refusal;
}

const char *
tls_conn_reason(const struct tls_conn *c)
{
	return c->reason;
}

const struct tls_identity *
tls_conn_identity(const struct tls_conn *c)
{
	return c->state == TLS_CONN_OPEN ? c->id : NULL;
}

int
tls_conn_resumed(const struct tls_conn *c)
{
	return SSL_session_reused(c->ssl);
}

const char *
tls_conn_version(const struct tls_conn *c)
{
	return SSL_get_version(c->ssl);
}

/* Maps a failed SSL_read_ex/SSL_write_ex. */
static enum tls_step
io_failed(struct tls_conn *c, int rv, int saved_errno)
{
	unsigned long e;

	switch (SSL_get_error(c->ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		return TLS_STEP_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_STEP_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		ERR_clear_error();
		return TLS_STEP_EOF;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && saved_errno == 0) {
			ERR_clear_error();
			return TLS_STEP_EOF;
		}
		c->shut = 1; /* no close_notify after a fatal error */
		return conn_fail(c, TLS_REFUSE_IO, "%s",
		    saved_errno ? strerror(saved_errno) : "I/O error");
	default:
		c->shut = 1;
		e = ERR_peek_error();
		return conn_fail(c, TLS_REFUSE_PROTOCOL, "TLS error: %s",
		    e != 0 && ERR_reason_error_string(e) != NULL
			? ERR_reason_error_string(e)
			: "protocol error");
	}
}

enum tls_step
tls_conn_read(struct tls_conn *c, void *buf, size_t len, size_t *got)
{
	size_t n = 0;
	int rv, saved_errno;

	*got = 0;
	if (c->state != TLS_CONN_OPEN)
		return TLS_STEP_FAILED;
	ERR_clear_error();
	errno = 0;
	rv = SSL_read_ex(c->ssl, buf, len, &n);
	saved_errno = errno;
	if (rv == 1) {
		*got = n;
		return TLS_STEP_DONE;
	}
	return io_failed(c, rv, saved_errno);
}

enum tls_step
tls_conn_write(struct tls_conn *c, const void *buf, size_t len, size_t *put)
{
	size_t n = 0;
	int rv, saved_errno;

	*put = 0;
	if (c->state != TLS_CONN_OPEN)
		return TLS_STEP_FAILED;
	ERR_clear_error();
	errno = 0;
	rv = SSL_write_ex(c->ssl, buf, len, &n);
	saved_errno = errno;
	if (rv == 1) {
		*put = n;
		return TLS_STEP_DONE;
	}
	return io_failed(c, rv, saved_errno);
}

size_t
tls_conn_pending(const struct tls_conn *c)
{
	int n;

	if (c->state != TLS_CONN_OPEN)
		return 0;
	n = SSL_pending(c->ssl);
	return n > 0 ? (size_t)n : 0;
}

void
tls_conn_shutdown(struct tls_conn *c)
{
	if (c == NULL || c->shut || c->state != TLS_CONN_OPEN)
		return;
	c->shut = 1;
	ERR_clear_error();
	(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
}
