/*
 * tls_client.h - the client side of the agent's mutual-TLS transport
 * (issue 5).
 *
 * A target is "tls://HOST:PORT" (HOST a name, an IPv4 address or an IPv6
 * address in brackets), or several of them separated by commas: each
 * resolved address of each target is tried in order until one completes
 * the handshake.  The server certificate must chain to the CA file and
 * match the host (IP SAN for a literal address, DNS SAN otherwise).
 *
 * Credentials: explicit options first, then the environment
 * (TOKENSIGN_TLS_CERT, TOKENSIGN_TLS_KEY, TOKENSIGN_TLS_CA), then the
 * client config file (TOKENSIGN_TLS_CONFIG or ~/.config/tokensign/tls.conf:
 * "cert = F", "key = F", "ca = F" lines).
 *
 * The connection is blocking with a per-operation timeout; it carries the
 * agent's framed protocol unchanged.  tls_client_call_retry() resends a
 * request once over a fresh connection when the old one turned out dead.
 */
#ifndef TS_CLIENT_TLS_CLIENT_H
#define TS_CLIENT_TLS_CLIENT_H

#include <stddef.h>

struct tls_client;

#define TLS_CLIENT_DEFAULT_TIMEOUT_MS 30000
#define TLS_CLIENT_MAX_TARGETS	      16

struct tls_client_opts {
	const char *cert_file; /* client certificate (chain), PEM */
	const char *key_file; /* client key, PEM */
	const char *ca_file; /* trust anchors for the server, PEM */
	int allow_tls12;
	int timeout_ms; /* connect, handshake and each read/write; 0=default */
};

/*
 * Fills unset members of opts from the environment and the config file;
 * strings are allocated into *store (free with tls_client_opts_cleanup).
 * Returns 0, or TS_ERR_CONFIG naming what is missing or unreadable.
 */
struct tls_client_opts_store {
	char *cert, *key, *ca;
};
int tls_client_opts_resolve(struct tls_client_opts *opts,
    struct tls_client_opts_store *store) __attribute__((warn_unused_result));
void tls_client_opts_cleanup(struct tls_client_opts_store *store);

/* Returns 1 when s names a TLS target ("tls://..."). */
int tls_client_is_target(const char *s);

/*
 * Loads the credentials and parses the target list; returns 0 and a
 * not-yet-connected client in *out, or TS_ERR_CONFIG / TS_ERR_INVALID_ARG /
 * TS_ERR_TLS.  opts strings are read during the call only.
 */
int tls_client_new(const char *targets, const struct tls_client_opts *opts,
    struct tls_client **out) __attribute__((warn_unused_result));
/* Closes and frees.  NULL is fine. */
void tls_client_free(struct tls_client *c);

/*
 * Connects (if not connected) trying every address in order; returns 0,
 * or TS_ERR_AGENT_CONNECT / TS_ERR_TLS_PEER (server cert refused) /
 * TS_ERR_TLS with the last reason logged.
 */
int tls_client_connect(struct tls_client *c)
    __attribute__((warn_unused_result));
/* Closes the connection (the client can connect again). */
void tls_client_close(struct tls_client *c);
/* Returns "host:port" of the connected address, or NULL. */
const char *tls_client_peer(const struct tls_client *c);
/* Returns 1 when the last connection resumed a TLS session. */
int tls_client_resumed(const struct tls_client *c);

/* Writes all of buf; returns 0, TS_ERR_AGENT_CLOSED or TS_ERR_TIMEOUT. */
int tls_client_write(struct tls_client *c, const void *buf, size_t len)
    __attribute__((warn_unused_result));
/* Reads exactly len bytes; returns 0, TS_ERR_AGENT_CLOSED, TS_ERR_TIMEOUT. */
int tls_client_read(struct tls_client *c, void *buf, size_t len)
    __attribute__((warn_unused_result));

/*
 * Sends one request framed as on the Unix socket (the u32 big-endian length
 * is prepended here: req is the message itself, type byte first) and reads
 * one framed reply of at most max_reply bytes into a malloc'd *reply
 * (*reply_len bytes, without the length prefix).  When the connection
 * proves dead (closed, reset) before any reply byte arrived, reconnects and
 * retries exactly once.  Returns 0 or the error of the last attempt;
 * certificate refusals (TS_ERR_TLS_PEER) and timeouts are not retried.
 *
 * WARNING: retrying resends the request: only use it for requests that are
 * safe to repeat (signing is: the agent signs the same bytes again).
 */
int tls_client_call_retry(struct tls_client *c, const void *req, size_t req_len,
    size_t max_reply, unsigned char **reply, size_t *reply_len)
    __attribute__((warn_unused_result));

/* Sleeps 100-200 ms (jittered): the pause before the one retry. */
void tls_client_retry_pause(void);

#endif /* TS_CLIENT_TLS_CLIENT_H */
