/*
 * conn.h - client connections: per-connection buffers with caps,
 * framing, timeouts and non-blocking I/O on the event loop, with requests
 * handed to the worker pool one at a time per connection.
 *
 * Limits (docs/internals/agent.md): a frame is at most TS_PROTO_MAX_FRAME;
 * the input buffer never holds more than one maximal frame; a connection
 * with a partial frame older than frame_ms, no traffic for idle_ms, or a
 * reply not drained for write_ms is closed.  A client that never reads
 * its reply stalls only itself: no new request of its is started.  At
 * max_conns, a new connection evicts the longest-idle one, or is refused
 * with FAILURE when every connection is busy.
 */
#ifndef TS_AGENT_CONN_H
#define TS_AGENT_CONN_H

#include <stddef.h>

#include "agent/peer.h"

#define CONN_MAX_DEFAULT      1024
#define CONN_IDLE_MS_DEFAULT  (300 * 1000)
#define CONN_FRAME_MS_DEFAULT (10 * 1000)
#define CONN_WRITE_MS_DEFAULT (10 * 1000)

struct loop;
struct dispatch_ctx;
struct worker_pool;
struct connmgr;

struct conn_limits {
	unsigned max_conns;
	unsigned idle_ms;
	unsigned frame_ms;
	unsigned write_ms;
};

/*
 * Transport operations of a connection: plain read/write for the Unix
 * socket; issue 5's TLS listener supplies its own (handshake included).
 * read/write return bytes, 0 on EOF (read), or -1 with errno (EAGAIN).
 */
struct conn_io {
	ssize_t (*read)(void *io, int fd, void *buf, size_t len);
	ssize_t (*write)(void *io, int fd, const void *buf, size_t len);
	void (*close)(void *io);
};

/* Returns a manager on loop (all borrowed), or NULL on OOM. */
struct connmgr *connmgr_new(struct loop *l, struct dispatch_ctx *ctx,
    struct worker_pool *pool, const struct conn_limits *lim);
/* Closes every connection and frees; NULL is fine. */
void connmgr_free(struct connmgr *m);
/* Changes the limits (reload); existing connections keep going. */
void connmgr_set_limits(struct connmgr *m, const struct conn_limits *lim);

/*
 * Takes over accepted fd (non-blocking) with its authenticated peer;
 * io NULL means plain read/write, io_arg is passed to io.  Returns 0 or
 * TS_ERR_CONN_REFUSED (full of busy connections: fd was answered with
 * FAILURE and closed).
 */
int connmgr_add(struct connmgr *m, int fd, const struct agent_peer *peer,
    const struct conn_io *io, void *io_arg);

/*
 * Takes over fd only to tell it why it is refused: queues FAILURE (code,
 * message), half-closes after writing it and discards input until the
 * peer closes or frame_ms passes, so the peer reads the reason rather
 * than a connection reset.  Returns 0 or TS_ERR_CONN_REFUSED.
 */
int connmgr_add_refused(struct connmgr *m, int fd,
    const struct agent_peer *peer, int code, const char *message);

/* Returns the number of open connections / requests in flight. */
unsigned connmgr_count(const struct connmgr *m);
unsigned connmgr_busy(const struct connmgr *m);
/*
 * Graceful stop: closes idle connections now; busy ones close once their
 * reply is written.  Nothing new is read.
 */
void connmgr_shutdown(struct connmgr *m);

#endif /* TS_AGENT_CONN_H */
