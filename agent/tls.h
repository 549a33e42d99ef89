/*
 * tls.h - the agent's mutual-TLS server side (issue 5).
 *
 * One wrapper around OpenSSL's SSL_CTX/SSL so the listener and the event
 * loop never see OpenSSL types (style.md section 1).  A tls_server holds the
 * options and the current context; tls_server_reload() builds a new context
 * from the same files and swaps it in only when it loaded completely, so a
 * bad certificate or CRL on SIGHUP keeps the old one.  Every connection
 * holds a reference on the context it was accepted with, so established
 * connections survive reloads and even tls_server_free().
 *
 * Mutual authentication is not optional: the context always sets
 * SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT against the client CA
 * file.  TLS 1.3 only unless allow_tls12 is set.  With a CRL file the leaf
 * is checked against it (X509_V_FLAG_CRL_CHECK) and a missing or expired
 * CRL for the issuer fails closed.
 *
 * Handshakes are non-blocking: the caller owns a non-blocking fd, calls
 * tls_conn_handshake() whenever poll() says the fd is ready in the wanted
 * direction, and applies its own handshake deadline.
 *
 * WARNING: writes go through write(2) on the fd: the process must ignore
 * SIGPIPE (the agent does, style.md section 6).
 *
 * The server key is a PEM file, or a key on a PKCS#11 token
 * (tls_server_opts.token_key, built by agent/tlskey.h): then every
 * handshake signature is one token operation, made on the caller's (the
 * event loop's) thread.
 */
#ifndef TS_AGENT_TLS_H
#define TS_AGENT_TLS_H

#include <stddef.h>
#include <sys/types.h>

struct tls_server;
struct tls_conn;
struct tls_identity;
struct tlskey;

struct tls_server_opts {
	const char *cert_file; /* server certificate chain, PEM */
	const char *key_file; /* server private key, PEM (or the URI below) */
	/*
	 * When not NULL, the server key on a token (key_file is then only
	 * its name for messages).  Borrowed: must outlive the server and
	 * every connection (free it after tls_server_free and the conns).
	 */
	struct tlskey *token_key;
	const char *client_ca_file; /* trust anchors for client certs, PEM */
	const char *crl_file; /* optional CRL(s) of the client CA, PEM */
	int allow_tls12; /* also accept TLS 1.2 */
	int verify_depth; /* 0 = default (4) */
};

/* Why a handshake failed; stable names via tls_refusal_name(). */
enum tls_refusal {
	TLS_REFUSE_NONE = 0,
	TLS_REFUSE_NO_CERT, /* client sent no certificate */
	TLS_REFUSE_UNTRUSTED, /* chain does not lead to the client CA */
	TLS_REFUSE_EXPIRED, /* certificate expired */
	TLS_REFUSE_NOT_YET_VALID, /* certificate not yet valid */
	TLS_REFUSE_REVOKED, /* listed in the CRL */
	TLS_REFUSE_CRL, /* CRL missing/expired/unusable: fail closed */
	TLS_REFUSE_BAD_CERT, /* other verification failure */
	TLS_REFUSE_BAD_IDENTITY, /* CN/SAN unusable (NUL, control chars) */
	TLS_REFUSE_PROTOCOL, /* version, cipher or record-layer failure */
	TLS_REFUSE_EOF, /* peer went away mid-handshake */
	TLS_REFUSE_IO, /* socket error */
};

enum tls_step {
	TLS_STEP_DONE = 0,
	TLS_STEP_WANT_READ, /* poll for POLLIN, call again */
	TLS_STEP_WANT_WRITE, /* poll for POLLOUT, call again */
	TLS_STEP_FAILED, /* see tls_conn_refusal()/tls_conn_reason() */
	TLS_STEP_EOF, /* read/write only: peer closed cleanly */
};

/*
 * Loads cert, key, client CA and CRL; returns 0 and a new server in *out,
 * or TS_ERR_TLS/TS_ERR_CONFIG with the reason logged.  opts strings are
 * copied.
 */
int tls_server_new(const struct tls_server_opts *opts, struct tls_server **out)
    __attribute__((warn_unused_result));
/*
 * Re-reads every file and swaps in the new context; on error returns it and
 * keeps serving with the old context.  New connections use the new context;
 * established ones keep theirs.  Session tickets of the old context are not
 * accepted by the new one, so a CRL update cannot be bypassed by resumption.
 * Not thread-safe against tls_conn_new(): call from the loop thread.
 */
int tls_server_reload(struct tls_server *srv)
    __attribute__((warn_unused_result));
/* Drops the server's reference; live connections keep working.  NULL ok. */
void tls_server_free(struct tls_server *srv);
/* Returns how many times the context was (re)built, 1 after _new(). */
unsigned int tls_server_generation(const struct tls_server *srv);

/*
 * Wraps an accepted, non-blocking fd (the caller keeps owning and closing
 * it); returns 0 and a connection in the handshake state in *out.
 */
int tls_conn_new(struct tls_server *srv, int fd, struct tls_conn **out)
    __attribute__((warn_unused_result));
/* Frees the connection (no close_notify; see tls_conn_shutdown). NULL ok. */
void tls_conn_free(struct tls_conn *c);
/* Advances the handshake; never blocks. */
enum tls_step tls_conn_handshake(struct tls_conn *c);
/* After TLS_STEP_FAILED: the category and a short text for the audit log. */
enum tls_refusal tls_conn_refusal(const struct tls_conn *c);
/* Returns a static-lifetime-of-c string, never NULL ("" before failure). */
const char *tls_conn_reason(const struct tls_conn *c);
/* Returns a stable lower-case token, e.g. "expired", "no-cert". */
const char *tls_refusal_name(enum tls_refusal r);
/* After DONE: the verified peer identity, owned by c; NULL before. */
const struct tls_identity *tls_conn_identity(const struct tls_conn *c);
/* After DONE: 1 when the session was resumed. */
int tls_conn_resumed(const struct tls_conn *c);
/* After DONE: negotiated protocol name, e.g. "TLSv1.3". */
const char *tls_conn_version(const struct tls_conn *c);

/*
 * Reads up to len bytes; on TLS_STEP_DONE *got > 0.  WANT_READ/WANT_WRITE:
 * nothing read, poll and retry.  EOF: close_notify or clean close.  FAILED:
 * drop the connection.
 */
enum tls_step tls_conn_read(struct tls_conn *c, void *buf, size_t len,
    size_t *got) __attribute__((warn_unused_result));
/*
 * Writes up to len bytes (partial writes allowed); on DONE *put > 0.  After
 * WANT_*, retry with the same bytes (the buffer may move).
 */
enum tls_step tls_conn_write(struct tls_conn *c, const void *buf, size_t len,
    size_t *put) __attribute__((warn_unused_result));
/*
 * Returns the number of decrypted bytes buffered inside the connection:
 * poll() cannot see them, so the loop must drain them before sleeping.
 */
size_t tls_conn_pending(const struct tls_conn *c);
/* Sends close_notify once, best effort, without blocking. */
void tls_conn_shutdown(struct tls_conn *c);

/* Peer identity: all strings are NUL-free printable UTF-8, owned by id. */
/* Returns the subject commonName or NULL when the subject has none. */
const char *tls_identity_cn(const struct tls_identity *id);
/* Returns the subject as one RFC 2253 line. */
const char *tls_identity_subject(const struct tls_identity *id);
/* Returns the issuer as one RFC 2253 line. */
const char *tls_identity_issuer(const struct tls_identity *id);
/* Returns the certificate's SHA-256 fingerprint, lower-case hex. */
const char *tls_identity_fingerprint(const struct tls_identity *id);
/* Returns the serial number in hex. */
const char *tls_identity_serial(const struct tls_identity *id);
/* Returns the SAN URIs / DNS names (array of n borrowed strings). */
const char *const *tls_identity_uris(const struct tls_identity *id, size_t *n);
const char *const *tls_identity_dns(const struct tls_identity *id, size_t *n);
/*
 * Writes a compact one-line summary for logs ("cn=… uri=… dns=…") into buf;
 * returns 0 or TS_ERR_TOO_LARGE (still NUL-terminated, truncated).
 */
int tls_identity_describe(const struct tls_identity *id, char *buf, size_t len);

#endif /* TS_AGENT_TLS_H */
