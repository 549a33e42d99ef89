/*
 * listen_tls.c - the mutual-TLS listener: accept, non-blocking handshake
 * on the loop, audit of refusals, identity to policy, then the connection
 * manager with TLS transport ops.  Design in docs/internals/tls.md.
 *
 * With a server key on a token the handshake steps run on offload threads
 * instead (the step that answers a ClientHello signs with the token, which
 * may take a network HSM's round trip): while a step is out the handshake
 * is busy, its fd is not watched and nothing here touches its TLS state.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "agent/audit.h"
#include "agent/conn.h"
#include "agent/dispatch.h"
#include "agent/listen_tls.h"
#include "agent/loop.h"
#include "agent/offload.h"
#include "agent/peer.h"
#include "agent/policy.h"
#include "agent/tls.h"
#include "common/err.h"
#include "common/log.h"
#include "common/wbuf.h"

#define TLS_LISTEN_BACKLOG  512
#define TLS_LISTEN_SWEEP_MS 250

struct tls_hs {
	struct tls_listener *ls;
	int fd;
	struct tls_conn *tc;
	int busy; /* a step is on an offload thread */
	enum tls_step step; /* its result */
	uint64_t start;
	char addr[64]; /* "IP:port" of the TCP peer */
	struct tls_hs *prev, *next;
};

struct tls_listener {
	struct loop *loop;
	struct connmgr *m;
	struct dispatch_ctx *ctx;
	struct tls_server *srv;
	int fd;
	int stopped;
	int sweep_timer;
	unsigned nhs;
	struct tls_hs *hs;
	struct offload *off; /* NULL: handshakes run on the loop */
};

/* transport ops for conn.c: bytes, 0 on EOF, -1 with errno */

/*
 * Drains records until the socket is empty or len is used up: conn.c
 * waits for poll() readiness after each read, and poll() cannot see bytes
 * left inside the TLS layer (the rest of a record larger than len).  Only
 * when len runs out can bytes stay behind; with conn.c's input cap that
 * is a client sending more than a maximal frame ahead, which stalls only
 * itself.
 */
static ssize_t
tls_io_read(void *io, int fd, void *buf, size_t len)
{
	size_t got, total = 0;
	enum tls_step st;

	(void)fd;
	while (total < len) {
		st = tls_conn_read(
		    io, (unsigned char *)buf + total, len - total, &got);
		if (st == TLS_STEP_DONE) {
			total += got;
			continue;
		}
		if (total > 0) /* report EOF or an error on the next call */
			return (ssize_t)total;
		switch (st) {
		case TLS_STEP_WANT_READ:
		case TLS_STEP_WANT_WRITE:
			errno = EAGAIN;
			return -1;
		case TLS_STEP_EOF:
			return 0;
		default:
			errno = EIO;
			return -1;
		}
	}
	return (ssize_t)total;
}

static ssize_t
tls_io_write(void *io, int fd, const void *buf, size_t len)
{
	size_t put = 0;

	(void)fd;
	switch (tls_conn_write(io, buf, len, &put)) {
	case TLS_STEP_DONE:
		return (ssize_t)put;
	case TLS_STEP_WANT_READ:
	case TLS_STEP_WANT_WRITE:
		errno = EAGAIN;
		return -1;
	default:
		errno = EPIPE;
		return -1;
	}
}

static void
tls_io_close(void *io)
{
	tls_conn_shutdown(io);
	tls_conn_free(io);
}

static const struct conn_io tls_io = { tls_io_read, tls_io_write,
	tls_io_close };

/* listening socket */

int
listen_tls_create(const char *spec, int *fdp)
{
	struct addrinfo hints, *res = NULL;
	char host[128], port[8];
	const char *h, *p, *end;
	size_t hlen;
	int fd = -1, one = 1, gai, r = TS_ERR_INVALID_ARG;

	*fdp = -1;
	if (spec == NULL || strncmp(spec, "tls://", 6) != 0)
		goto bad;
	h = spec + 6;
	end = h + strlen(h);
	if (*h == '[') {
		h++;
		if ((p = strchr(h, ']')) == NULL || p[1] != ':')
			goto bad;
		hlen = (size_t)(p - h);
		p++;
	} else {
		if ((p = strrchr(h, ':')) == NULL)
			goto bad;
		hlen = (size_t)(p - h);
	}
	if (hlen == 0 || hlen >= sizeof(host) || (size_t)(end - p - 1) == 0 ||
	    (size_t)(end - p - 1) >= sizeof(port))
		goto bad;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memcpy(port, p + 1, (size_t)(end - p - 1));
	port[end - p - 1] = '\0';
	if (strspn(port, "0123456789") != strlen(port) ||
	    strtoul(port, NULL, 10) == 0 || strtoul(port, NULL, 10) > 65535)
		goto bad;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if (strcmp(host, "localhost") != 0)
		hints.ai_flags |= AI_NUMERICHOST;
	if ((gai = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port,
		 &hints, &res)) != 0) {
		error("--listen %.100s: %s", spec, gai_strerror(gai));
		goto out;
	}
	r = TS_ERR_SYSTEM;
	if ((fd = socket(res->ai_family,
		 res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		 res->ai_protocol)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(fd, TLS_LISTEN_BACKLOG) != 0) {
		error("--listen %.100s: %s", spec, strerror(errno));
		goto out;
	}
	*fdp = fd;
	fd = -1;
	r = 0;
	goto out;
bad:
	error("--listen \"%.100s\": expected tls://ADDR:PORT", spec);
out:
	if (res != NULL)
		freeaddrinfo(res);
	if (fd >= 0)
		close(fd);
	return r;
}

/* handshakes */

/* Unlinks and frees hs; the fd is the caller's business. */
static void
hs_unlink(struct tls_hs *hs)
{
	struct tls_listener *ls = hs->ls;

	if (hs->prev != NULL)
		hs->prev->next = hs->next;
	else
		ls->hs = hs->next;
	if (hs->next != NULL)
		hs->next->prev = hs->prev;
	ls->nhs--;
	free(hs);
}

static void
hs_free(struct tls_hs *hs)
{
	loop_del_fd(hs->ls->loop, hs->fd);
	hs_unlink(hs);
}

static void
hs_peer_base(const struct tls_hs *hs, struct agent_peer *peer)
{
	memset(peer, 0, sizeof(*peer));
	peer->transport = PEER_TLS;
	/* no Unix credentials on TCP: never let them read as root */
	peer->uid = (uid_t)-1;
	peer->gid = (gid_t)-1;
	peer->ngroups = -1;
	snprintf(
	    peer->identity, sizeof(peer->identity), "tls addr=%s", hs->addr);
}

/* Audits a refused client and drops it. */
static void
hs_refuse(struct tls_hs *hs, const struct agent_peer *peer, int code,
    const char *reason)
{
	struct audit_rec rec;

	logit("refused TLS client %s: %s", peer->identity, reason);
	memset(&rec, 0, sizeof(rec));
	rec.event = "connect";
	rec.peer = peer;
	rec.result = code;
	rec.reason = reason;
	(void)audit_log(dispatch_audit(hs->ls->ctx), &rec);
	tls_conn_free(hs->tc);
	loop_del_fd(hs->ls->loop, hs->fd);
	close(hs->fd);
	hs_unlink(hs);
}

/* Packs the identity for policy ("c:", "u:", "d:" strings). */
static int
pack_names(const struct tls_identity *id, struct agent_peer *peer)
{
	const char *const *v;
	size_t n, i, off = 0, len;
	int kind, w;

	for (kind = 0; kind < 3; kind++) {
		if (kind == 0) {
			v = NULL;
			n = tls_identity_cn(id) != NULL;
		} else if (kind == 1)
			v = tls_identity_uris(id, &n);
		else
			v = tls_identity_dns(id, &n);
		for (i = 0; i < n; i++) {
			const char *s = kind == 0 ? tls_identity_cn(id) : v[i];

			len = strlen(s);
			/* all or nothing: a dropped name could change rules */
			if (len + 3 > sizeof(peer->tls_names) - off)
				return TS_ERR_TOO_LARGE;
			w = snprintf(peer->tls_names + off,
			    sizeof(peer->tls_names) - off, "%c:%s", "cud"[kind],
			    s);
			if (w < 0)
				return TS_ERR_INTERNAL;
			off += (size_t)w + 1; /* keep the NUL */
		}
	}
	peer->tls_names_len = off;
	return 0;
}

static void
hs_done(struct tls_hs *hs)
{
	struct tls_listener *ls = hs->ls;
	const struct tls_identity *id = tls_conn_identity(hs->tc);
	struct agent_peer peer;
	struct policy *pol;
	char desc[PEER_IDENTITY_MAX - 80]; /* room for " addr=..." */
	int r;

	hs_peer_base(hs, &peer);
	(void)tls_identity_describe(id, desc, sizeof(desc));
	snprintf(peer.identity, sizeof(peer.identity), "tls %s addr=%s", desc,
	    hs->addr);
	if (pack_names(id, &peer) != 0) {
		hs_refuse(hs, &peer, TS_ERR_TLS_PEER,
		    "bad-identity: certificate names too long for policy");
		return;
	}
	/* Authorize before parsing a single request (style.md 6). */
	pol = dispatch_get_policy(ls->ctx);
	r = policy_check_peer(pol, &peer);
	policy_unref(pol);
	if (r != 0) {
		struct wbuf *b;
		size_t put;

		/* Tell it why, best effort, as the Unix listener does. */
		if ((b = wbuf_new(512)) != NULL &&
		    dispatch_failure(b, TS_ERR_POLICY_PEER,
			"peer not allowed: no policy rule for this client "
			"certificate") == 0)
			if (tls_conn_write(hs->tc, wbuf_ptr(b), wbuf_len(b),
				&put) != TLS_STEP_DONE)
				debug_f("could not tell the client why");
		wbuf_free(b);
		tls_conn_shutdown(hs->tc);
		hs_refuse(hs, &peer, TS_ERR_POLICY_PEER,
		    "default-deny: no policy rule for this client");
		return;
	}
	verbose("TLS client %s (%s%s)", peer.identity, tls_conn_version(hs->tc),
	    tls_conn_resumed(hs->tc) ? ", resumed" : "");
	loop_del_fd(ls->loop, hs->fd);
	/* From here conn.c owns fd and the tls_conn (its io close). */
	r = connmgr_add(ls->m, hs->fd, &peer, &tls_io, hs->tc);
	if (r != 0) /* connmgr closed the fd; the TLS state is ours */
		tls_conn_free(hs->tc);
	hs_unlink(hs);
}

static void hs_event(struct loop *l, int fd, int rev, void *arg);

/* Acts on a handshake step's result. */
static void
hs_result(struct tls_hs *hs, enum tls_step st)
{
	struct agent_peer peer;
	char reason[300];

	switch (st) {
	case TLS_STEP_WANT_READ:
		loop_set_events(hs->ls->loop, hs->fd, LOOP_READ);
		return;
	case TLS_STEP_WANT_WRITE:
		loop_set_events(hs->ls->loop, hs->fd, LOOP_WRITE);
		return;
	case TLS_STEP_DONE:
		hs_done(hs);
		return;
	default:
		hs_peer_base(hs, &peer);
		snprintf(reason, sizeof(reason), "%s: %s",
		    tls_refusal_name(tls_conn_refusal(hs->tc)),
		    tls_conn_reason(hs->tc));
		hs_refuse(hs, &peer, TS_ERR_TLS_PEER, reason);
		return;
	}
}

/* On an offload thread: one handshake step (it may sign on the token). */
static void
hs_run(void *arg)
{
	struct tls_hs *hs = arg;

	hs->step = tls_conn_handshake(hs->tc);
}

/* Back on the loop from hs_run. */
static void
hs_back(void *arg)
{
	struct tls_hs *hs = arg;
	struct tls_listener *ls = hs->ls;
	struct agent_peer peer;

	hs->busy = 0;
	if (ls->stopped) {
		tls_conn_free(hs->tc);
		close(hs->fd);
		hs_unlink(hs);
		return;
	}
	if (loop_add_fd(ls->loop, hs->fd, LOOP_READ, hs_event, hs) != 0) {
		hs_peer_base(hs, &peer);
		hs_refuse(hs, &peer, TS_ERR_TLS_PEER, "io: out of memory");
		return;
	}
	if (hs->step != TLS_STEP_DONE &&
	    loop_now_ms() - hs->start >= TLS_LISTEN_HANDSHAKE_MS) {
		hs_peer_base(hs, &peer);
		hs_refuse(hs, &peer, TS_ERR_TLS_PEER,
		    "timeout: handshake not finished in time");
		return;
	}
	hs_result(hs, hs->step);
}

static void
hs_step(struct tls_hs *hs)
{
	if (hs->busy)
		return;
	if (hs->ls->off != NULL) {
		/* Unwatched while out: poll would keep reporting a hangup. */
		loop_del_fd(hs->ls->loop, hs->fd);
		hs->busy = 1;
		if (offload_submit(hs->ls->off, hs_run, hs_back, hs) == 0)
			return;
		hs->busy = 0;
		if (loop_add_fd(hs->ls->loop, hs->fd, 0, hs_event, hs) != 0)
			fatal_f("loop_add_fd");
	}
	hs_result(hs, tls_conn_handshake(hs->tc));
}

static void
hs_event(struct loop *l, int fd, int rev, void *arg)
{
	(void)l;
	(void)fd;
	(void)rev;
	hs_step(arg);
}

static void
hs_sweep(struct loop *l, void *arg)
{
	struct tls_listener *ls = arg;
	struct tls_hs *hs, *next;
	struct agent_peer peer;
	uint64_t now = loop_now_ms();

	(void)l;
	for (hs = ls->hs; hs != NULL; hs = next) {
		next = hs->next;
		/* a busy one is timed when its step comes back (hs_back) */
		if (hs->busy || now - hs->start < TLS_LISTEN_HANDSHAKE_MS)
			continue;
		hs_peer_base(hs, &peer);
		hs_refuse(hs, &peer, TS_ERR_TLS_PEER,
		    "timeout: handshake not finished in time");
	}
}

static void
format_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s->sin6_port));
	} else
		snprintf(buf, len, "?");
}

static void
tls_accept(struct loop *l, int fd, int rev, void *arg)
{
	struct tls_listener *ls = arg;
	struct sockaddr_storage ss;
	socklen_t sl;
	struct tls_hs *hs;
	int cfd, i, one = 1;

	(void)l;
	(void)rev;
	for (i = 0; i < 64; i++) {
		sl = sizeof(ss);
		cfd = accept4(fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				error_f("accept: %s", strerror(errno));
			return;
		}
		/*
		 * Handshakes cost CPU and memory before anyone is
		 * authenticated: cap them, like sshd's MaxStartups.
		 */
		if (ls->nhs >= TLS_LISTEN_MAX_HANDSHAKE) {
			verbose_f("%u handshakes in progress: dropping a new "
				  "connection",
			    ls->nhs);
			close(cfd);
			continue;
		}
		(void)setsockopt(
		    cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if ((hs = calloc(1, sizeof(*hs))) == NULL) {
			close(cfd);
			continue;
		}
		hs->ls = ls;
		hs->fd = cfd;
		hs->start = loop_now_ms();
		format_addr(&ss, hs->addr, sizeof(hs->addr));
		if (tls_conn_new(ls->srv, cfd, &hs->tc) != 0 ||
		    loop_add_fd(ls->loop, cfd, LOOP_READ, hs_event, hs) != 0) {
			tls_conn_free(hs->tc);
			close(cfd);
			free(hs);
			continue;
		}
		hs->next = ls->hs;
		if (ls->hs != NULL)
			ls->hs->prev = hs;
		ls->hs = hs;
		ls->nhs++;
	}
}

struct tls_listener *
tls_listener_new(struct loop *l, struct connmgr *m, struct dispatch_ctx *ctx,
    int fd, struct tls_server *srv, unsigned hs_threads)
{
	struct tls_listener *ls;

	if ((ls = calloc(1, sizeof(*ls))) == NULL)
		return NULL;
	ls->loop = l;
	ls->m = m;
	ls->ctx = ctx;
	ls->srv = srv;
	ls->fd = fd;
	if ((hs_threads > 0 &&
		(ls->off = offload_new(l, hs_threads)) == NULL) ||
	    loop_add_fd(l, fd, LOOP_READ, tls_accept, ls) != 0 ||
	    (ls->sweep_timer = loop_add_timer(
		 l, TLS_LISTEN_SWEEP_MS, 1, hs_sweep, ls)) < 0) {
		loop_del_fd(l, fd);
		offload_free(ls->off);
		free(ls);
		return NULL;
	}
	return ls;
}

void
tls_listener_stop(struct tls_listener *ls)
{
	struct tls_hs *hs, *next;
	int fd;

	if (ls == NULL || ls->stopped)
		return;
	ls->stopped = 1;
	loop_del_fd(ls->loop, ls->fd);
	loop_del_timer(ls->loop, ls->sweep_timer);
	for (hs = ls->hs; hs != NULL; hs = next) {
		next = hs->next;
		if (hs->busy)
			continue; /* hs_back frees it */
		fd = hs->fd;
		tls_conn_free(hs->tc);
		hs_free(hs);
		close(fd);
	}
}

void
tls_listener_free(struct tls_listener *ls)
{
	if (ls == NULL)
		return;
	tls_listener_stop(ls);
	/* waits for steps still out; their hs_back frees them */
	offload_free(ls->off);
	close(ls->fd);
	free(ls);
}

unsigned
tls_listener_handshakes(const struct tls_listener *ls)
{
	return ls->nhs;
}

unsigned
tls_listener_running(struct tls_listener *ls)
{
	return ls == NULL || ls->off == NULL ? 0 : offload_running(ls->off);
}
