/*
 * agentbench.c - load generator for tokensign-agent: N client threads,
 * each with its own connection, sign digests (or payloads, or batches)
 * for a duration or a fixed count.  Used by bench/agent.sh for figures
 * and by tests/integration/test_agent_load.sh for the 64 x 1000 check.
 *
 * usage: agentbench [-c CLIENTS] [-n COUNT | -s SECONDS] [-b BATCH]
 *                   [-p] [-V] -k KEY SOCKET
 *   -p  sign simple-signing payloads instead of raw digests
 *   -V  verify every signature with OpenSSL against the listed key
 * Prints: "clients C sigs N errors E seconds T rate R/s".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "client/agent_client.h"
#include "common/err.h"
#include "common/proto.h"

#define BENCH_MAX_CLIENTS 1024

static const char *sock_path, *key_ref;
static long count = 0, batch = 0;
static double seconds = 3;
static int payload_mode, verify;
static EVP_PKEY *pub;
static atomic_long total_sigs, total_errors;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
check_sig(const uint8_t *msg, size_t len, int is_digest, const uint8_t *sig,
    size_t siglen)
{
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *mc = NULL;
	int ok = 0;

	if (!verify)
		return 1;
	if (is_digest) {
		if ((pc = EVP_PKEY_CTX_new(pub, NULL)) != NULL &&
		    EVP_PKEY_verify_init(pc) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1)
			ok = EVP_PKEY_verify(pc, sig, siglen, msg, len) == 1;
		EVP_PKEY_CTX_free(pc);
		return ok;
	}
	if ((mc = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestVerifyInit(mc, NULL,
		EVP_PKEY_get_base_id(pub) == EVP_PKEY_ED25519 ? NULL
							      : EVP_sha256(),
		NULL, pub) == 1)
		ok = EVP_DigestVerify(mc, sig, siglen, msg, len) == 1;
	EVP_MD_CTX_free(mc);
	return ok;
}

static void
make_payload(uint8_t *buf, size_t *lenp, unsigned long seq)
{
	uint8_t rnd[32];
	char hex[65];
	int i, n;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, (int)seq, sizeof(rnd));
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	n = snprintf((char *)buf, 512,
	    "{\"critical\":{\"identity\":{\"docker-reference\":"
	    "\"registry.example.com/bench/app%lu\"},\"image\":{"
	    "\"docker-manifest-digest\":\"sha256:%s\"},\"type\":\"cosign "
	    "container image signature\"},\"optional\":null}",
	    seq % 100, hex);
	*lenp = (size_t)n;
}

static void *
client_main(void *arg)
{
	struct agent_conn *c = NULL;
	struct agent_batch_item items[TS_PROTO_MAX_BATCH];
	uint8_t bufs[64][512], *sig;
	size_t siglen, i, nb = batch > 0 ? (size_t)batch : 1;
	long done = 0, errs = 0;
	double end = now_s() + seconds;
	unsigned long seq = (unsigned long)(uintptr_t)arg * 1000003UL;
	int r;

	if (nb > 64)
		nb = 64;
	if ((r = agent_connect(sock_path, &c)) != 0) {
		fprintf(stderr, "agentbench: connect: %s\n", ts_err(r));
		atomic_fetch_add(&total_errors, 1);
		return NULL;
	}
	while (count > 0 ? done + errs < count : now_s() < end) {
		for (i = 0; i < nb; i++) {
			memset(&items[i], 0, sizeof(items[i]));
			if (payload_mode) {
				make_payload(bufs[i], &items[i].len, seq++);
				items[i].kind = TS_BATCH_PAYLOAD;
			} else {
				if (RAND_bytes(bufs[i], 32) != 1)
					abort();
				items[i].len = 32;
				items[i].kind = TS_BATCH_DIGEST;
				items[i].hash = TS_HASH_SHA256;
			}
			items[i].data = bufs[i];
		}
		if (batch > 0) {
			r = agent_sign_batch(c, key_ref, items, nb);
			for (i = 0; i < nb; i++) {
				if (r == 0 && items[i].r == 0 &&
				    check_sig(items[i].data, items[i].len,
					!payload_mode, items[i].sig,
					items[i].siglen))
					done++;
				else
					errs++;
				free(items[i].sig);
			}
		} else {
			if (payload_mode)
				r = agent_sign_payload(c, key_ref,
				    items[0].data, items[0].len, &sig, &siglen);
			else
				r = agent_sign_digest(c, key_ref,
				    TS_HASH_SHA256, items[0].data, 32, &sig,
				    &siglen);
			if (r == 0 &&
			    check_sig(items[0].data, items[0].len,
				!payload_mode, sig, siglen))
				done++;
			else {
				if (errs == 0)
					fprintf(stderr, "agentbench: %s: %s\n",
					    ts_err(r), agent_last_error(c));
				errs++;
			}
			if (r == 0)
				free(sig);
		}
	}
	agent_close(c);
	atomic_fetch_add(&total_sigs, done);
	atomic_fetch_add(&total_errors, errs);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t th[BENCH_MAX_CLIENTS];
	struct agent_conn *c = NULL;
	struct agent_keylist *l = NULL;
	const struct agent_key *k;
	const unsigned char *p;
	long clients = 1, i;
	double t0, t;
	int ch, r;

	while ((ch = getopt(argc, argv, "c:n:s:b:k:pV")) != -1) {
		switch (ch) {
		case 'c':
			clients = strtol(optarg, NULL, 10);
			break;
		case 'n':
			count = strtol(optarg, NULL, 10);
			break;
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		case 'b':
			batch = strtol(optarg, NULL, 10);
			break;
		case 'k':
			key_ref = optarg;
			break;
		case 'p':
			payload_mode = 1;
			break;
		case 'V':
			verify = 1;
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || key_ref == NULL || clients < 1 ||
	    clients > BENCH_MAX_CLIENTS || batch < 0 || batch > 64)
		goto usage;
	sock_path = argv[optind];
	if ((r = agent_connect(sock_path, &c)) != 0 ||
	    (r = agent_list_keys(c, &l)) != 0 ||
	    (r = agent_keylist_find(l, key_ref, &k)) != 0) {
		fprintf(stderr, "agentbench: %s\n", ts_err(r));
		return 1;
	}
	p = k->spki;
	if ((pub = d2i_PUBKEY(NULL, &p, (long)k->spki_len)) == NULL)
		return 1;
	agent_keylist_free(l);
	agent_close(c);
	t0 = now_s();
	for (i = 0; i < clients; i++)
		if (pthread_create(
			&th[i], NULL, client_main, (void *)(uintptr_t)i) != 0)
			return 1;
	for (i = 0; i < clients; i++)
		pthread_join(th[i], NULL);
	t = now_s() - t0;
	printf("clients %ld sigs %ld errors %ld seconds %.2f rate %.0f/s\n",
	    clients, atomic_load(&total_sigs), atomic_load(&total_errors), t,
	    (double)atomic_load(&total_sigs) / t);
	EVP_PKEY_free(pub);
	return atomic_load(&total_errors) == 0 ? 0 : 1;
usage:
	fprintf(stderr,
	    "usage: agentbench [-c CLIENTS] [-n COUNT | -s "
	    "SECONDS] [-b BATCH] [-p] [-V] -k KEY SOCKET\n");
	return 2;
}
