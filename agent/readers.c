/*
 * readers.c - the PC/SC reader watcher (docs/internals/agent.md, "Token
 * presence").  SCardGetStatusChange with a 500 ms timeout, so stopping
 * needs no SCardCancel; the PnP pseudo-reader's change re-reads the list.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <PCSC/winscard.h>

#include "agent/readers.h"
#include "common/err.h"
#include "common/log.h"

#define RD_MAX	    16
#define RD_NAME_MAX 256
#define RD_PNP	    "\\\\?PnP?\\Notification"

struct readers {
	readers_cb cb;
	void *arg;
	pthread_t thread;
	pthread_mutex_t mu;
	int stop;
	SCARDCONTEXT ctx;
	int have_ctx;
	size_t n; /* readers; states[n] is the PnP pseudo-reader */
	char names[RD_MAX][RD_NAME_MAX];
	int known[RD_MAX]; /* presence last reported, -1: never */
	SCARD_READERSTATE states[RD_MAX + 1];
};

static int
rd_stopping(struct readers *r)
{
	int s;

	pthread_mutex_lock(&r->mu);
	s = r->stop;
	pthread_mutex_unlock(&r->mu);
	return s;
}

/* Re-reads the reader list; readers gone are reported empty. */
static int
rd_list(struct readers *r)
{
	char buf[4096], oldnames[RD_MAX][RD_NAME_MAX], *p;
	DWORD len = sizeof(buf);
	SCARD_READERSTATE old[RD_MAX];
	int oldknown[RD_MAX], found;
	size_t oldn = r->n, i, j;
	LONG rv;

	memcpy(old, r->states, sizeof(old));
	memcpy(oldnames, r->names, sizeof(oldnames));
	memcpy(oldknown, r->known, sizeof(oldknown));
	r->n = 0;
	rv = SCardListReaders(r->ctx, NULL, buf, &len);
	if (rv != SCARD_S_SUCCESS && rv != SCARD_E_NO_READERS_AVAILABLE)
		return TS_ERR_SYSTEM;
	for (p = buf; rv == SCARD_S_SUCCESS && *p != '\0' && r->n < RD_MAX;
	     p += strlen(p) + 1) {
		if (strlen(p) >= RD_NAME_MAX)
			continue;
		memcpy(r->names[r->n], p, strlen(p) + 1);
		memset(&r->states[r->n], 0, sizeof(r->states[0]));
		r->states[r->n].dwCurrentState = SCARD_STATE_UNAWARE;
		r->known[r->n] = -1;
		for (j = 0; j < oldn; j++)
			if (strcmp(oldnames[j], p) == 0) {
				r->states[r->n].dwCurrentState =
				    old[j].dwCurrentState;
				r->known[r->n] = oldknown[j];
			}
		r->n++;
	}
	for (i = 0; i < r->n; i++)
		r->states[i].szReader = r->names[i];
	/* unplugged readers: their card is gone too */
	for (j = 0; j < oldn; j++) {
		for (found = 0, i = 0; i < r->n; i++)
			found |= strcmp(oldnames[j], r->names[i]) == 0;
		if (!found && oldknown[j] == 1) {
			logit("reader \"%.100s\" unplugged", oldnames[j]);
			r->cb(r->arg, oldnames[j], 0);
		}
	}
	memset(&r->states[r->n], 0, sizeof(r->states[0]));
	r->states[r->n].szReader = RD_PNP;
	/* pcsc-lite keeps the reader count in the PnP state's high word */
	r->states[r->n].dwCurrentState = (DWORD)r->n << 16;
	return 0;
}

/* Sleeps about 2 s, or less when asked to stop. */
static void
rd_pause(struct readers *r)
{
	int i;

	for (i = 0; i < 20 && !rd_stopping(r); i++)
		usleep(100 * 1000);
}

static void
rd_release(struct readers *r)
{
	if (r->have_ctx)
		(void)SCardReleaseContext(r->ctx);
	r->have_ctx = 0;
	r->n = 0;
}

static void *
rd_main(void *arg)
{
	struct readers *r = arg;
	size_t i;
	int in;
	LONG rv;

	while (!rd_stopping(r)) {
		if (!r->have_ctx) {
			if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL,
				NULL, &r->ctx) != SCARD_S_SUCCESS) {
				rd_pause(r); /* no pcscd (yet) */
				continue;
			}
			r->have_ctx = 1;
			debug_f("connected to pcscd");
			if (rd_list(r) != 0) {
				rd_release(r);
				rd_pause(r);
				continue;
			}
		}
		rv = SCardGetStatusChange(
		    r->ctx, 500, r->states, (DWORD)r->n + 1);
		if (rv == SCARD_E_TIMEOUT)
			continue;
		if (rv != SCARD_S_SUCCESS) {
			debug_f("SCardGetStatusChange: %s",
			    pcsc_stringify_error(rv));
			rd_release(r);
			continue;
		}
		for (i = 0; i < r->n; i++) {
			in = (r->states[i].dwEventState &
				 SCARD_STATE_PRESENT) != 0;
			r->states[i].dwCurrentState =
			    r->states[i].dwEventState & ~SCARD_STATE_CHANGED;
			if (in == r->known[i])
				continue;
			r->known[i] = in;
			logit("reader \"%.100s\": card %s", r->names[i],
			    in ? "inserted" : "removed");
			r->cb(r->arg, r->names[i], in);
		}
		if (r->states[r->n].dwEventState & SCARD_STATE_CHANGED) {
			r->states[r->n].dwCurrentState =
			    r->states[r->n].dwEventState & ~SCARD_STATE_CHANGED;
			if (rd_list(r) != 0)
				rd_release(r);
		}
	}
	rd_release(r);
	return NULL;
}

int
readers_start(readers_cb cb, void *arg, struct readers **rp)
{
	struct readers *r;
	int e;

	*rp = NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return TS_ERR_ALLOC;
	r->cb = cb;
	r->arg = arg;
	pthread_mutex_init(&r->mu, NULL);
	if ((e = pthread_create(&r->thread, NULL, rd_main, r)) != 0) {
		error_f("pthread_create: %s", strerror(e));
		pthread_mutex_destroy(&r->mu);
		free(r);
		return TS_ERR_SYSTEM;
	}
	*rp = r;
	return 0;
}

void
readers_stop(struct readers *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = 1;
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
