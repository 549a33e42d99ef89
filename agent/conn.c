/*
 * conn.c - connections on the event loop.
 *
 * Each connection is in one of these situations, checked in this order:
 *   dead      fd closed while a job ran; freed when the job comes back
 *   busy      one request at a worker, which may send the reply itself
 *             and, on a plain socket, serve the next requests too: the
 *             loop watches only for hangup until the job is back, and
 *             for writing while a notice (PROGRESS, or a deadline's
 *             FAILURE, handed over for a TLS session) is not all out
 *   draining  a fatal framing error was answered; input is discarded
 *             until EOF so the peer reads our FAILURE instead of a reset
 *   writing   reply bytes pending; nothing read until they are gone
 *   reading   waiting for (the rest of) a frame
 * Only the loop thread touches a struct conn.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/conn.h"
#include "agent/dispatch.h"
#include "agent/loop.h"
#include "agent/worker.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "common/wbuf.h"

#define CONN_READ_CHUNK	  65536
#define CONN_SWEEP_MS	  250
#define CONN_INBUF_MAX	  (TS_PROTO_LEN_SIZE + TS_PROTO_MAX_FRAME)
#define CONN_OUTBUF_MAX	  (TS_PROTO_LEN_SIZE + TS_PROTO_MAX_FRAME)
#define CONN_SHRINK_ABOVE 16384

struct conn {
	struct connmgr *m;
	int fd;
	struct agent_peer peer;
	struct wbuf *in;
	struct wbuf *out;
	const struct conn_io *io;
	void *io_arg;
	int busy;
	int in_use; /* a handler on the stack still uses c: free later */
	int dead;
	int draining;
	size_t big; /* largest frame seen since the buffer was new */
	uint64_t last_activity;
	uint64_t frame_start; /* first byte of an incomplete frame */
	uint64_t write_start; /* reply queued and not yet drained */
	struct conn *prev, *next;
};

struct connmgr {
	struct loop *loop;
	struct dispatch_ctx *ctx;
	struct worker_pool *pool;
	struct conn_limits lim;
	struct conn *head;
	unsigned count;
	unsigned busy;
	int shutting_down;
	int sweep_timer;
	int pool_fd;
	uint8_t rbuf[CONN_READ_CHUNK];
};

static ssize_t
plain_read(void *io, int fd, void *buf, size_t len)
{
	(void)io;
	return read(fd, buf, len);
}

static ssize_t
plain_write(void *io, int fd, const void *buf, size_t len)
{
	(void)io;
	return send(fd, buf, len, MSG_NOSIGNAL);
}

static const struct conn_io plain_io = { plain_read, plain_write, NULL };

static void conn_event(struct loop *l, int fd, int rev, void *arg);
static void conn_process(struct conn *c);

static void
conn_report(struct connmgr *m)
{
	dispatch_set_connections(m->ctx, m->count);
}

static void
conn_free(struct conn *c)
{
	struct connmgr *m = c->m;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		m->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	m->count--;
	if (c->fd >= 0)
		close(c->fd); /* kept open while a worker could write to it */
	wbuf_free(c->in);
	wbuf_free(c->out);
	free(c);
	conn_report(m);
}

/* Closes the fd; frees c unless a worker still holds its request. */
static void
conn_close(struct conn *c, const char *why)
{
	if (!c->dead) {
		debug_f("fd %d uid %u: %s", c->fd, (unsigned)c->peer.uid, why);
		loop_del_fd(c->m->loop, c->fd);
		if (c->io->close != NULL)
			c->io->close(c->io_arg);
		if (c->busy)
			/*
			 * A worker may still write the reply to this fd: keep
			 * the number (no reuse by accept) but end the stream;
			 * conn_free() closes it.
			 */
			(void)shutdown(c->fd, SHUT_RDWR);
		else {
			close(c->fd);
			c->fd = -1;
		}
		c->dead = 1;
	}
	if (!c->busy && !c->in_use)
		conn_free(c);
}

/* Ends a handler's use of c; frees it if it was closed meanwhile. */
static void
conn_release(struct conn *c)
{
	if (--c->in_use == 0 && c->dead && !c->busy)
		conn_free(c);
}

static void
conn_set_events(struct conn *c)
{
	int ev = 0;

	if (c->dead)
		return;
	if (c->busy)
		/* the worker may be reading it; poll still says HUP */
		ev = wbuf_len(c->out) > 0 ? LOOP_WRITE : 0;
	else if (wbuf_len(c->out) > 0)
		ev = LOOP_WRITE;
	else if (!c->m->shutting_down || c->draining)
		ev = LOOP_READ;
	loop_set_events(c->m->loop, c->fd, ev);
}

/* Writes what it can; returns -1 when c was closed. */
static int
conn_flush(struct conn *c)
{
	ssize_t n;

	while (wbuf_len(c->out) > 0) {
		n = c->io->write(
		    c->io_arg, c->fd, wbuf_ptr(c->out), wbuf_len(c->out));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (n <= 0) {
			conn_close(c, "write failed");
			return -1;
		}
		if (wbuf_consume(c->out, (size_t)n) != 0)
			fatal_f("consume");
		c->last_activity = loop_now_ms();
	}
	if (wbuf_len(c->out) > 0) {
		if (c->write_start == 0)
			c->write_start = loop_now_ms();
		return 0;
	}
	c->write_start = 0;
	if (c->draining) {
		/* Our FAILURE is out: half-close so the peer sees EOF. */
		(void)shutdown(c->fd, SHUT_WR);
	} else if (c->m->shutting_down && !c->busy) {
		conn_close(c, "agent stopping");
		return -1;
	}
	return 0;
}

/* Answers a framing error the stream cannot recover from. */
static void
conn_fatal(struct conn *c, int code, const char *msg)
{
	verbose_f(
	    "uid %u pid %d: %s", (unsigned)c->peer.uid, (int)c->peer.pid, msg);
	wbuf_reset(c->in);
	if (dispatch_failure(c->out, code, msg) != 0) {
		conn_close(c, "cannot queue failure");
		return;
	}
	c->draining = 1;
	c->frame_start = loop_now_ms();
	if (conn_flush(c) == 0)
		conn_set_events(c);
}

static void
conn_process(struct conn *c)
{
	struct job *j;
	uint32_t len;

	if (c->dead || c->busy || c->draining || wbuf_len(c->out) > 0 ||
	    c->m->shutting_down)
		return;
	if (wbuf_len(c->in) < TS_PROTO_LEN_SIZE) {
		c->frame_start = wbuf_len(c->in) > 0
		    ? (c->frame_start ? c->frame_start : loop_now_ms())
		    : 0;
		return;
	}
	if (wbuf_peek_u32(c->in, 0, &len) != 0)
		fatal_f("peek");
	if (len == 0) {
		conn_fatal(c, TS_ERR_WIRE_TRUNCATED,
		    "message truncated: zero-length frame");
		return;
	}
	if (len > TS_PROTO_MAX_FRAME) {
		conn_fatal(c, TS_ERR_WIRE_TOO_LONG,
		    "message or field too long: frame over 262144 bytes");
		return;
	}
	if (wbuf_len(c->in) - TS_PROTO_LEN_SIZE < len) {
		if (c->frame_start == 0)
			c->frame_start = loop_now_ms();
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL ||
	    (j->msg = malloc(len)) == NULL) {
		free(j);
		conn_close(c, "out of memory");
		return;
	}
	if (wbuf_consume(c->in, TS_PROTO_LEN_SIZE) != 0 ||
	    wbuf_get(c->in, j->msg, len) != 0)
		fatal_f("frame extraction");
	j->len = len;
	j->owner = c;
	j->peer = &c->peer;
	if (c->io == &plain_io) {
		/* The worker sends the reply itself: one hand-off less. */
		j->write = plain_write;
		j->fd = c->fd;
		/*
		 * The worker may serve the next request itself only if it
		 * is the next in the stream: not with frames still buffered
		 * here (a pipelining client).
		 */
		j->linger = !c->m->shutting_down && wbuf_len(c->in) == 0;
	}
	if (len > c->big)
		c->big = len;
	c->frame_start = wbuf_len(c->in) > 0 ? loop_now_ms() : 0;
	c->busy = 1;
	c->m->busy++;
	conn_set_events(c);
	workers_submit(c->m->pool, j);
}

static void
conn_read(struct conn *c)
{
	size_t room;
	ssize_t n;

	if (c->draining)
		room = sizeof(c->m->rbuf);
	else {
		room = CONN_INBUF_MAX - wbuf_len(c->in);
		if (room > sizeof(c->m->rbuf))
			room = sizeof(c->m->rbuf);
		if (room == 0)
			return; /* cannot happen: a full frame is processed */
	}
	n = c->io->read(c->io_arg, c->fd, c->m->rbuf, room);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c, n == 0 ? "closed by peer" : "read failed");
		return;
	}
	c->last_activity = loop_now_ms();
	if (c->draining)
		return;
	if (wbuf_put(c->in, c->m->rbuf, (size_t)n) != 0) {
		conn_close(c, "input buffer full");
		return;
	}
	conn_process(c);
}

static void
conn_event(struct loop *l, int fd, int rev, void *arg)
{
	struct conn *c = arg;

	(void)l;
	(void)fd;
	if (c->busy && (rev & LOOP_READ)) {
		/* Not watching input: hangup or error. */
		conn_close(c, "hangup during request");
		return;
	}
	c->in_use++;
	if ((rev & LOOP_WRITE) && wbuf_len(c->out) > 0) {
		if (conn_flush(c) == 0 && wbuf_len(c->out) == 0)
			conn_process(c);
	}
	if (!c->dead && !c->busy && (rev & LOOP_READ) && wbuf_len(c->out) == 0)
		conn_read(c);
	conn_set_events(c);
	conn_release(c);
}

/*
 * Queues b's bytes from offset skip behind what c->out holds, growing it
 * past its usual cap by what is queued; closes c and returns -1 on failure.
 */
static int
conn_append(struct conn *c, const struct wbuf *b, size_t skip)
{
	size_t len, need;

	if (skip > wbuf_len(b))
		fatal_f("sent more than the reply");
	len = wbuf_len(b) - skip;
	need = wbuf_len(c->out) + len;
	if ((need > wbuf_max_size(c->out) &&
		wbuf_set_max_size(c->out, need) != 0) ||
	    wbuf_put(c->out, wbuf_ptr(b) + skip, len) != 0) {
		conn_close(c, "cannot queue reply");
		return -1;
	}
	return 0;
}

/*
 * A PROGRESS notice (or a deadline's FAILURE) for a TLS connection whose
 * request is still at a worker: the loop writes it, as it writes every
 * byte of a TLS session.  The request's own reply comes later.
 */
static void
conn_notice(struct conn *c, const struct wbuf *frame)
{
	if (c->dead)
		return;
	if (conn_append(c, frame, 0) != 0)
		return;
	if (conn_flush(c) == 0)
		conn_set_events(c);
}

static void
jobs_done(struct loop *l, int fd, int rev, void *arg)
{
	struct connmgr *m = arg;
	struct job *j, *next;
	struct conn *c;
	struct wbuf *t;

	(void)l;
	(void)fd;
	(void)rev;
	for (j = workers_take_done(m->pool); j != NULL; j = next) {
		next = j->next;
		c = j->owner;
		c->in_use++;
		if (j->notice) {
			conn_notice(c, j->reply);
			goto release;
		}
		c->busy = 0;
		m->busy--;
		if (c->dead) {
			/* Peer gone: conn_release() below frees it. */
		} else if (j->r != 0) {
			error_fr(
			    j->r, "request from uid %u", (unsigned)c->peer.uid);
			conn_close(c, "request failed");
		} else if (j->extra_len > 0 &&
		    wbuf_put(c->in, j->extra, j->extra_len) != 0) {
			conn_close(c, "input buffer full");
		} else {
			if (j->extra_len > 0)
				c->last_activity = loop_now_ms();
			if (wbuf_len(c->out) > 0) {
				/* A notice still going out: the reply after. */
				if (conn_append(c, j->reply, j->sent) != 0)
					goto release;
			} else {
				/* Nothing queued: swap the reply in. */
				t = c->out;
				c->out = j->reply;
				j->reply = t;
				if (j->sent > 0 &&
				    wbuf_consume(c->out, j->sent) != 0)
					fatal_f("sent more than the reply");
			}
			if (j->sent > 0)
				c->last_activity = loop_now_ms();
			if (c->big > CONN_SHRINK_ABOVE &&
			    wbuf_len(c->in) == 0) {
				/* Give back a big frame's memory. */
				wbuf_free(c->in);
				if ((c->in = wbuf_new(CONN_INBUF_MAX)) == NULL)
					fatal_f("out of memory");
				c->big = 0;
			}
			if (conn_flush(c) == 0)
				conn_process(c);
			conn_set_events(c);
		}
release:
		conn_release(c);
		wbuf_free(j->reply);
		freezero(j->extra, j->extra_len);
		free(j);
	}
}

static void
conn_sweep(struct loop *l, void *arg)
{
	struct connmgr *m = arg;
	struct conn *c, *next;
	uint64_t now = loop_now_ms();

	(void)l;
	for (c = m->head; c != NULL; c = next) {
		next = c->next;
		if (c->dead || c->busy)
			continue;
		if (wbuf_len(c->out) > 0) {
			if (now - c->write_start > m->lim.write_ms)
				conn_close(c, "reply not read in time");
		} else if (c->draining) {
			if (now - c->frame_start > m->lim.frame_ms)
				conn_close(c, "drain timeout");
		} else if (c->frame_start != 0) {
			if (now - c->frame_start > m->lim.frame_ms)
				conn_close(c, "partial frame timeout");
		} else if (now - c->last_activity > m->lim.idle_ms)
			conn_close(c, "idle timeout");
	}
}

struct connmgr *
connmgr_new(struct loop *l, struct dispatch_ctx *ctx, struct worker_pool *pool,
    const struct conn_limits *lim)
{
	struct connmgr *m;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->loop = l;
	m->ctx = ctx;
	m->pool = pool;
	m->pool_fd = workers_fd(pool);
	connmgr_set_limits(m, lim);
	if (loop_add_fd(l, workers_fd(pool), LOOP_READ, jobs_done, m) != 0 ||
	    (m->sweep_timer =
		    loop_add_timer(l, CONN_SWEEP_MS, 1, conn_sweep, m)) < 0) {
		loop_del_fd(l, workers_fd(pool));
		free(m);
		return NULL;
	}
	return m;
}

void
connmgr_set_limits(struct connmgr *m, const struct conn_limits *lim)
{
	m->lim = *lim;
	if (m->lim.max_conns == 0)
		m->lim.max_conns = CONN_MAX_DEFAULT;
	if (m->lim.idle_ms == 0)
		m->lim.idle_ms = CONN_IDLE_MS_DEFAULT;
	if (m->lim.frame_ms == 0)
		m->lim.frame_ms = CONN_FRAME_MS_DEFAULT;
	if (m->lim.write_ms == 0)
		m->lim.write_ms = CONN_WRITE_MS_DEFAULT;
}

void
connmgr_free(struct connmgr *m)
{
	struct conn *c, *next;

	if (m == NULL)
		return;
	for (c = m->head; c != NULL; c = next) {
		next = c->next;
		c->busy = 0; /* workers are stopped by now */
		conn_close(c, "agent exiting");
	}
	loop_del_timer(m->loop, m->sweep_timer);
	loop_del_fd(m->loop, m->pool_fd);
	free(m);
}

/* Returns the longest-idle connection that can be dropped, or NULL. */
static struct conn *
conn_victim(struct connmgr *m)
{
	struct conn *c, *best = NULL;

	for (c = m->head; c != NULL; c = c->next) {
		if (c->dead || c->busy || wbuf_len(c->out) > 0)
			continue;
		if (best == NULL || c->last_activity < best->last_activity)
			best = c;
	}
	return best;
}

int
connmgr_add(struct connmgr *m, int fd, const struct agent_peer *peer,
    const struct conn_io *io, void *io_arg)
{
	struct conn *c, *victim;
	struct wbuf *b;

	if (m->shutting_down) {
		close(fd);
		return TS_ERR_CONN_REFUSED;
	}
	if (m->count >= m->lim.max_conns) {
		if ((victim = conn_victim(m)) != NULL) {
			verbose_f("connection limit %u reached: dropping the "
				  "longest-idle connection (uid %u)",
			    m->lim.max_conns, (unsigned)victim->peer.uid);
			conn_close(victim, "evicted");
		} else {
			/* Best effort: a fresh socket buffer takes it. */
			if ((b = wbuf_new(1024)) != NULL &&
			    dispatch_failure(b, TS_ERR_CONN_REFUSED,
				"too many connections") == 0)
				(void)send(fd, wbuf_ptr(b), wbuf_len(b),
				    MSG_NOSIGNAL | MSG_DONTWAIT);
			wbuf_free(b);
			close(fd);
			return TS_ERR_CONN_REFUSED;
		}
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->in = wbuf_new(CONN_INBUF_MAX)) == NULL ||
	    (c->out = wbuf_new(CONN_OUTBUF_MAX)) == NULL) {
		if (c != NULL) {
			wbuf_free(c->in);
			free(c);
		}
		close(fd);
		return TS_ERR_ALLOC;
	}
	c->m = m;
	c->fd = fd;
	c->peer = *peer;
	c->io = io != NULL ? io : &plain_io;
	c->io_arg = io_arg;
	c->last_activity = loop_now_ms();
	if (loop_add_fd(m->loop, fd, LOOP_READ, conn_event, c) != 0) {
		wbuf_free(c->in);
		wbuf_free(c->out);
		free(c);
		close(fd);
		return TS_ERR_ALLOC;
	}
	c->next = m->head;
	if (m->head != NULL)
		m->head->prev = c;
	m->head = c;
	m->count++;
	conn_report(m);
	return 0;
}

int
connmgr_add_refused(struct connmgr *m, int fd, const struct agent_peer *peer,
    int code, const char *message)
{
	struct conn *c;
	int r;

	if ((r = connmgr_add(m, fd, peer, NULL, NULL)) != 0)
		return r;
	c = m->head; /* connmgr_add links the new connection first */
	c->in_use++;
	conn_fatal(c, code, message);
	conn_release(c);
	return 0;
}

unsigned
connmgr_count(const struct connmgr *m)
{
	return m->count;
}

unsigned
connmgr_busy(const struct connmgr *m)
{
	return m->busy;
}

void
connmgr_shutdown(struct connmgr *m)
{
	struct conn *c, *next;

	m->shutting_down = 1;
	workers_stop_lingering(m->pool);
	for (c = m->head; c != NULL; c = next) {
		next = c->next;
		if (c->dead || c->busy)
			continue;
		if (wbuf_len(c->out) == 0)
			conn_close(c, "agent stopping");
	}
}
