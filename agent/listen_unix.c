/*
 * listen_unix.c - the Unix socket listener, peer credentials, systemd
 * socket activation and readiness notification (style.md section 6).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/audit.h"
#include "agent/conn.h"
#include "agent/dispatch.h"
#include "agent/listen.h"
#include "agent/loop.h"
#include "agent/peer.h"
#include "agent/policy.h"
#include "common/err.h"
#include "common/log.h"
#include "common/wbuf.h"

#define LISTEN_BACKLOG		  512
#define LISTEN_PAUSE_MS		  100 /* after EMFILE */
#define LISTEN_MAX_SD_FDS	  16
#define LISTEN_REFUSE_AUDIT_PER_S 20

struct listener {
	struct loop *loop;
	struct connmgr *m;
	struct dispatch_ctx *ctx;
	int fd;
	char *path;
	int remove_dir;
	int paused;
	int stopped;
	uint64_t refuse_window_ms;
	unsigned refuse_lines;
	unsigned long refuse_suppressed;
};

int
peer_from_unix_socket(int fd, struct agent_peer *p)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char proc[64], exe[PEER_EXE_MAX];
	gid_t groups[PEER_MAX_GROUPS];
	ssize_t n;
	size_t i;

	memset(p, 0, sizeof(*p));
	p->transport = PEER_UNIX;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    len != sizeof(cred)) {
		error_f("SO_PEERCRED: %s", strerror(errno));
		return TS_ERR_SYSTEM;
	}
	p->uid = cred.uid;
	p->gid = cred.gid;
	p->pid = cred.pid;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		p->ngroups = (int)(len / sizeof(gid_t));
		memcpy(p->groups, groups, (size_t)p->ngroups * sizeof(gid_t));
	} else
		p->ngroups = -1; /* too many groups: only the primary counts */
	/* Best effort, for the audit log only: never used to decide. */
	snprintf(proc, sizeof(proc), "/proc/%d/exe", (int)cred.pid);
	if ((n = readlink(proc, exe, sizeof(exe) - 1)) > 0) {
		for (i = 0; i < (size_t)n; i++)
			p->exe[i] =
			    (exe[i] >= 0x20 && exe[i] < 0x7f) ? exe[i] : '?';
		p->exe[n] = '\0';
	}
	return 0;
}

int
listen_unix_create(const char *path, int *fdp, char **pathp)
{
	struct sockaddr_un sun;
	char dir[PATH_MAX], *made = NULL, *sockpath = NULL;
	const char *base;
	mode_t old;
	int fd = -1, r = TS_ERR_INTERNAL;

	*fdp = -1;
	*pathp = NULL;
	if (path == NULL) {
		base = getenv("XDG_RUNTIME_DIR");
		if (base == NULL || base[0] != '/')
			base = "/tmp";
		if ((size_t)snprintf(dir, sizeof(dir), "%s/tokensign-XXXXXX",
			base) >= sizeof(dir)) {
			r = TS_ERR_TOO_LARGE;
			goto out;
		}
		/* mkdtemp makes it 0700: nobody else can even reach it. */
		if ((made = mkdtemp(dir)) == NULL) {
			error_f("mkdtemp %s: %s", dir, strerror(errno));
			r = TS_ERR_SYSTEM;
			goto out;
		}
		if (asprintf(&sockpath, "%s/agent.%d", made, (int)getpid()) <
		    0) {
			sockpath = NULL;
			r = TS_ERR_ALLOC;
			goto out;
		}
	} else if ((sockpath = strdup(path)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sockpath) >= sizeof(sun.sun_path)) {
		error_f("socket path too long: %.100s", sockpath);
		r = TS_ERR_TOO_LARGE;
		goto out;
	}
	memcpy(sun.sun_path, sockpath, strlen(sockpath) + 1);
	if ((fd = socket(
		 AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
		error_f("socket: %s", strerror(errno));
		r = TS_ERR_SYSTEM;
		goto out;
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		umask(old);
		error_f("bind %.200s: %s", sockpath, strerror(errno));
		r = errno == EADDRINUSE ? TS_ERR_EXISTS : TS_ERR_SYSTEM;
		goto out;
	}
	umask(old);
	if (listen(fd, LISTEN_BACKLOG) != 0) {
		error_f("listen: %s", strerror(errno));
		unlink(sockpath);
		r = TS_ERR_SYSTEM;
		goto out;
	}
	*fdp = fd;
	fd = -1;
	*pathp = sockpath;
	sockpath = NULL;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r != 0 && made != NULL)
		rmdir(made);
	free(sockpath);
	return r;
}

static void listener_accept(struct loop *l, int fd, int rev, void *arg);

static void
listener_resume(struct loop *l, void *arg)
{
	struct listener *ls = arg;

	(void)l;
	ls->paused = 0;
	if (!ls->stopped)
		loop_set_events(ls->loop, ls->fd, LOOP_READ);
}

/* Refuses a peer: audit, tell it why, close. */
static void
listener_refuse(struct listener *ls, int fd, const struct agent_peer *peer)
{
	struct audit_rec rec;
	uint64_t now = loop_now_ms();
	char why[160];

	/*
	 * The audit line is synced on this (the loop) thread: a flood of
	 * refused peers must not stall everyone, so at most
	 * LISTEN_REFUSE_AUDIT_PER_S lines a second; the next one counts what
	 * was left out.
	 */
	if (now - ls->refuse_window_ms >= 1000) {
		ls->refuse_window_ms = now;
		ls->refuse_lines = 0;
	}
	if (ls->refuse_lines >= LISTEN_REFUSE_AUDIT_PER_S) {
		ls->refuse_suppressed++;
		close(fd);
		return;
	}
	ls->refuse_lines++;
	snprintf(why, sizeof(why), "uid %u gid %u not allowed",
	    (unsigned)peer->uid, (unsigned)peer->gid);
	if (ls->refuse_suppressed > 0) {
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
		    " (%lu earlier refusals not logged)",
		    ls->refuse_suppressed);
		ls->refuse_suppressed = 0;
	}
	logit("refused connection: %s (pid %d)", why, (int)peer->pid);
	memset(&rec, 0, sizeof(rec));
	rec.event = "connect";
	rec.peer = peer;
	rec.result = TS_ERR_POLICY_PEER;
	rec.reason = why;
	(void)audit_log(dispatch_audit(ls->ctx), &rec);
	(void)connmgr_add_refused(ls->m, fd, peer, TS_ERR_POLICY_PEER,
	    "peer not allowed: uid not permitted by the agent");
}

static void
listener_accept(struct loop *l, int fd, int rev, void *arg)
{
	struct listener *ls = arg;
	struct agent_peer peer;
	struct policy *pol;
	int cfd, i, r;

	(void)l;
	(void)rev;
	/* Bounded: one turn of the loop must not be all accepting. */
	for (i = 0; i < 64; i++) {
		cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				error_f("accept: %s: pausing", strerror(errno));
				ls->paused = 1;
				loop_set_events(ls->loop, ls->fd, 0);
				(void)loop_add_timer(ls->loop, LISTEN_PAUSE_MS,
				    0, listener_resume, ls);
			} else if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				error_f("accept: %s", strerror(errno));
			return;
		}
		/* Authenticate before reading a single byte. */
		if (peer_from_unix_socket(cfd, &peer) != 0) {
			close(cfd);
			continue;
		}
		pol = dispatch_get_policy(ls->ctx);
		r = policy_check_peer(pol, &peer);
		policy_unref(pol);
		if (r != 0) {
			listener_refuse(ls, cfd, &peer);
			continue;
		}
		(void)connmgr_add(ls->m, cfd, &peer, NULL, NULL);
	}
}

struct listener *
listener_unix_new(struct loop *l, struct connmgr *m, struct dispatch_ctx *ctx,
    int fd, const char *unlink_path, int remove_dir)
{
	struct listener *ls;

	if ((ls = calloc(1, sizeof(*ls))) == NULL)
		return NULL;
	ls->loop = l;
	ls->m = m;
	ls->ctx = ctx;
	ls->fd = fd;
	ls->remove_dir = remove_dir;
	if (unlink_path != NULL && (ls->path = strdup(unlink_path)) == NULL) {
		free(ls);
		return NULL;
	}
	if (loop_add_fd(l, fd, LOOP_READ, listener_accept, ls) != 0) {
		free(ls->path);
		free(ls);
		return NULL;
	}
	return ls;
}

void
listener_stop(struct listener *ls)
{
	if (ls == NULL || ls->stopped)
		return;
	ls->stopped = 1;
	loop_del_fd(ls->loop, ls->fd);
}

void
listener_free(struct listener *ls)
{
	char *slash;

	if (ls == NULL)
		return;
	listener_stop(ls);
	close(ls->fd);
	if (ls->path != NULL) {
		if (unlink(ls->path) != 0 && errno != ENOENT)
			error_f("unlink %.200s: %s", ls->path, strerror(errno));
		if (ls->remove_dir &&
		    (slash = strrchr(ls->path, '/')) != NULL) {
			*slash = '\0';
			(void)rmdir(ls->path);
		}
	}
	free(ls->path);
	free(ls);
}

/* Parses a small decimal number; -1 when malformed. */
static long
parse_num(const char *s, long max)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0 || v > max)
		return -1;
	return v;
}

int
listen_systemd_fds(int *fdp)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	long pid, n, i;
	int type, acc, dom;
	socklen_t len;

	*fdp = -1;
	if (pid_s == NULL && fds_s == NULL)
		return 0;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	pid = parse_num(pid_s, 1L << 30);
	n = parse_num(fds_s, LISTEN_MAX_SD_FDS);
	if (pid < 0 || n < 0) {
		error_f("malformed LISTEN_PID/LISTEN_FDS");
		return TS_ERR_CONFIG;
	}
	/* Variables meant for another process (e.g. our parent): ignore. */
	if (pid != (long)getpid())
		return 0;
	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		len = sizeof(type);
		if (getsockopt(3 + (int)i, SOL_SOCKET, SO_TYPE, &type, &len) !=
			0 ||
		    type != SOCK_STREAM)
			goto bad;
		len = sizeof(acc);
		if (getsockopt(3 + (int)i, SOL_SOCKET, SO_ACCEPTCONN, &acc,
			&len) != 0 ||
		    !acc)
			goto bad;
		len = sizeof(dom);
		if (getsockopt(3 + (int)i, SOL_SOCKET, SO_DOMAIN, &dom, &len) !=
			0 ||
		    dom != AF_UNIX)
			goto bad;
		if (fcntl(3 + (int)i, F_SETFD, FD_CLOEXEC) != 0 ||
		    fcntl(3 + (int)i, F_SETFL,
			fcntl(3 + (int)i, F_GETFL) | O_NONBLOCK) != 0)
			goto bad;
	}
	*fdp = 3;
	return (int)n;
bad:
	error_f(
	    "LISTEN_FDS: fd %ld is not a listening Unix stream socket", 3 + i);
	return TS_ERR_CONFIG;
}

void
listen_sd_notify(const char *text)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t slen;
	size_t plen;
	int fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	plen = strlen(path);
	if (plen >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace */
	slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return;
	if (sendto(fd, text, strlen(text), MSG_NOSIGNAL,
		(struct sockaddr *)&sun, slen) < 0)
		debug_f("sd_notify: %s", strerror(errno));
	close(fd);
}
