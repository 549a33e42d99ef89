/*
 * worker.c - fixed thread pool: one mutex, a FIFO of jobs to run and a
 * FIFO of jobs done; an eventfd wakes the loop when the done list goes
 * from empty to non-empty.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/dispatch.h"
#include "agent/worker.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/wbuf.h"
#include "common/secmem.h"

/* An armed PROGRESS notice (worker_progress_arm), on the worker's TLS. */
struct progress {
	struct job *job;
	uint64_t due_ms; /* CLOCK_MONOTONIC */
	int fail; /* a deadline: FAILURE (kind is the code), job answered */
	uint32_t kind;
	char text[256];
	int armed;
	struct progress *next;
};

struct worker_pool {
	struct dispatch_ctx *ctx;
	/* PROGRESS watchdog: pmu guards plist and every write it does */
	pthread_mutex_t pmu;
	pthread_cond_t pcv;
	struct progress *plist;
	uint64_t psleep_until; /* the watchdog's wake-up time while it waits */
	int pstop;
	int pstarted;
	pthread_t pthread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *todo_head, *todo_tail;
	struct job *done_head, *done_tail;
	unsigned pending;
	int stop;
	int efd;
	unsigned nthreads;
	pthread_t threads[WORKERS_MAX];
};

static __thread struct job *tl_job;
static __thread struct worker_pool *tl_pool;
static __thread struct progress tl_prog, tl_dead;

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Writes one PROGRESS frame to the job's socket; called with pmu held, so
 * the worker's reply (sent after disarm) never interleaves with it.  A
 * full socket gets up to a second.
 */
static void
progress_send(struct progress *pg)
{
	struct job *j = pg->job;
	uint8_t frame[4 + 1 + 4 + 4 + sizeof(pg->text)];
	size_t tlen = strlen(pg->text), len = 1 + 4 + 4 + tlen, off = 0;
	struct pollfd pfd;
	ssize_t n;
	int tries = 0;

	frame[0] = (uint8_t)(len >> 24);
	frame[1] = (uint8_t)(len >> 16);
	frame[2] = (uint8_t)(len >> 8);
	frame[3] = (uint8_t)len;
	frame[4] = pg->fail ? TS_MSG_FAILURE : TS_MSG_PROGRESS;
	frame[5] = (uint8_t)(pg->kind >> 24);
	frame[6] = (uint8_t)(pg->kind >> 16);
	frame[7] = (uint8_t)(pg->kind >> 8);
	frame[8] = (uint8_t)pg->kind;
	frame[9] = (uint8_t)(tlen >> 24);
	frame[10] = (uint8_t)(tlen >> 16);
	frame[11] = (uint8_t)(tlen >> 8);
	frame[12] = (uint8_t)tlen;
	memcpy(frame + 13, pg->text, tlen);
	len += 4;
	while (off < len && tries < 10) {
		n = j->write(NULL, j->fd, frame + off, len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			break;
		pfd.fd = j->fd;
		pfd.events = POLLOUT;
		(void)poll(&pfd, 1, 100);
		tries++;
	}
	if (off != 0 && off < len)
		error_f(
		    "PROGRESS notice cut short (%zu of %zu bytes)", off, len);
}

static void *
progress_main(void *arg)
{
	struct worker_pool *p = arg;
	struct progress *pg, **pp, *first;
	struct timespec ts;
	uint64_t now;

	pthread_mutex_lock(&p->pmu);
	while (!p->pstop) {
		first = NULL;
		for (pg = p->plist; pg != NULL; pg = pg->next)
			if (first == NULL || pg->due_ms < first->due_ms)
				first = pg;
		if (first == NULL) {
			p->psleep_until = UINT64_MAX;
			pthread_cond_wait(&p->pcv, &p->pmu);
			p->psleep_until = 0;
			continue;
		}
		now = mono_ms();
		if (now < first->due_ms) {
			ts.tv_sec = (time_t)(first->due_ms / 1000);
			ts.tv_nsec = (long)(first->due_ms % 1000) * 1000000L;
			p->psleep_until = first->due_ms;
			(void)pthread_cond_timedwait(&p->pcv, &p->pmu, &ts);
			p->psleep_until = 0;
			continue;
		}
		for (pp = &p->plist; *pp != first; pp = &(*pp)->next)
			;
		*pp = first->next;
		first->armed = 0;
		if (!first->job->answered)
			progress_send(first);
		if (first->fail)
			first->job->answered = 1;
	}
	pthread_mutex_unlock(&p->pmu);
	return NULL;
}

static void
timer_disarm(struct progress *pg)
{
	struct worker_pool *p = tl_pool;
	struct progress **pp;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->pmu);
	if (pg->armed) {
		for (pp = &p->plist; *pp != NULL && *pp != pg;
		     pp = &(*pp)->next)
			;
		if (*pp != NULL)
			*pp = pg->next;
		pg->armed = 0;
	}
	pthread_mutex_unlock(&p->pmu);
}

static void
timer_arm(struct progress *pg, int fail, unsigned delay_ms, uint32_t kind,
    const char *text)
{
	struct worker_pool *p = tl_pool;

	if (p == NULL || tl_job == NULL || tl_job->write == NULL ||
	    !p->pstarted)
		return;
	timer_disarm(pg);
	pthread_mutex_lock(&p->pmu);
	pg->fail = fail;
	pg->job = tl_job;
	pg->due_ms = mono_ms() + delay_ms;
	pg->kind = kind;
	snprintf(pg->text, sizeof(pg->text), "%s", text);
	pg->armed = 1;
	pg->next = p->plist;
	p->plist = pg;
	/*
	 * Every signature arms a notice that almost never fires: wake the
	 * watchdog only when it would otherwise sleep past this one (a
	 * thread wake-up per request costs more than the rest of the
	 * bookkeeping).
	 */
	if (pg->due_ms < p->psleep_until)
		pthread_cond_signal(&p->pcv);
	pthread_mutex_unlock(&p->pmu);
}

void
worker_progress_arm(unsigned delay_ms, uint32_t kind, const char *text)
{
	timer_arm(&tl_prog, 0, delay_ms, kind, text);
}

void
worker_progress_disarm(void)
{
	timer_disarm(&tl_prog);
}

void
worker_deadline_arm(unsigned ms, int code, const char *text)
{
	if (ms > 0)
		timer_arm(
		    &tl_dead, 1, ms, (uint32_t)(code < 0 ? -code : code), text);
}

void
worker_deadline_disarm(void)
{
	timer_disarm(&tl_dead);
}

int
worker_answered(void)
{
	return tl_job != NULL && tl_job->answered;
}

/* Sends what the socket takes now; the loop writes any rest. */
static void
worker_send(struct job *j)
{
	const uint8_t *p = wbuf_ptr(j->reply);
	size_t len = wbuf_len(j->reply);
	ssize_t n;

	while (j->sent < len) {
		n = j->write(NULL, j->fd, p + j->sent, len - j->sent);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* EAGAIN or a gone peer: the loop sees to it */
		j->sent += (size_t)n;
	}
}

static void *
worker_main(void *arg)
{
	struct worker_pool *p = arg;
	struct job *j;
	uint64_t one = 1;
	int wake;

	tl_pool = p;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->todo_head == NULL && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->todo_head == NULL)
			break;
		j = p->todo_head;
		p->todo_head = j->next;
		if (p->todo_head == NULL)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->mu);

		j->next = NULL;
		if ((j->reply = wbuf_new(
			 TS_PROTO_MAX_FRAME + TS_PROTO_LEN_SIZE)) == NULL)
			j->r = TS_ERR_ALLOC;
		else {
			tl_job = j;
			j->r = dispatch_message(
			    p->ctx, j->peer, j->msg, j->len, j->reply);
			worker_progress_disarm();
			worker_deadline_disarm();
			tl_job = NULL;
		}
		freezero(j->msg, j->len);
		j->msg = NULL;
		/* answered by a deadline: the late reply is dropped */
		if (j->answered && j->reply != NULL)
			j->sent = wbuf_len(j->reply);
		else if (j->r == 0 && j->write != NULL)
			worker_send(j);

		pthread_mutex_lock(&p->mu);
		wake = p->done_head == NULL;
		if (p->done_tail != NULL)
			p->done_tail->next = j;
		else
			p->done_head = j;
		p->done_tail = j;
		if (wake && write(p->efd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			error_f("eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int
workers_new(unsigned n, struct dispatch_ctx *ctx, struct worker_pool **poolp)
{
	struct worker_pool *p;
	unsigned i;
	int e;

	*poolp = NULL;
	if (n == 0 || n > WORKERS_MAX)
		return TS_ERR_INVALID_ARG;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return TS_ERR_ALLOC;
	p->ctx = ctx;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_mutex_init(&p->pmu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->pcv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		error_f("eventfd: %s", strerror(errno));
		free(p);
		return TS_ERR_SYSTEM;
	}
	if ((e = pthread_create(&p->pthread, NULL, progress_main, p)) == 0)
		p->pstarted = 1;
	else
		error_f("pthread_create (progress): %s", strerror(e));
	for (i = 0; i < n; i++) {
		if ((e = pthread_create(
			 &p->threads[i], NULL, worker_main, p)) != 0) {
			error_f("pthread_create: %s", strerror(e));
			break;
		}
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		workers_free(p);
		return TS_ERR_SYSTEM;
	}
	*poolp = p;
	return 0;
}

void
workers_free(struct worker_pool *p)
{
	struct job *j;
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	if (p->pstarted) {
		pthread_mutex_lock(&p->pmu);
		p->pstop = 1;
		pthread_cond_broadcast(&p->pcv);
		pthread_mutex_unlock(&p->pmu);
		pthread_join(p->pthread, NULL);
	}
	pthread_mutex_destroy(&p->pmu);
	pthread_cond_destroy(&p->pcv);
	while ((j = p->done_head) != NULL) {
		p->done_head = j->next;
		wbuf_free(j->reply);
		free(j);
	}
	close(p->efd);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

int
workers_fd(const struct worker_pool *p)
{
	return p->efd;
}

void
workers_submit(struct worker_pool *p, struct job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->todo_tail != NULL)
		p->todo_tail->next = j;
	else
		p->todo_head = j;
	p->todo_tail = j;
	p->pending++;
	pthread_mutex_unlock(&p->mu);
	/* After unlocking: the woken worker does not block on mu at once. */
	pthread_cond_signal(&p->cv);
}

struct job *
workers_take_done(struct worker_pool *p)
{
	struct job *list, *j;
	uint64_t v;

	/* Drain the eventfd first: a job finishing now re-arms it. */
	if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		error_f("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&p->mu);
	list = p->done_head;
	p->done_head = p->done_tail = NULL;
	for (j = list; j != NULL; j = j->next)
		p->pending--;
	pthread_mutex_unlock(&p->mu);
	return list;
}

unsigned
workers_pending(struct worker_pool *p)
{
	unsigned n;

	pthread_mutex_lock(&p->mu);
	n = p->pending;
	pthread_mutex_unlock(&p->mu);
	return n;
}
