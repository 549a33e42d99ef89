/*
 * test_tls_client.c - the client side of the mutual-TLS transport
 * (client/tls_client.c) against a real in-process server built on
 * agent/tls.c, over loopback TCP: handshake and framing, server name and IP
 * verification, several addresses, refusal of our certificate surfacing as
 * TS_ERR_TLS_PEER, reconnect-and-retry-once, session resumption, and the
 * option sources (explicit, environment, config file).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "common/err.h"
#include "agent/tls.h"
#include "client/tls_client.h"

static char pki[256];

static const char *
pf(const char *name)
{
	static char paths[8][512];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, 512, "%s/%.200s", pki, name);
	return p;
}

static int
group_setup(void **state)
{
	char src[PATH_MAX], cmd[3 * PATH_MAX];
	const char *env = getenv("TS_SRC"), *tmp = getenv("TMPDIR");
	const char *tail = "/tests/unit/test_tls_client.c";
	size_t n = strlen(__FILE__);

	(void)state;
	if (env != NULL)
		snprintf(src, sizeof(src), "%s", env);
	else if (n > strlen(tail))
		snprintf(src, sizeof(src), "%.*s", (int)(n - strlen(tail)),
		    __FILE__);
	else
		return -1;
	snprintf(pki, sizeof(pki), "%s/ts-test-tlsc.XXXXXX",
	    tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(pki) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd),
	    "set -e; TS_PKI='%s'; . '%s/tests/lib/pki.sh'; ts_pki_setup", pki,
	    src);
	return system(cmd) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
	return system(cmd) == 0 ? 0 : -1;
}

/* A one-connection-at-a-time echo server on agent/tls.c. */
enum srv_mode {
	SRV_ECHO = 0,
	SRV_DROP_FIRST, /* first connection: read the request, hang up */
	SRV_DROP_ALL,
	SRV_BIG_REPLY, /* answer with a length of 1 MiB */
};

struct srv {
	int lfd;
	int port;
	struct tls_server *tls;
	pthread_t th;
	int stop;
	enum srv_mode mode;
	int conns; /* completed handshakes */
	int refused; /* failed handshakes */
	int resumed; /* resumed handshakes */
	char reason[200];
};

static enum tls_step
wait_step(struct tls_conn *c, int fd, enum tls_step st)
{
	struct pollfd p = { .fd = fd };

	(void)c;
	p.events = st == TLS_STEP_WANT_WRITE ? POLLOUT : POLLIN;
	return poll(&p, 1, 3000) == 1 ? TLS_STEP_DONE : TLS_STEP_FAILED;
}

static int
srv_read(struct tls_conn *c, int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t got;
	enum tls_step st;

	while (len > 0) {
		st = tls_conn_read(c, p, len, &got);
		if (st == TLS_STEP_DONE) {
			p += got;
			len -= got;
		} else if (st == TLS_STEP_WANT_READ ||
		    st == TLS_STEP_WANT_WRITE) {
			if (wait_step(c, fd, st) != TLS_STEP_DONE)
				return -1;
		} else
			return -1;
	}
	return 0;
}

static int
srv_write(struct tls_conn *c, int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t put;
	enum tls_step st;

	while (len > 0) {
		st = tls_conn_write(c, p, len, &put);
		if (st == TLS_STEP_DONE) {
			p += put;
			len -= put;
		} else if (st == TLS_STEP_WANT_READ ||
		    st == TLS_STEP_WANT_WRITE) {
			if (wait_step(c, fd, st) != TLS_STEP_DONE)
				return -1;
		} else
			return -1;
	}
	return 0;
}

static void
srv_serve(struct srv *s, int fd)
{
	struct tls_conn *c = NULL;
	enum tls_step st;
	unsigned char hdr[4], body[4096];
	uint32_t len;

	if (tls_conn_new(s->tls, fd, &c) != 0)
		return;
	while ((st = tls_conn_handshake(c)) != TLS_STEP_DONE) {
		if (st == TLS_STEP_FAILED || wait_step(c, fd, st) != 0) {
			__atomic_add_fetch(&s->refused, 1, __ATOMIC_SEQ_CST);
			snprintf(s->reason, sizeof(s->reason), "%s",
			    tls_conn_reason(c));
			goto out;
		}
	}
	__atomic_add_fetch(&s->conns, 1, __ATOMIC_SEQ_CST);
	if (tls_conn_resumed(c))
		__atomic_add_fetch(&s->resumed, 1, __ATOMIC_SEQ_CST);
	while (srv_read(c, fd, hdr, 4) == 0) {
		len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
		    (uint32_t)hdr[2] << 8 | hdr[3];
		if (len > sizeof(body) || srv_read(c, fd, body, len) != 0)
			break;
		if (s->mode == SRV_DROP_ALL ||
		    (s->mode == SRV_DROP_FIRST && s->conns == 1))
			break;
		if (s->mode == SRV_BIG_REPLY)
			memcpy(hdr, "\x00\x10\x00\x00", 4);
		if (srv_write(c, fd, hdr, 4) != 0 ||
		    srv_write(c, fd, body, len) != 0)
			break;
	}
	tls_conn_shutdown(c);
out:
	tls_conn_free(c);
}

static void *
srv_thread(void *arg)
{
	struct srv *s = arg;
	struct pollfd p;
	int fd;

	while (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
		p.fd = s->lfd;
		p.events = POLLIN;
		if (poll(&p, 1, 50) != 1)
			continue;
		if ((fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK)) < 0)
			continue;
		srv_serve(s, fd);
		close(fd);
	}
	return NULL;
}

static void
srv_start(struct srv *s, const char *bind_ip, const char *cert, const char *key,
    enum srv_mode mode)
{
	struct tls_server_opts o = { 0 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	o.cert_file = cert;
	o.key_file = key;
	o.client_ca_file = pf("ca.pem");
	o.crl_file = pf("crl.pem");
	assert_int_equal(tls_server_new(&o, &s->tls), 0);
	assert_int_equal(inet_pton(AF_INET, bind_ip, &sin.sin_addr), 1);
	assert_true((s->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sin, &sl), 0);
	s->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&s->th, NULL, srv_thread, s), 0);
}

static void
srv_stop(struct srv *s)
{
	__atomic_store_n(&s->stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(s->th, NULL);
	close(s->lfd);
	tls_server_free(s->tls);
}

/* A loopback port that nothing listens on (bound, never listening). */
static int
dead_port(int *holder)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((*holder = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(
	    bind(*holder, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(*holder, (struct sockaddr *)&sin, &sl), 0);
	return ntohs(sin.sin_port);
}

static struct tls_client *
client_for(const char *targets, const char *who)
{
	char cert[64], key[64];
	struct tls_client_opts o = { 0 };
	struct tls_client *c = NULL;

	snprintf(cert, sizeof(cert), "%s.pem", who);
	snprintf(key, sizeof(key), "%s.key", who);
	o.cert_file = pf(cert);
	o.key_file = pf(key);
	o.ca_file = pf("ca.pem");
	o.timeout_ms = 5000;
	assert_int_equal(tls_client_new(targets, &o, &c), 0);
	return c;
}

static int
call(struct tls_client *c, const char *msg)
{
	unsigned char *reply = NULL;
	size_t rlen = 0;
	int r;

	r = tls_client_call_retry(c, msg, strlen(msg), 4096, &reply, &rlen);
	if (r == 0) {
		assert_int_equal(rlen, strlen(msg));
		assert_memory_equal(reply, msg, rlen);
	} else
		assert_null(reply);
	free(reply);
	return r;
}

static void
test_happy_and_names(void **state)
{
	struct srv s;
	struct tls_client *c;
	char t[128], peer[64];

	(void)state;
	srv_start(
	    &s, "127.0.0.1", pf("server.pem"), pf("server.key"), SRV_ECHO);
	snprintf(t, sizeof(t), "tls://127.0.0.1:%d", s.port);
	c = client_for(t, "runner-a");
	assert_null(tls_client_peer(c));
	assert_int_equal(tls_client_connect(c), 0);
	snprintf(peer, sizeof(peer), "127.0.0.1:%d", s.port);
	assert_string_equal(tls_client_peer(c), peer);
	assert_int_equal(call(c,
			     "\x0b"
			     "hello agent"),
	    0);
	assert_int_equal(call(c,
			     "\x0b"
			     "second request, same connection"),
	    0);
	assert_int_equal(s.conns, 1);
	tls_client_free(c);
	/* by name: the DNS SAN "localhost" is verified */
	snprintf(t, sizeof(t), "tls://localhost:%d", s.port);
	c = client_for(t, "runner-b");
	assert_int_equal(call(c,
			     "\x0b"
			     "y"),
	    0);
	tls_client_free(c);
	srv_stop(&s);
}

static void
test_server_verification(void **state)
{
	struct srv s;
	struct tls_client *c;
	char t[128];

	(void)state;
	/* a server certificate from another CA */
	srv_start(
	    &s, "127.0.0.1", pf("server2.pem"), pf("server2.key"), SRV_ECHO);
	snprintf(t, sizeof(t), "tls://127.0.0.1:%d", s.port);
	c = client_for(t, "runner-a");
	assert_int_equal(tls_client_connect(c), TS_ERR_TLS_PEER);
	assert_int_equal(call(c,
			     "\x0b"
			     "x"),
	    TS_ERR_TLS_PEER);
	tls_client_free(c);
	srv_stop(&s);
	/* the right CA but an address the certificate does not name */
	srv_start(
	    &s, "127.0.0.2", pf("server.pem"), pf("server.key"), SRV_ECHO);
	snprintf(t, sizeof(t), "tls://127.0.0.2:%d", s.port);
	c = client_for(t, "runner-a");
	assert_int_equal(tls_client_connect(c), TS_ERR_TLS_PEER);
	tls_client_free(c);
	assert_int_equal(s.conns, 0);
	srv_stop(&s);
}

static void
test_several_addresses(void **state)
{
	struct srv s;
	struct tls_client *c;
	char t[256], peer[64];
	int hold, dead;

	(void)state;
	srv_start(
	    &s, "127.0.0.1", pf("server.pem"), pf("server.key"), SRV_ECHO);
	dead = dead_port(&hold);
	snprintf(t, sizeof(t), "tls://127.0.0.1:%d,tls://127.0.0.1:%d", dead,
	    s.port);
	c = client_for(t, "runner-a");
	assert_int_equal(call(c,
			     "\x0b"
			     "failover"),
	    0);
	snprintf(peer, sizeof(peer), "127.0.0.1:%d", s.port);
	assert_string_equal(tls_client_peer(c), peer);
	tls_client_free(c);
	snprintf(t, sizeof(t), "tls://127.0.0.1:%d,tls://[::1]:%d", dead, dead);
	c = client_for(t, "runner-a");
	assert_int_equal(tls_client_connect(c), TS_ERR_AGENT_CONNECT);
	tls_client_free(c);
	close(hold);
	srv_stop(&s);
}

static void
test_refused_client_cert(void **state)
{
	struct srv s;
	struct tls_client *c;
	char t[128];
	const char *bad[] = { "expired", "revoked", "foreign" };
	size_t i;

	(void)state;
	srv_start(
	    &s, "127.0.0.1", pf("server.pem"), pf("server.key"), SRV_ECHO);
	snprintf(t, sizeof(t), "tls://127.0.0.1:%d", s.port);
	for (i = 0; i < 3; i++) {
		c = client_for(t, bad[i]);
		/* the agent's alert: a refusal, never retried */
		assert_int_equal(call(c,
				     "\x0b"
				     "x"),
		    TS_ERR_TLS_PEER);
		tls_client_free(c);
		/* the server counts after sending its alert */
		for (int w = 0; w < 200 &&
		     __atomic_load_n(&s.refused, __ATOMIC_SEQ_CST) <= (int)i;
		     w++)
			usleep(10000);
		assert_int_equal(
		    __atomic_load_n(&s.refused, __ATOMIC_SEQ_CST), (int)i + 1);
	}
	assert_int_equal(s.conns, 0);
	srv_stop(&s);
}

static void
test_retry_once(void **state)
{
	struct srv s;
	struct tls_client *c;
	char t[128];

	(void)state;
	srv_start(&s, "127.0.0.1", pf("server.pem"), pf("server.key"),
	    SRV_DROP_FIRST);
	snprintf(t, sizeof(t), "tls://127.0.0.1:%d", s.port);
	c = client_for(t, "runner-a");
	assert_int_equal(call(c,
			     "\x0b"
			     "survives one drop"),
	    0);
	assert_int_equal(s.conns, 2);
	tls_client_free(c);
	srv_stop(&s);

	srv_start(
	    &s, "127.0.0.1", pf("server.pem"), pf("server.key"), SRV_DROP_ALL);
	snprintf(t, sizeof(t), "tls://127.0.0.1:%d", s.port);
	c = client_for(t, "runner-a");
	assert_int_equal(call(c,
			     "\x0b"
			     "not two"),
	    TS_ERR_AGENT_CLOSED);
	assert_int_equal(s.conns, 2); /* exactly one retry */
	tls_client_free(c);
	srv_stop(&s);
}

static void
test_resumption_and_reply_cap(void **state)
{
	struct srv s;
	struct tls_client *c;
	unsigned char *reply = NULL;
	size_t rlen;
	char t[128];

	(void)state;
	srv_start(
	    &s, "127.0.0.1", pf("server.pem"), pf("server.key"), SRV_ECHO);
	snprintf(t, sizeof(t), "tls://127.0.0.1:%d", s.port);
	c = client_for(t, "runner-a");
	assert_int_equal(call(c,
			     "\x0b"
			     "full"),
	    0);
	assert_int_equal(tls_client_resumed(c), 0);
	tls_client_close(c);
	assert_int_equal(call(c,
			     "\x0b"
			     "resumed"),
	    0);
	assert_int_equal(tls_client_resumed(c), 1);
	assert_int_equal(s.resumed, 1);
	tls_client_free(c);
	srv_stop(&s);

	srv_start(
	    &s, "127.0.0.1", pf("server.pem"), pf("server.key"), SRV_BIG_REPLY);
	snprintf(t, sizeof(t), "tls://127.0.0.1:%d", s.port);
	c = client_for(t, "runner-a");
	assert_int_equal(tls_client_call_retry(c,
			     "\x0b"
			     "x",
			     2, 4096, &reply, &rlen),
	    TS_ERR_WIRE_TOO_LONG);
	assert_null(reply);
	tls_client_free(c);
	srv_stop(&s);
}

static void
test_targets(void **state)
{
	struct tls_client_opts o = { 0 };
	struct tls_client *c = NULL;
	const char *bad[] = {
		"tcp://127.0.0.1:1",
		"tls://127.0.0.1",
		"tls://127.0.0.1:",
		"tls://127.0.0.1:0",
		"tls://127.0.0.1:65536",
		"tls://127.0.0.1:12a",
		"tls://:123",
		"tls://[::1:123",
		"tls://a b:1",
		"tls://x:1,",
		"tls://::1:123",
		"tls://x:1,tls://x:1,tls://x:1,tls://x:1,tls://x:1,tls://x:1,"
		"tls://x:1,tls://x:1,tls://x:1,tls://x:1,tls://x:1,tls://x:1,"
		"tls://x:1,tls://x:1,tls://x:1,tls://x:1,tls://x:1",
	};
	size_t i;

	(void)state;
	assert_true(tls_client_is_target("tls://h:1"));
	assert_false(tls_client_is_target("/run/user/1/ts/agent.sock"));
	o.cert_file = pf("runner-a.pem");
	o.key_file = pf("runner-a.key");
	o.ca_file = pf("ca.pem");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (tls_client_new(bad[i], &o, &c) != TS_ERR_INVALID_ARG)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_null(c);
	}
	assert_int_equal(
	    tls_client_new("tls://[::1]:443,tls://h.example:1", &o, &c), 0);
	tls_client_free(c);
	/* a key that is not the certificate's */
	o.key_file = pf("runner-b.key");
	assert_int_equal(tls_client_new("tls://h:1", &o, &c), TS_ERR_CONFIG);
	o.key_file = pf("runner-a.key");
	o.ca_file = pf("nope.pem");
	assert_int_equal(tls_client_new("tls://h:1", &o, &c), TS_ERR_CONFIG);
}

static void
test_opts_sources(void **state)
{
	struct tls_client_opts o = { 0 };
	struct tls_client_opts_store st;
	char conf[512];
	FILE *f;

	(void)state;
	unsetenv("TOKENSIGN_TLS_CERT");
	unsetenv("TOKENSIGN_TLS_KEY");
	unsetenv("TOKENSIGN_TLS_CA");
	snprintf(conf, sizeof(conf), "%s/tls.conf", pki);
	setenv("TOKENSIGN_TLS_CONFIG", conf, 1);
	/* explicit config file that does not exist: an error */
	assert_int_equal(tls_client_opts_resolve(&o, &st), TS_ERR_CONFIG);
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f, "# client identity\ncert = %s\n  key=%s \n\nca = %s\n",
	    pf("runner-a.pem"), pf("runner-a.key"), pf("ca.pem"));
	fclose(f);
	assert_int_equal(tls_client_opts_resolve(&o, &st), 0);
	assert_string_equal(o.cert_file, pf("runner-a.pem"));
	assert_string_equal(o.key_file, pf("runner-a.key"));
	assert_string_equal(o.ca_file, pf("ca.pem"));
	tls_client_opts_cleanup(&st);
	/* environment beats the file, explicit beats both */
	memset(&o, 0, sizeof(o));
	setenv("TOKENSIGN_TLS_CERT", "/env/cert.pem", 1);
	o.key_file = "/explicit/key.pem";
	assert_int_equal(tls_client_opts_resolve(&o, &st), 0);
	assert_string_equal(o.cert_file, "/env/cert.pem");
	assert_string_equal(o.key_file, "/explicit/key.pem");
	assert_string_equal(o.ca_file, pf("ca.pem"));
	tls_client_opts_cleanup(&st);
	unsetenv("TOKENSIGN_TLS_CERT");
	/* a typo in the file is an error, not a silently missing cert */
	assert_non_null(f = fopen(conf, "w"));
	fprintf(f, "certificate = /x\n");
	fclose(f);
	memset(&o, 0, sizeof(o));
	assert_int_equal(tls_client_opts_resolve(&o, &st), TS_ERR_CONFIG);
	/* nothing anywhere: says what is missing */
	unsetenv("TOKENSIGN_TLS_CONFIG");
	setenv("HOME", pki, 1);
	unsetenv("XDG_CONFIG_HOME");
	memset(&o, 0, sizeof(o));
	assert_int_equal(tls_client_opts_resolve(&o, &st), TS_ERR_CONFIG);
	assert_null(o.cert_file);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_happy_and_names),
		cmocka_unit_test(test_server_verification),
		cmocka_unit_test(test_several_addresses),
		cmocka_unit_test(test_refused_client_cert),
		cmocka_unit_test(test_retry_once),
		cmocka_unit_test(test_resumption_and_reply_cap),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_opts_sources),
	};

	signal(SIGPIPE, SIG_IGN); /* the server side (agent/tls.h) */
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
