/*
 * pcsc_wait.c - watch PC/SC readers and cards, for the pcscd harness tests
 * (tests/lib/pcsc.sh, tests/integration/test_pcsc_*.sh).
 *
 *   pcsc_wait readers
 *       one line per reader: "<present|empty> <reader name>"
 *   pcsc_wait card present|absent TIMEOUT_MS [READER-SUBSTRING]
 *       waits until a card is present in (or absent from every) matching
 *       reader; prints "ok ms=<elapsed>" and exits 0, or "timeout" and 1
 *   pcsc_wait watch DURATION_MS
 *       prints "<epoch-ms> <event> <reader>" lines as they happen, event
 *       one of reader-added, reader-removed, card-inserted, card-removed
 *       (after a first "<epoch-ms> ready" line once it is watching)
 *
 * Blocks in SCardGetStatusChange on the readers plus the PnP pseudo-reader,
 * the way the agent's watcher will (style.md section 6), so the latency
 * measured is the one the agent can get, not a polling artefact.  A test
 * tool: the agent's own PC/SC code is agent/readers.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <PCSC/winscard.h>

#define MAX_READERS 16
#define PNP_READER  "\\\\?PnP?\\Notification"

struct watch {
	SCARDCONTEXT ctx;
	size_t n; /* readers; states[n] is the PnP pseudo-reader */
	char names[MAX_READERS][256];
	SCARD_READERSTATE states[MAX_READERS + 1];
};

static long long
now_ms(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000L;
}

static int
parse_ms(const char *s, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return -1;
	*out = v;
	return 0;
}

/* Re-reads the reader list, keeping known readers' last states. */
static int
watch_list(struct watch *w)
{
	char buf[4096], *p;
	DWORD len = sizeof(buf);
	SCARD_READERSTATE old[MAX_READERS];
	char oldnames[MAX_READERS][256];
	size_t oldn = w->n, i, j;
	LONG rv;

	memcpy(old, w->states, sizeof(old));
	memcpy(oldnames, w->names, sizeof(oldnames));
	w->n = 0;
	rv = SCardListReaders(w->ctx, NULL, buf, &len);
	if (rv == SCARD_S_SUCCESS) {
		for (p = buf; *p != '\0' && w->n < MAX_READERS;
		     p += strlen(p) + 1) {
			if (strlen(p) >= sizeof(w->names[0]))
				continue; /* no real reader has such a name */
			memcpy(w->names[w->n], p, strlen(p) + 1);
			memset(&w->states[w->n], 0, sizeof(w->states[0]));
			w->states[w->n].szReader = w->names[w->n];
			w->states[w->n].dwCurrentState = SCARD_STATE_UNAWARE;
			for (j = 0; j < oldn; j++) {
				if (strcmp(oldnames[j], p) == 0) {
					w->states[w->n].dwCurrentState =
					    old[j].dwCurrentState;
					break;
				}
			}
			w->n++;
		}
	} else if (rv != SCARD_E_NO_READERS_AVAILABLE) {
		fprintf(stderr, "pcsc_wait: SCardListReaders: %s\n",
		    pcsc_stringify_error(rv));
		return -1;
	}
	for (i = 0; i < w->n; i++)
		w->states[i].szReader = w->names[i];
	memset(&w->states[w->n], 0, sizeof(w->states[0]));
	w->states[w->n].szReader = PNP_READER;
	/* pcsc-lite keeps the reader count in the PnP state's high word. */
	w->states[w->n].dwCurrentState = (DWORD)w->n << 16;
	return 0;
}

static int
card_in(const SCARD_READERSTATE *s)
{
	return (s->dwEventState & SCARD_STATE_PRESENT) != 0;
}

static int
cmd_readers(struct watch *w)
{
	size_t i;

	if (watch_list(w) != 0)
		return 1;
	if (w->n > 0 &&
	    SCardGetStatusChange(w->ctx, 0, w->states, (DWORD)w->n) !=
		SCARD_S_SUCCESS)
		return 1;
	for (i = 0; i < w->n; i++)
		printf("%s %s\n", card_in(&w->states[i]) ? "present" : "empty",
		    w->names[i]);
	return 0;
}

static int
cmd_card(struct watch *w, int want_present, long timeout, const char *sub)
{
	long long t0 = now_ms(CLOCK_MONOTONIC), left;
	size_t i;
	int any;
	LONG rv;

	if (watch_list(w) != 0)
		return 1;
	for (;;) {
		left = timeout - (now_ms(CLOCK_MONOTONIC) - t0);
		if (left < 0)
			break;
		rv = SCardGetStatusChange(
		    w->ctx, (DWORD)left, w->states, (DWORD)w->n + 1);
		if (rv == SCARD_E_TIMEOUT)
			break;
		if (rv != SCARD_S_SUCCESS) {
			fprintf(stderr, "pcsc_wait: %s\n",
			    pcsc_stringify_error(rv));
			return 1;
		}
		any = 0;
		for (i = 0; i < w->n; i++) {
			if (sub == NULL || strstr(w->names[i], sub) != NULL)
				any |= card_in(&w->states[i]);
			w->states[i].dwCurrentState =
			    w->states[i].dwEventState & ~SCARD_STATE_CHANGED;
		}
		if (any == want_present) {
			printf("ok ms=%lld\n", now_ms(CLOCK_MONOTONIC) - t0);
			return 0;
		}
		if (w->states[w->n].dwEventState & SCARD_STATE_CHANGED) {
			if (watch_list(w) != 0)
				return 1;
		}
	}
	printf("timeout\n");
	return 1;
}

static int
cmd_watch(struct watch *w, long duration)
{
	long long t0 = now_ms(CLOCK_MONOTONIC), left;
	char prev[MAX_READERS][256];
	size_t prevn, i, j;
	DWORD cur, ev;
	LONG rv;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (watch_list(w) != 0)
		return 1;
	printf("%lld ready\n", now_ms(CLOCK_REALTIME));
	for (;;) {
		left = duration - (now_ms(CLOCK_MONOTONIC) - t0);
		if (left <= 0)
			return 0;
		rv = SCardGetStatusChange(
		    w->ctx, (DWORD)left, w->states, (DWORD)w->n + 1);
		if (rv == SCARD_E_TIMEOUT)
			return 0;
		if (rv != SCARD_S_SUCCESS) {
			fprintf(stderr, "pcsc_wait: %s\n",
			    pcsc_stringify_error(rv));
			return 1;
		}
		for (i = 0; i < w->n; i++) {
			cur = w->states[i].dwCurrentState;
			ev = w->states[i].dwEventState;
			if (!(ev & SCARD_STATE_CHANGED))
				continue;
			if ((ev & SCARD_STATE_PRESENT) &&
			    !(cur & SCARD_STATE_PRESENT))
				printf("%lld card-inserted %s\n",
				    now_ms(CLOCK_REALTIME), w->names[i]);
			else if (!(ev & SCARD_STATE_PRESENT) &&
			    (cur & SCARD_STATE_PRESENT))
				printf("%lld card-removed %s\n",
				    now_ms(CLOCK_REALTIME), w->names[i]);
			w->states[i].dwCurrentState = ev & ~SCARD_STATE_CHANGED;
		}
		if (w->states[w->n].dwEventState & SCARD_STATE_CHANGED) {
			prevn = w->n;
			memcpy(prev, w->names, sizeof(prev));
			if (watch_list(w) != 0)
				return 1;
			for (i = 0; i < w->n; i++) {
				for (j = 0; j < prevn; j++)
					if (strcmp(prev[j], w->names[i]) == 0)
						break;
				if (j == prevn)
					printf("%lld reader-added %s\n",
					    now_ms(CLOCK_REALTIME),
					    w->names[i]);
			}
			for (j = 0; j < prevn; j++) {
				for (i = 0; i < w->n; i++)
					if (strcmp(prev[j], w->names[i]) == 0)
						break;
				if (i == w->n)
					printf("%lld reader-removed %s\n",
					    now_ms(CLOCK_REALTIME), prev[j]);
			}
		}
	}
}

int
main(int argc, char **argv)
{
	struct watch w;
	long ms = 0;
	LONG rv;
	int r = 2;

	memset(&w, 0, sizeof(w));
	rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &w.ctx);
	if (rv != SCARD_S_SUCCESS) {
		fprintf(stderr, "pcsc_wait: SCardEstablishContext: %s\n",
		    pcsc_stringify_error(rv));
		return 1;
	}
	if (argc == 2 && strcmp(argv[1], "readers") == 0) {
		r = cmd_readers(&w);
	} else if ((argc == 4 || argc == 5) && strcmp(argv[1], "card") == 0 &&
	    (strcmp(argv[2], "present") == 0 ||
		strcmp(argv[2], "absent") == 0) &&
	    parse_ms(argv[3], &ms) == 0) {
		r = cmd_card(&w, strcmp(argv[2], "present") == 0, ms,
		    argc == 5 ? argv[4] : NULL);
	} else if (argc == 3 && strcmp(argv[1], "watch") == 0 &&
	    parse_ms(argv[2], &ms) == 0) {
		r = cmd_watch(&w, ms);
	} else {
		fprintf(stderr,
		    "usage: pcsc_wait readers | card "
		    "present|absent TIMEOUT_MS [READER] | watch "
		    "DURATION_MS\n");
	}
	SCardReleaseContext(w.ctx);
	return r;
}
