/*
 * test_audit.c - the audit chain: lines from many threads form one
 * chain (checked here by recomputing every hash), a reopened log
 * continues it, no line is lost, and a write failure is reported and
 * sticky (the agent then refuses to sign).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "agent/audit.h"
#include "common/err.h"

#define THREADS	   8
#define PER_THREAD 200

static char path[64];

/* Returns the number of lines; fails the test on a broken chain. */
static size_t
check_chain(void)
{
	char *line = NULL, expect[65], *p;
	unsigned char md[32];
	size_t cap = 0, n = 0;
	ssize_t len;
	FILE *f = fopen(path, "r");
	int i;

	assert_non_null(f);
	memset(expect, '0', 64);
	expect[64] = '\0';
	while ((len = getline(&line, &cap, f)) > 0) {
		assert_int_equal(line[len - 1], '\n');
		line[--len] = '\0';
		p = strstr(line, ",\"prev\":\"");
		assert_non_null(p);
		assert_memory_equal(p + 9, expect, 64);
		assert_string_equal(p + 9 + 64, "\"}");
		SHA256((unsigned char *)line, (size_t)len, md);
		for (i = 0; i < 32; i++)
			snprintf(expect + 2 * i, 3, "%02x", md[i]);
		n++;
	}
	free(line);
	fclose(f);
	return n;
}

static void *
writer(void *arg)
{
	struct audit *a = arg;
	struct agent_peer peer;
	struct audit_rec rec;
	int i;

	memset(&peer, 0, sizeof(peer));
	peer.transport = PEER_UNIX;
	peer.uid = 1000;
	memcpy(peer.exe, "/usr/bin/x \"quoted\"", 20);
	memset(&rec, 0, sizeof(rec));
	rec.event = "sign-digest";
	rec.peer = &peer;
	rec.key_id = "0123456789abcdef";
	rec.hash = "sha256";
	rec.digest_hex = "00ff";
	for (i = 0; i < PER_THREAD; i++)
		if (audit_log(a, &rec) != 0)
			return (void *)1;
	return NULL;
}

static void
test_concurrent_chain(void **state)
{
	pthread_t th[THREADS];
	struct audit *a = NULL;
	struct audit_rec rec;
	void *ret;
	int i;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/test_audit.%d", (int)getpid());
	unlink(path);
	assert_int_equal(audit_open(path, &a), 0);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer, a), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	audit_close(a);
	assert_int_equal(check_chain(), THREADS * PER_THREAD);

	/* Reopened: the chain continues from the last line. */
	assert_int_equal(audit_open(path, &a), 0);
	memset(&rec, 0, sizeof(rec));
	rec.event = "lock";
	rec.result = TS_ERR_AGENT_LOCKED;
	rec.reason = "already locked";
	assert_int_equal(audit_log(a, &rec), 0);
	audit_close(a);
	assert_int_equal(check_chain(), THREADS * PER_THREAD + 1);
	unlink(path);
}

static void
test_write_failure(void **state)
{
	struct audit *a = NULL;
	struct audit_rec rec;

	(void)state;
	if (access("/dev/full", W_OK) != 0)
		skip();
	assert_int_equal(audit_open("/dev/full", &a), 0);
	memset(&rec, 0, sizeof(rec));
	rec.event = "sign-payload";
	assert_int_equal(audit_log(a, &rec), TS_ERR_AUDIT_WRITE);
	/* Sticky: nothing after a failed append may claim to be logged. */
	assert_int_equal(audit_log(a, &rec), TS_ERR_AUDIT_WRITE);
	audit_close(a);
	assert_int_equal(
	    audit_open("/nonexistent-dir/audit.log", &a), TS_ERR_AUDIT_WRITE);
	assert_null(a);
	assert_int_equal(audit_log(NULL, &rec), 0); /* no log configured */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_chain),
		cmocka_unit_test(test_write_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
