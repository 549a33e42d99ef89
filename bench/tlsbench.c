/*
 * tlsbench.c - issue 5 benchmark: signatures/s through the agent with N
 * persistent clients over mutual TLS versus the Unix socket, and new TLS
 * connections per second (full handshakes and resumed sessions).
 *
 * usage: tlsbench -t tls://HOST:PORT -u SOCKET -k KEY -p PAYLOAD
 *                 [-c CLIENTS] [-s SECONDS]
 *        tlsbench -t tls://HOST:PORT -k KEY -p PAYLOAD -c CLIENTS -n COUNT
 * The second form is the load test (tests/integration/test_tls_load.sh):
 * CLIENTS persistent mTLS connections make exactly COUNT signatures each;
 * exit 0 only when all of them succeeded.
 * TLS credentials come from TOKENSIGN_TLS_CERT/KEY/CA.  Run by
 * bench/tlsbench.sh, which sets up SoftHSM, a PKI and an agent.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/agent_client.h"
#include "client/tls_client.h"
#include "common/err.h"
#include "common/log.h"

#define BENCH_MAX_CLIENTS 256
#define BENCH_ROUNDS	  4

struct worker {
	const char *target;
	const char *key;
	const uint8_t *payload;
	size_t plen;
	double seconds;
	unsigned long count; /* exactly this many when > 0 */
	unsigned long ok, errors;
	pthread_t th;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
sign_loop(void *arg)
{
	struct worker *w = arg;
	struct agent_conn *c = NULL;
	uint8_t *sig;
	size_t siglen;
	double end;

	if (agent_connect(w->target, &c) != 0) {
		w->errors = w->count > 0 ? w->count : 1;
		return NULL;
	}
	end = now_s() + w->seconds;
	while (w->count > 0 ? w->ok + w->errors < w->count : now_s() < end) {
		if (agent_sign_payload(
			c, w->key, w->payload, w->plen, &sig, &siglen) != 0) {
			w->errors++;
			continue;
		}
		free(sig);
		w->ok++;
	}
	agent_close(c);
	return NULL;
}

static double
run_signers(const char *target, const char *key, const uint8_t *payload,
    size_t plen, unsigned n, double seconds, unsigned long count,
    unsigned long *errors)
{
	struct worker *w;
	unsigned long total = 0;
	unsigned i;
	double t0, t;

	*errors = 0;
	if ((w = calloc(n, sizeof(*w))) == NULL)
		return -1;
	t0 = now_s();
	for (i = 0; i < n; i++) {
		w[i].target = target;
		w[i].key = key;
		w[i].payload = payload;
		w[i].plen = plen;
		w[i].seconds = seconds;
		w[i].count = count;
		if (pthread_create(&w[i].th, NULL, sign_loop, &w[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	for (i = 0; i < n; i++) {
		pthread_join(w[i].th, NULL);
		total += w[i].ok;
		*errors += w[i].errors;
	}
	t = now_s() - t0;
	free(w);
	return (double)total / t;
}

/* Connections/s: connect (+ handshake, + ticket), close. */
static double
run_connects(const char *target, int resume, double seconds,
    unsigned long *errors, unsigned long *resumed)
{
	struct tls_client_opts o;
	struct tls_client_opts_store st;
	struct tls_client *c = NULL;
	unsigned long n = 0;
	double t0, end;

	*errors = *resumed = 0;
	memset(&o, 0, sizeof(o));
	if (tls_client_opts_resolve(&o, &st) != 0)
		return -1;
	t0 = now_s();
	end = t0 + seconds;
	while (now_s() < end) {
		if (c == NULL && tls_client_new(target, &o, &c) != 0)
			break;
		if (tls_client_connect(c) != 0)
			(*errors)++;
		else {
			n++;
			*resumed += tls_client_resumed(c) != 0;
		}
		if (resume)
			tls_client_close(c);
		else {
			tls_client_free(c);
			c = NULL;
		}
	}
	tls_client_free(c);
	tls_client_opts_cleanup(&st);
	return (double)n / (now_s() - t0);
}

static int
read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f;
	uint8_t *b;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL || (b = malloc(262144)) == NULL)
		return -1;
	n = fread(b, 1, 262144, f);
	fclose(f);
	*out = b;
	*len = n;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *tls = NULL, *sock = NULL, *key = NULL, *pfile = NULL;
	unsigned clients = 16;
	unsigned long count = 0;
	double seconds = 3, u, t, full, res;
	unsigned long ue, te, fe, re, rn, fn;
	uint8_t *payload;
	size_t plen;
	int ch;

	ts_log_init("tlsbench", TS_LOG_ERROR, 0);
	while ((ch = getopt(argc, argv, "t:u:k:p:c:s:n:")) != -1) {
		switch (ch) {
		case 't':
			tls = optarg;
			break;
		case 'u':
			sock = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'p':
			pfile = optarg;
			break;
		case 'c':
			clients = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		case 'n':
			count = strtoul(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	if (count > 0 && tls != NULL && key != NULL && pfile != NULL &&
	    clients > 0 && clients <= BENCH_MAX_CLIENTS) {
		if (read_file(pfile, &payload, &plen) != 0)
			return 1;
		t = run_signers(
		    tls, key, payload, plen, clients, 0, count, &te);
		printf("load: %u clients x %lu signatures over mTLS: %.0f/s, "
		       "%lu errors\n",
		    clients, count, t, te);
		free(payload);
		return te == 0 ? 0 : 1;
	}
	if (tls == NULL || sock == NULL || key == NULL || pfile == NULL ||
	    clients == 0 || clients > BENCH_MAX_CLIENTS || seconds <= 0)
		goto usage;
	if (read_file(pfile, &payload, &plen) != 0) {
		fprintf(stderr, "cannot read %s\n", pfile);
		return 1;
	}
	/*
	 * Alternate short rounds of each so a shared, busy machine's load
	 * swings hit both sides alike; the rates are the round averages.
	 */
	u = t = 0;
	ue = te = 0;
	for (int round = 0; round < BENCH_ROUNDS; round++) {
		unsigned long e;

		u += run_signers(sock, key, payload, plen, clients,
			 seconds / BENCH_ROUNDS, 0, &e) /
		    BENCH_ROUNDS;
		ue += e;
		t += run_signers(tls, key, payload, plen, clients,
			 seconds / BENCH_ROUNDS, 0, &e) /
		    BENCH_ROUNDS;
		te += e;
	}
	full = run_connects(tls, 0, seconds, &fe, &fn);
	res = run_connects(tls, 1, seconds, &re, &rn);
	printf("clients                     %u\n", clients);
	printf("unix  signatures/s          %.0f (errors %lu)\n", u, ue);
	printf("mTLS  signatures/s          %.0f (errors %lu)\n", t, te);
	printf("mTLS / unix                 %.2f\n", u > 0 ? t / u : 0);
	printf("new TLS connections/s full  %.0f (errors %lu, resumed %lu)\n",
	    full, fe, fn);
	printf("new TLS connections/s resumed %.0f (errors %lu, resumed "
	       "%lu)\n",
	    res, re, rn);
	free(payload);
	return ue + te + fe + re == 0 ? 0 : 1;
usage:
	fprintf(stderr,
	    "usage: tlsbench -t tls://HOST:PORT -u SOCKET -k KEY "
	    "-p PAYLOAD [-c CLIENTS] [-s SECONDS]\n");
	return 2;
}
