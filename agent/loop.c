/*
 * loop.c - poll(2) event loop.  Watched fds live in a table indexed by fd
 * (fds are small integers and we cap connections), and the pollfd array
 * is rebuilt only when the set or the events changed.  Timers are a short
 * unsorted array: the agent has a handful of them.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/loop.h"
#include "common/err.h"
#include "common/log.h"

#define LOOP_MAX_TIMERS 32

struct loop_fd {
	int active;
	int events;
	loop_fd_cb cb;
	void *arg;
};

struct loop_timer {
	int id; /* 0: free slot */
	uint64_t interval_ms;
	uint64_t due_ms;
	int repeat;
	loop_timer_cb cb;
	void *arg;
};

struct loop {
	struct loop_fd *fds; /* indexed by fd */
	int nfds_alloc;
	int count;
	struct pollfd *pfd;
	int npfd_alloc;
	int dirty;
	struct loop_timer timers[LOOP_MAX_TIMERS];
	int next_timer_id;
	int stop;
};

uint64_t
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *
loop_new(void)
{
	return calloc(1, sizeof(struct loop));
}

void
loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	free(l->fds);
	free(l->pfd);
	free(l);
}

int
loop_add_fd(struct loop *l, int fd, int events, loop_fd_cb cb, void *arg)
{
	struct loop_fd *n;
	int nalloc;

	if (fd < 0 || cb == NULL)
		return TS_ERR_INVALID_ARG;
	if (fd >= l->nfds_alloc) {
		nalloc = fd < 64 ? 128 : fd * 2;
		if ((n = reallocarray(l->fds, (size_t)nalloc, sizeof(*n))) ==
		    NULL)
			return TS_ERR_ALLOC;
		memset(n + l->nfds_alloc, 0,
		    (size_t)(nalloc - l->nfds_alloc) * sizeof(*n));
		l->fds = n;
		l->nfds_alloc = nalloc;
	}
	if (l->fds[fd].active)
		return TS_ERR_EXISTS;
	l->fds[fd].active = 1;
	l->fds[fd].events = events;
	l->fds[fd].cb = cb;
	l->fds[fd].arg = arg;
	l->count++;
	l->dirty = 1;
	return 0;
}

void
loop_set_events(struct loop *l, int fd, int events)
{
	if (fd < 0 || fd >= l->nfds_alloc || !l->fds[fd].active)
		return;
	if (l->fds[fd].events != events) {
		l->fds[fd].events = events;
		l->dirty = 1;
	}
}

void
loop_del_fd(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds_alloc || !l->fds[fd].active)
		return;
	memset(&l->fds[fd], 0, sizeof(l->fds[fd]));
	l->count--;
	l->dirty = 1;
}

int
loop_fd_count(const struct loop *l)
{
	return l->count;
}

int
loop_add_timer(struct loop *l, uint64_t interval_ms, int repeat,
    loop_timer_cb cb, void *arg)
{
	int i;

	for (i = 0; i < LOOP_MAX_TIMERS; i++) {
		if (l->timers[i].id != 0)
			continue;
		if (++l->next_timer_id <= 0)
			l->next_timer_id = 1;
		l->timers[i].id = l->next_timer_id;
		l->timers[i].interval_ms = interval_ms;
		l->timers[i].due_ms = loop_now_ms() + interval_ms;
		l->timers[i].repeat = repeat;
		l->timers[i].cb = cb;
		l->timers[i].arg = arg;
		return l->timers[i].id;
	}
	return TS_ERR_TOO_LARGE;
}

void
loop_del_timer(struct loop *l, int id)
{
	int i;

	for (i = 0; i < LOOP_MAX_TIMERS; i++)
		if (l->timers[i].id == id && id != 0)
			memset(&l->timers[i], 0, sizeof(l->timers[i]));
}

void
loop_stop(struct loop *l)
{
	l->stop = 1;
}

static int
loop_rebuild(struct loop *l)
{
	struct pollfd *n;
	int fd, i = 0;

	if (l->count > l->npfd_alloc) {
		if ((n = reallocarray(
			 l->pfd, (size_t)l->count * 2, sizeof(*n))) == NULL)
			return TS_ERR_ALLOC;
		l->pfd = n;
		l->npfd_alloc = l->count * 2;
	}
	for (fd = 0; fd < l->nfds_alloc && i < l->count; fd++) {
		if (!l->fds[fd].active)
			continue;
		l->pfd[i].fd = fd;
		l->pfd[i].events =
		    (short)(((l->fds[fd].events & LOOP_READ) ? POLLIN : 0) |
			((l->fds[fd].events & LOOP_WRITE) ? POLLOUT : 0));
		l->pfd[i].revents = 0;
		i++;
	}
	l->dirty = 0;
	return i;
}

/* Runs due timers; returns the ms until the next one (-1: none). */
static int
loop_timers(struct loop *l)
{
	uint64_t now = loop_now_ms(), next = UINT64_MAX;
	struct loop_timer *t;
	int i;

	for (i = 0; i < LOOP_MAX_TIMERS; i++) {
		t = &l->timers[i];
		if (t->id == 0 || t->due_ms > now)
			continue;
		if (t->repeat)
			t->due_ms = now + t->interval_ms;
		else
			t->id = 0;
		t->cb(l, t->arg);
	}
	now = loop_now_ms();
	for (i = 0; i < LOOP_MAX_TIMERS; i++)
		if (l->timers[i].id != 0 && l->timers[i].due_ms < next)
			next = l->timers[i].due_ms;
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}

int
loop_run(struct loop *l)
{
	int i, n, npfd = 0, timeout, fd, rev;

	l->stop = 0;
	l->dirty = 1;
	while (!l->stop) {
		timeout = loop_timers(l);
		if (l->stop)
			break;
		if (l->dirty && (npfd = loop_rebuild(l)) < 0)
			return npfd;
		n = poll(l->pfd, (nfds_t)npfd, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			error_f("poll: %s", strerror(errno));
			return TS_ERR_SYSTEM;
		}
		for (i = 0; i < npfd && n > 0; i++) {
			if (l->pfd[i].revents == 0)
				continue;
			n--;
			fd = l->pfd[i].fd;
			rev = 0;
			if (l->pfd[i].revents & (POLLIN | POLLERR | POLLHUP))
				rev |= LOOP_READ;
			if (l->pfd[i].revents & POLLOUT)
				rev |= LOOP_WRITE;
			if (l->pfd[i].revents & POLLNVAL)
				rev |= LOOP_READ;
			/* A callback may have removed this fd meanwhile. */
			if (fd < l->nfds_alloc && l->fds[fd].active && rev)
				l->fds[fd].cb(l, fd, rev, l->fds[fd].arg);
		}
	}
	return 0;
}
