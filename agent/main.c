/*
 * main.c - tokensign-agent: options, start-up hardening, daemonizing,
 * socket activation, signals and reload (style.md section 6).
 *
 * Start-up order matters: sanitise fds 0-2, no core dumps / not dumpable,
 * closefrom (keeping socket-activated fds), create the socket (umask
 * 0177, fresh 0700 dir), fork to the background, and only then load the
 * PKCS#11 modules: PKCS#11 state does not survive a fork.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/audit.h"
#include "agent/config.h"
#include "agent/conn.h"
#include "agent/dispatch.h"
#include "agent/keystore.h"
#include "agent/listen.h"
#include "agent/listen_tls.h"
#include "agent/loop.h"
#include "agent/sshproto.h"
#include "agent/policy.h"
#include "agent/policyrules.h"
#include "agent/readers.h"
#include "agent/tls.h"
#include "agent/tlskey.h"
#include "agent/worker.h"
#include "common/err.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "common/xmalloc.h"
#include "pkcs11/provider.h"
#include "pkcs11/uri.h"

#define AGENT_STOP_GRACE_MS 5000
/*
 * After the loop: how long a module call that began after its last check
 * (presence watchers keep checking) may take to end.
 */
#define AGENT_STOP_CALLS_MS 500
#define AGENT_MAX_CLI	    128

struct agent {
	char *config_path;
	char *cli[AGENT_MAX_CLI]; /* options as config lines, after the file */
	size_t ncli;
	struct agent_config cfg;
	struct loop *loop;
	struct keystore *ks;
	struct readers *readers; /* issue 6: PC/SC card events */
	struct audit *audit;
	struct dispatch_ctx *ctx;
	struct worker_pool *pool;
	struct connmgr *conns;
	struct listener *listener;
	/* issue 5: mutual-TLS listener and policy rule file */
	const char *listen_tls;
	struct tls_server_opts tlsopt;
	struct tls_server *tls;
	struct tlskey *tlskey; /* --tls-key pkcs11:... */
	struct tls_listener *tls_listener;
	const char *policy_path;
	struct policyrules *rules;
	uint64_t stop_deadline;
	int stopping;
	int sigfd;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tokensign-agent [-D] [-d] [-a SOCKET] [-s | -c] "
	    "[-t PIN_TIMEOUT]\n"
	    "           --module PATH [--module-allow PATTERNS] [--token "
	    "URI]...\n"
	    "           [--pin-source FILE | --pin-env VAR] [--config FILE]\n"
	    "           [--audit FILE] [--key KEY]... [--confirm KEY]...\n"
	    "           [--allow-uid USER]... [--allow-group GROUP]...\n"
	    "           [--max-connections N] [--workers N]\n"
	    "           [--policy FILE] [--listen tls://ADDR:PORT --tls-cert F "
	    "--tls-key F|pkcs11:URI\n"
	    "            --client-ca F [--crl F] [--tls12]]\n");
}

/*
 * A PKCS#11 URI given on the command line must not carry pin-value: argv
 * is readable by every user (/proc/PID/cmdline).  As `tokensign pkcs11`
 * does; a URI that does not parse is left for the real parse to judge.
 */
static void
cli_uri_check(const char *opt, const char *value)
{
	struct p11_uri *uri = NULL;
	char err[P11_URI_ERRBUF_SIZE];
	int pin;

	if (strncasecmp(value, "pkcs11:", 7) != 0 ||
	    p11_uri_parse(value, &uri, err, sizeof(err)) != 0)
		return;
	pin = p11_uri_get(uri, P11_URI_PIN_VALUE) != NULL;
	p11_uri_free(uri);
	if (pin) {
		fprintf(stderr,
		    "tokensign-agent: --%s: refusing a URI with pin-value on "
		    "the command line (other users can read it); use "
		    "--pin-source FILE or --pin-env VAR\n",
		    opt);
		exit(2);
	}
}

static void
cli_add(struct agent *a, const char *key, const char *value)
{
	if (strchr(value, '"') != NULL || strchr(value, '\n') != NULL) {
		fprintf(stderr,
		    "tokensign-agent: %s: value may not contain "
		    "'\"' or a newline\n",
		    key);
		exit(2);
	}
	if (a->ncli >= AGENT_MAX_CLI) {
		fprintf(stderr, "tokensign-agent: too many options\n");
		exit(2);
	}
	a->cli[a->ncli++] = xasprintf("%s \"%s\"", key, value);
}

/* Builds a config: the file (if any), then the command line on top. */
static int
build_config(struct agent *a, struct agent_config *c, char *why, size_t wl)
{
	char lwhy[256];
	size_t i;
	int r;

	config_init(c);
	if (a->config_path != NULL &&
	    (r = config_load(a->config_path, c, why, wl)) != 0)
		goto fail;
	for (i = 0; i < a->ncli; i++)
		if ((r = config_line(c, a->cli[i], lwhy, sizeof(lwhy))) != 0) {
			snprintf(why, wl, "command line: %s", lwhy);
			goto fail;
		}
	return 0;
fail:
	config_free(c);
	return r;
}

static struct policy *
build_policy(const struct agent_config *c)
{
	struct policy *p;
	size_t i;
	int r = 0;

	if ((p = policy_new(getuid())) == NULL)
		fatal_f("out of memory");
	for (i = 0; i < c->nallow_uids; i++)
		r |= policy_allow_uid(p, c->allow_uids[i]);
	for (i = 0; i < c->nallow_gids; i++)
		r |= policy_allow_gid(p, c->allow_gids[i]);
	for (i = 0; i < c->ndigest_uids; i++)
		r |= policy_allow_digest_uid(p, c->digest_uids[i]);
	if (c->raw_digest == 0)
		policy_set_digest_enabled(p, 0);
	if (r != 0)
		fatal_f("policy lists overflow");
	return p;
}

/*
 * Checks that each of refs[0..n) names one key; one naming none is fine
 * while some token is still waited for (it may be on that token).
 */
static int
check_refs(struct agent *a, const char *what, char *const *refs, size_t n,
    char *why, size_t wl)
{
	struct ks_key *k;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		r = keystore_lookup(a->ks, refs[i], strlen(refs[i]), &k);
		if (r == TS_ERR_P11_KEY_NOT_FOUND && keystore_waiting(a->ks)) {
			debug("%s \"%.100s\": not here yet", what, refs[i]);
			continue;
		}
		if (r != 0) {
			snprintf(why, wl, "%s \"%.100s\": %s", what, refs[i],
			    ts_err(r));
			return TS_ERR_CONFIG;
		}
	}
	return 0;
}

/*
 * keystore_adopt() hook for a key on a token that arrived after start:
 * the --key filter and the per-key config of the current config, applied
 * before any client can see the key.  A reference matches the key by id,
 * label or URI (ks_key_matches()); confirm and touch_timeout apply to
 * every key a reference matches, the safe direction.
 */
/*
 * Whether ref names late key k and no key served yet: at start a
 * reference naming two keys is refused as ambiguous, so one that already
 * names a key never admits a second (--key) or widens ssh to it.
 */
static int
late_ref(struct agent *a, struct ks_key *k, const char *ref)
{
	struct ks_key *o;

	return ks_key_matches(k, ref) &&
	    keystore_lookup(a->ks, ref, strlen(ref), &o) ==
	    TS_ERR_P11_KEY_NOT_FOUND;
}

static int
late_key(void *arg, struct ks_key *k)
{
	struct agent *a = arg;
	const struct agent_config *c = &a->cfg;
	size_t i;
	int keep = c->nkeys == 0;

	for (i = 0; i < c->nkeys && !keep; i++)
		keep = late_ref(a, k, c->keys[i]);
	if (!keep) {
		logit("key %s \"%.64s\" on token \"%.64s\": not named by "
		      "--key (or its reference names a key served already); "
		      "not served",
		    ks_key_id(k), ks_key_label(k), ks_key_token_label(k));
		return 0;
	}
	ks_key_set_touch_timeout(k, 0);
	ks_key_set_confirm(k, 0);
	ks_key_set_ssh(k, SSHPROTO_KEY_DEFAULT);
	for (i = 0; i < c->nssh; i++)
		if (late_ref(a, k, c->ssh[i]))
			ks_key_set_ssh(k, c->ssh_mode[i]);
	for (i = 0; i < c->nconfirm; i++)
		if (ks_key_matches(k, c->confirm[i]))
			ks_key_set_confirm(k, 1);
	for (i = 0; i < c->ntouch; i++)
		if (ks_key_matches(k, c->touch[i]))
			ks_key_set_touch_timeout(
			    k, (unsigned)c->touch_s[i] * 1000);
	logit("key %s \"%.64s\" on token \"%.64s\": served", ks_key_id(k),
	    ks_key_label(k), ks_key_token_label(k));
	return 1;
}

static void
on_late_tokens(struct loop *l, int fd, int revents, void *arg)
{
	struct agent *a = arg;

	(void)l;
	(void)fd;
	(void)revents;
	keystore_adopt(a->ks, late_key, a);
}

/* Applies the parts of a config that can change while running. */
static int
apply_runtime(
    struct agent *a, const struct agent_config *c, char *why, size_t wl)
{
	struct conn_limits lim;
	struct policy *pol;
	struct ks_key *k;
	const char *askpass;
	size_t i;
	int r;

	/* Check the key references before changing anything. */
	if ((r = check_refs(a, "confirm", c->confirm, c->nconfirm, why, wl)) !=
		0 ||
	    (r = check_refs(a, "ssh", c->ssh, c->nssh, why, wl)) != 0 ||
	    (r = check_refs(
		 a, "touch_timeout", c->touch, c->ntouch, why, wl)) != 0)
		return r;
	for (i = 0; i < keystore_count(a->ks); i++) {
		ks_key_set_touch_timeout(keystore_get(a->ks, i), 0);
		ks_key_set_confirm(keystore_get(a->ks, i), 0);
		ks_key_set_ssh(keystore_get(a->ks, i), SSHPROTO_KEY_DEFAULT);
	}
	for (i = 0; i < c->nssh; i++)
		if (keystore_lookup(a->ks, c->ssh[i], strlen(c->ssh[i]), &k) ==
		    0)
			ks_key_set_ssh(k, c->ssh_mode[i]);
	for (i = 0; i < c->nconfirm; i++)
		if (keystore_lookup(
			a->ks, c->confirm[i], strlen(c->confirm[i]), &k) == 0)
			ks_key_set_confirm(k, 1);
	for (i = 0; i < c->ntouch; i++)
		if (keystore_lookup(
			a->ks, c->touch[i], strlen(c->touch[i]), &k) == 0)
			ks_key_set_touch_timeout(
			    k, (unsigned)c->touch_s[i] * 1000);
	pol = build_policy(c);
	policy_set_rules(pol, a->rules);
	dispatch_set_policy(a->ctx, pol);
	policy_unref(pol);
	askpass = c->askpass != NULL ? c->askpass : getenv(TS_ENV_ASKPASS);
	dispatch_set_askpass(a->ctx, askpass);
	keystore_set_pin_timeout(
	    a->ks, c->pin_timeout > 0 ? (unsigned)c->pin_timeout : 0);
	memset(&lim, 0, sizeof(lim));
	lim.max_conns = c->max_conns > 0 ? (unsigned)c->max_conns : 0;
	lim.idle_ms =
	    c->idle_timeout > 0 ? (unsigned)c->idle_timeout * 1000 : 0;
	lim.frame_ms =
	    c->frame_timeout > 0 ? (unsigned)c->frame_timeout * 1000 : 0;
	lim.write_ms =
	    c->write_timeout > 0 ? (unsigned)c->write_timeout * 1000 : 0;
	if (a->conns != NULL)
		connmgr_set_limits(a->conns, &lim);
	return 0;
}

static int
same_str(const char *x, const char *y)
{
	return (x == NULL && y == NULL) ||
	    (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* SIGHUP for issue 5: policy file, certificates, CRL; old kept on error. */
static void
reload_tls(struct agent *a)
{
	char why[512];

	if (a->rules != NULL && a->policy_path != NULL) {
		if (policyrules_reload(
			a->rules, a->policy_path, why, sizeof(why)) != 0)
			error("policy reload failed, keeping the old policy: "
			      "%s",
			    why);
		else
			logit("policy reloaded: %zu rules",
			    policyrules_count(a->rules));
	}
	if (a->tls != NULL && tls_server_reload(a->tls) == 0)
		logit("TLS certificates and CRL reloaded");
}

static void
reload(struct agent *a)
{
	struct agent_config c;
	char why[512];
	int r;

	reload_tls(a);
	if ((r = build_config(a, &c, why, sizeof(why))) != 0) {
		error("reload failed, keeping the old configuration: %s", why);
		return;
	}
	if ((r = apply_runtime(a, &c, why, sizeof(why))) != 0) {
		error("reload failed, keeping the old configuration: %s", why);
		config_free(&c);
		return;
	}
	if (c.nmodules != a->cfg.nmodules || c.ntokens != a->cfg.ntokens ||
	    c.nkeys != a->cfg.nkeys || !same_str(c.audit, a->cfg.audit) ||
	    !same_str(c.socket, a->cfg.socket))
		logit("reload: module, token, audit and socket changes take "
		      "effect after a restart");
	config_free(&a->cfg);
	a->cfg = c;
	logit("configuration reloaded");
}

static void
stop_check(struct loop *l, void *arg)
{
	struct agent *a = arg;

	/* the grace covers module calls too: a slow token may still answer */
	if ((connmgr_busy(a->conns) == 0 && connmgr_count(a->conns) == 0 &&
		tls_listener_running(a->tls_listener) == 0 &&
		keystore_calls_running(a->ks, 0) == 0) ||
	    loop_now_ms() > a->stop_deadline)
		loop_stop(l);
}

static void
on_signal(struct loop *l, int fd, int rev, void *arg)
{
	struct agent *a = arg;
	struct signalfd_siginfo si;

	(void)rev;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			logit("SIGHUP: reloading configuration");
			reload(a);
			continue;
		}
		if (a->stopping)
			continue;
		logit("signal %u: finishing in-flight requests and exiting",
		    si.ssi_signo);
		a->stopping = 1;
		listener_stop(a->listener);
		tls_listener_stop(a->tls_listener);
		connmgr_shutdown(a->conns);
		a->stop_deadline = loop_now_ms() + AGENT_STOP_GRACE_MS;
		if (loop_add_timer(l, 20, 1, stop_check, a) < 0)
			loop_stop(l);
	}
}

/*
 * After SIGTERM's grace period: module calls still running (requests at
 * workers, a presence check, a TLS handshake's signature) belong to a
 * token that stopped answering.  Logging it out, joining its threads and
 * freeing what they use would wait for it, maybe for ever: remove the
 * socket and exit now.  Audit lines are synced as they are written; the
 * stuck calls' own lines are never written, since their calls never end.
 */
static void
stop_or_abandon(struct agent *a)
{
	struct timespec ts = { 0, 50 * 1000000L };
	uint64_t until = loop_now_ms() + AGENT_STOP_CALLS_MS;
	size_t calls;
	unsigned hs;

	while ((keystore_calls_running(a->ks, 0) > 0 ||
		   tls_listener_running(a->tls_listener) > 0) &&
	    loop_now_ms() < until)
		(void)nanosleep(&ts, NULL);
	/*
	 * Requests at workers without a module call (a confirmation prompt,
	 * which times out) are waited for as before.
	 */
	calls = keystore_calls_running(a->ks, 1);
	hs = tls_listener_running(a->tls_listener);
	if (calls == 0 && hs == 0)
		return;
	if (hs > 0)
		error("%u TLS handshake(s) still waiting for the server key's "
		      "token",
		    hs);
	listener_free(a->listener); /* the socket goes */
	error("exiting without waiting for them%s",
	    calls > 0 ? "; the token(s) above are not logged out" : "");
	_exit(1);
}

static void
expire_tick(struct loop *l, void *arg)
{
	struct agent *a = arg;

	(void)l;
	keystore_expire(a->ks);
}

static enum ks_pin_kind
pin_kind(enum config_pin k)
{
	return k == CONFIG_PIN_FILE ? KS_PIN_FILE
	    : k == CONFIG_PIN_ENV   ? KS_PIN_ENV
				    : KS_PIN_NONE;
}

/* Token spec t's PIN source: its own, else the agent-wide one. */
static enum ks_pin_kind
token_pin_kind(const struct agent_config *c, size_t t)
{
	return pin_kind(c->tokens[t].pin_kind != CONFIG_PIN_UNSET
		? c->tokens[t].pin_kind
		: c->pin_kind);
}

static const char *
token_pin_value(const struct agent_config *c, size_t t)
{
	return c->tokens[t].pin_kind != CONFIG_PIN_UNSET
	    ? c->tokens[t].pin_value
	    : c->pin_value;
}

/*
 * Wipes an environment variable's value in place (the initial environment
 * block is what /proc/PID/environ shows) and removes it.
 */
static void
scrub_env(const char *name)
{
	char *v = getenv(name);

	if (v != NULL)
		explicit_bzero(v, strlen(v));
	unsetenv(name);
}

/* Threads for TLS handshakes signed by a token key (listen_tls.h). */
#define AGENT_TLS_HS_THREADS 4

/* Default token presence check interval (config presence_poll_ms). */
#define AGENT_PRESENCE_MS 250

/* Loads modules, logs in, builds the key table. */
static int
open_tokens(struct agent *a)
{
	const struct agent_config *c = &a->cfg;
	struct p11_provider *prov;
	enum ks_pin_kind kind;
	const char *value;
	unsigned wait = c->missing_token != 0 ? KS_ADD_WAIT : 0;
	uint8_t *matched = NULL;
	size_t i, t;
	int r = TS_ERR_INTERNAL;

	if ((a->ks = keystore_new()) == NULL ||
	    (matched = calloc(c->ntokens + 1, 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	keystore_set_final_try(a->ks, c->pin_final_try == 1);
	keystore_set_reinsert_unlock(a->ks, c->reinsert_login == 0);
	for (i = 0; i < c->nmodules; i++) {
		if ((r = p11_provider_open(
			 c->modules[i], c->module_allow, &prov)) != 0) {
			error_fr(r, "module %.200s", c->modules[i]);
			goto out;
		}
		if (c->ntokens == 0) {
			r = keystore_add_tokens(a->ks, prov, NULL,
			    pin_kind(c->pin_kind), c->pin_value, wait);
			if (r != 0) {
				error_fr(
				    r, "module %.200s: tokens", c->modules[i]);
				goto out;
			}
			continue;
		}
		/* Each token spec takes the module's reference in turn. */
		for (t = 0; t < c->ntokens; t++) {
			if (t > 0 &&
			    (r = p11_provider_open(
				 c->modules[i], c->module_allow, &prov)) != 0)
				goto out;
			r = keystore_add_tokens(a->ks, prov, c->tokens[t].uri,
			    token_pin_kind(c, t), token_pin_value(c, t), 0);
			if (r == TS_ERR_P11_TOKEN_NOT_FOUND)
				continue;
			if (r != 0) {
				error_fr(r, "token %.200s", c->tokens[t].uri);
				goto out;
			}
			matched[t] = 1;
		}
	}
	/* A spec no module has a token for: waited for in every module. */
	for (t = 0; t < c->ntokens; t++) {
		if (matched[t])
			continue;
		if (!wait) {
			error("no token matches --token %.200s "
			      "(config missing_token fail)",
			    c->tokens[t].uri);
			r = TS_ERR_P11_TOKEN_NOT_FOUND;
			goto out;
		}
		kind = token_pin_kind(c, t);
		value = token_pin_value(c, t);
		for (i = 0; i < c->nmodules; i++)
			if ((r = p11_provider_open(
				 c->modules[i], c->module_allow, &prov)) != 0 ||
			    (r = keystore_add_tokens(a->ks, prov,
				 c->tokens[t].uri, kind, value, wait)) != 0) {
				error_fr(r, "token %.200s", c->tokens[t].uri);
				goto out;
			}
	}
	/* An env PIN must not reach children or /proc/PID/environ. */
	if (c->pin_kind == CONFIG_PIN_ENV && c->pin_value != NULL)
		scrub_env(c->pin_value);
	for (t = 0; t < c->ntokens; t++)
		if (c->tokens[t].pin_kind == CONFIG_PIN_ENV)
			scrub_env(c->tokens[t].pin_value);
	if ((r = keystore_load(a->ks)) != 0)
		goto out;
	if ((r = keystore_retain(a->ks, c->keys, c->nkeys, &t)) != 0) {
		error_fr(r, "key \"%.200s\"", c->keys[t]);
		goto out;
	}
	logit("%zu token(s), %zu key(s)%s", keystore_token_count(a->ks),
	    keystore_count(a->ks),
	    keystore_waiting(a->ks) ? "; waiting for more" : "");
	r = 0;
out:
	free(matched);
	return r;
}

static void
print_env(int csh, const char *path, long pid)
{
	if (csh)
		printf("setenv %s %s;\nsetenv %s %ld;\necho Agent pid %ld;\n",
		    TS_ENV_AUTH_SOCK, path, TS_ENV_AGENT_PID, pid, pid);
	else
		printf("%s=%s; export %s;\n%s=%ld; export %s;\n"
		       "echo Agent pid %ld;\n",
		    TS_ENV_AUTH_SOCK, path, TS_ENV_AUTH_SOCK, TS_ENV_AGENT_PID,
		    pid, TS_ENV_AGENT_PID, pid);
	fflush(stdout);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "module", required_argument, NULL, 'M' },
		{ "module-allow", required_argument, NULL, 'W' },
		{ "token", required_argument, NULL, 'T' },
		{ "pin-source", required_argument, NULL, 'P' },
		{ "pin-env", required_argument, NULL, 'E' },
		{ "config", required_argument, NULL, 'F' },
		{ "audit", required_argument, NULL, 'A' },
		{ "confirm", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "allow-uid", required_argument, NULL, 'U' },
		{ "allow-group", required_argument, NULL, 'G' },
		{ "max-connections", required_argument, NULL, 'N' },
		{ "workers", required_argument, NULL, 'w' },
		{ "listen", required_argument, NULL, 1001 },
		{ "tls-cert", required_argument, NULL, 1002 },
		{ "tls-key", required_argument, NULL, 1003 },
		{ "client-ca", required_argument, NULL, 1004 },
		{ "crl", required_argument, NULL, 1005 },
		{ "tls12", no_argument, NULL, 1006 },
		{ "policy", required_argument, NULL, 1007 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent a;
	struct policy *pol;
	sigset_t mask;
	char why[512], *sock_path = NULL, *tmp, status = 1;
	int ch, r, foreground = 0, debug = 0, sh = -1, sd_n, lfd = -1;
	int tlsfd = -1;
	int pipefd[2] = { -1, -1 };
	pid_t pid;

	secmem_sanitise_stdfd();
	ts_log_init("tokensign-agent", TS_LOG_INFO, 0);
	if (secmem_harden_process() != 0)
		fatal_f("cannot disable core dumps");
	memset(&a, 0, sizeof(a));
	a.sigfd = -1;
	config_init(&a.cfg);
	while (
	    (ch = getopt_long(argc, argv, "Dda:sct:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'D':
			foreground = 1;
			break;
		case 'd':
			foreground = debug = 1;
			break;
		case 'a':
			cli_add(&a, "socket", optarg);
			break;
		case 's':
			sh = 0;
			break;
		case 'c':
			sh = 1;
			break;
		case 't':
			if (config_parse_duration(optarg) < 0) {
				fprintf(stderr,
				    "tokensign-agent: bad "
				    "PIN timeout \"%.32s\"\n",
				    optarg);
				goto usage_exit;
			}
			cli_add(&a, "pin_timeout", optarg);
			break;
		case 'M':
			cli_add(&a, "module", optarg);
			break;
		case 'W':
			cli_add(&a, "module_allow", optarg);
			break;
		case 'T':
			cli_uri_check("token", optarg);
			cli_add(&a, "token", optarg);
			break;
		case 'P':
			tmp = xasprintf("file:%s", optarg);
			cli_add(&a, "pin_source", tmp);
			free(tmp);
			break;
		case 'E':
			tmp = xasprintf("env:%s", optarg);
			cli_add(&a, "pin_source", tmp);
			free(tmp);
			break;
		case 'F':
			free(a.config_path);
			a.config_path = xstrdup(optarg);
			break;
		case 'A':
			cli_add(&a, "audit", optarg);
			break;
		case 'C':
			cli_uri_check("confirm", optarg);
			cli_add(&a, "confirm", optarg);
			break;
		case 'K':
			cli_uri_check("key", optarg);
			cli_add(&a, "key", optarg);
			break;
		case 'U':
			cli_add(&a, "allow_uid", optarg);
			break;
		case 'G':
			cli_add(&a, "allow_group", optarg);
			break;
		case 'N':
			cli_add(&a, "max_connections", optarg);
			break;
		case 'w':
			cli_add(&a, "workers", optarg);
			break;
		case 1001:
			a.listen_tls = optarg;
			break;
		case 1002:
			a.tlsopt.cert_file = optarg;
			break;
		case 1003:
			cli_uri_check("tls-key", optarg);
			a.tlsopt.key_file = optarg;
			break;
		case 1004:
			a.tlsopt.client_ca_file = optarg;
			break;
		case 1005:
			a.tlsopt.crl_file = optarg;
			break;
		case 1006:
			a.tlsopt.allow_tls12 = 1;
			break;
		case 1007:
			a.policy_path = optarg;
			break;
		case 'h':
			usage(stdout);
			status = 0;
			goto early;
		default:
			usage(stderr);
			goto usage_exit;
		}
	}
	if (optind != argc) {
		usage(stderr);
		goto usage_exit;
	}
	if (debug)
		ts_log_set_level(TS_LOG_DEBUG);
	if (build_config(&a, &a.cfg, why, sizeof(why)) != 0) {
		fprintf(stderr, "tokensign-agent: %s\n", why);
		goto usage_exit;
	}
	if (a.cfg.nmodules == 0) {
		fprintf(stderr,
		    "tokensign-agent: no PKCS#11 module: use "
		    "--module PATH or \"module\" in --config\n");
		goto usage_exit;
	}
	if (a.listen_tls != NULL &&
	    (a.tlsopt.cert_file == NULL || a.tlsopt.key_file == NULL ||
		a.tlsopt.client_ca_file == NULL || a.policy_path == NULL)) {
		fprintf(stderr,
		    "tokensign-agent: --listen tls://... needs --tls-cert, "
		    "--tls-key, --client-ca and --policy\n");
		goto usage_exit;
	}
	if (a.policy_path != NULL &&
	    policyrules_load_file(a.policy_path, &a.rules, why, sizeof(why)) !=
		0) {
		fprintf(stderr, "tokensign-agent: policy %s: %s\n",
		    a.policy_path, why);
		goto usage_exit;
	}
	/* A token key is found after open_tokens(), after the fork. */
	if (a.listen_tls != NULL && !tlskey_is_uri(a.tlsopt.key_file) &&
	    tls_server_new(&a.tlsopt, &a.tls) != 0) {
		fprintf(stderr, "tokensign-agent: TLS setup failed\n");
		goto usage_exit;
	}
	if (sh < 0) {
		tmp = getenv("SHELL");
		sh = tmp != NULL && strlen(tmp) >= 3 &&
		    strcmp(tmp + strlen(tmp) - 3, "csh") == 0;
	}

	/* Socket activation: keep fds 3.. that systemd passed, close others. */
	if ((sd_n = listen_systemd_fds(&lfd)) < 0)
		goto fail_exit;
	closefrom(sd_n > 0 ? 3 + sd_n : 3);
	raise_nofile();
	if (sd_n > 0) {
		foreground = 1;
		sh = -1;
	} else if ((r = listen_unix_create(a.cfg.socket, &lfd, &sock_path)) !=
	    0) {
		fprintf(stderr, "tokensign-agent: cannot create socket: %s\n",
		    ts_err(r));
		goto fail_exit;
	}
	if (a.listen_tls != NULL &&
	    (r = listen_tls_create(a.listen_tls, &tlsfd)) != 0) {
		fprintf(stderr, "tokensign-agent: cannot listen on %s: %s\n",
		    a.listen_tls, ts_err(r));
		if (sock_path != NULL)
			unlink(sock_path);
		goto fail_exit;
	}

	/* Fork before any PKCS#11 call (style.md section 6). */
	if (!foreground) {
		if (pipe2(pipefd, O_CLOEXEC) != 0)
			fatal_f("pipe: %s", strerror(errno));
		if ((pid = fork()) < 0)
			fatal_f("fork: %s", strerror(errno));
		if (pid != 0) {
			close(pipefd[1]);
			if (read(pipefd[0], &status, 1) != 1 || status != 0) {
				fprintf(stderr,
				    "tokensign-agent: start-up "
				    "failed (see syslog)\n");
				unlink(sock_path);
				_exit(1);
			}
			print_env(sh, sock_path, (long)pid);
			/* The child owns everything now; skip our destructors. */
			_exit(0);
		}
		close(pipefd[0]);
		if (setsid() < 0)
			fatal_f("setsid: %s", strerror(errno));
		if (chdir("/") != 0)
			fatal_f("chdir /: %s", strerror(errno));
		ts_log_init("tokensign-agent", TS_LOG_INFO, 1);
	}

	/* Signals go through a signalfd; block them before threads start. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0 ||
	    (a.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		fatal_f("signalfd: %s", strerror(errno));

	if ((r = open_tokens(&a)) != 0)
		goto out;
	if ((r = keystore_watch_start(a.ks,
		 a.cfg.presence_ms >= 0 ? (unsigned)a.cfg.presence_ms
					: AGENT_PRESENCE_MS)) != 0)
		goto out;
	/* PC/SC readers (smart cards, YubiKeys): card events wake checks */
	if (a.cfg.pcsc_watch != 0 &&
	    (r = readers_start(keystore_reader_event, a.ks, &a.readers)) != 0)
		goto out;
	if (a.listen_tls != NULL && tlskey_is_uri(a.tlsopt.key_file)) {
		if ((r = tlskey_open(a.tlsopt.key_file, a.ks, a.cfg.modules,
			 a.cfg.nmodules, a.cfg.module_allow, &a.tlskey)) != 0 ||
		    (a.tlsopt.token_key = a.tlskey,
			(r = tls_server_new(&a.tlsopt, &a.tls)) != 0)) {
			error("TLS setup failed");
			goto out;
		}
		logit("TLS server key on the token: %s", tlskey_uri(a.tlskey));
	}
	if (a.cfg.audit != NULL && (r = audit_open(a.cfg.audit, &a.audit)) != 0)
		goto out;
	pol = build_policy(&a.cfg);
	policy_set_rules(pol, a.rules);
	a.ctx = dispatch_ctx_new(a.ks, pol, a.audit);
	policy_unref(pol);
	if (a.ctx == NULL)
		fatal_f("out of memory");
	if ((r = sshproto_register()) != 0) /* issue 7: ssh rows 11, 13 */
		fatal_fr(r, "ssh-agent protocol rows");
	if ((r = apply_runtime(&a, &a.cfg, why, sizeof(why))) != 0) {
		error("%s", why);
		goto out;
	}
	/* a hung token may hold all workers but one */
	keystore_set_token_cap(a.ks,
	    (a.cfg.workers > 0 ? (unsigned)a.cfg.workers : WORKERS_DEFAULT) -
		1);
	if ((r = workers_new(
		 a.cfg.workers > 0 ? (unsigned)a.cfg.workers : WORKERS_DEFAULT,
		 a.ctx, &a.pool)) != 0)
		goto out;
	if ((a.loop = loop_new()) == NULL)
		fatal_f("out of memory");
	{
		struct conn_limits lim = { 0, 0, 0, 0 };

		if ((a.conns = connmgr_new(a.loop, a.ctx, a.pool, &lim)) ==
		    NULL)
			fatal_f("out of memory");
	}
	if ((r = apply_runtime(&a, &a.cfg, why, sizeof(why))) != 0)
		goto out;
	if ((a.listener = listener_unix_new(a.loop, a.conns, a.ctx, lfd,
		 sock_path, sock_path != NULL && a.cfg.socket == NULL)) == NULL)
		fatal_f("out of memory");
	lfd = -1;
	if (tlsfd >= 0) {
		/*
		 * A token key signs each full handshake: run the steps off
		 * the loop, so a slow token holds one handshake, not all.
		 */
		if ((a.tls_listener = tls_listener_new(a.loop, a.conns, a.ctx,
			 tlsfd, a.tls,
			 a.tlskey != NULL ? AGENT_TLS_HS_THREADS : 0)) == NULL)
			fatal_f("out of memory");
		tlsfd = -1;
		logit("listening on %s", a.listen_tls);
	}
	if (loop_add_fd(a.loop, a.sigfd, LOOP_READ, on_signal, &a) != 0 ||
	    loop_add_timer(a.loop, 1000, 1, expire_tick, &a) < 0 ||
	    (keystore_late_fd(a.ks) >= 0 &&
		loop_add_fd(a.loop, keystore_late_fd(a.ks), LOOP_READ,
		    on_late_tokens, &a) != 0))
		fatal_f("loop setup");

	/* Ready. */
	if (!foreground) {
		status = 0;
		if (write(pipefd[1], &status, 1) != 1)
			error_f("cannot report start-up to parent");
		close(pipefd[1]);
		pipefd[1] = -1;
		secmem_sanitise_stdfd();
		{
			int nfd = open("/dev/null", O_RDWR);

			if (nfd >= 0) {
				dup2(nfd, 0);
				dup2(nfd, 1);
				dup2(nfd, 2);
				if (nfd > 2)
					close(nfd);
			}
		}
	} else if (sh >= 0)
		print_env(sh, sock_path, (long)getpid());
	/* Start-up (module load, key discovery) leaves freed heap behind. */
	malloc_trim(0);
	listen_sd_notify("READY=1");
	logit("listening on %s",
	    sock_path != NULL ? sock_path : "socket-activated fd");
	r = loop_run(a.loop);
	listen_sd_notify("STOPPING=1");
	if (a.stopping)
		stop_or_abandon(&a);
out:
	if (pipefd[1] >= 0) {
		status = 1;
		if (write(pipefd[1], &status, 1) != 1)
			debug_f("parent gone");
		close(pipefd[1]);
	}
	tls_listener_free(a.tls_listener);
	if (tlsfd >= 0)
		close(tlsfd);
	listener_free(a.listener);
	if (a.listener == NULL && lfd >= 0) {
		close(lfd);
		if (sock_path != NULL)
			unlink(sock_path);
	}
	workers_free(a.pool);
	connmgr_free(a.conns);
	dispatch_ctx_free(a.ctx);
	tls_server_free(a.tls);
	if (a.tlskey != NULL)
		logit("TLS key on the token: %llu handshake signature(s), "
		      "%llu error(s)",
		    (unsigned long long)tlskey_signatures(a.tlskey),
		    (unsigned long long)tlskey_errors(a.tlskey));
	tlskey_free(a.tlskey); /* after every context and connection */
	policyrules_free(a.rules); /* after the last policy using it */
	readers_stop(a.readers); /* before the keystore it reports to */
	keystore_free(a.ks); /* logs out */
	audit_close(a.audit);
	loop_free(a.loop);
	if (a.sigfd >= 0)
		close(a.sigfd);
	config_free(&a.cfg);
	for (size_t i = 0; i < a.ncli; i++)
		free(a.cli[i]);
	free(a.config_path);
	free(sock_path);
	if (r != 0)
		error_fr(r, "exiting");
	else
		logit("exiting");
	return r == 0 ? 0 : 1;
usage_exit:
	status = 2;
	goto early;
fail_exit:
	status = 1;
early:
	/* Before anything but options, TLS context and policy were set up. */
	tls_server_free(a.tls);
	policyrules_free(a.rules);
	config_free(&a.cfg);
	for (size_t i = 0; i < a.ncli; i++)
		free(a.cli[i]);
	free(a.config_path);
	free(sock_path);
	return status;
}
