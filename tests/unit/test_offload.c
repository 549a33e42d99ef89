/*
 * test_offload.c - agent/offload: run() on another thread, done() back on
 * the loop's thread after it, every task reported once, offload_free()
 * finishing queued tasks and calling their done callbacks, bad sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent/loop.h"
#include "agent/offload.h"

#define NTASKS 64

struct task_state {
	pthread_t ran_on; /* run()'s thread */
	int ran; /* run() finished (set by run, read after done) */
	int done; /* done() calls */
	int ran_before_done; /* run had finished when done came */
	pthread_t done_on;
	unsigned sleep_ms;
};

struct fx {
	struct loop *loop;
	struct offload *off;
	struct task_state t[NTASKS];
	unsigned ndone;
	unsigned want;
};

static struct fx *cur;

static void
task_run(void *arg)
{
	struct task_state *t = arg;
	struct timespec ts = { 0, (long)t->sleep_ms * 1000000L };

	if (t->sleep_ms > 0)
		nanosleep(&ts, NULL);
	t->ran_on = pthread_self();
	__atomic_store_n(&t->ran, 1, __ATOMIC_RELEASE);
}

static void
task_done(void *arg)
{
	struct task_state *t = arg;

	t->ran_before_done = __atomic_load_n(&t->ran, __ATOMIC_ACQUIRE);
	t->done_on = pthread_self();
	t->done++;
	if (++cur->ndone == cur->want)
		loop_stop(cur->loop);
}

static void
deadline(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l); /* the test then sees the tasks that did not finish */
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(f->loop = loop_new());
	assert_non_null(f->off = offload_new(f->loop, 3));
	cur = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	offload_free(f->off);
	loop_free(f->loop);
	free(f);
	cur = NULL;
	return 0;
}

static void
test_run_then_done_on_loop(void **state)
{
	struct fx *f = *state;
	unsigned i;

	f->want = NTASKS;
	for (i = 0; i < NTASKS; i++) {
		f->t[i].sleep_ms = i % 4;
		assert_int_equal(
		    offload_submit(f->off, task_run, task_done, &f->t[i]), 0);
	}
	assert_int_equal(offload_pending(f->off), NTASKS);
	assert_true(loop_add_timer(f->loop, 10000, 0, deadline, NULL) > 0);
	assert_int_equal(loop_run(f->loop), 0);
	assert_int_equal(f->ndone, NTASKS);
	assert_int_equal(offload_pending(f->off), 0);
	for (i = 0; i < NTASKS; i++) {
		assert_int_equal(f->t[i].done, 1);
		assert_true(f->t[i].ran_before_done);
		/* done on the loop's thread (this one), run elsewhere */
		assert_true(pthread_equal(f->t[i].done_on, pthread_self()));
		assert_false(pthread_equal(f->t[i].ran_on, pthread_self()));
	}
}

static void
test_free_finishes_queued_tasks(void **state)
{
	struct fx *f = *state;
	unsigned i;

	/* never run the loop: offload_free must run and report them all */
	f->want = 0;
	for (i = 0; i < 8; i++) {
		f->t[i].sleep_ms = 5;
		assert_int_equal(
		    offload_submit(f->off, task_run, task_done, &f->t[i]), 0);
	}
	offload_free(f->off);
	f->off = NULL;
	for (i = 0; i < 8; i++) {
		assert_int_equal(f->t[i].done, 1);
		assert_true(f->t[i].ran_before_done);
	}
	assert_int_equal(loop_fd_count(f->loop), 0);
}

static void
test_bad_sizes(void **state)
{
	struct fx *f = *state;

	assert_null(offload_new(f->loop, 0));
	assert_null(offload_new(f->loop, OFFLOAD_THREADS_MAX + 1));
	offload_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_run_then_done_on_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_free_finishes_queued_tasks, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_sizes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
