/*
 * test_tls.c - the agent's mutual-TLS server side (agent/tls.c) with real
 * handshakes over an in-process socketpair: a plain OpenSSL client on one
 * end, tls_conn on the other, both non-blocking and stepped alternately the
 * way a poll loop would.  Certificates come from tests/lib/pki.sh (the same
 * recipe the integration tests and docs/deployment.md use).
 *
 * Each refusal must happen during the handshake and carry its own reason:
 * no certificate, another CA, expired, revoked (CRL), CRL unusable, TLS 1.2
 * when not allowed, peer gone mid-handshake, garbage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "agent/tls.h"

static char pki[256]; /* short: paths below are built from it */

static const char *
pf(const char *name)
{
	static char paths[8][512];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, 512, "%s/%.200s", pki, name);
	return p;
}

/* The source tree: $TS_SRC, else derived from this file's path. */
static void
src_dir(char *buf, size_t len)
{
	const char *env = getenv("TS_SRC");
	const char *tail = "/tests/unit/test_tls.c";
	size_t n;

	if (env != NULL) {
		snprintf(buf, len, "%s", env);
		return;
	}
	n = strlen(__FILE__);
	assert_true(n > strlen(tail));
	assert_string_equal(&__FILE__[n - strlen(tail)], tail);
	snprintf(buf, len, "%.*s", (int)(n - strlen(tail)), __FILE__);
}

static int
group_setup(void **state)
{
	char src[PATH_MAX], cmd[3 * PATH_MAX];
	const char *tmp = getenv("TMPDIR");

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	snprintf(pki, sizeof(pki), "%s/ts-test-tls.XXXXXX",
	    tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(pki) == NULL)
		return -1;
	src_dir(src, sizeof(src));
	/*
	 * crl1.pem revokes "revoked"; crl2.pem also revokes runner-b (for
	 * the reload test); crl-other.pem is the unrelated CA's CRL.
	 */
	snprintf(cmd, sizeof(cmd),
	    "set -e; TS_PKI='%s'; . '%s/tests/lib/pki.sh'; ts_pki_setup; "
	    "cp \"$TS_PKI/crl.pem\" \"$TS_PKI/crl1.pem\"; "
	    "openssl ca -batch -config \"$TS_PKI/ca/ca.cnf\" "
	    "-revoke \"$TS_PKI/runner-b.pem\" 2>/dev/null; ts_pki_crl; "
	    "mv \"$TS_PKI/crl.pem\" \"$TS_PKI/crl2.pem\"; "
	    "cp \"$TS_PKI/crl1.pem\" \"$TS_PKI/crl.pem\"; "
	    "openssl ca -batch -config \"$TS_PKI/ca2/ca.cnf\" -gencrl "
	    "-out \"$TS_PKI/crl-other.pem\" 2>/dev/null",
	    pki, src);
	if (system(cmd) != 0) {
		fprintf(stderr, "pki setup failed\n");
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
	return system(cmd) == 0 ? 0 : -1;
}

static struct tls_server *
server_with(const char *crl, int tls12)
{
	struct tls_server_opts o = {
		.cert_file = pf("server.pem"),
		.key_file = pf("server.key"),
		.client_ca_file = pf("ca.pem"),
		.crl_file = crl,
		.allow_tls12 = tls12,
	};
	struct tls_server *s = NULL;

	assert_int_equal(tls_server_new(&o, &s), 0);
	assert_non_null(s);
	return s;
}

/* One socketpair with a client SSL on [0] and a tls_conn on [1]. */
struct pair {
	int fd[2];
	SSL_CTX *cctx;
	SSL *cssl;
	struct tls_conn *conn;
	enum tls_step sstep;
	int cdone; /* 1 ok, -1 failed */
};

static void
pair_open(struct pair *p, struct tls_server *srv, const char *client,
    int max_version, SSL_SESSION *sess)
{
	char cert[64], key[64];

	memset(p, 0, sizeof(*p));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
	assert_int_equal(fcntl(p->fd[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(p->fd[1], F_SETFL, O_NONBLOCK), 0);
	assert_non_null(p->cctx = SSL_CTX_new(TLS_client_method()));
	if (max_version != 0)
		SSL_CTX_set_max_proto_version(p->cctx, max_version);
	assert_int_equal(
	    SSL_CTX_load_verify_locations(p->cctx, pf("ca.pem"), NULL), 1);
	SSL_CTX_set_verify(p->cctx, SSL_VERIFY_PEER, NULL);
	if (client != NULL) {
		snprintf(cert, sizeof(cert), "%s.pem", client);
		snprintf(key, sizeof(key), "%s.key", client);
		assert_int_equal(SSL_CTX_use_certificate_file(
				     p->cctx, pf(cert), SSL_FILETYPE_PEM),
		    1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(
				     p->cctx, pf(key), SSL_FILETYPE_PEM),
		    1);
	}
	assert_non_null(p->cssl = SSL_new(p->cctx));
	assert_int_equal(SSL_set_fd(p->cssl, p->fd[0]), 1);
	SSL_set_connect_state(p->cssl);
	if (sess != NULL)
		assert_int_equal(SSL_set_session(p->cssl, sess), 1);
	assert_int_equal(tls_conn_new(srv, p->fd[1], &p->conn), 0);
	p->sstep = TLS_STEP_WANT_READ;
}

static void
pair_close(struct pair *p)
{
	tls_conn_free(p->conn);
	/* a client session freed without close_notify is not resumable */
	if (p->cdone == 1)
		(void)SSL_shutdown(p->cssl);
	ERR_clear_error();
	SSL_free(p->cssl);
	SSL_CTX_free(p->cctx);
	close(p->fd[0]);
	close(p->fd[1]);
}

/* Steps both ends until the server side has finished either way. */
static enum tls_step
pair_handshake(struct pair *p)
{
	int i, rv;

	for (i = 0; i < 100; i++) {
		if (p->cdone == 0) {
			rv = SSL_do_handshake(p->cssl);
			if (rv == 1)
				p->cdone = 1;
			else {
				int e = SSL_get_error(p->cssl, rv);
				if (e != SSL_ERROR_WANT_READ &&
				    e != SSL_ERROR_WANT_WRITE)
					p->cdone = -1;
			}
			ERR_clear_error();
		}
		p->sstep = tls_conn_handshake(p->conn);
		if (p->sstep == TLS_STEP_DONE || p->sstep == TLS_STEP_FAILED)
			return p->sstep;
	}
	fail_msg("handshake did not finish");
	return TLS_STEP_FAILED;
}

/* Sends msg client -> server -> client through tls_conn_read/write. */
static void
pair_echo(struct pair *p, const char *msg)
{
	char buf[256];
	size_t n = 0, got = 0;
	int i;
	enum tls_step st;

	assert_int_equal(SSL_write_ex(p->cssl, msg, strlen(msg), &n), 1);
	for (i = 0; i < 100; i++) {
		st = tls_conn_read(p->conn, buf, sizeof(buf), &got);
		if (st == TLS_STEP_DONE)
			break;
		assert_int_equal(st, TLS_STEP_WANT_READ);
	}
	assert_int_equal(got, strlen(msg));
	assert_memory_equal(buf, msg, got);
	assert_int_equal(tls_conn_pending(p->conn), 0);
	assert_int_equal(tls_conn_write(p->conn, buf, got, &n), TLS_STEP_DONE);
	assert_int_equal(n, got);
	memset(buf, 0, sizeof(buf));
	/* the client may first have to consume session tickets */
	for (i = 0; i < 100; i++) {
		if (SSL_read_ex(p->cssl, buf, sizeof(buf), &n) == 1)
			break;
		assert_int_equal(SSL_get_error(p->cssl, 0) == SSL_ERROR_SSL, 0);
	}
	assert_int_equal(n, strlen(msg));
	assert_memory_equal(buf, msg, n);
}

static void
expect_refusal(struct tls_server *srv, const char *client, int maxver,
    enum tls_refusal want, const char *reason_part)
{
	struct pair p;

	pair_open(&p, srv, client, maxver, NULL);
	assert_int_equal(pair_handshake(&p), TLS_STEP_FAILED);
	if (tls_conn_refusal(p.conn) != want)
		fail_msg("%s: refusal %s (%s), wanted %s",
		    client ? client : "(no cert)",
		    tls_refusal_name(tls_conn_refusal(p.conn)),
		    tls_conn_reason(p.conn), tls_refusal_name(want));
	if (strstr(tls_conn_reason(p.conn), reason_part) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", tls_conn_reason(p.conn),
		    reason_part);
	assert_null(tls_conn_identity(p.conn));
	/* once failed, it stays failed and I/O is refused */
	assert_int_equal(tls_conn_handshake(p.conn), TLS_STEP_FAILED);
	pair_close(&p);
}

static void
test_happy_path(void **state)
{
	struct tls_server *srv = server_with(pf("crl.pem"), 0);
	const struct tls_identity *id;
	const char *const *v;
	struct pair p;
	char desc[256];
	size_t n;

	(void)state;
	pair_open(&p, srv, "runner-a", 0, NULL);
	assert_int_equal(pair_handshake(&p), TLS_STEP_DONE);
	assert_int_equal(tls_conn_refusal(p.conn), TLS_REFUSE_NONE);
	assert_string_equal(tls_conn_version(p.conn), "TLSv1.3");
	assert_int_equal(tls_conn_resumed(p.conn), 0);
	assert_non_null(id = tls_conn_identity(p.conn));
	assert_string_equal(tls_identity_cn(id), "runner-a");
	v = tls_identity_uris(id, &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "spiffe://ci.example/runner-a");
	v = tls_identity_dns(id, &n);
	assert_int_equal(n, 1);
	assert_string_equal(v[0], "runner-a.ci.example");
	assert_string_equal(
	    tls_identity_subject(id), "O=tokensign tests,CN=runner-a");
	assert_string_equal(
	    tls_identity_issuer(id), "CN=tokensign test CA,O=tokensign tests");
	assert_int_equal(strlen(tls_identity_fingerprint(id)), 64);
	assert_true(strlen(tls_identity_serial(id)) > 0);
	assert_int_equal(tls_identity_describe(id, desc, sizeof(desc)), 0);
	assert_string_equal(desc,
	    "cn=runner-a uri=spiffe://ci.example/runner-a "
	    "dns=runner-a.ci.example");
	assert_int_equal(tls_identity_describe(id, desc, 10), TS_ERR_TOO_LARGE);
	assert_int_equal(strlen(desc), 9);
	pair_echo(&p, "hello over mutual TLS");
	/* close_notify from the server reaches the client as EOF */
	tls_conn_shutdown(p.conn);
	pair_close(&p);
	tls_server_free(srv);
}

static void
test_no_client_cert(void **state)
{
	struct tls_server *srv = server_with(NULL, 0);

	(void)state;
	expect_refusal(srv, NULL, 0, TLS_REFUSE_NO_CERT, "no certificate");
	tls_server_free(srv);
}

static void
test_other_ca(void **state)
{
	struct tls_server *srv = server_with(pf("crl.pem"), 0);

	(void)state;
	expect_refusal(srv, "foreign", 0, TLS_REFUSE_UNTRUSTED,
	    "unable to get local issuer certificate");
	tls_server_free(srv);
}

static void
test_expired(void **state)
{
	struct tls_server *srv = server_with(pf("crl.pem"), 0);

	(void)state;
	expect_refusal(
	    srv, "expired", 0, TLS_REFUSE_EXPIRED, "certificate has expired");
	tls_server_free(srv);
}

static void
test_revoked(void **state)
{
	struct tls_server *srv = server_with(pf("crl.pem"), 0);
	struct pair p;

	(void)state;
	expect_refusal(
	    srv, "revoked", 0, TLS_REFUSE_REVOKED, "certificate revoked");
	tls_server_free(srv);
	/* without a CRL the same certificate is accepted: the CRL refused */
	srv = server_with(NULL, 0);
	pair_open(&p, srv, "revoked", 0, NULL);
	assert_int_equal(pair_handshake(&p), TLS_STEP_DONE);
	pair_close(&p);
	tls_server_free(srv);
}

static void
test_crl_unusable_fails_closed(void **state)
{
	/* a CRL that isn't the client CA's: no CRL for the issuer */
	struct tls_server *srv = server_with(pf("crl-other.pem"), 0);

	(void)state;
	expect_refusal(srv, "runner-a", 0, TLS_REFUSE_CRL,
	    "unable to get certificate CRL");
	tls_server_free(srv);
}

static void
test_tls12_policy(void **state)
{
	struct tls_server *srv = server_with(NULL, 0);
	struct pair p;

	(void)state;
	expect_refusal(srv, "runner-a", TLS1_2_VERSION, TLS_REFUSE_PROTOCOL,
	    "unsupported protocol");
	tls_server_free(srv);
	srv = server_with(NULL, 1);
	pair_open(&p, srv, "runner-a", TLS1_2_VERSION, NULL);
	assert_int_equal(pair_handshake(&p), TLS_STEP_DONE);
	assert_string_equal(tls_conn_version(p.conn), "TLSv1.2");
	assert_string_equal(
	    tls_identity_cn(tls_conn_identity(p.conn)), "runner-a");
	pair_echo(&p, "tls1.2 by option");
	pair_close(&p);
	/* 1.2 with no client certificate is refused the same way */
	expect_refusal(
	    srv, NULL, TLS1_2_VERSION, TLS_REFUSE_NO_CERT, "no certificate");
	tls_server_free(srv);
}

static void
test_peer_gone_and_garbage(void **state)
{
	struct tls_server *srv = server_with(NULL, 0);
	struct tls_conn *c;
	int fd[2];
	ssize_t w;

	(void)state;
	/* a client that connects and hangs up without a ClientHello */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	assert_int_equal(fcntl(fd[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(tls_conn_new(srv, fd[1], &c), 0);
	assert_int_equal(tls_conn_handshake(c), TLS_STEP_WANT_READ);
	close(fd[0]);
	assert_int_equal(tls_conn_handshake(c), TLS_STEP_FAILED);
	assert_int_equal(tls_conn_refusal(c), TLS_REFUSE_EOF);
	tls_conn_free(c);
	close(fd[1]);
	/* a client speaking something else */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
	assert_int_equal(fcntl(fd[1], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(tls_conn_new(srv, fd[1], &c), 0);
	w = write(fd[0], "GET / HTTP/1.0\r\n\r\n", 18);
	assert_int_equal(w, 18);
	assert_int_equal(tls_conn_handshake(c), TLS_STEP_FAILED);
	assert_int_equal(tls_conn_refusal(c), TLS_REFUSE_PROTOCOL);
	assert_non_null(strstr(tls_conn_reason(c), "handshake failed"));
	tls_conn_free(c);
	close(fd[0]);
	close(fd[1]);
	tls_server_free(srv);
}

static void
test_reload_keeps_connections(void **state)
{
	char cmd[2 * PATH_MAX];
	struct tls_server *srv;
	struct pair old, p;

	(void)state;
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", pf("crl1.pem"),
	    pf("crl-live.pem"));
	assert_int_equal(system(cmd), 0);
	srv = server_with(pf("crl-live.pem"), 0);
	assert_int_equal(tls_server_generation(srv), 1);
	pair_open(&old, srv, "runner-b", 0, NULL);
	assert_int_equal(pair_handshake(&old), TLS_STEP_DONE);
	pair_echo(&old, "before reload");

	/* runner-b is revoked; SIGHUP-style reload picks up the new CRL */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", pf("crl2.pem"),
	    pf("crl-live.pem"));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(tls_server_reload(srv), 0);
	assert_int_equal(tls_server_generation(srv), 2);
	expect_refusal(srv, "runner-b", 0, TLS_REFUSE_REVOKED, "revoked");
	pair_open(&p, srv, "runner-a", 0, NULL);
	assert_int_equal(pair_handshake(&p), TLS_STEP_DONE);
	pair_close(&p);
	/* the established connection was not dropped */
	pair_echo(&old, "after reload");

	/* a broken CRL on reload: error, the good context stays */
	snprintf(cmd, sizeof(cmd), "echo garbage > '%s'", pf("crl-live.pem"));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(tls_server_reload(srv), TS_ERR_CONFIG);
	assert_int_equal(tls_server_generation(srv), 2);
	expect_refusal(srv, "runner-b", 0, TLS_REFUSE_REVOKED, "revoked");

	/* even freeing the server leaves live connections working */
	tls_server_free(srv);
	pair_echo(&old, "after free");
	pair_close(&old);
}

/* Resumption works, and a reload invalidates old tickets (CRL bypass). */
static void
test_resumption(void **state)
{
	struct tls_server *srv = server_with(pf("crl.pem"), 0);
	SSL_SESSION *sess;
	struct pair p;

	(void)state;
	pair_open(&p, srv, "runner-a", 0, NULL);
	assert_int_equal(pair_handshake(&p), TLS_STEP_DONE);
	pair_echo(&p, "get a ticket"); /* client reads the tickets */
	assert_non_null(sess = SSL_get1_session(p.cssl));
	assert_int_equal(SSL_SESSION_is_resumable(sess), 1);
	pair_close(&p);

	pair_open(&p, srv, "runner-a", 0, sess);
	assert_int_equal(pair_handshake(&p), TLS_STEP_DONE);
	assert_int_equal(tls_conn_resumed(p.conn), 1);
	assert_string_equal(
	    tls_identity_cn(tls_conn_identity(p.conn)), "runner-a");
	pair_echo(&p, "resumed");
	pair_close(&p);

	assert_int_equal(tls_server_reload(srv), 0);
	pair_open(&p, srv, "runner-a", 0, sess);
	assert_int_equal(pair_handshake(&p), TLS_STEP_DONE);
	assert_int_equal(tls_conn_resumed(p.conn), 0);
	pair_close(&p);
	SSL_SESSION_free(sess);
	tls_server_free(srv);
}

static void
test_bad_server_config(void **state)
{
	struct tls_server_opts o = {
		.cert_file = pf("server.pem"),
		.key_file = pf("runner-a.key"), /* not the cert's key */
		.client_ca_file = pf("ca.pem"),
	};
	struct tls_server *s = NULL;

	(void)state;
	assert_int_equal(tls_server_new(&o, &s), TS_ERR_CONFIG);
	assert_null(s);
	o.key_file = pf("server.key");
	o.client_ca_file = pf("missing.pem");
	assert_int_equal(tls_server_new(&o, &s), TS_ERR_CONFIG);
	o.client_ca_file = pf("ca.pem");
	o.crl_file = pf("server.key"); /* not a CRL */
	assert_int_equal(tls_server_new(&o, &s), TS_ERR_CONFIG);
	o.crl_file = NULL;
	o.client_ca_file = NULL;
	assert_int_equal(tls_server_new(&o, &s), TS_ERR_CONFIG);
	assert_null(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_happy_path),
		cmocka_unit_test(test_no_client_cert),
		cmocka_unit_test(test_other_ca),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_crl_unusable_fails_closed),
		cmocka_unit_test(test_tls12_policy),
		cmocka_unit_test(test_peer_gone_and_garbage),
		cmocka_unit_test(test_reload_keeps_connections),
		cmocka_unit_test(test_resumption),
		cmocka_unit_test(test_bad_server_config),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
