/*
 * worker.c - fixed thread pool: one mutex, a FIFO of jobs to run and a
 * FIFO of jobs done; an eventfd wakes the loop when the done list goes
 * from empty to non-empty.
 *
 * A worker that has sent a plain connection's reply whole, with nothing
 * else queued, lingers on the connection for WORKER_LINGER_MS: a client
 * signing in a loop then wakes the worker directly, and the loop thread
 * (and two thread wake-ups per request) stays out of the way.  The worker
 * takes only the plain case, one whole frame of a sane length; anything
 * else (a partial frame, several frames, EOF) goes back to the loop with
 * the bytes read, as does the connection when other work is queued.
 *
 * The lingering worker first spins up to WORKER_SPIN_US on a non-blocking
 * read before it sleeps in poll(2): a client in a signing loop answers in
 * tens of microseconds, and on virtual CPUs waking a sleeping thread costs
 * more than that (bench/agent.sh: 1 client went from 0.33x to about 0.5x
 * of raw PKCS#11).  A spin that misses doubles the number of requests
 * that skip the spin (up to WORKER_SPIN_BACKOFF), so a client that does
 * not follow up quickly costs at most one wasted spin per that many.  A
 * kick ends the spin as it ends the poll.
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

#define WORKER_LINGER_MS    2
#define WORKER_SPIN_US	    100
#define WORKER_SPIN_BACKOFF 64
#define WORKER_READ_MAX	    65536

struct worker {
	struct worker_pool *pool;
	pthread_t thread;
	int kfd; /* eventfd: stop lingering, work is queued */
	/* set under the pool's mu; the spin reads it without (atomically) */
	int lingering;
};

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
	/*
	 * PROGRESS watchdog: pmu guards plist and every write it does; taken
	 * before mu when both are held (progress_post).
	 */
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
	unsigned idle; /* workers waiting for a job */
	int stop;
	int nolinger;
	int efd;
	unsigned nthreads;
	struct worker workers[WORKERS_MAX];
};

static __thread struct job *tl_job;
static __thread struct worker_pool *tl_pool;
static __thread struct progress tl_prog, tl_dead;

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t
mono_ms(void)
{
	return mono_us() / 1000;
}

/* Frames pg's PROGRESS (or deadline FAILURE) into frame; returns its length. */
static size_t
progress_frame(const struct progress *pg, uint8_t *frame, size_t size)
{
	size_t tlen = strlen(pg->text), len = 1 + 4 + 4 + tlen;

	if (size < 4 + len)
		fatal_f("PROGRESS frame buffer too small");
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
	return 4 + len;
}

/* Appends j to the done list and wakes the loop; with p->mu held. */
static void
done_push_locked(struct worker_pool *p, struct job *j)
{
	uint64_t one = 1;
	int wake = p->done_head == NULL;

	j->next = NULL;
	if (p->done_tail != NULL)
		p->done_tail->next = j;
	else
		p->done_head = j;
	p->done_tail = j;
	if (wake && write(p->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		error_f("eventfd: %s", strerror(errno));
}

/*
 * Hands a frame for a TLS connection (no write function: only the loop
 * writes its session) to the loop as a notice job.  Called with pmu held:
 * the worker's own job, pushed after its disarm takes pmu, comes later in
 * the done list, so the loop writes the notice first.
 */
static void
progress_post(
    struct worker_pool *p, struct job *owner, const uint8_t *frame, size_t len)
{
	struct job *n;

	/* a copy: frame is on the watchdog's stack */
	if ((n = calloc(1, sizeof(*n))) == NULL ||
	    (n->reply = wbuf_new(len)) == NULL ||
	    wbuf_put(n->reply, frame, len) != 0) {
		if (n != NULL)
			wbuf_free(n->reply);
		free(n);
		error_f("out of memory: PROGRESS notice dropped");
		return;
	}
	n->notice = 1;
	n->owner = owner->owner;
	n->peer = owner->peer;
	pthread_mutex_lock(&p->mu);
	done_push_locked(p, n);
	pthread_mutex_unlock(&p->mu);
}

/*
 * Sends one PROGRESS frame to the job's client; called with pmu held, so
 * the worker's reply (sent after disarm) never goes before it.  On a
 * plain socket it is written here: a full socket gets up to a second.
 */
static void
progress_send(struct worker_pool *p, struct progress *pg)
{
	struct job *j = pg->job;
	uint8_t frame[4 + 1 + 4 + 4 + sizeof(pg->text)];
	size_t len = progress_frame(pg, frame, sizeof(frame)), off = 0;
	struct pollfd pfd;
	ssize_t n;
	int tries = 0;

	if (j->write == NULL) {
		progress_post(p, j, frame, len);
		return;
	}
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
			progress_send(p, first);
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

	if (p == NULL || tl_job == NULL || !p->pstarted)
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

/* Runs one request of j and sends what the socket takes of the reply. */
static void
job_run(struct worker_pool *p, struct job *j)
{
	wbuf_free(j->reply);
	j->sent = 0;
	if ((j->reply = wbuf_new(TS_PROTO_MAX_FRAME + TS_PROTO_LEN_SIZE)) ==
	    NULL)
		j->r = TS_ERR_ALLOC;
	else {
		tl_job = j;
		j->r =
		    dispatch_message(p->ctx, j->peer, j->msg, j->len, j->reply);
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
}

/* Whether w may wait on j's connection for its next request. */
static int
linger_begin(struct worker *w, struct job *j)
{
	struct worker_pool *p = w->pool;
	int ok;

	if (!j->linger || j->r != 0 || j->answered || j->reply == NULL ||
	    j->sent < wbuf_len(j->reply))
		return 0;
	pthread_mutex_lock(&p->mu);
	ok = p->todo_head == NULL && !p->stop && !p->nolinger;
	__atomic_store_n(&w->lingering, ok, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&p->mu);
	return ok;
}

static void
linger_end(struct worker *w)
{
	uint64_t v;

	pthread_mutex_lock(&w->pool->mu);
	__atomic_store_n(&w->lingering, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&w->pool->mu);
	/* A kick that came as we stopped: not for the next linger. */
	if (read(w->kfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		error_f("eventfd: %s", strerror(errno));
}

/*
 * Reads what j's connection sends within WORKER_LINGER_MS: > 0 bytes, or
 * 0 for nothing, EOF (the loop reads it again), an error or a kick.
 */
static ssize_t
linger_read(struct worker *w, struct job *j, uint8_t *buf, size_t len)
{
	struct pollfd pfd[2];
	uint64_t start = mono_us(), deadline;
	ssize_t n = -1;
	int64_t left;

	if (j->spin_skip > 0)
		j->spin_skip--;
	else {
		errno = EAGAIN; /* kicked before the first read */
		while (__atomic_load_n(&w->lingering, __ATOMIC_RELAXED)) {
			n = read(j->fd, buf, len);
			if ((n >= 0 || (errno != EAGAIN && errno != EINTR)) ||
			    mono_us() - start >= WORKER_SPIN_US)
				break;
		}
		if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
			j->spin_backoff = 0;
			return n < 0 ? 0 : n;
		}
		j->spin_backoff = j->spin_backoff == 0 ? 1
		    : j->spin_backoff < WORKER_SPIN_BACKOFF
		    ? j->spin_backoff * 2
		    : WORKER_SPIN_BACKOFF;
		j->spin_skip = j->spin_backoff;
	}
	deadline = start / 1000 + WORKER_LINGER_MS;
	n = 0;
	while ((left = (int64_t)(deadline - mono_ms())) > 0) {
		memset(pfd, 0, sizeof(pfd));
		pfd[0].fd = j->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = w->kfd;
		pfd[1].events = POLLIN;
		if (poll(pfd, 2, (int)left) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents != 0)
			break; /* kicked: queued work comes first */
		if (pfd[0].revents == 0)
			continue;
		n = read(j->fd, buf, len);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
		n = 0;
	}
	return n < 0 ? 0 : n;
}

/*
 * Waits on j's connection for its next request.  Returns 1 with it in
 * j->msg, or 0 with j going back to the loop (any bytes read in j->extra,
 * for the loop's framing to judge).
 */
static int
job_linger(struct worker *w, struct job *j)
{
	uint8_t buf[WORKER_READ_MAX];
	uint32_t len;
	ssize_t n;
	int r = 0;

	if (!linger_begin(w, j))
		return 0;
	n = linger_read(w, j, buf, sizeof(buf));
	linger_end(w);
	if (n <= 0)
		return 0;
	len = 0;
	if (n >= TS_PROTO_LEN_SIZE)
		len = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
		    (uint32_t)buf[2] << 8 | buf[3];
	if (len > 0 && (size_t)n == TS_PROTO_LEN_SIZE + (size_t)len &&
	    (j->msg = malloc(len)) != NULL) {
		memcpy(j->msg, buf + TS_PROTO_LEN_SIZE, len);
		j->len = len;
		r = 1;
	} else if ((j->extra = malloc((size_t)n)) != NULL) {
		memcpy(j->extra, buf, (size_t)n);
		j->extra_len = (size_t)n;
	} else
		j->r = TS_ERR_ALLOC; /* bytes lost: the loop closes */
	/* The buffer may have held an UNLOCK passphrase. */
	explicit_bzero(buf, (size_t)n);
	return r;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_pool *p = w->pool;
	struct job *j;

	tl_pool = p;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->todo_head == NULL && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->cv, &p->mu);
			p->idle--;
		}
		if (p->todo_head == NULL)
			break;
		j = p->todo_head;
		p->todo_head = j->next;
		if (p->todo_head == NULL)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->mu);

		j->next = NULL;
		do
			job_run(p, j);
		while (job_linger(w, j));

		pthread_mutex_lock(&p->mu);
		done_push_locked(p, j);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* With mu held: sends lingering workers back (all, or one). */
static void
kick_lingering(struct worker_pool *p, int all)
{
	uint64_t one = 1;
	unsigned i;

	for (i = 0; i < p->nthreads; i++) {
		if (!p->workers[i].lingering)
			continue;
		__atomic_store_n(&p->workers[i].lingering, 0, __ATOMIC_RELAXED);
		if (write(p->workers[i].kfd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			error_f("eventfd: %s", strerror(errno));
		if (!all)
			return;
	}
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
		p->workers[i].pool = p;
		if ((p->workers[i].kfd =
			    eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
			error_f("eventfd: %s", strerror(errno));
			break;
		}
		if ((e = pthread_create(&p->workers[i].thread, NULL,
			 worker_main, &p->workers[i])) != 0) {
			error_f("pthread_create: %s", strerror(e));
			close(p->workers[i].kfd);
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
	kick_lingering(p, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++) {
		pthread_join(p->workers[i].thread, NULL);
		close(p->workers[i].kfd);
	}
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
		freezero(j->extra, j->extra_len);
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
	if (p->idle == 0)
		kick_lingering(p, 0);
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
		if (!j->notice)
			p->pending--;
	pthread_mutex_unlock(&p->mu);
	return list;
}

void
workers_stop_lingering(struct worker_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->nolinger = 1;
	kick_lingering(p, 1);
	pthread_mutex_unlock(&p->mu);
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
