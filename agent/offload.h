/*
 * offload.h - a few threads that run blocking calls for the event loop.
 *
 * offload_submit(o, run, done, arg) runs run(arg) on one of the threads and
 * then done(arg) on the loop's thread (an eventfd the loop watches wakes
 * it).  Tasks start in submission order; done callbacks come in the order
 * the tasks finish.  listen_tls.c uses it for TLS handshakes whose server
 * key is on a token: a token that is slow to sign (a network HSM's round
 * trip, a queue) then holds one handshake, not every connection.
 *
 * The owner keeps arg alive until done(arg) and does not touch what run()
 * uses meanwhile.  Every function here is for the loop's thread.
 */
#ifndef TS_AGENT_OFFLOAD_H
#define TS_AGENT_OFFLOAD_H

struct loop;
struct offload;

#define OFFLOAD_THREADS_MAX 16

typedef void (*offload_fn)(void *arg);

/*
 * Starts nthreads (1..OFFLOAD_THREADS_MAX) threads and watches their
 * eventfd on l.  Call with the signals the loop handles blocked, so the
 * threads inherit the mask.  Returns NULL on failure (logged).
 */
struct offload *offload_new(struct loop *l, unsigned nthreads);
/* Queues a task.  Returns 0, or TS_ERR_ALLOC (nothing queued). */
int offload_submit(struct offload *o, offload_fn run, offload_fn done,
    void *arg) __attribute__((warn_unused_result));
/* Returns the number of tasks submitted whose done has not been called. */
unsigned offload_pending(const struct offload *o);
/*
 * Returns the number of tasks whose run() has not returned yet (queued or
 * running); any thread may ask.
 */
unsigned offload_running(struct offload *o);
/*
 * Runs every queued task to its end, calls the done callbacks still due
 * (here, on the caller's thread), joins the threads and frees.  NULL is
 * fine.  A run() that never returns (a hung module) keeps this waiting,
 * as it keeps the worker pool's.
 */
void offload_free(struct offload *o);

#endif /* TS_AGENT_OFFLOAD_H */
