/*
 * shim.c - a fault-injecting PKCS#11 module for tests (libtsshim.so).
 *
 * Loads the real module named by TS_SHIM_TARGET (default SoftHSM), passes
 * every call through, and injects the faults that the control file named
 * by TS_SHIM_CONTROL asks for (docs/internals/shim.md).  The control file
 * is stat()ed on every call and re-read only when its identity (inode,
 * size, mtime in ns) changes, so a test flips a fault by renaming a new
 * file into place and the very next call sees it.
 *
 * Locking: one mutex guards all shim state.  It is never held while a
 * thread sleeps (delays, hangs, C_WaitForSlotEvent poll with it released)
 * and never held across a pass-through call made for the application.  It
 * IS held across the few target calls the shim makes for itself (closing a
 * session it killed, logging out, reading a label); the target never calls
 * back into the shim, so that cannot deadlock.
 *
 * A session the shim "kills" (token removed, sessions closed) is marked
 * dead at once, so every later call on it fails without reaching the
 * target; the target session is closed only when no call is in flight on
 * it, since SoftHSM frees a session's state on close while another thread
 * may still be inside C_Sign with it.  A call that was in flight when its
 * session died has its result replaced by the error a real token gives
 * (removed_rv, or CKR_SESSION_CLOSED).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define SHIM_EXPORT	     __attribute__((visibility("default")))
#define DEFAULT_TARGET	     "/usr/lib/softhsm/libsofthsm2.so"
#define SHIM_LIBRARY_DESC    "tokensign fault-injecting shim"
#define BOGUS_HUGE_LEN	     0x7fffffffUL
#define BOGUS_OVERLONG_EXTRA 4096UL

enum dead_how { ALIVE = 0, DEAD_REMOVED, DEAD_CLOSED };

struct sess {
	CK_SESSION_HANDLE h;
	CK_SLOT_ID slot;
	enum dead_how dead;
	unsigned int inflight;
	int target_closed;
};

struct slot_rt {
	CK_SLOT_ID id;
	char label[SHIM_LABEL_LEN + 1];
	struct shim_slotcfg eff; /* settings in force */
	int nli_armed; /* next C_SignInit: USER_NOT_LOGGED_IN */
	int event; /* presence changed, for C_WaitForSlotEvent */
};

struct ctl_id {
	int exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CK_FUNCTION_LIST *tgt;
static CK_FUNCTION_LIST shim_list;
static char g_ctl_path[SHIM_PATH_MAX];
static char g_env_stats[SHIM_PATH_MAX];

static struct shim_cfg g_cfg;
static struct ctl_id g_ctl_ids[SHIM_MAX_CONTROL_FILES];
static int g_ctl_loaded;
static unsigned long g_ctl_gen; /* bumped when the control file changes */
static unsigned long g_init_gen; /* bumped by C_Finalize */
static int g_initialized;
static unsigned long g_calls[FN_MAX];
static unsigned long g_faults[FN_MAX];

static struct slot_rt *g_slots;
static size_t g_nslots;
static struct sess *g_sess;
static size_t g_nsess;

static void shim_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
shim_log(const char *fmt, ...)
{
	va_list ap;

	fputs("tsshim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void
copy_env(const char *name, char *dst, size_t dstlen)
{
	const char *v = getenv(name);

	dst[0] = '\0';
	if (v == NULL)
		return;
	if (strlen(v) >= dstlen) {
		shim_log("%s is too long; ignored", name);
		return;
	}
	memcpy(dst, v, strlen(v) + 1);
}

static void
load_target(void)
{
	CK_RV (*getfl)(CK_FUNCTION_LIST **) = NULL;
	const char *path = getenv("TS_SHIM_TARGET");
	void *dl;

	copy_env("TS_SHIM_CONTROL", g_ctl_path, sizeof(g_ctl_path));
	copy_env("TS_SHIM_STATS", g_env_stats, sizeof(g_env_stats));
	shim_cfg_defaults(&g_cfg);
	if (path == NULL || *path == '\0')
		path = DEFAULT_TARGET;
	/* Never dlclose()d: the target lives as long as the process. */
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		shim_log("cannot load target %.200s: %.200s", path, dlerror());
		return;
	}
	*(void **)&getfl = dlsym(dl, "C_GetFunctionList");
	if (getfl == NULL || getfl(&tgt) != CKR_OK || tgt == NULL) {
		shim_log("target %.200s has no function list", path);
		tgt = NULL;
	}
}

static int
ensure_target(void)
{
	pthread_once(&g_once, load_target);
	return tgt != NULL ? 0 : -1;
}

static void
sleep_us(unsigned long long us)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(us / 1000000ULL);
	ts.tv_nsec = (long)(us % 1000000ULL) * 1000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void
sleep_ms(unsigned long ms)
{
	sleep_us((unsigned long long)ms * 1000ULL);
}

/*
 * Microseconds, not milliseconds: a deadline kept in whole milliseconds
 * ends up to 1 ms early, and a 600 ms touch wait measured 599 ms.
 */
static unsigned long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL +
	    (unsigned long long)ts.tv_nsec / 1000ULL;
}

/* ---- statistics ---- */

/*
 * The stats file has a fixed layout: one line per entry point and one per
 * fault counter, each the same width whatever the count, so every update
 * is one pwrite() of the whole table over the old one, with no truncation
 * and no rename.  Rewriting the file per call through a temporary file and
 * rename() made signing through the shim 15 times slower.  Bytes of
 * counters that did not change are rewritten with themselves, so a reader
 * racing a write can only ever see a counter that is changing at that
 * moment torn.
 */
#define STATS_LINE 48 /* "fault.C_DecryptVerifyUpdate" + 20 digits + '\n' */

static int g_stats_fd = -1;
static char g_stats_open[SHIM_PATH_MAX];

static void
stats_line(char *dst, const char *prefix, enum shim_fn fn, unsigned long v)
{
	char name[STATS_LINE];
	int n;

	snprintf(name, sizeof(name), "%s%s", prefix, shim_fn_name(fn));
	n = snprintf(dst, STATS_LINE + 1, "%-*s %-*lu", 27, name, 19, v);
	if (n < 0 || n > STATS_LINE - 1)
		n = STATS_LINE - 1;
	memset(dst + n, ' ', (size_t)(STATS_LINE - 1 - n));
	dst[STATS_LINE - 1] = '\n';
}

static void
stats_write_locked(void)
{
	const char *path = g_cfg.stats[0] != '\0' ? g_cfg.stats : g_env_stats;
	static char buf[2 * FN_MAX * STATS_LINE + 1];
	size_t off = 0;
	ssize_t w;
	int i;

	if (*path == '\0')
		return;
	if (g_stats_fd < 0 || strcmp(path, g_stats_open) != 0) {
		if (g_stats_fd >= 0)
			close(g_stats_fd);
		g_stats_fd =
		    open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (g_stats_fd < 0)
			return;
		memcpy(g_stats_open, path, strlen(path) + 1);
	}
	for (i = 0; i < FN_MAX; i++, off += STATS_LINE)
		stats_line(buf + off, "", i, g_calls[i]);
	for (i = 0; i < FN_MAX; i++, off += STATS_LINE)
		stats_line(buf + off, "fault.", i, g_faults[i]);
	do {
		w = pwrite(g_stats_fd, buf, off, 0);
	} while (w < 0 && errno == EINTR);
}

static void
count_call_locked(enum shim_fn fn)
{
	g_calls[fn]++;
	stats_write_locked();
}

static CK_RV
count_fault_locked(enum shim_fn fn, CK_RV rv)
{
	g_faults[fn]++;
	stats_write_locked();
	return rv;
}

/* ---- sessions and slots ---- */

static struct sess *
sess_find_locked(CK_SESSION_HANDLE h)
{
	size_t i;

	for (i = 0; i < g_nsess; i++)
		if (g_sess[i].h == h)
			return &g_sess[i];
	return NULL;
}

static void
sess_drop_locked(struct sess *s)
{
	size_t i = (size_t)(s - g_sess);

	g_sess[i] = g_sess[--g_nsess];
}

static int
sess_add_locked(CK_SESSION_HANDLE h, CK_SLOT_ID slot)
{
	struct sess *s, *n;

	if ((s = sess_find_locked(h)) == NULL) {
		n = realloc(g_sess, (g_nsess + 1) * sizeof(*g_sess));
		if (n == NULL)
			return -1;
		g_sess = n;
		s = &g_sess[g_nsess++];
	}
	memset(s, 0, sizeof(*s));
	s->h = h;
	s->slot = slot;
	return 0;
}

static void
sess_close_target_locked(struct sess *s)
{
	if (s->inflight == 0 && !s->target_closed) {
		tgt->C_CloseSession(s->h);
		s->target_closed = 1;
	}
}

static void
sess_kill_slot_locked(CK_SLOT_ID slot, enum dead_how how)
{
	size_t i;

	for (i = 0; i < g_nsess; i++) {
		if (g_sess[i].slot != slot || g_sess[i].dead != ALIVE)
			continue;
		g_sess[i].dead = how;
		sess_close_target_locked(&g_sess[i]);
	}
}

static struct slot_rt *
slot_find_locked(CK_SLOT_ID id)
{
	size_t i;

	for (i = 0; i < g_nslots; i++)
		if (g_slots[i].id == id)
			return &g_slots[i];
	return NULL;
}

static void
target_label(CK_SLOT_ID id, char *out)
{
	CK_TOKEN_INFO ti;
	size_t n = SHIM_LABEL_LEN;

	out[0] = '\0';
	if (tgt->C_GetTokenInfo(id, &ti) != CKR_OK)
		return;
	memcpy(out, ti.label, SHIM_LABEL_LEN);
	while (n > 0 && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
}

/* Applies new settings to a slot, acting on what changed. */
static void
slot_transition_locked(struct slot_rt *rt, const struct shim_slotcfg *ne)
{
	if (rt->eff.present && !ne->present) {
		sess_kill_slot_locked(rt->id, DEAD_REMOVED);
		rt->event = 1;
		rt->nli_armed = 0;
	} else if (!rt->eff.present && ne->present) {
		rt->event = 1;
	}
	/* Counters fire when they take a new non-zero value, so a file that
	 * drops the key (back to 0) does not fire them again. */
	if (ne->close_sessions != 0 &&
	    ne->close_sessions != rt->eff.close_sessions)
		sess_kill_slot_locked(rt->id, DEAD_CLOSED);
	if (ne->not_logged_in != 0 &&
	    ne->not_logged_in != rt->eff.not_logged_in && ne->present)
		rt->nli_armed = 1;
	rt->eff = *ne;
}

static void
slot_set_label_locked(struct slot_rt *rt, const char *label)
{
	struct shim_slotcfg ne;

	if (strcmp(rt->label, label) == 0)
		return;
	memcpy(rt->label, label, strlen(label) + 1);
	shim_cfg_resolve(&g_cfg, 1, rt->id, rt->label, &ne);
	slot_transition_locked(rt, &ne);
}

/* Finds or registers a slot the target knows; NULL when it does not. */
static struct slot_rt *
slot_get_locked(CK_SLOT_ID id)
{
	struct slot_rt *rt, *n;
	CK_SLOT_INFO si;

	if ((rt = slot_find_locked(id)) != NULL)
		return rt;
	if (tgt->C_GetSlotInfo(id, &si) != CKR_OK)
		return NULL;
	n = realloc(g_slots, (g_nslots + 1) * sizeof(*g_slots));
	if (n == NULL)
		return NULL;
	g_slots = n;
	rt = &g_slots[g_nslots++];
	memset(rt, 0, sizeof(*rt));
	rt->id = id;
	target_label(id, rt->label);
	/* What the file says when a slot is first seen is the baseline:
	 * counters fire only when they change afterwards. */
	shim_cfg_resolve(&g_cfg, 1, id, rt->label, &rt->eff);
	return rt;
}

static void
slots_register_all_locked(void)
{
	CK_SLOT_ID ids[64];
	CK_ULONG n = sizeof(ids) / sizeof(ids[0]), i;

	if (tgt->C_GetSlotList(CK_FALSE, ids, &n) != CKR_OK)
		return;
	for (i = 0; i < n; i++)
		(void)slot_get_locked(ids[i]);
}

/* ---- the control file ---- */

static int
ctl_id_equal(const struct ctl_id *a, const struct ctl_id *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	    a->size == b->size && a->mtim.tv_sec == b->mtim.tv_sec &&
	    a->mtim.tv_nsec == b->mtim.tv_nsec;
}

static int
ctl_read(const char *path, char *buf, size_t max, size_t *lenp)
{
	ssize_t n;
	size_t len = 0;
	int fd;

	*lenp = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	while (len < max) {
		n = read(fd, buf + len, max - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len >= max) {
		shim_log("control file over %zu bytes; ignored", max - 1);
		return -1;
	}
	*lenp = len;
	return 0;
}

/*
 * TS_SHIM_CONTROL may name several files separated by ':' (at most
 * SHIM_MAX_CONTROL_FILES): they are read in order as one configuration,
 * each later file starting in a fresh "[all]" section.  A test writes the
 * first; a helper such as the PC/SC bridge (tests/lib/pcsc.sh) writes its
 * own, so neither overwrites the other's settings.
 */
static size_t
ctl_paths(char paths[][SHIM_PATH_MAX])
{
	const char *p = g_ctl_path, *e;
	size_t n = 0, len;

	while (*p != '\0' && n < SHIM_MAX_CONTROL_FILES) {
		e = strchr(p, ':');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		if (len > 0 && len < SHIM_PATH_MAX) {
			memcpy(paths[n], p, len);
			paths[n][len] = '\0';
			n++;
		}
		if (e == NULL)
			break;
		p = e + 1;
	}
	return n;
}

static void
ctl_refresh_locked(void)
{
	static struct shim_cfg ncfg;
	static char text[SHIM_CONTROL_MAX + 1];
	static char paths[SHIM_MAX_CONTROL_FILES][SHIM_PATH_MAX];
	struct ctl_id ids[SHIM_MAX_CONTROL_FILES];
	struct stat st;
	struct shim_slotcfg ne;
	char err[256] = "";
	size_t len = 0, i, n;
	int same = g_ctl_loaded;

	n = ctl_paths(paths);
	memset(ids, 0, sizeof(ids));
	for (i = 0; i < n; i++) {
		if (stat(paths[i], &st) == 0) {
			ids[i].exists = 1;
			ids[i].dev = st.st_dev;
			ids[i].ino = st.st_ino;
			ids[i].size = st.st_size;
			ids[i].mtim = st.st_mtim;
		}
		if (!ctl_id_equal(&ids[i], &g_ctl_ids[i]))
			same = 0;
	}
	if (same)
		return;
	g_ctl_loaded = 1;
	memcpy(g_ctl_ids, ids, sizeof(g_ctl_ids));
	g_ctl_gen++;
	shim_cfg_defaults(&ncfg);
	for (i = 0; i < n; i++) {
		if (!ids[i].exists)
			continue;
		if (ctl_read(paths[i], text, sizeof(text), &len) != 0)
			return;
		if ((i > 0 && shim_cfg_next_file(&ncfg) != 0) ||
		    shim_cfg_parse(text, len, &ncfg, err, sizeof(err)) != 0) {
			/* Keep the settings in force: half a config is worse
			 * than the previous one. */
			shim_log("control file %.200s: %s; ignored", paths[i],
			    err[0] != '\0' ? err : "too many sections");
			return;
		}
	}
	g_cfg = ncfg;
	for (i = 0; i < g_nslots; i++) {
		shim_cfg_resolve(
		    &g_cfg, 1, g_slots[i].id, g_slots[i].label, &ne);
		slot_transition_locked(&g_slots[i], &ne);
	}
}

static int
find_fail(const struct shim_slotcfg *c, enum shim_fn fn, CK_RV *rvp)
{
	size_t i;

	for (i = 0; i < c->nfails; i++) {
		if (c->fails[i].fn == fn) {
			*rvp = c->fails[i].rv;
			return 1;
		}
	}
	return 0;
}

/*
 * Waits, with the lock released, until the control file changes.  Returns
 * 0 then, or -1 with CKR_CRYPTOKI_NOT_INITIALIZED if C_Finalize came first.
 */
static int
wait_ctl_change_locked(CK_RV *rvp)
{
	unsigned long gen = g_ctl_gen, ig = g_init_gen;

	for (;;) {
		pthread_mutex_unlock(&g_lock);
		sleep_ms(g_cfg.poll_ms);
		pthread_mutex_lock(&g_lock);
		ctl_refresh_locked();
		if (g_init_gen != ig) {
			*rvp = CKR_CRYPTOKI_NOT_INITIALIZED;
			return -1;
		}
		if (g_ctl_gen != gen)
			return 0;
	}
}

/* Calls that name no slot or session: only "fail." applies. */
static int
global_enter(enum shim_fn fn, CK_RV *rvp)
{
	struct shim_slotcfg c;
	int r = 0;

	pthread_mutex_lock(&g_lock);
	ctl_refresh_locked();
	count_call_locked(fn);
	shim_cfg_resolve(&g_cfg, 0, 0, NULL, &c);
	if (find_fail(&c, fn, rvp)) {
		count_fault_locked(fn, *rvp);
		r = 1;
	}
	pthread_mutex_unlock(&g_lock);
	return r;
}

/*
 * Entry check for calls naming a slot.  absent_rv != CKR_OK makes the call
 * fail with it while the token is absent.  Returns 1 with *rvp set when
 * the call must not reach the target.
 */
static int
slot_enter(enum shim_fn fn, CK_SLOT_ID id, CK_RV absent_rv, CK_RV *rvp)
{
	struct slot_rt *rt;
	struct shim_slotcfg c;
	unsigned long delay = 0;
	int hung = 0;

	pthread_mutex_lock(&g_lock);
	ctl_refresh_locked();
	count_call_locked(fn);
	for (;;) {
		if ((rt = slot_get_locked(id)) == NULL) {
			shim_cfg_resolve(&g_cfg, 0, 0, NULL, &c);
			if (find_fail(&c, fn, rvp))
				goto fault;
			break;
		}
		if (find_fail(&rt->eff, fn, rvp))
			goto fault;
		if (rt->eff.hang && !hung) {
			if (wait_ctl_change_locked(rvp) != 0)
				goto fault;
			hung = 1;
			continue;
		}
		if (absent_rv != CKR_OK && !rt->eff.present) {
			*rvp = absent_rv;
			goto fault;
		}
		if (fn == FN_C_GetSlotInfo || fn == FN_C_GetTokenInfo)
			delay = rt->eff.info_delay_ms;
		break;
	}
	pthread_mutex_unlock(&g_lock);
	/* a module slow to answer about its slot (busy, locked inside) */
	if (delay > 0)
		sleep_ms(delay);
	return 0;
fault:
	count_fault_locked(fn, *rvp);
	pthread_mutex_unlock(&g_lock);
	return 1;
}

/* Does a fault apply to a call on session h now?  1 with *rvp if so. */
static int
sess_check_locked(enum shim_fn fn, CK_SESSION_HANDLE h, CK_RV *rvp)
{
	struct sess *s;
	struct slot_rt *rt;

	if ((s = sess_find_locked(h)) == NULL)
		return 0; /* not ours to judge: the target answers */
	rt = slot_find_locked(s->slot);
	if (s->dead != ALIVE) {
		if (s->dead == DEAD_REMOVED && rt != NULL && !rt->eff.present)
			*rvp = rt->eff.removed_rv;
		else
			*rvp = rt != NULL ? rt->eff.closed_rv
					  : CKR_SESSION_HANDLE_INVALID;
		return 1;
	}
	if (rt == NULL)
		return 0;
	if (!rt->eff.present) {
		*rvp = rt->eff.removed_rv;
		return 1;
	}
	if (find_fail(&rt->eff, fn, rvp))
		return 1;
	if (fn == rt->eff.not_logged_in_at && rt->nli_armed) {
		rt->nli_armed = 0;
		/* Log the token out for real, as a card reset would, at the
		 * moment the error is seen (mid-operation for C_Sign). */
		tgt->C_Logout(h);
		*rvp = CKR_USER_NOT_LOGGED_IN;
		return 1;
	}
	return 0;
}

#define ENTER_SIGN 1 /* C_Sign/C_SignFinal: delays and sign_hang apply */

/*
 * Entry check for calls on a session: faults, hangs and touch delays.
 * Returns 1 with *rvp when the call must not reach the target; otherwise
 * the call is in flight until sess_leave().
 */
static int
sess_enter(enum shim_fn fn, CK_SESSION_HANDLE h, int flags, CK_RV *rvp)
{
	struct sess *s;
	struct slot_rt *rt;
	unsigned long long deadline, now, step;

	pthread_mutex_lock(&g_lock);
	ctl_refresh_locked();
	count_call_locked(fn);
	if (sess_check_locked(fn, h, rvp))
		goto fault;
	if ((s = sess_find_locked(h)) == NULL)
		goto pass;
	rt = slot_find_locked(s->slot);
	if (rt != NULL &&
	    (rt->eff.hang || ((flags & ENTER_SIGN) && rt->eff.sign_hang))) {
		/* Released by any change to the control file; then the call
		 * goes on as the new settings say, without hanging again. */
		if (wait_ctl_change_locked(rvp) != 0)
			goto fault;
		if (sess_check_locked(fn, h, rvp))
			goto fault;
	}
	if ((s = sess_find_locked(h)) == NULL)
		goto pass;
	rt = slot_find_locked(s->slot);
	if ((flags & ENTER_SIGN) && rt != NULL && rt->eff.sign_delay_ms > 0) {
		/* A touch wait: the token may be pulled meanwhile. */
		deadline = now_us() + rt->eff.sign_delay_ms * 1000ULL;
		while ((now = now_us()) < deadline) {
			step = g_cfg.poll_ms * 1000ULL;
			if (deadline - now < step)
				step = deadline - now;
			pthread_mutex_unlock(&g_lock);
			sleep_us(step);
			pthread_mutex_lock(&g_lock);
			ctl_refresh_locked();
			if (sess_check_locked(fn, h, rvp))
				goto fault;
		}
	}
	if ((s = sess_find_locked(h)) != NULL)
		s->inflight++;
pass:
	pthread_mutex_unlock(&g_lock);
	return 0;
fault:
	count_fault_locked(fn, *rvp);
	pthread_mutex_unlock(&g_lock);
	return 1;
}

/* Ends an in-flight call; replaces rv if the session died meanwhile. */
static CK_RV
sess_leave(enum shim_fn fn, CK_SESSION_HANDLE h, CK_RV rv)
{
	struct sess *s;
	struct slot_rt *rt;

	pthread_mutex_lock(&g_lock);
	if ((s = sess_find_locked(h)) != NULL && s->inflight > 0) {
		s->inflight--;
		if (s->dead != ALIVE) {
			rt = slot_find_locked(s->slot);
			if (s->dead == DEAD_REMOVED && rt != NULL &&
			    !rt->eff.present)
				rv = rt->eff.removed_rv;
			else
				rv = CKR_SESSION_CLOSED;
			count_fault_locked(fn, rv);
			sess_close_target_locked(s);
		}
	}
	pthread_mutex_unlock(&g_lock);
	return rv;
}

static void
pad_copy(unsigned char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);

	if (n > dstlen)
		n = dstlen;
	memset(dst, ' ', dstlen);
	memcpy(dst, src, n);
}

/* ---- general-purpose functions ---- */

static CK_RV
shim_C_Initialize(void *args)
{
	CK_RV rv;

	if (ensure_target() != 0)
		return CKR_GENERAL_ERROR;
	if (global_enter(FN_C_Initialize, &rv))
		return rv;
	if ((rv = tgt->C_Initialize(args)) != CKR_OK)
		return rv;
	pthread_mutex_lock(&g_lock);
	g_initialized = 1;
	slots_register_all_locked();
	pthread_mutex_unlock(&g_lock);
	return rv;
}

static CK_RV
shim_C_Finalize(void *reserved)
{
	CK_RV rv;

	if (global_enter(FN_C_Finalize, &rv))
		return rv;
	pthread_mutex_lock(&g_lock);
	g_initialized = 0;
	g_init_gen++;
	free(g_sess);
	g_sess = NULL;
	g_nsess = 0;
	free(g_slots);
	g_slots = NULL;
	g_nslots = 0;
	pthread_mutex_unlock(&g_lock);
	return tgt->C_Finalize(reserved);
}

static CK_RV
shim_C_GetInfo(CK_INFO *info)
{
	CK_RV rv;

	if (global_enter(FN_C_GetInfo, &rv))
		return rv;
	if ((rv = tgt->C_GetInfo(info)) != CKR_OK)
		return rv;
	/* Our function list is the 2.40 layout whatever the target has. */
	info->cryptokiVersion.major = 2;
	info->cryptokiVersion.minor = 40;
	pad_copy(info->libraryDescription, sizeof(info->libraryDescription),
	    SHIM_LIBRARY_DESC);
	return CKR_OK;
}

SHIM_EXPORT CK_RV
C_GetFunctionList(CK_FUNCTION_LIST **list)
{
	CK_RV rv;

	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = NULL;
	if (ensure_target() != 0)
		return CKR_GENERAL_ERROR;
	if (global_enter(FN_C_GetFunctionList, &rv))
		return rv;
	*list = &shim_list;
	return CKR_OK;
}

/* PKCS#11 3.0 discovery, so 3.0 callers find us; we offer the 2.40 list. */
struct shim_interface {
	CK_UTF8CHAR *name;
	void *function_list;
	CK_FLAGS flags;
};

static CK_UTF8CHAR iface_name[] = "PKCS 11";
static struct shim_interface iface = { iface_name, &shim_list, 0 };

SHIM_EXPORT CK_RV C_GetInterfaceList(
    struct shim_interface *list, CK_ULONG *count);
SHIM_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR *name, CK_VERSION *version,
    struct shim_interface **out, CK_FLAGS flags);

SHIM_EXPORT CK_RV
C_GetInterfaceList(struct shim_interface *list, CK_ULONG *count)
{
	CK_RV rv;

	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if (ensure_target() != 0)
		return CKR_GENERAL_ERROR;
	if (global_enter(FN_C_GetInterfaceList, &rv))
		return rv;
	if (list == NULL) {
		*count = 1;
		return CKR_OK;
	}
	if (*count < 1) {
		*count = 1;
		return CKR_BUFFER_TOO_SMALL;
	}
	list[0] = iface;
	*count = 1;
	return CKR_OK;
}

SHIM_EXPORT CK_RV
C_GetInterface(CK_UTF8CHAR *name, CK_VERSION *version,
    struct shim_interface **out, CK_FLAGS flags)
{
	CK_RV rv;

	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	*out = NULL;
	if (ensure_target() != 0)
		return CKR_GENERAL_ERROR;
	if (global_enter(FN_C_GetInterface, &rv))
		return rv;
	if (name != NULL && strcmp((const char *)name, "PKCS 11") != 0)
		return CKR_ARGUMENTS_BAD;
	if (version != NULL && (version->major != 2 || version->minor != 40))
		return CKR_ARGUMENTS_BAD;
	if ((flags & ~iface.flags) != 0)
		return CKR_ARGUMENTS_BAD;
	*out = &iface;
	return CKR_OK;
}

/* ---- slots and tokens ---- */

static CK_RV
shim_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID *list, CK_ULONG *count)
{
	CK_SLOT_ID *all = NULL;
	CK_ULONG nall = 0, nout = 0, i;
	CK_SLOT_INFO si;
	struct slot_rt *rt;
	char label[SHIM_LABEL_LEN + 1];
	CK_RV rv;
	int keep;

	if (global_enter(FN_C_GetSlotList, &rv))
		return rv;
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	for (;;) {
		if ((rv = tgt->C_GetSlotList(CK_FALSE, NULL, &nall)) != CKR_OK)
			return rv;
		free(all);
		if ((all = calloc(nall + 1, sizeof(*all))) == NULL)
			return CKR_HOST_MEMORY;
		rv = tgt->C_GetSlotList(CK_FALSE, all, &nall);
		if (rv == CKR_OK)
			break;
		if (rv != CKR_BUFFER_TOO_SMALL)
			goto out;
	}
	for (i = 0; i < nall; i++) {
		if (tgt->C_GetSlotInfo(all[i], &si) != CKR_OK)
			continue;
		label[0] = '\0';
		if (si.flags & CKF_TOKEN_PRESENT)
			target_label(all[i], label);
		pthread_mutex_lock(&g_lock);
		if ((rt = slot_get_locked(all[i])) != NULL)
			slot_set_label_locked(rt, label);
		keep = !token_present ||
		    ((si.flags & CKF_TOKEN_PRESENT) &&
			(rt == NULL || rt->eff.present));
		pthread_mutex_unlock(&g_lock);
		if (keep)
			all[nout++] = all[i];
	}
	rv = CKR_OK;
	if (list != NULL) {
		if (*count < nout)
			rv = CKR_BUFFER_TOO_SMALL;
		else
			memcpy(list, all, nout * sizeof(*all));
	}
	*count = nout;
out:
	free(all);
	return rv;
}

static CK_RV
shim_C_GetSlotInfo(CK_SLOT_ID id, CK_SLOT_INFO *info)
{
	struct slot_rt *rt;
	CK_RV rv;

	if (slot_enter(FN_C_GetSlotInfo, id, CKR_OK, &rv))
		return rv;
	if ((rv = tgt->C_GetSlotInfo(id, info)) != CKR_OK)
		return rv;
	pthread_mutex_lock(&g_lock);
	if ((rt = slot_find_locked(id)) != NULL) {
		if (!rt->eff.present)
			info->flags &= ~CKF_TOKEN_PRESENT;
		if (rt->eff.removable)
			info->flags |= CKF_REMOVABLE_DEVICE;
		else
			info->flags &= ~CKF_REMOVABLE_DEVICE;
		if (rt->eff.has_desc)
			pad_copy(info->slotDescription,
			    sizeof(info->slotDescription),
			    rt->eff.slot_description);
	}
	pthread_mutex_unlock(&g_lock);
	return CKR_OK;
}

static CK_RV
shim_C_GetTokenInfo(CK_SLOT_ID id, CK_TOKEN_INFO *info)
{
	struct slot_rt *rt;
	char label[SHIM_LABEL_LEN + 1];
	size_t n = SHIM_LABEL_LEN;
	CK_RV rv;

	if (slot_enter(FN_C_GetTokenInfo, id, CKR_TOKEN_NOT_PRESENT, &rv))
		return rv;
	if ((rv = tgt->C_GetTokenInfo(id, info)) != CKR_OK)
		return rv;
	memcpy(label, info->label, SHIM_LABEL_LEN);
	while (n > 0 && label[n - 1] == ' ')
		n--;
	label[n] = '\0';
	pthread_mutex_lock(&g_lock);
	if ((rt = slot_find_locked(id)) != NULL) {
		slot_set_label_locked(rt, label);
		info->flags |= rt->eff.pin_flags;
	}
	pthread_mutex_unlock(&g_lock);
	return CKR_OK;
}

static CK_RV
shim_C_GetMechanismList(CK_SLOT_ID id, CK_MECHANISM_TYPE *list, CK_ULONG *count)
{
	CK_RV rv;

	if (slot_enter(FN_C_GetMechanismList, id, CKR_TOKEN_NOT_PRESENT, &rv))
		return rv;
	return tgt->C_GetMechanismList(id, list, count);
}

static CK_RV
shim_C_GetMechanismInfo(
    CK_SLOT_ID id, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
	CK_RV rv;

	if (slot_enter(FN_C_GetMechanismInfo, id, CKR_TOKEN_NOT_PRESENT, &rv))
		return rv;
	return tgt->C_GetMechanismInfo(id, type, info);
}

static CK_RV
shim_C_InitToken(
    CK_SLOT_ID id, CK_UTF8CHAR *pin, CK_ULONG pin_len, CK_UTF8CHAR *label)
{
	CK_RV rv;

	if (slot_enter(FN_C_InitToken, id, CKR_TOKEN_NOT_PRESENT, &rv))
		return rv;
	return tgt->C_InitToken(id, pin, pin_len, label);
}

static CK_RV
shim_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID *slot, void *reserved)
{
	unsigned long ig;
	size_t i;
	CK_RV rv = CKR_OK;

	(void)reserved;
	if (global_enter(FN_C_WaitForSlotEvent, &rv))
		return rv;
	if (slot == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&g_lock);
	ig = g_init_gen;
	for (;;) {
		if (!g_initialized || g_init_gen != ig) {
			rv = CKR_CRYPTOKI_NOT_INITIALIZED;
			break;
		}
		if (!g_cfg.slot_events) {
			rv = CKR_FUNCTION_NOT_SUPPORTED;
			break;
		}
		for (i = 0; i < g_nslots; i++)
			if (g_slots[i].event)
				break;
		if (i < g_nslots) {
			g_slots[i].event = 0;
			*slot = g_slots[i].id;
			rv = CKR_OK;
			break;
		}
		if (flags & CKF_DONT_BLOCK) {
			rv = CKR_NO_EVENT;
			break;
		}
		pthread_mutex_unlock(&g_lock);
		sleep_ms(g_cfg.poll_ms);
		pthread_mutex_lock(&g_lock);
		ctl_refresh_locked();
	}
	pthread_mutex_unlock(&g_lock);
	return rv;
}

/* ---- sessions ---- */

static CK_RV
shim_C_OpenSession(CK_SLOT_ID id, CK_FLAGS flags, void *app, CK_NOTIFY notify,
    CK_SESSION_HANDLE *session)
{
	CK_RV rv;

	if (slot_enter(FN_C_OpenSession, id, CKR_TOKEN_NOT_PRESENT, &rv))
		return rv;
	if ((rv = tgt->C_OpenSession(id, flags, app, notify, session)) !=
	    CKR_OK)
		return rv;
	pthread_mutex_lock(&g_lock);
	if (sess_add_locked(*session, id) != 0) {
		tgt->C_CloseSession(*session);
		*session = CK_INVALID_HANDLE;
		rv = CKR_HOST_MEMORY;
	}
	pthread_mutex_unlock(&g_lock);
	return rv;
}

static CK_RV
shim_C_CloseSession(CK_SESSION_HANDLE h)
{
	struct sess *s;
	CK_RV rv = CKR_OK;
	int fault;

	pthread_mutex_lock(&g_lock);
	ctl_refresh_locked();
	count_call_locked(FN_C_CloseSession);
	fault = sess_check_locked(FN_C_CloseSession, h, &rv);
	if ((s = sess_find_locked(h)) != NULL && s->dead != ALIVE) {
		/* Forget it; a call still in flight closes it in the target. */
		if (s->inflight == 0)
			sess_drop_locked(s);
	} else if (s != NULL && !fault) {
		sess_drop_locked(s);
	}
	if (fault)
		count_fault_locked(FN_C_CloseSession, rv);
	pthread_mutex_unlock(&g_lock);
	if (fault)
		return rv;
	return tgt->C_CloseSession(h);
}

static CK_RV
shim_C_CloseAllSessions(CK_SLOT_ID id)
{
	size_t i;
	CK_RV rv;

	if (slot_enter(FN_C_CloseAllSessions, id, CKR_OK, &rv))
		return rv;
	pthread_mutex_lock(&g_lock);
	for (i = 0; i < g_nsess;) {
		if (g_sess[i].slot == id && g_sess[i].inflight == 0)
			sess_drop_locked(&g_sess[i]);
		else
			i++;
	}
	pthread_mutex_unlock(&g_lock);
	return tgt->C_CloseAllSessions(id);
}

static CK_RV
shim_C_Login(
    CK_SESSION_HANDLE h, CK_USER_TYPE type, CK_UTF8CHAR *pin, CK_ULONG pin_len)
{
	struct sess *s;
	struct slot_rt *rt;
	CK_RV rv;
	int locked = 0;

	if (sess_enter(FN_C_Login, h, 0, &rv))
		return rv;
	pthread_mutex_lock(&g_lock);
	if ((s = sess_find_locked(h)) != NULL &&
	    (rt = slot_find_locked(s->slot)) != NULL &&
	    (rt->eff.pin_flags & CKF_USER_PIN_LOCKED) &&
	    (type == CKU_USER || type == CKU_CONTEXT_SPECIFIC)) {
		locked = 1;
		count_fault_locked(FN_C_Login, CKR_PIN_LOCKED);
	}
	pthread_mutex_unlock(&g_lock);
	if (locked)
		return sess_leave(FN_C_Login, h, CKR_PIN_LOCKED);
	rv = tgt->C_Login(h, type, pin, pin_len);
	return sess_leave(FN_C_Login, h, rv);
}

static CK_RV
shim_C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM *mech, CK_OBJECT_HANDLE key)
{
	CK_RV rv;

	if (sess_enter(FN_C_SignInit, h, 0, &rv))
		return rv;
	rv = tgt->C_SignInit(h, mech, key);
	return sess_leave(FN_C_SignInit, h, rv);
}

/*
 * An error from C_Sign/C_SignFinal ends the operation (PKCS#11 2.40 5.12),
 * so when the shim injects one on a live session it finishes the target's
 * operation and drops the result; otherwise the next C_SignInit would get
 * CKR_OPERATION_ACTIVE, which no real token answers there.
 */
static void
end_sign_op(CK_SESSION_HANDLE h, CK_BYTE *data, CK_ULONG data_len)
{
	static const size_t scratch_len = 2048; /* RSA 16384 fits */
	static CK_BYTE empty[1];
	CK_BYTE *scratch;
	CK_ULONG n = scratch_len;
	struct sess *s;
	int live;

	pthread_mutex_lock(&g_lock);
	live = (s = sess_find_locked(h)) != NULL && s->dead == ALIVE;
	pthread_mutex_unlock(&g_lock);
	if (!live || (scratch = malloc(scratch_len)) == NULL)
		return;
	if (data_len == (CK_ULONG)-1)
		(void)tgt->C_SignFinal(h, scratch, &n);
	else
		(void)tgt->C_Sign(
		    h, data != NULL ? data : empty, data_len, scratch, &n);
	free(scratch);
}

static CK_RV
shim_C_Sign(CK_SESSION_HANDLE h, CK_BYTE *data, CK_ULONG data_len, CK_BYTE *sig,
    CK_ULONG *sig_len)
{
	CK_RV rv;

	/* A length query is not the signature: no touch wait for it. */
	if (sess_enter(FN_C_Sign, h, sig != NULL ? ENTER_SIGN : 0, &rv)) {
		end_sign_op(h, data, data_len);
		return rv;
	}
	rv = tgt->C_Sign(h, data, data_len, sig, sig_len);
	return sess_leave(FN_C_Sign, h, rv);
}

static CK_RV
shim_C_SignFinal(CK_SESSION_HANDLE h, CK_BYTE *sig, CK_ULONG *sig_len)
{
	CK_RV rv;

	if (sess_enter(FN_C_SignFinal, h, sig != NULL ? ENTER_SIGN : 0, &rv)) {
		end_sign_op(h, NULL, (CK_ULONG)-1);
		return rv;
	}
	rv = tgt->C_SignFinal(h, sig, sig_len);
	return sess_leave(FN_C_SignFinal, h, rv);
}

static int
bogus_type(const struct shim_slotcfg *c, CK_ATTRIBUTE_TYPE t)
{
	size_t i;

	for (i = 0; i < c->nbogus_types; i++)
		if (c->bogus_types[i] == t)
			return 1;
	return 0;
}

static CK_RV
shim_C_GetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	struct shim_slotcfg c;
	struct sess *s;
	struct slot_rt *rt;
	CK_ULONG i;
	CK_RV rv;
	int lied = 0;

	if (sess_enter(FN_C_GetAttributeValue, h, 0, &rv))
		return rv;
	rv = tgt->C_GetAttributeValue(h, obj, tmpl, count);
	rv = sess_leave(FN_C_GetAttributeValue, h, rv);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE &&
	    rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL)
		return rv;
	pthread_mutex_lock(&g_lock);
	if ((s = sess_find_locked(h)) == NULL ||
	    (rt = slot_find_locked(s->slot)) == NULL ||
	    rt->eff.bogus_attr == BOGUS_NONE) {
		pthread_mutex_unlock(&g_lock);
		return rv;
	}
	c = rt->eff;
	for (i = 0; i < count; i++) {
		if (!bogus_type(&c, tmpl[i].type) ||
		    tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION)
			continue;
		switch (c.bogus_attr) {
		case BOGUS_NONE:
			break;
		case BOGUS_HUGE:
			tmpl[i].ulValueLen = BOGUS_HUGE_LEN;
			if (tmpl[i].pValue != NULL)
				rv = CKR_BUFFER_TOO_SMALL;
			lied = 1;
			break;
		case BOGUS_ZERO:
			tmpl[i].ulValueLen = 0;
			lied = 1;
			break;
		case BOGUS_UNAVAILABLE:
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			lied = 1;
			break;
		case BOGUS_OVERLONG:
			if (tmpl[i].pValue != NULL) {
				tmpl[i].ulValueLen += BOGUS_OVERLONG_EXTRA;
				lied = 1;
			}
			break;
		case BOGUS_TRUNCATE:
			if (tmpl[i].pValue != NULL && tmpl[i].ulValueLen > 0) {
				tmpl[i].ulValueLen--;
				lied = 1;
			}
			break;
		}
	}
	if (lied)
		count_fault_locked(FN_C_GetAttributeValue, rv);
	pthread_mutex_unlock(&g_lock);
	return rv;
}

/* ---- plain pass-through for the remaining session functions ---- */

#define PASS(fn, h, args)                              \
	do {                                           \
		CK_RV rv_;                             \
		if (sess_enter(FN_##fn, (h), 0, &rv_)) \
			return rv_;                    \
		rv_ = tgt->fn args;                    \
		return sess_leave(FN_##fn, (h), rv_);  \
	} while (0)

static CK_RV
shim_C_InitPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR *pin, CK_ULONG len)
{
	PASS(C_InitPIN, h, (h, pin, len));
}

static CK_RV
shim_C_SetPIN(CK_SESSION_HANDLE h, CK_UTF8CHAR *old, CK_ULONG old_len,
    CK_UTF8CHAR *new, CK_ULONG new_len)
{
	PASS(C_SetPIN, h, (h, old, old_len, new, new_len));
}

static CK_RV
shim_C_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO *info)
{
	PASS(C_GetSessionInfo, h, (h, info));
}

static CK_RV
shim_C_GetOperationState(CK_SESSION_HANDLE h, CK_BYTE *state, CK_ULONG *len)
{
	PASS(C_GetOperationState, h, (h, state, len));
}

static CK_RV
shim_C_SetOperationState(CK_SESSION_HANDLE h, CK_BYTE *state, CK_ULONG len,
    CK_OBJECT_HANDLE enc, CK_OBJECT_HANDLE auth)
{
	PASS(C_SetOperationState, h, (h, state, len, enc, auth));
}

static CK_RV
shim_C_Logout(CK_SESSION_HANDLE h)
{
	PASS(C_Logout, h, (h));
}

static CK_RV
shim_C_CreateObject(CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG count,
    CK_OBJECT_HANDLE *obj)
{
	PASS(C_CreateObject, h, (h, tmpl, count, obj));
}

static CK_RV
shim_C_CopyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *tmpl,
    CK_ULONG count, CK_OBJECT_HANDLE *out)
{
	PASS(C_CopyObject, h, (h, obj, tmpl, count, out));
}

static CK_RV
shim_C_DestroyObject(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj)
{
	PASS(C_DestroyObject, h, (h, obj));
}

static CK_RV
shim_C_GetObjectSize(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ULONG *size)
{
	PASS(C_GetObjectSize, h, (h, obj, size));
}

static CK_RV
shim_C_SetAttributeValue(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj,
    CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	PASS(C_SetAttributeValue, h, (h, obj, tmpl, count));
}

static CK_RV
shim_C_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	PASS(C_FindObjectsInit, h, (h, tmpl, count));
}

static CK_RV
shim_C_FindObjects(
    CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *count)
{
	PASS(C_FindObjects, h, (h, objs, max, count));
}

static CK_RV
shim_C_FindObjectsFinal(CK_SESSION_HANDLE h)
{
	PASS(C_FindObjectsFinal, h, (h));
}

/* Functions shaped (session, mechanism, key). */
#define MECH_KEY(fn)                                                  \
	static CK_RV shim_##fn(                                       \
	    CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE k) \
	{                                                             \
		PASS(fn, h, (h, m, k));                               \
	}
/* Functions shaped (session, in, in_len, out, out_len). */
#define IN_OUT(fn)                                               \
	static CK_RV shim_##fn(CK_SESSION_HANDLE h, CK_BYTE *in, \
	    CK_ULONG in_len, CK_BYTE *out, CK_ULONG *out_len)    \
	{                                                        \
		PASS(fn, h, (h, in, in_len, out, out_len));      \
	}
/* Functions shaped (session, in, in_len). */
#define IN_ONLY(fn)                                            \
	static CK_RV shim_##fn(                                \
	    CK_SESSION_HANDLE h, CK_BYTE *in, CK_ULONG in_len) \
	{                                                      \
		PASS(fn, h, (h, in, in_len));                  \
	}
/* Functions shaped (session, out, out_len). */
#define OUT_ONLY(fn)                                              \
	static CK_RV shim_##fn(                                   \
	    CK_SESSION_HANDLE h, CK_BYTE *out, CK_ULONG *out_len) \
	{                                                         \
		PASS(fn, h, (h, out, out_len));                   \
	}

MECH_KEY(C_EncryptInit)
IN_OUT(C_Encrypt)
IN_OUT(C_EncryptUpdate)
OUT_ONLY(C_EncryptFinal)
MECH_KEY(C_DecryptInit)
IN_OUT(C_Decrypt)
IN_OUT(C_DecryptUpdate)
OUT_ONLY(C_DecryptFinal)
IN_OUT(C_Digest)
IN_ONLY(C_DigestUpdate)
OUT_ONLY(C_DigestFinal)
IN_ONLY(C_SignUpdate)
MECH_KEY(C_SignRecoverInit)
IN_OUT(C_SignRecover)
MECH_KEY(C_VerifyInit)
IN_ONLY(C_VerifyUpdate)
MECH_KEY(C_VerifyRecoverInit)
IN_OUT(C_VerifyRecover)
IN_OUT(C_DigestEncryptUpdate)
IN_OUT(C_DecryptDigestUpdate)
IN_OUT(C_SignEncryptUpdate)
IN_OUT(C_DecryptVerifyUpdate)
IN_ONLY(C_SeedRandom)
IN_ONLY(C_GenerateRandom)

static CK_RV
shim_C_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM *m)
{
	PASS(C_DigestInit, h, (h, m));
}

static CK_RV
shim_C_DigestKey(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k)
{
	PASS(C_DigestKey, h, (h, k));
}

static CK_RV
shim_C_Verify(CK_SESSION_HANDLE h, CK_BYTE *data, CK_ULONG data_len,
    CK_BYTE *sig, CK_ULONG sig_len)
{
	PASS(C_Verify, h, (h, data, data_len, sig, sig_len));
}

static CK_RV
shim_C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE *sig, CK_ULONG sig_len)
{
	PASS(C_VerifyFinal, h, (h, sig, sig_len));
}

static CK_RV
shim_C_GenerateKey(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_ATTRIBUTE *tmpl,
    CK_ULONG count, CK_OBJECT_HANDLE *key)
{
	PASS(C_GenerateKey, h, (h, m, tmpl, count, key));
}

static CK_RV
shim_C_GenerateKeyPair(CK_SESSION_HANDLE h, CK_MECHANISM *m,
    CK_ATTRIBUTE *pub_tmpl, CK_ULONG pub_count, CK_ATTRIBUTE *priv_tmpl,
    CK_ULONG priv_count, CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	PASS(C_GenerateKeyPair, h,
	    (h, m, pub_tmpl, pub_count, priv_tmpl, priv_count, pub, priv));
}

static CK_RV
shim_C_WrapKey(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE wkey,
    CK_OBJECT_HANDLE key, CK_BYTE *out, CK_ULONG *out_len)
{
	PASS(C_WrapKey, h, (h, m, wkey, key, out, out_len));
}

static CK_RV
shim_C_UnwrapKey(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE ukey,
    CK_BYTE *in, CK_ULONG in_len, CK_ATTRIBUTE *tmpl, CK_ULONG count,
    CK_OBJECT_HANDLE *key)
{
	PASS(C_UnwrapKey, h, (h, m, ukey, in, in_len, tmpl, count, key));
}

static CK_RV
shim_C_DeriveKey(CK_SESSION_HANDLE h, CK_MECHANISM *m, CK_OBJECT_HANDLE base,
    CK_ATTRIBUTE *tmpl, CK_ULONG count, CK_OBJECT_HANDLE *key)
{
	PASS(C_DeriveKey, h, (h, m, base, tmpl, count, key));
}

static CK_RV
shim_C_GetFunctionStatus(CK_SESSION_HANDLE h)
{
	PASS(C_GetFunctionStatus, h, (h));
}

static CK_RV
shim_C_CancelFunction(CK_SESSION_HANDLE h)
{
	PASS(C_CancelFunction, h, (h));
}

static CK_FUNCTION_LIST shim_list = {
	.version = { 2, 40 },
	.C_Initialize = shim_C_Initialize,
	.C_Finalize = shim_C_Finalize,
	.C_GetInfo = shim_C_GetInfo,
	.C_GetFunctionList = C_GetFunctionList,
	.C_GetSlotList = shim_C_GetSlotList,
	.C_GetSlotInfo = shim_C_GetSlotInfo,
	.C_GetTokenInfo = shim_C_GetTokenInfo,
	.C_GetMechanismList = shim_C_GetMechanismList,
	.C_GetMechanismInfo = shim_C_GetMechanismInfo,
	.C_InitToken = shim_C_InitToken,
	.C_InitPIN = shim_C_InitPIN,
	.C_SetPIN = shim_C_SetPIN,
	.C_OpenSession = shim_C_OpenSession,
	.C_CloseSession = shim_C_CloseSession,
	.C_CloseAllSessions = shim_C_CloseAllSessions,
	.C_GetSessionInfo = shim_C_GetSessionInfo,
	.C_GetOperationState = shim_C_GetOperationState,
	.C_SetOperationState = shim_C_SetOperationState,
	.C_Login = shim_C_Login,
	.C_Logout = shim_C_Logout,
	.C_CreateObject = shim_C_CreateObject,
	.C_CopyObject = shim_C_CopyObject,
	.C_DestroyObject = shim_C_DestroyObject,
	.C_GetObjectSize = shim_C_GetObjectSize,
	.C_GetAttributeValue = shim_C_GetAttributeValue,
	.C_SetAttributeValue = shim_C_SetAttributeValue,
	.C_FindObjectsInit = shim_C_FindObjectsInit,
	.C_FindObjects = shim_C_FindObjects,
	.C_FindObjectsFinal = shim_C_FindObjectsFinal,
	.C_EncryptInit = shim_C_EncryptInit,
	.C_Encrypt = shim_C_Encrypt,
	.C_EncryptUpdate = shim_C_EncryptUpdate,
	.C_EncryptFinal = shim_C_EncryptFinal,
	.C_DecryptInit = shim_C_DecryptInit,
	.C_Decrypt = shim_C_Decrypt,
	.C_DecryptUpdate = shim_C_DecryptUpdate,
	.C_DecryptFinal = shim_C_DecryptFinal,
	.C_DigestInit = shim_C_DigestInit,
	.C_Digest = shim_C_Digest,
	.C_DigestUpdate = shim_C_DigestUpdate,
	.C_DigestKey = shim_C_DigestKey,
	.C_DigestFinal = shim_C_DigestFinal,
	.C_SignInit = shim_C_SignInit,
	.C_Sign = shim_C_Sign,
	.C_SignUpdate = shim_C_SignUpdate,
	.C_SignFinal = shim_C_SignFinal,
	.C_SignRecoverInit = shim_C_SignRecoverInit,
	.C_SignRecover = shim_C_SignRecover,
	.C_VerifyInit = shim_C_VerifyInit,
	.C_Verify = shim_C_Verify,
	.C_VerifyUpdate = shim_C_VerifyUpdate,
	.C_VerifyFinal = shim_C_VerifyFinal,
	.C_VerifyRecoverInit = shim_C_VerifyRecoverInit,
	.C_VerifyRecover = shim_C_VerifyRecover,
	.C_DigestEncryptUpdate = shim_C_DigestEncryptUpdate,
	.C_DecryptDigestUpdate = shim_C_DecryptDigestUpdate,
	.C_SignEncryptUpdate = shim_C_SignEncryptUpdate,
	.C_DecryptVerifyUpdate = shim_C_DecryptVerifyUpdate,
	.C_GenerateKey = shim_C_GenerateKey,
	.C_GenerateKeyPair = shim_C_GenerateKeyPair,
	.C_WrapKey = shim_C_WrapKey,
	.C_UnwrapKey = shim_C_UnwrapKey,
	.C_DeriveKey = shim_C_DeriveKey,
	.C_SeedRandom = shim_C_SeedRandom,
	.C_GenerateRandom = shim_C_GenerateRandom,
	.C_GetFunctionStatus = shim_C_GetFunctionStatus,
	.C_CancelFunction = shim_C_CancelFunction,
	.C_WaitForSlotEvent = shim_C_WaitForSlotEvent,
};
