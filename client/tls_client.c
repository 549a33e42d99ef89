/*
 * tls_client.c - mutual-TLS connections from the client to the agent.
 *
 * Non-blocking sockets driven with poll() and one deadline per operation,
 * so a dead address or a stalled agent costs at most timeout_ms each.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/err.h"
#include "common/log.h"
#include "client/tls_client.h"

#define TLS_CLIENT_MAX_HOST  255
#define TLS_CLIENT_MAX_LINE  1024
#define TLS_CLIENT_CONF_NAME "tokensign/tls.conf"

struct tls_target {
	char host[TLS_CLIENT_MAX_HOST + 1]; /* without brackets */
	char port[8];
	int is_ip;
};

struct tls_client {
	SSL_CTX *ctx;
	struct tls_target targets[TLS_CLIENT_MAX_TARGETS];
	size_t ntargets;
	int timeout_ms;
	int fd;
	SSL *ssl;
	SSL_SESSION *sess; /* last session, offered for resumption */
	int resumed;
	int got_ticket; /* the agent accepted us (TLS 1.3, see handshake) */
	char peer[TLS_CLIENT_MAX_HOST + 16];
};

/* options */

static int
conf_path(char *buf, size_t len)
{
	const char *p;
	int n;

	if ((p = getenv("TOKENSIGN_TLS_CONFIG")) != NULL && *p != '\0')
		n = snprintf(buf, len, "%s", p);
	else if ((p = getenv("XDG_CONFIG_HOME")) != NULL && *p == '/')
		n = snprintf(buf, len, "%s/%s", p, TLS_CLIENT_CONF_NAME);
	else if ((p = getenv("HOME")) != NULL && *p == '/')
		n = snprintf(
		    buf, len, "%s/.config/%s", p, TLS_CLIENT_CONF_NAME);
	else
		return -1;
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s &&
	    (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * "key = value" lines, '#' comments.  Unknown keys are errors so a typo
 * doesn't silently drop the client certificate.
 */
static int
read_conf(const char *path, int explicit, struct tls_client_opts_store *st)
{
	FILE *f;
	char line[TLS_CLIENT_MAX_LINE + 2], *k, *v, *eq, **slot;
	int lineno = 0, r = TS_ERR_INTERNAL;

	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT && !explicit)
			return 0;
		error("%.200s: %s", path, strerror(errno));
		return TS_ERR_CONFIG;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			error("%.200s:%d: line too long", path, lineno);
			r = TS_ERR_CONFIG;
			goto out;
		}
		k = trim(line);
		if (*k == '\0' || *k == '#')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			error("%.200s:%d: expected \"key = value\"", path,
			    lineno);
			r = TS_ERR_CONFIG;
			goto out;
		}
		*eq = '\0';
		v = trim(eq + 1);
		k = trim(k);
		if (strcmp(k, "cert") == 0)
			slot = &st->cert;
		else if (strcmp(k, "key") == 0)
			slot = &st->key;
		else if (strcmp(k, "ca") == 0)
			slot = &st->ca;
		else {
			error(
			    "%.200s:%d: unknown key \"%.40s\" (cert, key, ca)",
			    path, lineno, k);
			r = TS_ERR_CONFIG;
			goto out;
		}
		if (*v == '\0') {
			error("%.200s:%d: empty value", path, lineno);
			r = TS_ERR_CONFIG;
			goto out;
		}
		free(*slot);
		if ((*slot = strdup(v)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
	}
	r = 0;
out:
	fclose(f);
	return r;
}

int
tls_client_opts_resolve(
    struct tls_client_opts *opts, struct tls_client_opts_store *st)
{
	struct tls_client_opts_store conf = { NULL, NULL, NULL };
	struct tls_client_opts saved = *opts;
	char path[4096];
	const char *env;
	int r = TS_ERR_INTERNAL, explicit;

	memset(st, 0, sizeof(*st));
	path[0] = '\0';
	explicit = getenv("TOKENSIGN_TLS_CONFIG") != NULL;
	if (conf_path(path, sizeof(path)) == 0 &&
	    (r = read_conf(path, explicit, &conf)) != 0)
		goto out;
#define PICK(member, envname, confval, stval)                  \
	do {                                                   \
		if (opts->member != NULL)                      \
			break;                                 \
		if ((env = getenv(envname)) != NULL && *env) { \
			if ((stval = strdup(env)) == NULL) {   \
				r = TS_ERR_ALLOC;              \
				goto out;                      \
			}                                      \
		} else if (confval != NULL) {                  \
			stval = confval;                       \
			confval = NULL;                        \
		}                                              \
		opts->member = stval;                          \
	} while (0)
	PICK(cert_file, "TOKENSIGN_TLS_CERT", conf.cert, st->cert);
	PICK(key_file, "TOKENSIGN_TLS_KEY", conf.key, st->key);
	PICK(ca_file, "TOKENSIGN_TLS_CA", conf.ca, st->ca);
#undef PICK
	r = TS_ERR_CONFIG;
	if (opts->cert_file == NULL || opts->key_file == NULL) {
		error("TLS to the agent needs a client certificate and key: "
		      "--tls-cert/--tls-key, TOKENSIGN_TLS_CERT/"
		      "TOKENSIGN_TLS_KEY or \"cert\"/\"key\" in %.200s",
		    path);
		goto out;
	}
	if (opts->ca_file == NULL) {
		error("TLS to the agent needs the CA of the agent's "
		      "certificate: --tls-ca, TOKENSIGN_TLS_CA or \"ca\" in "
		      "%.200s",
		    path);
		goto out;
	}
	r = 0;
out:
	tls_client_opts_cleanup(&conf);
	if (r != 0) {
		*opts = saved; /* no pointer into the freed store */
		tls_client_opts_cleanup(st);
	}
	return r;
}

void
tls_client_opts_cleanup(struct tls_client_opts_store *st)
{
	free(st->cert);
	free(st->key);
	free(st->ca);
	st->cert = st->key = st->ca = NULL;
}

/* targets */

int
tls_client_is_target(const char *s)
{
	return s != NULL && strncmp(s, "tls://", 6) == 0;
}

static int
parse_one(const char *s, size_t len, struct tls_target *t)
{
	const char *host, *port, *end = s + len, *p;
	size_t hlen, plen, i;
	unsigned long pn;
	unsigned char tmp[sizeof(struct in6_addr)];
	char *ep;

	memset(t, 0, sizeof(*t));
	if (len < 6 || strncmp(s, "tls://", 6) != 0)
		return TS_ERR_INVALID_ARG;
	host = s + 6;
	if (host < end && *host == '[') {
		host++;
		if ((p = memchr(host, ']', (size_t)(end - host))) == NULL)
			return TS_ERR_INVALID_ARG;
		hlen = (size_t)(p - host);
		p++;
	} else {
		for (p = host; p < end && *p != ':'; p++)
			;
		hlen = (size_t)(p - host);
	}
	if (p >= end || *p != ':' || hlen == 0 || hlen > TLS_CLIENT_MAX_HOST)
		return TS_ERR_INVALID_ARG;
	port = p + 1;
	plen = (size_t)(end - port);
	if (plen == 0 || plen > 5)
		return TS_ERR_INVALID_ARG;
	for (i = 0; i < plen; i++) {
		if (port[i] < '0' || port[i] > '9')
			return TS_ERR_INVALID_ARG;
	}
	memcpy(t->port, port, plen);
	pn = strtoul(t->port, &ep, 10);
	if (*ep != '\0' || pn == 0 || pn > 65535)
		return TS_ERR_INVALID_ARG;
	for (i = 0; i < hlen; i++) {
		char c = host[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '.' || c == '-' ||
			c == ':' || c == '_'))
			return TS_ERR_INVALID_ARG;
	}
	memcpy(t->host, host, hlen);
	t->is_ip = inet_pton(AF_INET, t->host, tmp) == 1 ||
	    inet_pton(AF_INET6, t->host, tmp) == 1;
	if (strchr(t->host, ':') != NULL && !t->is_ip)
		return TS_ERR_INVALID_ARG;
	return 0;
}

static int
parse_targets(const char *s, struct tls_client *c)
{
	const char *p = s, *comma;
	size_t len;
	int r;

	c->ntargets = 0;
	for (;;) {
		comma = strchr(p, ',');
		len = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if (c->ntargets >= TLS_CLIENT_MAX_TARGETS) {
			error("more than %d agent addresses",
			    TLS_CLIENT_MAX_TARGETS);
			return TS_ERR_INVALID_ARG;
		}
		if ((r = parse_one(p, len, &c->targets[c->ntargets])) != 0) {
			error("bad agent address \"%.*s\": expected "
			      "tls://HOST:PORT",
			    (int)(len > 100 ? 100 : len), p);
			return r;
		}
		c->ntargets++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 0;
}

static int
no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* A TLS 1.3 session ticket arrived: keep it for resumption. */
static int
new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_client *c = SSL_get_app_data(ssl);

	if (c == NULL)
		return 0;
	c->got_ticket = 1;
	if (!SSL_SESSION_is_resumable(sess))
		return 0;
	SSL_SESSION_free(c->sess);
	c->sess = sess;
	return 1; /* we own it now */
}

int
tls_client_new(const char *targets, const struct tls_client_opts *opts,
    struct tls_client **out)
{
	struct tls_client *c = NULL;
	int r = TS_ERR_INTERNAL;

	*out = NULL;
	if (targets == NULL || opts == NULL || opts->cert_file == NULL ||
	    opts->key_file == NULL || opts->ca_file == NULL) {
		r = TS_ERR_CONFIG;
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	c->fd = -1;
	c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms
					     : TLS_CLIENT_DEFAULT_TIMEOUT_MS;
	if ((r = parse_targets(targets, c)) != 0)
		goto out;
	ERR_clear_error();
	if ((c->ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		r = ts_err_ossl("SSL_CTX_new");
		goto out;
	}
	if (!SSL_CTX_set_min_proto_version(
		c->ctx, opts->allow_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION)) {
		r = ts_err_ossl("protocol version");
		goto out;
	}
	SSL_CTX_set_options(
	    c->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(c->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_default_passwd_cb(c->ctx, no_passphrase_cb);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(
	    c->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(c->ctx, new_session_cb);
	r = TS_ERR_CONFIG;
	if (SSL_CTX_load_verify_locations(c->ctx, opts->ca_file, NULL) != 1) {
		ts_err_ossl("CA file");
		error("cannot load the agent CA %.200s", opts->ca_file);
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(c->ctx, opts->cert_file) != 1) {
		ts_err_ossl("client certificate");
		error("cannot load client certificate %.200s", opts->cert_file);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(
		c->ctx, opts->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(c->ctx) != 1) {
		ts_err_ossl("client key");
		error("cannot load client key %.200s (PEM, unencrypted, "
		      "matching the certificate)",
		    opts->key_file);
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	tls_client_free(c);
	return r;
}

/* I/O helpers */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events until deadline; returns 0, TS_ERR_TIMEOUT or _SYSTEM. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd;
	int64_t left;
	int n;

	for (;;) {
		if ((left = deadline - now_ms()) <= 0)
			return TS_ERR_TIMEOUT;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return TS_ERR_SYSTEM;
	}
}

/*
 * SIGPIPE on a write to a reset connection would kill the client: block it
 * for the call and swallow one that our write raised (a library must not
 * change the process's signal dispositions).
 */
struct sigpipe_state {
	sigset_t old;
	int was_pending;
};

static void
sigpipe_block(struct sigpipe_state *s)
{
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	s->was_pending = sigismember(&pend, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &s->old);
}

static void
sigpipe_restore(struct sigpipe_state *s)
{
	sigset_t set, pend;
	struct timespec zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	if (!s->was_pending && sigismember(&pend, SIGPIPE))
		(void)sigtimedwait(&set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &s->old, NULL);
}

/* What the agent's alert tells us, for a refused client certificate. */
static int
ssl_failure(SSL *ssl, int rv, const char *what)
{
	unsigned long e = ERR_peek_error();
	int err = SSL_get_error(ssl, rv), reason;
	long vr;

	if (err == SSL_ERROR_ZERO_RETURN ||
	    (err == SSL_ERROR_SYSCALL && e == 0)) {
		ERR_clear_error();
		return TS_ERR_AGENT_CLOSED;
	}
	if ((vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		error("%s: agent certificate refused: %s", what,
		    X509_verify_cert_error_string(vr));
		ERR_clear_error();
		return TS_ERR_TLS_PEER;
	}
	reason = ERR_GET_REASON(e);
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		ERR_clear_error();
		return TS_ERR_AGENT_CLOSED;
	}
	if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
		reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
		reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED ||
		reason == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED ||
		reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN ||
		reason == SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE ||
		reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
		reason == SSL_R_TLSV1_ALERT_ACCESS_DENIED)) {
		error("%s: the agent refused our client certificate (%s)", what,
		    ERR_reason_error_string(e));
		ERR_clear_error();
		return TS_ERR_TLS_PEER;
	}
	error("%s: %s", what,
	    e != 0 && ERR_reason_error_string(e) != NULL
		? ERR_reason_error_string(e)
		: "TLS failure");
	ERR_clear_error();
	return TS_ERR_TLS;
}

static int
tcp_connect(const struct addrinfo *ai, int64_t deadline, int *fdp)
{
	int fd, soerr = 0, one = 1, r;
	socklen_t sl = sizeof(soerr);

	*fdp = -1;
	fd = socket(ai->ai_family,
	    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return TS_ERR_SYSTEM;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			r = TS_ERR_CONN_REFUSED;
			goto fail;
		}
		if ((r = wait_fd(fd, POLLOUT, deadline)) != 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
		    soerr != 0) {
			errno = soerr;
			r = TS_ERR_CONN_REFUSED;
			goto fail;
		}
	}
	*fdp = fd;
	return 0;
fail:
	close(fd);
	return r;
}

static int
tls_handshake(struct tls_client *c, struct tls_target *t, int64_t deadline)
{
	X509_VERIFY_PARAM *vp;
	int rv, err, r;

	ERR_clear_error();
	if ((c->ssl = SSL_new(c->ctx)) == NULL || !SSL_set_fd(c->ssl, c->fd))
		return ts_err_ossl("SSL_new");
	/* The agent's certificate must name what we dialled. */
	vp = SSL_get0_param(c->ssl);
	X509_VERIFY_PARAM_set_hostflags(
	    vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (t->is_ip) {
		if (!X509_VERIFY_PARAM_set1_ip_asc(vp, t->host))
			return ts_err_ossl("verify IP");
	} else if (!SSL_set1_host(c->ssl, t->host) ||
	    !SSL_set_tlsext_host_name(c->ssl, t->host)) {
		return ts_err_ossl("verify host");
	}
	if (c->sess != NULL)
		(void)SSL_set_session(c->ssl, c->sess);
	SSL_set_app_data(c->ssl, c);
	c->got_ticket = 0;
	SSL_set_connect_state(c->ssl);
	for (;;) {
		ERR_clear_error();
		if ((rv = SSL_do_handshake(c->ssl)) == 1)
			break;
		err = SSL_get_error(c->ssl, rv);
		if (err == SSL_ERROR_WANT_READ)
			r = wait_fd(c->fd, POLLIN, deadline);
		else if (err == SSL_ERROR_WANT_WRITE)
			r = wait_fd(c->fd, POLLOUT, deadline);
		else
			return ssl_failure(c->ssl, rv, "TLS handshake");
		if (r != 0)
			return r;
	}
	c->resumed = SSL_session_reused(c->ssl);
	/*
	 * In TLS 1.3 our handshake ends before the agent has judged our
	 * certificate; its verdict is either an alert or its session
	 * tickets (the agent always issues them: two after a full handshake,
	 * one after a resumption, which also keeps the next resumption
	 * possible, TLS 1.3 tickets being single-use).  Wait for one so
	 * a refusal is reported as such here, not as a dropped connection
	 * on the first request (which would then be retried).
	 */
	if (SSL_version(c->ssl) == TLS1_3_VERSION) {
		unsigned char b;
		size_t n;

		while (!c->got_ticket) {
			ERR_clear_error();
			if (SSL_peek_ex(c->ssl, &b, 1, &n) == 1)
				break; /* data first: accepted anyway */
			err = SSL_get_error(c->ssl, 0);
			if (c->got_ticket)
				break; /* this very call read it */
			if (err == SSL_ERROR_WANT_READ)
				r = wait_fd(c->fd, POLLIN, deadline);
			else if (err == SSL_ERROR_WANT_WRITE)
				r = wait_fd(c->fd, POLLOUT, deadline);
			else
				return ssl_failure(c->ssl, 0, "TLS handshake");
			if (r != 0)
				return r;
		}
	}
	return 0;
}

int
tls_client_connect(struct tls_client *c)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct sigpipe_state sp;
	struct tls_target *t;
	int64_t deadline;
	size_t i;
	int r = TS_ERR_AGENT_CONNECT, gai, last = TS_ERR_AGENT_CONNECT;

	if (c->ssl != NULL)
		return 0;
	for (i = 0; i < c->ntargets; i++) {
		t = &c->targets[i];
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICSERV;
		if ((gai = getaddrinfo(t->host, t->port, &hints, &res)) != 0) {
			error("agent %.100s: %s", t->host, gai_strerror(gai));
			continue;
		}
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			deadline = now_ms() + c->timeout_ms;
			if ((r = tcp_connect(ai, deadline, &c->fd)) != 0) {
				debug_f("tls://%.100s:%s: %s", t->host, t->port,
				    r == TS_ERR_TIMEOUT ? "timeout"
							: strerror(errno));
				last = r == TS_ERR_TIMEOUT
				    ? r
				    : TS_ERR_AGENT_CONNECT;
				continue;
			}
			sigpipe_block(&sp);
			r = tls_handshake(c, t, deadline);
			sigpipe_restore(&sp);
			if (r == 0) {
				snprintf(c->peer, sizeof(c->peer),
				    t->is_ip && strchr(t->host, ':') ? "[%s]:%s"
								     : "%s:%s",
				    t->host, t->port);
				freeaddrinfo(res);
				return 0;
			}
			last = r;
			tls_client_close(c);
		}
		freeaddrinfo(res);
		res = NULL;
	}
	if (last == TS_ERR_AGENT_CONNECT)
		error("cannot reach the agent at any of %zu address(es)",
		    c->ntargets);
	return last;
}

void
tls_client_close(struct tls_client *c)
{
	struct sigpipe_state sp;
	SSL_SESSION *s;

	if (c->ssl != NULL) {
		sigpipe_block(&sp);
		/* close_notify keeps the session resumable; best effort */
		if (SSL_is_init_finished(c->ssl))
			(void)SSL_shutdown(c->ssl);
		sigpipe_restore(&sp);
		/* TLS 1.2 has no tickets callback: keep its session here */
		if (SSL_version(c->ssl) != TLS1_3_VERSION &&
		    (s = SSL_get1_session(c->ssl)) != NULL) {
			if (SSL_SESSION_is_resumable(s)) {
				SSL_SESSION_free(c->sess);
				c->sess = s;
			} else
				SSL_SESSION_free(s);
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
		ERR_clear_error();
	}
	if (c->fd != -1) {
		close(c->fd);
		c->fd = -1;
	}
	c->peer[0] = '\0';
}

void
tls_client_free(struct tls_client *c)
{
	if (c == NULL)
		return;
	tls_client_close(c);
	SSL_SESSION_free(c->sess);
	SSL_CTX_free(c->ctx);
	free(c);
}

const char *
tls_client_peer(const struct tls_client *c)
{
	return c->ssl != NULL ? c->peer : NULL;
}

int
tls_client_resumed(const struct tls_client *c)
{
	return c->resumed;
}

int
tls_client_write(struct tls_client *c, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	struct sigpipe_state sp;
	int64_t deadline = now_ms() + c->timeout_ms;
	size_t n;
	int rv, err, r = 0;

	if (c->ssl == NULL)
		return TS_ERR_AGENT_CLOSED;
	sigpipe_block(&sp);
	while (len > 0) {
		ERR_clear_error();
		if ((rv = SSL_write_ex(c->ssl, p, len, &n)) == 1) {
			p += n;
			len -= n;
			continue;
		}
		err = SSL_get_error(c->ssl, rv);
		if (err == SSL_ERROR_WANT_WRITE)
			r = wait_fd(c->fd, POLLOUT, deadline);
		else if (err == SSL_ERROR_WANT_READ)
			r = wait_fd(c->fd, POLLIN, deadline);
		else
			r = ssl_failure(c->ssl, rv, "write to agent");
		if (r != 0)
			break;
	}
	sigpipe_restore(&sp);
	return r;
}

int
tls_client_read(struct tls_client *c, void *buf, size_t len)
{
	unsigned char *p = buf;
	struct sigpipe_state sp;
	int64_t deadline = now_ms() + c->timeout_ms;
	size_t n;
	int rv, err, r = 0;

	if (c->ssl == NULL)
		return TS_ERR_AGENT_CLOSED;
	sigpipe_block(&sp); /* reading may write: alerts, key updates */
	while (len > 0) {
		ERR_clear_error();
		if ((rv = SSL_read_ex(c->ssl, p, len, &n)) == 1) {
			p += n;
			len -= n;
			continue;
		}
		err = SSL_get_error(c->ssl, rv);
		if (err == SSL_ERROR_WANT_READ)
			r = wait_fd(c->fd, POLLIN, deadline);
		else if (err == SSL_ERROR_WANT_WRITE)
			r = wait_fd(c->fd, POLLOUT, deadline);
		else
			r = ssl_failure(c->ssl, rv, "read from agent");
		if (r != 0)
			break;
	}
	sigpipe_restore(&sp);
	return r;
}

void
tls_client_retry_pause(void)
{
	/*
	 * A dying agent's listening socket can still complete TCP
	 * handshakes for a moment, and the load balancer needs a moment to
	 * notice: wait 100-200 ms (jittered so a crowd of clients doesn't
	 * return at once) before the one retry.
	 */
	struct timespec ts = { 0, 0 };
	unsigned char rnd = 0;
	int fd;

	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) >= 0) {
		if (read(fd, &rnd, 1) != 1)
			rnd = 0;
		close(fd);
	}
	ts.tv_nsec = (100 + (long)rnd * 100 / 255) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* One request and reply; *got_reply says whether any reply byte came. */
static int
call_once(struct tls_client *c, const void *req, size_t req_len,
    size_t max_reply, unsigned char **reply, size_t *reply_len, int *got_reply)
{
	unsigned char hdr[4], *body = NULL;
	uint32_t len;
	int r = TS_ERR_INTERNAL;

	*got_reply = 0;
	if (req_len > UINT32_MAX)
		return TS_ERR_TOO_LARGE;
	hdr[0] = (unsigned char)(req_len >> 24);
	hdr[1] = (unsigned char)(req_len >> 16);
	hdr[2] = (unsigned char)(req_len >> 8);
	hdr[3] = (unsigned char)req_len;
	if ((r = tls_client_write(c, hdr, 4)) != 0 ||
	    (r = tls_client_write(c, req, req_len)) != 0)
		goto out;
	if ((r = tls_client_read(c, hdr, 1)) != 0)
		goto out;
	*got_reply = 1;
	if ((r = tls_client_read(c, hdr + 1, 3)) != 0)
		goto out;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	if (len == 0 || len > max_reply) {
		error("agent reply of %u bytes (maximum %zu)", len, max_reply);
		r = TS_ERR_WIRE_TOO_LONG;
		goto out;
	}
	if ((body = malloc(len)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((r = tls_client_read(c, body, len)) != 0)
		goto out;
	*reply = body;
	*reply_len = len;
	body = NULL;
	r = 0;
out:
	free(body);
	return r;
}

int
tls_client_call_retry(struct tls_client *c, const void *req, size_t req_len,
    size_t max_reply, unsigned char **reply, size_t *reply_len)
{
	int attempt, got, r = TS_ERR_INTERNAL;

	*reply = NULL;
	*reply_len = 0;
	for (attempt = 0; attempt < 2; attempt++) {
		if ((r = tls_client_connect(c)) != 0)
			return r;
		r = call_once(
		    c, req, req_len, max_reply, reply, reply_len, &got);
		if (r == 0)
			return 0;
		tls_client_close(c);
		/*
		 * Only a connection that died before answering is retried:
		 * an agent restarted behind the load balancer, an idle
		 * connection it dropped.  Refusals and timeouts are final.
		 */
		if (got || r != TS_ERR_AGENT_CLOSED)
			return r;
		if (attempt == 0) {
			verbose("agent connection lost; reconnecting once");
			tls_client_retry_pause();
		}
	}
	return r;
}
