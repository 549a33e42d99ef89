/*
 * worker.c - fixed thread pool: one mutex, a FIFO of jobs to run and a
 * FIFO of jobs done; an eventfd wakes the loop when the done list goes
 * from empty to non-empty.
 */
#include <errno.h>
#include <pthread.h>
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

struct worker_pool {
	struct dispatch_ctx *ctx;
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
		else
			j->r = dispatch_message(
			    p->ctx, j->peer, j->msg, j->len, j->reply);
		freezero(j->msg, j->len);
		j->msg = NULL;
		if (j->r == 0 && j->write != NULL)
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
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		error_f("eventfd: %s", strerror(errno));
		free(p);
		return TS_ERR_SYSTEM;
	}
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
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
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
