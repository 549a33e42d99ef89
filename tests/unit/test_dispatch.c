/*
 * test_dispatch.c - dispatch_message() without a socket or a token: the
 * framing of replies, HELLO/version rules, malformed requests, unknown
 * types in both number ranges, lock/unlock, and the table itself.  Also
 * the peer policy and config line parsing the dispatcher relies on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define DISPATCH_INTERNAL
#include "agent/config.h"
#include "agent/dispatch.h"
#include "agent/keystore.h"
#include "agent/policy.h"
#include "common/err.h"
#include "common/proto.h"
#include "common/wbuf.h"

struct fx {
	struct keystore *ks;
	struct policy *pol;
	struct dispatch_ctx *ctx;
	struct agent_peer peer;
	struct wbuf *req;
	struct wbuf *rep;
	uint8_t type; /* reply type */
	struct wbuf *body; /* reply body view (after type) */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(f->ks = keystore_new());
	assert_non_null(f->pol = policy_new(getuid()));
	assert_non_null(f->ctx = dispatch_ctx_new(f->ks, f->pol, NULL));
	dispatch_set_test_mode(f->ctx, 1);
	f->peer.transport = PEER_TEST;
	assert_non_null(f->req = wbuf_new(TS_PROTO_MAX_FRAME + 64));
	assert_non_null(f->rep = wbuf_new(TS_PROTO_MAX_FRAME + 64));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	wbuf_free(f->body);
	wbuf_free(f->req);
	wbuf_free(f->rep);
	dispatch_ctx_free(f->ctx);
	policy_unref(f->pol);
	keystore_free(f->ks);
	free(f);
	return 0;
}

/* Sends f->req (type byte first) and checks the reply's framing. */
static void
run(struct fx *f)
{
	uint32_t len;

	wbuf_free(f->body);
	f->body = NULL;
	wbuf_reset(f->rep);
	assert_int_equal(dispatch_message(f->ctx, &f->peer, wbuf_ptr(f->req),
			     wbuf_len(f->req), f->rep),
	    0);
	assert_int_equal(wbuf_peek_u32(f->rep, 0, &len), 0);
	assert_int_equal(len + 4, wbuf_len(f->rep));
	assert_true(len >= 1 && len <= TS_PROTO_MAX_FRAME);
	f->type = wbuf_ptr(f->rep)[4];
	assert_non_null(f->body = wbuf_from(wbuf_ptr(f->rep) + 5, len - 1));
	wbuf_reset(f->req);
}

static void
expect_failure(struct fx *f, int code)
{
	uint32_t got;
	char *msg = NULL;

	run(f);
	assert_int_equal(f->type, TS_MSG_FAILURE);
	assert_int_equal(wbuf_get_u32(f->body, &got), 0);
	assert_int_equal(got, (uint32_t)-code);
	assert_int_equal(wbuf_get_cstring(f->body, &msg, NULL), 0);
	assert_true(strlen(msg) > 0);
	assert_int_equal(wbuf_len(f->body), 0);
	free(msg);
}

static void
put_hello(struct fx *f, uint32_t version)
{
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_HELLO), 0);
	assert_int_equal(wbuf_put_u32(f->req, version), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "test"), 0);
}

static void
hello(struct fx *f)
{
	put_hello(f, TS_PROTO_VERSION);
	run(f);
	assert_int_equal(f->type, TS_MSG_HELLO_REPLY);
}

static void
test_hello(void **state)
{
	struct fx *f = *state;
	uint32_t v, maxf, maxb;
	char *name = NULL;

	put_hello(f, TS_PROTO_VERSION);
	run(f);
	assert_int_equal(f->type, TS_MSG_HELLO_REPLY);
	assert_int_equal(wbuf_get_u32(f->body, &v), 0);
	assert_int_equal(v, TS_PROTO_VERSION);
	assert_int_equal(wbuf_get_cstring(f->body, &name, NULL), 0);
	assert_non_null(strstr(name, "tokensign-agent"));
	assert_int_equal(wbuf_get_u32(f->body, &maxf), 0);
	assert_int_equal(wbuf_get_u32(f->body, &maxb), 0);
	assert_int_equal(maxf, TS_PROTO_MAX_FRAME);
	assert_int_equal(maxb, TS_PROTO_MAX_BATCH);
	assert_int_equal(wbuf_len(f->body), 0);
	assert_true(f->peer.hello_done);
	free(name);
}

static void
test_hello_required_and_version(void **state)
{
	struct fx *f = *state;

	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_LIST_KEYS), 0);
	expect_failure(f, TS_ERR_WIRE_VERSION);
	put_hello(f, TS_PROTO_VERSION + 1);
	expect_failure(f, TS_ERR_WIRE_VERSION);
	assert_false(f->peer.hello_done);
	/* Truncated HELLO: version only. */
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_HELLO), 0);
	assert_int_equal(wbuf_put_u32(f->req, 1), 0);
	expect_failure(f, TS_ERR_WIRE_TRUNCATED);
	/* Trailing byte after a HELLO. */
	put_hello(f, TS_PROTO_VERSION);
	assert_int_equal(wbuf_put_u8(f->req, 0), 0);
	expect_failure(f, TS_ERR_WIRE_TRAILING);
	assert_false(f->peer.hello_done);
}

static void
test_unknown_types(void **state)
{
	struct fx *f = *state;

	hello(f);
	assert_int_equal(wbuf_put_u8(f->req, 200), 0);
	expect_failure(f, TS_ERR_WIRE_BAD_TYPE);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_PROGRESS), 0);
	expect_failure(f, TS_ERR_WIRE_BAD_TYPE); /* a notice, not a request */
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_FAILURE), 0);
	expect_failure(f, TS_ERR_WIRE_BAD_TYPE);
	/* The ssh-agent range answers the ssh way: a bare FAILURE (5). */
	assert_int_equal(wbuf_put_u8(f->req, 11), 0);
	run(f);
	assert_int_equal(f->type, 5);
	assert_int_equal(wbuf_len(f->body), 0);
}

static void
test_empty_and_oversize(void **state)
{
	struct fx *f = *state;
	static uint8_t big[TS_PROTO_MAX_FRAME + 1];

	wbuf_reset(f->rep);
	assert_int_equal(dispatch_message(f->ctx, &f->peer, big, 0, f->rep), 0);
	assert_int_equal(wbuf_ptr(f->rep)[4], TS_MSG_FAILURE);
	wbuf_reset(f->rep);
	big[0] = TS_MSG_HELLO;
	assert_int_equal(
	    dispatch_message(f->ctx, &f->peer, big, sizeof(big), f->rep), 0);
	assert_int_equal(wbuf_ptr(f->rep)[4], TS_MSG_FAILURE);
	assert_int_equal(wbuf_ptr(f->rep)[8], (uint8_t)-TS_ERR_WIRE_TOO_LONG);
}

static void
test_list_keys_empty(void **state)
{
	struct fx *f = *state;
	uint32_t n;

	hello(f);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_LIST_KEYS), 0);
	run(f);
	assert_int_equal(f->type, TS_MSG_KEYS);
	assert_int_equal(wbuf_get_u32(f->body, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(wbuf_len(f->body), 0);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_LIST_KEYS), 0);
	assert_int_equal(wbuf_put_u8(f->req, 1), 0);
	expect_failure(f, TS_ERR_WIRE_TRAILING);
}

static void
test_sign_requests(void **state)
{
	struct fx *f = *state;
	uint8_t d[32] = { 0 };

	hello(f);
	/* Unknown key: refused by name. */
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_SIGN_DIGEST), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "nokey"), 0);
	assert_int_equal(wbuf_put_u8(f->req, TS_HASH_SHA256), 0);
	assert_int_equal(wbuf_put_string(f->req, d, sizeof(d)), 0);
	assert_int_equal(wbuf_put_u32(f->req, 0), 0);
	expect_failure(f, TS_ERR_P11_KEY_NOT_FOUND);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_SIGN_PAYLOAD), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "pkcs11:object=x"), 0);
	assert_int_equal(wbuf_put_string(f->req, "{}", 2), 0);
	assert_int_equal(wbuf_put_u32(f->req, 0), 0);
	expect_failure(f, TS_ERR_P11_KEY_NOT_FOUND);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_SIGN_PAYLOAD), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "pkcs11:object=%zz"), 0);
	assert_int_equal(wbuf_put_string(f->req, "{}", 2), 0);
	assert_int_equal(wbuf_put_u32(f->req, 0), 0);
	expect_failure(f, TS_ERR_P11_URI);
	/* Truncated: the key string claims more than there is. */
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_SIGN_DIGEST), 0);
	assert_int_equal(wbuf_put_u32(f->req, 100), 0);
	assert_int_equal(wbuf_put(f->req, "abc", 3), 0);
	expect_failure(f, TS_ERR_WIRE_TRUNCATED);
	/* Batch with zero or absurd counts. */
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_SIGN_BATCH), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "nokey"), 0);
	expect_failure(f, TS_ERR_P11_KEY_NOT_FOUND);
}

static void
test_lock_unlock(void **state)
{
	struct fx *f = *state;
	uint32_t v, flags;

	hello(f);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_LOCK), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "secret"), 0);
	run(f);
	assert_int_equal(f->type, TS_MSG_SUCCESS);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_LOCK), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "other"), 0);
	expect_failure(f, TS_ERR_AGENT_LOCKED);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_STATUS), 0);
	run(f);
	assert_int_equal(f->type, TS_MSG_STATUS_REPLY);
	assert_int_equal(wbuf_get_u32(f->body, &v), 0);
	assert_int_equal(wbuf_get_u32(f->body, &flags), 0);
	assert_true(flags & TS_STATUS_LOCKED);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_UNLOCK), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "secreT"), 0);
	expect_failure(f, TS_ERR_AGENT_BAD_PASS);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_UNLOCK), 0);
	assert_int_equal(wbuf_put_cstring(f->req, ""), 0);
	expect_failure(f, TS_ERR_WIRE_BAD_FIELD);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_UNLOCK), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "secret"), 0);
	run(f);
	assert_int_equal(f->type, TS_MSG_SUCCESS);
	assert_int_equal(wbuf_put_u8(f->req, TS_MSG_UNLOCK), 0);
	assert_int_equal(wbuf_put_cstring(f->req, "secret"), 0);
	expect_failure(f, TS_ERR_INVALID_ARG); /* not locked */
}

static void
test_table(void **state)
{
	const struct dispatch_entry *e;
	int t, n = 0;

	(void)state;
	/* Nothing of ours in the ssh-agent range, everything in ours. */
	for (t = 0; t < 256; t++) {
		if ((e = dispatch_lookup((uint8_t)t)) == NULL)
			continue;
		n++;
		assert_int_equal(e->type, t);
		assert_non_null(e->name);
		assert_non_null(e->fn);
		if (!(e->flags & DISPATCH_F_SSH))
			assert_true(t >= TS_MSG_FIRST && t < 120);
	}
	assert_int_equal(n, 8);
}

static int
h_test_ssh(struct dispatch_ctx *c, struct agent_peer *peer, struct wbuf *req,
    struct wbuf *reply, char *why, size_t whylen)
{
	(void)c;
	(void)peer;
	(void)why;
	(void)whylen;
	if (wbuf_len(req) != 0)
		return TS_ERR_WIRE_TRAILING;
	return wbuf_put_u8(reply, 12);
}

static const struct dispatch_entry test_rows[] = {
	{ 11, "TEST_IDENTITIES", h_test_ssh,
	    DISPATCH_F_NO_HELLO | DISPATCH_F_SSH },
};
static const struct dispatch_entry bad_rows[] = {
	{ 101, "CLASH", h_test_ssh, 0 },
	{ 11, "DUP", h_test_ssh, 0 },
};

static void
test_register(void **state)
{
	struct fx *f = *state;

	assert_int_equal(
	    dispatch_register(&bad_rows[0], 1), TS_ERR_INVALID_ARG);
	assert_int_equal(dispatch_register(test_rows, 1), 0);
	assert_int_equal(dispatch_register(&bad_rows[1], 1), TS_ERR_EXISTS);
	/* No HELLO needed for an ssh row; its failures are bare type 5. */
	assert_int_equal(wbuf_put_u8(f->req, 11), 0);
	run(f);
	assert_int_equal(f->type, 12);
	assert_int_equal(wbuf_put_u8(f->req, 11), 0);
	assert_int_equal(wbuf_put_u8(f->req, 0), 0);
	run(f);
	assert_int_equal(f->type, 5);
	assert_int_equal(wbuf_len(f->body), 0);
}

static void
test_failure_frame(void **state)
{
	struct wbuf *b = wbuf_new(4096);
	char msg[2000];
	uint32_t len;

	(void)state;
	memset(msg, 'a', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	assert_int_equal(dispatch_failure(b, TS_ERR_IO, msg), 0);
	assert_int_equal(wbuf_peek_u32(b, 0, &len), 0);
	assert_int_equal(len, 1 + 4 + 4 + TS_PROTO_MAX_MESSAGE);
	wbuf_free(b);
}

static void
test_policy_peer(void **state)
{
	struct policy *p = policy_new(1000);
	struct agent_peer peer;

	(void)state;
	memset(&peer, 0, sizeof(peer));
	peer.transport = PEER_UNIX;
	peer.uid = 1000;
	assert_int_equal(policy_check_peer(p, &peer), 0);
	assert_int_equal(policy_check_digest(p, &peer), 0);
	peer.uid = 0;
	assert_int_equal(policy_check_peer(p, &peer), 0);
	assert_int_equal(policy_check_digest(p, &peer), TS_ERR_POLICY_DIGEST);
	peer.uid = 2000;
	peer.gid = 50;
	assert_int_equal(policy_check_peer(p, &peer), TS_ERR_POLICY_PEER);
	assert_int_equal(policy_allow_gid(p, 77), 0);
	peer.ngroups = 2;
	peer.groups[0] = 10;
	peer.groups[1] = 77;
	assert_int_equal(policy_check_peer(p, &peer), 0);
	peer.groups[1] = 78;
	assert_int_equal(policy_check_peer(p, &peer), TS_ERR_POLICY_PEER);
	peer.transport = PEER_TLS;
	peer.uid = 1000;
	assert_int_equal(policy_check_digest(p, &peer), TS_ERR_POLICY_DIGEST);
	policy_unref(p);
}

static void
test_config_lines(void **state)
{
	struct agent_config c;
	char why[256];

	(void)state;
	config_init(&c);
	assert_int_equal(config_line(&c, "  # comment", why, sizeof(why)), 0);
	assert_int_equal(
	    config_line(&c, "module \"/usr/lib/a b.so\"", why, sizeof(why)), 0);
	assert_string_equal(c.modules[0], "/usr/lib/a b.so");
	assert_int_equal(
	    config_line(&c, "pin_timeout 5m", why, sizeof(why)), 0);
	assert_int_equal(c.pin_timeout, 300);
	assert_int_equal(
	    config_line(&c, "token pkcs11:token=a file:/p", why, sizeof(why)),
	    0);
	assert_int_equal(c.tokens[0].pin_kind, CONFIG_PIN_FILE);
	assert_int_equal(
	    config_line(&c, "allow_uid root", why, sizeof(why)), 0);
	assert_int_equal(
	    config_line(&c, "bogus 1", why, sizeof(why)), TS_ERR_CONFIG);
	assert_non_null(strstr(why, "unknown keyword"));
	assert_int_equal(config_line(&c, "pin_timeout soon", why, sizeof(why)),
	    TS_ERR_CONFIG);
	assert_int_equal(
	    config_line(&c, "module \"unterminated", why, sizeof(why)),
	    TS_ERR_CONFIG);
	assert_int_equal(
	    config_line(&c, "module", why, sizeof(why)), TS_ERR_CONFIG);
	assert_int_equal(
	    config_line(&c, "token notauri", why, sizeof(why)), TS_ERR_CONFIG);
	assert_int_equal(
	    config_line(&c, "pin_source |/bin/prog", why, sizeof(why)),
	    TS_ERR_CONFIG);
	assert_int_equal(config_line(&c, "max_connections 4", why, sizeof(why)),
	    TS_ERR_CONFIG);
	assert_int_equal(
	    config_line(&c, "allow_group no-such-group-xyz", why, sizeof(why)),
	    TS_ERR_CONFIG);
	/* the two-way keywords: one of two words, once */
	assert_int_equal(c.reinsert_login, -1);
	assert_int_equal(
	    config_line(&c, "reinsert_login unlock", why, sizeof(why)), 0);
	assert_int_equal(c.reinsert_login, 0);
	assert_int_equal(
	    config_line(&c, "reinsert_login auto", why, sizeof(why)), 0);
	assert_int_equal(c.reinsert_login, 1);
	assert_int_equal(
	    config_line(&c, "reinsert_login sometimes", why, sizeof(why)),
	    TS_ERR_CONFIG);
	assert_non_null(strstr(why, "reinsert_login"));
	assert_int_equal(
	    config_line(&c, "reinsert_login auto unlock", why, sizeof(why)),
	    TS_ERR_CONFIG);
	config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hello_required_and_version, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unknown_types, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_empty_and_oversize, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_list_keys_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_sign_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_lock_unlock, setup, teardown),
		cmocka_unit_test(test_table),
		cmocka_unit_test_setup_teardown(test_register, setup, teardown),
		cmocka_unit_test(test_failure_frame),
		cmocka_unit_test(test_policy_peer),
		cmocka_unit_test(test_config_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
