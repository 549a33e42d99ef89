/*
 * listen_tls.h - the agent's mutual-TLS listener (issue 5).
 *
 * Accepts TCP connections, runs each TLS handshake non-blocking on the
 * loop (or, with a server key on a token, on a few threads) (agent/tls.h)
 * with a deadline and a cap on handshakes in progress,
 * audits every refusal with its reason, checks the verified identity
 * against the policy (policy_check_peer) before a single request byte is
 * parsed, and then hands the connection to the connection manager with TLS
 * transport ops: the same framing, limits and timeouts as the Unix socket.
 */
#ifndef TS_AGENT_LISTEN_TLS_H
#define TS_AGENT_LISTEN_TLS_H

struct loop;
struct connmgr;
struct dispatch_ctx;
struct tls_server;
struct tls_listener;

#define TLS_LISTEN_HANDSHAKE_MS	 10000 /* a handshake must finish in this */
#define TLS_LISTEN_MAX_HANDSHAKE 256 /* handshakes in progress at once */

/*
 * Parses "tls://ADDR:PORT" (ADDR an IPv4 or [IPv6] literal, "localhost",
 * or "*" for every address) and creates a non-blocking listening socket.
 * Returns 0 and the fd in *fdp, or TS_ERR_INVALID_ARG / TS_ERR_SYSTEM with
 * the reason logged.
 */
int listen_tls_create(const char *spec, int *fdp)
    __attribute__((warn_unused_result));

/*
 * Returns a listener accepting on fd with TLS server srv (borrowed: it
 * must outlive the listener; tls_server_reload() on it affects new
 * connections only), or NULL on OOM.  Takes ownership of fd.  hs_threads
 * > 0 runs the handshake steps on that many threads (agent/offload.h), for
 * a server key on a token; 0 runs them on the loop.
 */
struct tls_listener *tls_listener_new(struct loop *l, struct connmgr *m,
    struct dispatch_ctx *ctx, int fd, struct tls_server *srv,
    unsigned hs_threads);
/*
 * Stops accepting and abandons handshakes in progress; one whose step is
 * on a thread is dropped when the step comes back.
 */
void tls_listener_stop(struct tls_listener *ls);
/*
 * Stops, waits for handshake steps still out, closes the socket and frees;
 * NULL is fine.
 */
void tls_listener_free(struct tls_listener *ls);
/*
 * Returns the number of handshake steps still running on the offload
 * threads (0 without them, or for NULL); after the loop has stopped too.
 */
unsigned tls_listener_running(struct tls_listener *ls);
/* Returns the number of handshakes in progress. */
unsigned tls_listener_handshakes(const struct tls_listener *ls);

#endif /* TS_AGENT_LISTEN_TLS_H */
