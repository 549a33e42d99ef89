/*
 * offload.c - threads that run blocking calls for the loop: one mutex, a
 * FIFO of tasks to run, a FIFO of tasks done, an eventfd that wakes the
 * loop when the done list goes from empty to non-empty (as worker.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/loop.h"
#include "agent/offload.h"
#include "common/err.h"
#include "common/log.h"

struct task {
	offload_fn run, done;
	void *arg;
	struct task *next;
};

struct offload {
	struct loop *loop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct task *todo_head, *todo_tail;
	struct task *done_head, *done_tail;
	unsigned pending; /* submitted, done not called yet */
	unsigned running; /* submitted, run() not returned yet (mu) */
	int stop;
	int efd;
	unsigned nthreads;
	pthread_t threads[OFFLOAD_THREADS_MAX];
};

static void
push(struct task **head, struct task **tail, struct task *t)
{
	t->next = NULL;
	if (*tail != NULL)
		(*tail)->next = t;
	else
		*head = t;
	*tail = t;
}

static void *
offload_main(void *arg)
{
	struct offload *o = arg;
	struct task *t;
	uint64_t one = 1;
	int wake;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		while (o->todo_head == NULL && !o->stop)
			pthread_cond_wait(&o->cv, &o->mu);
		/* on stop, the queue is still run to its end */
		if ((t = o->todo_head) == NULL)
			break;
		if ((o->todo_head = t->next) == NULL)
			o->todo_tail = NULL;
		pthread_mutex_unlock(&o->mu);

		t->run(t->arg);

		pthread_mutex_lock(&o->mu);
		o->running--;
		wake = o->done_head == NULL;
		push(&o->done_head, &o->done_tail, t);
		if (wake && write(o->efd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			error_f("eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* Calls the done callbacks of the finished tasks; the loop's thread. */
static void
offload_reap(struct offload *o)
{
	struct task *list, *t;
	uint64_t v;

	if (read(o->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		error_f("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&o->mu);
	list = o->done_head;
	o->done_head = o->done_tail = NULL;
	pthread_mutex_unlock(&o->mu);
	while ((t = list) != NULL) {
		list = t->next;
		o->pending--;
		t->done(t->arg);
		free(t);
	}
}

static void
offload_event(struct loop *l, int fd, int rev, void *arg)
{
	(void)l;
	(void)fd;
	(void)rev;
	offload_reap(arg);
}

struct offload *
offload_new(struct loop *l, unsigned nthreads)
{
	struct offload *o;
	unsigned i;
	int e;

	if (nthreads == 0 || nthreads > OFFLOAD_THREADS_MAX ||
	    (o = calloc(1, sizeof(*o))) == NULL)
		return NULL;
	o->loop = l;
	if ((o->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		error_f("eventfd: %s", strerror(errno));
		free(o);
		return NULL;
	}
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	if (loop_add_fd(l, o->efd, LOOP_READ, offload_event, o) != 0) {
		offload_free(o);
		return NULL;
	}
	for (i = 0; i < nthreads; i++) {
		if ((e = pthread_create(
			 &o->threads[i], NULL, offload_main, o)) != 0) {
			error_f("pthread_create: %s", strerror(e));
			offload_free(o);
			return NULL;
		}
		o->nthreads++;
	}
	return o;
}

int
offload_submit(struct offload *o, offload_fn run, offload_fn done, void *arg)
{
	struct task *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return TS_ERR_ALLOC;
	t->run = run;
	t->done = done;
	t->arg = arg;
	pthread_mutex_lock(&o->mu);
	push(&o->todo_head, &o->todo_tail, t);
	o->running++;
	pthread_mutex_unlock(&o->mu);
	pthread_cond_signal(&o->cv);
	o->pending++;
	return 0;
}

unsigned
offload_pending(const struct offload *o)
{
	return o->pending;
}

unsigned
offload_running(struct offload *o)
{
	unsigned n;

	pthread_mutex_lock(&o->mu);
	n = o->running;
	pthread_mutex_unlock(&o->mu);
	return n;
}

void
offload_free(struct offload *o)
{
	unsigned i;

	if (o == NULL)
		return;
	pthread_mutex_lock(&o->mu);
	o->stop = 1;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	for (i = 0; i < o->nthreads; i++)
		pthread_join(o->threads[i], NULL);
	/* every task has run: call the done callbacks still due */
	offload_reap(o);
	loop_del_fd(o->loop, o->efd);
	close(o->efd);
	pthread_mutex_destroy(&o->mu);
	pthread_cond_destroy(&o->cv);
	free(o);
}
