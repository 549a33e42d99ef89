/*
 * loop.h - a small poll(2) event loop with fd and timer events
 * (style.md section 6, shape of redis ae.h).  Single-threaded: every
 * function here is called from the loop's own thread only; other threads
 * wake it through a pipe or eventfd registered as an ordinary fd.
 */
#ifndef TS_AGENT_LOOP_H
#define TS_AGENT_LOOP_H

#include <stdint.h>

#define LOOP_READ  0x01
#define LOOP_WRITE 0x02

struct loop;

/* revents: LOOP_READ / LOOP_WRITE, plus LOOP_READ on error or hangup. */
typedef void (*loop_fd_cb)(struct loop *l, int fd, int revents, void *arg);
typedef void (*loop_timer_cb)(struct loop *l, void *arg);

/* Returns a new loop, or NULL on OOM. */
struct loop *loop_new(void);
/* Frees the loop (not the fds); NULL is fine. */
void loop_free(struct loop *l);

/* Watches fd for events (LOOP_READ|LOOP_WRITE, may be 0).  0 or TS_ERR_*. */
int loop_add_fd(struct loop *l, int fd, int events, loop_fd_cb cb, void *arg)
    __attribute__((warn_unused_result));
/* Changes the events watched on fd. */
void loop_set_events(struct loop *l, int fd, int events);
/* Stops watching fd (does not close it); safe inside a callback. */
void loop_del_fd(struct loop *l, int fd);
/* Returns the number of fds watched. */
int loop_fd_count(const struct loop *l);

/*
 * Calls cb every interval_ms (repeat != 0) or once.  Returns a timer id
 * (> 0) or a negative TS_ERR_* code.
 */
int loop_add_timer(struct loop *l, uint64_t interval_ms, int repeat,
    loop_timer_cb cb, void *arg);
/* Cancels a timer; unknown ids are ignored. */
void loop_del_timer(struct loop *l, int id);

/* Runs until loop_stop(); returns 0 or TS_ERR_SYSTEM (poll failed). */
int loop_run(struct loop *l);
/* Makes loop_run() return after the current iteration. */
void loop_stop(struct loop *l);

/* Returns a monotonic clock in milliseconds. */
uint64_t loop_now_ms(void);

#endif /* TS_AGENT_LOOP_H */
