/*
 * p11bench.c - signatures/s through tokensign's pkcs11/ layer, the same
 * loop as ../shared/baselines/p11loop (a 32-byte digest, T threads, N
 * seconds) so bench/p11bench.sh can compare the two in one run.
 *
 * usage: p11bench MODULE TOKENLABEL PINFILE KEYLABEL ecdsa|rsa|eddsa SECS THREADS
 * eddsa signs the 32 bytes as a whole message (pure Ed25519), as p11loop.
 * Output: one line, "mech= threads= secs= sigs= sigs_per_s= p50_us= p99_us="
 * The PIN comes from a file (never argv).  Latency is one
 * p11_sign_digest() call: session borrow, C_SignInit, C_Sign, DER/DigestInfo
 * handling and the session return.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "pkcs11/key.h"
#include "pkcs11/pin.h"
#include "pkcs11/provider.h"
#include "pkcs11/sign.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

struct bres {
	unsigned long n;
	unsigned long cap;
	float *lat_us;
	int err;
};

static struct p11_key *g_key;
static int g_eddsa;

static int
sign_once(const uint8_t *md, size_t len, uint8_t **sigp, size_t *siglenp)
{
	if (g_eddsa)
		return p11_sign_message(g_key, md, len, NULL, sigp, siglenp);
	return p11_sign_digest(
	    g_key, P11_HASH_SHA256, md, len, NULL, sigp, siglenp);
}
static double g_secs;
static pthread_barrier_t g_bar;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
worker(void *arg)
{
	struct bres *r = arg;
	uint8_t md[32], *sig;
	size_t siglen;
	double a, b, end;
	float *n;
	int i, rc;

	memset(md, 0x5a, sizeof(md));
	for (i = 0; i < 5; i++) { /* warm-up: open the pooled session */
		if ((rc = sign_once(md, sizeof(md), &sig, &siglen)) != 0) {
			r->err = rc;
			pthread_barrier_wait(&g_bar);
			return NULL;
		}
		free(sig);
	}
	r->cap = 1 << 16;
	if ((r->lat_us = malloc(r->cap * sizeof(float))) == NULL) {
		r->err = TS_ERR_ALLOC;
		pthread_barrier_wait(&g_bar);
		return NULL;
	}
	pthread_barrier_wait(&g_bar);
	end = now() + g_secs;
	for (;;) {
		if ((a = now()) >= end)
			break;
		rc = sign_once(md, sizeof(md), &sig, &siglen);
		b = now();
		if (rc != 0) {
			r->err = rc;
			break;
		}
		free(sig);
		if (r->n == r->cap) {
			n = realloc(r->lat_us, 2 * r->cap * sizeof(float));
			if (n == NULL)
				break;
			r->lat_us = n;
			r->cap *= 2;
		}
		r->lat_us[r->n++] = (float)((b - a) * 1e6);
	}
	return NULL;
}

static int
fcmp(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	struct p11_provider *prov = NULL;
	struct p11_token *tok = NULL;
	struct p11_pin *pin = NULL;
	struct p11_uri *uri = NULL;
	struct bres *res;
	pthread_t *th;
	unsigned long total = 0, k = 0, i;
	float *all;
	char *end;
	long nthreads;
	int t, r;

	if (argc != 8) {
		fprintf(stderr,
		    "usage: %s MODULE TOKENLABEL PINFILE KEYLABEL "
		    "ecdsa|rsa|eddsa "
		    "SECONDS THREADS\n",
		    argv[0]);
		return 1;
	}
	g_secs = strtod(argv[6], &end);
	nthreads = strtol(argv[7], NULL, 10);
	if (*end != '\0' || g_secs <= 0 || nthreads < 1 || nthreads > 256) {
		fprintf(stderr, "bad SECONDS or THREADS\n");
		return 1;
	}
	if ((r = p11_provider_open(argv[1], NULL, &prov)) != 0 ||
	    (uri = p11_uri_new()) == NULL ||
	    p11_uri_set(uri, P11_URI_TOKEN, argv[2]) != 0 ||
	    (r = p11_provider_find_token(prov, uri, &tok)) != 0 ||
	    (r = p11_pin_from_file(argv[3], &pin)) != 0 ||
	    (r = p11_token_login(tok, pin, 0)) != 0 ||
	    p11_uri_set(uri, P11_URI_OBJECT, argv[4]) != 0 ||
	    (r = p11_provider_find_key(prov, uri, &g_key)) != 0) {
		fprintf(stderr, "setup failed: %s\n", ts_err(r));
		return 2;
	}
	p11_pin_free(pin);
	p11_uri_free(uri);
	g_eddsa = strcmp(argv[5], "eddsa") == 0;
	if ((strcmp(argv[5], "rsa") == 0) !=
		(p11_key_type(g_key) == P11_KEY_RSA) ||
	    g_eddsa != (p11_key_type(g_key) == P11_KEY_ED25519)) {
		fprintf(stderr, "key %s is not %s\n", argv[4], argv[5]);
		return 2;
	}
	th = calloc((size_t)nthreads, sizeof(*th));
	res = calloc((size_t)nthreads, sizeof(*res));
	if (th == NULL || res == NULL)
		return 2;
	pthread_barrier_init(&g_bar, NULL, (unsigned)nthreads);
	for (t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, worker, &res[t]);
	for (t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	for (t = 0; t < nthreads; t++) {
		if (res[t].err != 0) {
			fprintf(
			    stderr, "thread %d: %s\n", t, ts_err(res[t].err));
			return 3;
		}
		total += res[t].n;
	}
	if (total == 0 || (all = malloc(total * sizeof(float))) == NULL)
		return 3;
	for (t = 0; t < nthreads; t++)
		for (i = 0; i < res[t].n; i++)
			all[k++] = res[t].lat_us[i];
	qsort(all, total, sizeof(float), fcmp);
	printf("mech=%s threads=%ld secs=%.1f sigs=%lu sigs_per_s=%.0f "
	       "p50_us=%.0f p99_us=%.0f\n",
	    argv[5], nthreads, g_secs, total, (double)total / g_secs,
	    all[total / 2], all[(size_t)((double)total * 0.99)]);
	free(all);
	for (t = 0; t < nthreads; t++)
		free(res[t].lat_us);
	free(res);
	free(th);
	p11_provider_free(prov);
	return 0;
}
