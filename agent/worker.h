/*
 * worker.h - the pool of threads that run dispatch_message(), so a slow
 * token operation (or a confirmation prompt) never blocks the event loop.
 *
 * The loop submits a job (one complete request from one connection) and
 * watches workers_fd(); when it is readable, workers_take_done() returns
 * the finished jobs with their replies.  A job's peer and connection are
 * owned by the loop and left untouched by it while the job runs.
 */
#ifndef TS_AGENT_WORKER_H
#define TS_AGENT_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WORKERS_DEFAULT 4
#define WORKERS_MAX	64

struct agent_peer;
struct dispatch_ctx;
struct wbuf;
struct worker_pool;

struct job {
	void *owner; /* the connection, opaque here */
	uint8_t *msg; /* type byte + body, malloc'd; freed by the worker */
	size_t len;
	struct agent_peer *peer; /* the owner's, borrowed */
	struct wbuf *reply; /* framed reply, filled by the worker */
	int r; /* dispatch_message() result */
	/*
	 * Optional: the worker writes the reply to fd itself (non-blocking,
	 * as much as the socket takes) and records it in sent; the loop
	 * writes the rest.  The owner keeps fd open until the job is back.
	 */
	ssize_t (*write)(void *io, int fd, const void *buf, size_t len);
	int fd;
	size_t sent;
	int answered; /* a deadline sent FAILURE: the reply is dropped */
	/*
	 * A notice: reply holds one PROGRESS or FAILURE frame for owner,
	 * to be written before the reply of owner's request, which is still
	 * out.  Not a request: no msg, not counted as pending.
	 */
	int notice;
	/*
	 * Optional, with write: the owner does not watch fd while the job is
	 * out, and the worker may serve the connection's next requests
	 * itself (worker.c).  Bytes it read and did not serve come back in
	 * extra (malloc'd, the owner frees), to go before anything else.
	 */
	int linger;
	/* the worker's: lingers left without a spin, and the next such run */
	unsigned spin_skip, spin_backoff;
	uint8_t *extra;
	size_t extra_len;
	struct job *next;
};

/*
 * Starts n threads dispatching into ctx.  Returns 0 and *poolp, or
 * TS_ERR_SYSTEM / TS_ERR_ALLOC.  Call with the signals the loop handles
 * blocked, so the threads inherit the mask.
 */
int workers_new(unsigned n, struct dispatch_ctx *ctx,
    struct worker_pool **poolp) __attribute__((warn_unused_result));
/* Finishes queued jobs, joins the threads, frees; NULL is fine. */
void workers_free(struct worker_pool *pool);
/* Returns the fd to watch for finished jobs. */
int workers_fd(const struct worker_pool *pool);
/* Queues j (the pool owns it until it comes back from take_done). */
void workers_submit(struct worker_pool *pool, struct job *j);
/* Returns the finished jobs as a list (oldest first), or NULL. */
struct job *workers_take_done(struct worker_pool *pool);
/* Lingering workers give their connections back; none linger again. */
void workers_stop_lingering(struct worker_pool *pool);
/* Returns the number of jobs queued or running. */
unsigned workers_pending(struct worker_pool *pool);

/*
 * Issue 6, called from inside a request a worker is dispatching: unless
 * worker_progress_disarm() comes first, a PROGRESS frame (kind, text) is
 * written to the client delay_ms from now, before the reply.  A plain
 * connection's frame is written by the watchdog thread itself; a TLS
 * session is written only by the loop, so its frame comes back through
 * the done list as a notice job, ahead of the request's own job.  The
 * worker disarms by itself when the request ends.
 */
void worker_progress_arm(unsigned delay_ms, uint32_t kind, const char *text);
void worker_progress_disarm(void);
/*
 * Issue 6 deadline (touch timeout): unless disarmed first, FAILURE (code,
 * text) is written to the client ms from now and the request's own reply,
 * when it comes, is dropped.  ms 0: none.  Sent as the PROGRESS frame is.
 */
void worker_deadline_arm(unsigned ms, int code, const char *text);
void worker_deadline_disarm(void);
/* Returns 1 when the current request was answered by its deadline. */
int worker_answered(void);
#endif /* TS_AGENT_WORKER_H */
