/*
 * startup.c - process start-up cost: fork + exec + wait of a program, N
 * times, stdout and stderr to /dev/null.  Prints the median, mean and 10th
 * percentile per run in microseconds, so `tokensign version` can be
 * compared with /bin/true (the machine's fork/exec floor) in the same run
 * (issue 4: "Client start-up: tokensign version under 5 ms").
 *
 *   startup N PROG [ARGS...]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STARTUP_MAX_RUNS 100000

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	double *t, t0, sum = 0;
	long n, i;
	char *end;
	pid_t pid;
	int st, null;

	if (argc < 3) {
		fprintf(stderr, "usage: startup N PROG [ARGS...]\n");
		return 2;
	}
	errno = 0;
	n = strtol(argv[1], &end, 10);
	if (errno != 0 || *end != '\0' || n < 1 || n > STARTUP_MAX_RUNS) {
		fprintf(stderr, "startup: N wants 1..%d\n", STARTUP_MAX_RUNS);
		return 2;
	}
	if ((null = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1 ||
	    (t = calloc((size_t)n, sizeof(*t))) == NULL) {
		perror("startup");
		return 1;
	}
	for (i = 0; i < n; i++) {
		t0 = now_us();
		if ((pid = fork()) == -1) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			dup2(null, 1);
			dup2(null, 2);
			execv(argv[2], argv + 2);
			_exit(127);
		}
		while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
			;
		t[i] = now_us() - t0;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "startup: %s failed (status %d)\n",
			    argv[2], st);
			return 1;
		}
		sum += t[i];
	}
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	printf("%s: runs %ld median %.0f us mean %.0f us p10 %.0f us\n",
	    argv[2], n, t[n / 2], sum / (double)n, t[n / 10]);
	free(t);
	return 0;
}
