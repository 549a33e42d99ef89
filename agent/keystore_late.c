/*
 * keystore_late.c - tokens that are not there when the agent starts.
 *
 * A YubiKey still in a pocket at login, an HSM partition coming up after
 * the agent: a token spec that matches nothing at start is kept as a wait
 * (keystore_add_tokens() with KS_ADD_WAIT).  A hunter thread looks for it
 * every presence interval (1 s when polling is off) and at once after a
 * reader or slot event.  Everything that calls the module (slot list,
 * login, key list) runs there, so a slow or hung module never stalls the
 * event loop; the loop only adopts what is ready (keystore_adopt()),
 * passing each new key through the agent's hook (--key filter, confirm,
 * ssh, touch_timeout) before publishing it, so no client can use a late
 * key before its config applies.
 *
 * A spec is done once tokens matched it, like at start.  A login that
 * fails for any reason but the token going away again is not retried:
 * a PIN source that is wrong would otherwise spend the token's tries.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "agent/keystore.h"
#include "agent/keystore_int.h"
#include "common/err.h"
#include "common/log.h"
#include "pkcs11/pin.h"
#include "pkcs11/provider.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

/* How often a waited-for token is looked for when presence polling is off. */
#define KS_HUNT_MS 1000

int
keystore_wait_tokens(struct keystore *ks, struct p11_provider *prov,
    struct p11_uri *uri, const char *text, enum ks_pin_kind kind,
    const char *value)
{
	struct ks_wait *w;
	int r = TS_ERR_ALLOC;

	if (ks->nwaits >= KS_MAX_PROVIDERS) {
		r = TS_ERR_TOO_LARGE;
		goto fail;
	}
	if (ks->late_fd < 0 &&
	    (ks->late_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		error_f("eventfd: %s", strerror(errno));
		r = TS_ERR_SYSTEM;
		goto fail;
	}
	w = &ks->waits[ks->nwaits];
	memset(w, 0, sizeof(*w));
	w->prov = prov;
	w->kind = kind;
	if ((w->text = strdup(text != NULL ? text : "pkcs11:")) == NULL ||
	    (value != NULL && (w->value = strdup(value)) == NULL))
		goto fail_w;
	/* The variable is scrubbed once the agent started: read it now. */
	if (kind == KS_PIN_ENV && (r = p11_pin_from_env(value, &w->pin)) != 0)
		goto fail_w;
	w->uri = uri;
	atomic_init(&w->state, KS_WAIT_OPEN);
	ks->nwaits++;
	logit("token %.200s is not present; waiting for it", w->text);
	return 0;
fail_w:
	free(w->text);
	free(w->value);
	memset(w, 0, sizeof(*w));
fail:
	p11_uri_free(uri);
	return r;
}

void
ks_late_free(struct keystore *ks)
{
	size_t i;

	for (i = 0; i < ks->nwaits; i++) {
		p11_uri_free(ks->waits[i].uri);
		free(ks->waits[i].text);
		free(ks->waits[i].value);
		p11_pin_free(ks->waits[i].pin);
	}
	ks->nwaits = 0;
	if (ks->late_fd >= 0)
		close(ks->late_fd);
	ks->late_fd = -1;
}

int
keystore_waiting(const struct keystore *ks)
{
	size_t i;
	int n = 0;

	for (i = 0; i < ks->nwaits; i++)
		n |= atomic_load(&ks->waits[i].state) == KS_WAIT_OPEN;
	return n;
}

int
keystore_late_fd(const struct keystore *ks)
{
	return ks->late_fd;
}

size_t
keystore_wait_count(const struct keystore *ks)
{
	size_t i, n = 0;

	for (i = 0; i < ks->nwaits; i++)
		n += atomic_load(&ks->waits[i].state) != KS_WAIT_DONE;
	return n;
}

const char *
keystore_wait_uri(const struct keystore *ks, size_t i, int *failed)
{
	size_t j;
	int st;

	*failed = 0;
	for (j = 0; j < ks->nwaits; j++) {
		st = atomic_load(&ks->waits[j].state);
		if (st != KS_WAIT_DONE && i-- == 0) {
			*failed = st == KS_WAIT_FAILED;
			return ks->waits[j].text; /* fixed once serving */
		}
	}
	return "";
}

/*
 * Marks w done or failed, and the same --token spec waited for in other
 * modules (one token satisfies it, as at start); "any token" waits are
 * per module.  Hunter thread only (it alone uses waits[].pin).
 */
static void
ks_wait_end(struct keystore *ks, struct ks_wait *w, enum ks_wait_state st)
{
	size_t i;

	for (i = 0; i < ks->nwaits; i++)
		if (&ks->waits[i] == w ||
		    (w->uri != NULL && ks->waits[i].uri != NULL &&
			strcmp(ks->waits[i].text, w->text) == 0)) {
			atomic_store(&ks->waits[i].state, st);
			/* the token holds its own copy of an env PIN */
			p11_pin_free(ks->waits[i].pin);
			ks->waits[i].pin = NULL;
		}
}

/*
 * Takes the present tokens matching w: logged in, keys loaded, left for
 * the loop to adopt.  Runs on the hunter thread, the only one adding
 * tokens once serving began.
 */
static void
ks_hunt_wait(struct keystore *ks, struct ks_wait *w)
{
	struct p11_token *tok;
	uint64_t one = 1;
	size_t i, n, idx, made;
	int r, taken, done = 0;

	n = p11_provider_token_count(w->prov);
	for (i = 0; i < n; i++) {
		tok = p11_provider_token(w->prov, i);
		/* quiet: this runs every presence interval */
		if (!ks_token_wanted(tok, w->uri, 0))
			continue;
		pthread_mutex_lock(&ks->lmu);
		taken = ks_token_taken(ks, tok);
		idx = ks->nprepared;
		pthread_mutex_unlock(&ks->lmu);
		if (taken)
			continue;
		if (idx >= KS_MAX_TOKENS) {
			error("token \"%.64s\" arrived: more than %d tokens; "
			      "not served",
			    p11_token_label(tok), KS_MAX_TOKENS);
			ks_wait_end(ks, w, KS_WAIT_FAILED);
			return;
		}
		r = ks_take_token(ks, idx, tok, w->kind, w->value, w->pin);
		if (r == TS_ERR_P11_TOKEN_REMOVED)
			continue; /* gone again: looked for next time */
		if (r != 0) {
			error("token \"%.64s\" (serial %.16s) arrived but "
			      "could not log in; not trying again",
			    p11_token_label(tok), p11_token_serial(tok));
			ks_wait_end(ks, w, KS_WAIT_FAILED);
			return;
		}
		made = ks_make_keys(ks, idx);
		pthread_mutex_lock(&ks->lmu);
		ks->nslab += made;
		ks->nprepared = idx + 1;
		pthread_mutex_unlock(&ks->lmu);
		done = 1;
		logit("token \"%.64s\" (serial %.16s) arrived: %zu key(s)",
		    ks->tokens[idx].label, ks->tokens[idx].serial, made);
		if (write(ks->late_fd, &one, sizeof(one)) != sizeof(one))
			debug_f("eventfd: %s", strerror(errno));
	}
	/* after the loop: every token matching now used the wait's PIN */
	if (done)
		ks_wait_end(ks, w, KS_WAIT_DONE);
}

/* One look for every open wait; each module's slot list read once. */
static void
ks_hunt(struct keystore *ks)
{
	struct p11_provider *seen[KS_MAX_PROVIDERS];
	struct ks_wait *w;
	size_t i, j, nseen = 0;
	int r;

	for (i = 0; i < ks->nwaits; i++) {
		w = &ks->waits[i];
		if (atomic_load(&w->state) != KS_WAIT_OPEN)
			continue;
		for (j = 0; j < nseen && seen[j] != w->prov; j++)
			;
		if (j == nseen) {
			if ((r = p11_provider_refresh(w->prov)) != 0) {
				debug_fr(r, "slot list");
				continue;
			}
			seen[nseen++] = w->prov;
		}
		ks_hunt_wait(ks, w);
	}
}

static void *
ks_hunt_main(void *arg)
{
	struct keystore *ks = arg;

	pthread_mutex_lock(&ks->wmu);
	while (!ks->wstop) {
		if (!ks->hunt) {
			/* other wake-ups (watchers' bursts) just look early */
			ks_wait_ms_locked(
			    ks, ks->watch_ms > 0 ? ks->watch_ms : KS_HUNT_MS);
			if (ks->wstop)
				break;
		}
		ks->hunt = 0;
		pthread_mutex_unlock(&ks->wmu);
		ks_hunt(ks);
		if (!keystore_waiting(ks)) {
			debug_f("every token waited for arrived");
			return NULL;
		}
		pthread_mutex_lock(&ks->wmu);
	}
	pthread_mutex_unlock(&ks->wmu);
	return NULL;
}

int
ks_late_start(struct keystore *ks)
{
	int r;

	if (!keystore_waiting(ks))
		return 0;
	if ((r = pthread_create(
		 &ks->wthreads[ks->nwthreads], NULL, ks_hunt_main, ks)) != 0) {
		error_f("token hunter: pthread_create: %s", strerror(r));
		return TS_ERR_SYSTEM;
	}
	ks->nwthreads++;
	return 0;
}

void
keystore_adopt(struct keystore *ks, ks_key_hook hook, void *arg)
{
	struct ks_key *k;
	uint64_t v;
	size_t i, from, to, tfirst, tlast, nk;

	if (ks->late_fd >= 0 && read(ks->late_fd, &v, sizeof(v)) < 0 &&
	    errno != EAGAIN)
		debug_f("eventfd: %s", strerror(errno));
	pthread_mutex_lock(&ks->lmu);
	tfirst = keystore_token_count(ks);
	tlast = ks->nprepared;
	from = ks->nadopted;
	to = ks->nslab;
	ks->nadopted = to;
	pthread_mutex_unlock(&ks->lmu);
	/* the tokens first: a key's token is there before the key is */
	atomic_store_explicit(&ks->ntokens, tlast, memory_order_release);
	/* one at a time: the hook sees the keys adopted before this one */
	nk = keystore_count(ks);
	for (i = from; i < to; i++) {
		k = &ks->slab[i];
		if (hook != NULL && !hook(arg, k))
			continue;
		ks->view[nk++] = k;
		atomic_store_explicit(&ks->nkeys, nk, memory_order_release);
	}
	for (i = tfirst; i < tlast; i++)
		if (ks_watch_token(ks, i) != 0)
			error("token \"%.64s\": no presence watcher",
			    ks->tokens[i].label);
}
