/*
 * test_registry_auth.c - WWW-Authenticate parsing (several challenges,
 * quoting, caps, malformed input), base64, and the credential lookup order
 * over real files: containers auth.json (most specific key) and docker
 * config.json (auths key forms).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "client/registry_auth.h"
#include "common/err.h"

static int
parse(const char *s, struct wwwauth *wa)
{
	memset(wa, 0, sizeof(*wa));
	return wwwauth_parse(s, strlen(s), wa);
}

static void
test_wwwauth_ok(void **state)
{
	struct wwwauth wa;

	(void)state;
	assert_int_equal(
	    parse("Bearer realm=\"https://auth.docker.io/token\","
		  "service=\"registry.docker.io\",scope=\"repository:"
		  "samalba/my-app:pull,push\"",
		&wa),
	    0);
	assert_int_equal(wa.n, 1);
	assert_string_equal(wa.ch[0].scheme, "bearer");
	assert_string_equal(
	    wwwauth_param(&wa.ch[0], "realm"), "https://auth.docker.io/token");
	assert_string_equal(wwwauth_param(&wa.ch[0], "scope"),
	    "repository:samalba/my-app:pull,push");
	wwwauth_clear(&wa);

	/* two challenges in one header, token and quoted values, escapes */
	assert_int_equal(parse("Newauth realm=\"apps\", type=1, "
			       "title=\"Login to \\\"apps\\\"\", Basic "
			       "realm=simple",
			     &wa),
	    0);
	assert_int_equal(wa.n, 2);
	assert_string_equal(wa.ch[0].scheme, "newauth");
	assert_string_equal(wwwauth_param(&wa.ch[0], "type"), "1");
	assert_string_equal(
	    wwwauth_param(&wa.ch[0], "title"), "Login to \"apps\"");
	assert_string_equal(wa.ch[1].scheme, "basic");
	assert_string_equal(wwwauth_param(&wa.ch[1], "realm"), "simple");
	wwwauth_clear(&wa);

	/* bare scheme, token68, empty elements, case of names */
	assert_int_equal(parse(" , Negotiate, Basic YWxhZGRpbjpvcGVu==,"
			       "BEARER REALM = \"r\" ,, ",
			     &wa),
	    0);
	assert_int_equal(wa.n, 3);
	assert_string_equal(wa.ch[0].scheme, "negotiate");
	assert_int_equal(wa.ch[1].nparams, 0);
	assert_string_equal(wa.ch[2].scheme, "bearer");
	assert_string_equal(wwwauth_param(&wa.ch[2], "realm"), "r");
	wwwauth_clear(&wa);

	/* appending a second header value */
	memset(&wa, 0, sizeof(wa));
	assert_int_equal(wwwauth_parse("Basic realm=a", 13, &wa), 0);
	assert_int_equal(wwwauth_parse("Bearer realm=b", 14, &wa), 0);
	assert_int_equal(wa.n, 2);
	wwwauth_clear(&wa);
	assert_int_equal(parse("", &wa), 0);
	assert_int_equal(wa.n, 0);
}

static void
test_wwwauth_bad(void **state)
{
	struct wwwauth wa;
	char big[WWWAUTH_MAX_LEN + 2];
	char val[WWWAUTH_MAX_VALUE + 32];
	size_t i;
	static const char *bad[] = {
		"Bearer realm=\"unterminated",
		"Bearer realm=\"ctl\x01\"",
		"Bearer a=b c",
		"Bearer realm==x",
		"Bearer realm=\"a\" junk",
		"\"quoted-scheme\"",
		"Bearer realm=\"a\\",
	};

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i], &wa);

		if (r == 0)
			fail_msg("accepted '%s'", bad[i]);
		wwwauth_clear(&wa);
	}
	/* caps: whole header, one value, challenges, params */
	memset(big, 'a', sizeof(big));
	memset(&wa, 0, sizeof(wa));
	assert_int_equal(
	    wwwauth_parse(big, WWWAUTH_MAX_LEN + 1, &wa), TS_ERR_TOO_LARGE);
	snprintf(val, sizeof(val), "Basic realm=\"");
	memset(val + 13, 'v', WWWAUTH_MAX_VALUE + 1);
	memcpy(val + 13 + WWWAUTH_MAX_VALUE + 1, "\"", 2);
	assert_int_equal(parse(val, &wa), TS_ERR_TOO_LARGE);
	wwwauth_clear(&wa);
	assert_int_equal(parse("a,b,c,d,e,f,g,h,i", &wa), TS_ERR_TOO_LARGE);
	wwwauth_clear(&wa);
	assert_int_equal(parse("B a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1,j=1,"
			       "k=1,l=1,m=1,n=1,o=1,p=1,q=1",
			     &wa),
	    TS_ERR_TOO_LARGE);
	wwwauth_clear(&wa);
	/* embedded NUL ends the header: the rest is not a parameter */
	memset(&wa, 0, sizeof(wa));
	assert_int_not_equal(wwwauth_parse("Basic realm=\"a\0b\"", 17, &wa), 0);
	wwwauth_clear(&wa);
}

static void
test_b64(void **state)
{
	unsigned char *out;
	size_t n;
	char *e;

	(void)state;
	assert_int_equal(regauth_b64_decode("YWxpY2U6cHc=", &out, &n), 0);
	assert_int_equal(n, 8);
	assert_memory_equal(out, "alice:pw", 8);
	free(out);
	assert_int_equal(regauth_b64_decode("", &out, &n), 0);
	assert_int_equal(n, 0);
	free(out);
	assert_int_equal(regauth_b64_decode("YQ", &out, &n), TS_ERR_BASE64);
	assert_int_equal(regauth_b64_decode("Y=Q=", &out, &n), TS_ERR_BASE64);
	assert_int_equal(regauth_b64_decode("YQ=a", &out, &n), TS_ERR_BASE64);
	assert_int_equal(regauth_b64_decode("Y!==", &out, &n), TS_ERR_BASE64);
	assert_non_null(e = regauth_b64_encode("alice:pw", 8));
	assert_string_equal(e, "YWxpY2U6cHc=");
	free(e);
}

static char tmpdir[] = "/tmp/ts-auth-test.XXXXXX";

static void
put(const char *name, const char *content)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	assert_non_null(f = fopen(p, "w"));
	fputs(content, f);
	fclose(f);
}

static void
test_lookup(void **state)
{
	struct regcreds *c;
	char p[256];

	(void)state;
	assert_non_null(mkdtemp(tmpdir));
	unsetenv("XDG_RUNTIME_DIR");
	setenv("DOCKER_CONFIG", tmpdir, 1);
	snprintf(p, sizeof(p), "%s/auth.json", tmpdir);
	setenv("REGISTRY_AUTH_FILE", p, 1);
	/* alice:one / bob:two / carol:3:x */
	put("auth.json",
	    "{\"auths\":{\"r.io\":{\"auth\":\"YWxpY2U6b25l\"},"
	    "\"r.io/ns/app\":{\"auth\":\"Ym9iOnR3bw==\"}}}");
	put("config.json",
	    "{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":"
	    "\"Y2Fyb2w6Mzp4\"},\"https://h.io:5000/v2/\":{\"username\":\"dan\","
	    "\"password\":\"pw\"},\"bad.io\":{\"auth\":\"OnB3\"},"
	    "\"tok.io\":{\"registrytoken\":\"RT\"}}}");
	assert_int_equal(regcreds_lookup("r.io", "ns/app", &c), 0);
	assert_string_equal(c->username, "bob");
	regcreds_free(c);
	assert_int_equal(regcreds_lookup("r.io", "ns/other", &c), 0);
	assert_string_equal(c->username, "alice");
	assert_string_equal(c->password, "one");
	regcreds_free(c);
	/* falls through to the docker config */
	assert_int_equal(regcreds_lookup("docker.io", "library/x", &c), 0);
	assert_string_equal(c->username, "carol");
	assert_string_equal(c->password, "3:x"); /* split at the first ':' */
	regcreds_free(c);
	assert_int_equal(regcreds_lookup("h.io:5000", "x", &c), 0);
	assert_string_equal(c->username, "dan");
	regcreds_free(c);
	assert_int_equal(regcreds_lookup("tok.io", "x", &c), 0);
	assert_string_equal(c->registry_token, "RT");
	regcreds_free(c);
	assert_int_equal(
	    regcreds_lookup("bad.io", "x", &c), TS_ERR_CREDENTIALS); /* ":pw" */
	assert_int_equal(regcreds_lookup("none.io", "x", &c), TS_ERR_NOT_FOUND);
	put("config.json", "{\"auths\":");
	assert_int_equal(
	    regcreds_lookup("none.io", "x", &c), TS_ERR_CREDENTIALS);
	put("config.json", "{\"credHelpers\":{\"h.io\":\"../../bin/sh\"}}");
	assert_int_equal(regcreds_lookup("h.io", "x", &c), TS_ERR_CREDENTIALS);
	snprintf(p, sizeof(p), "rm -rf %s", tmpdir);
	assert_int_equal(system(p), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wwwauth_ok),
		cmocka_unit_test(test_wwwauth_bad),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
