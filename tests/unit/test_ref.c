/*
 * test_ref.c - image references: grammar, Docker Hub normalisation, the
 * cosign identity, and every error class with its message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/ref.h"
#include "common/err.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct ok_case {
	const char *in;
	const char *registry, *api, *repo, *tag, *identity, *string;
};

static const struct ok_case ok_cases[] = {
	{ "busybox", "docker.io", "registry-1.docker.io", "library/busybox",
	    "latest", "index.docker.io/library/busybox",
	    "docker.io/library/busybox:latest" },
	{ "docker.io/busybox:1.36", "docker.io", "registry-1.docker.io",
	    "library/busybox", "1.36", "index.docker.io/library/busybox",
	    "docker.io/library/busybox:1.36" },
	{ "index.docker.io/user/app", "docker.io", "registry-1.docker.io",
	    "user/app", "latest", "index.docker.io/user/app",
	    "docker.io/user/app:latest" },
	{ "user/app:v1", "docker.io", "registry-1.docker.io", "user/app", "v1",
	    "index.docker.io/user/app", "docker.io/user/app:v1" },
	{ "127.0.0.1:5000/demo/app:v1", "127.0.0.1:5000", "127.0.0.1:5000",
	    "demo/app", "v1", "127.0.0.1:5000/demo/app",
	    "127.0.0.1:5000/demo/app:v1" },
	{ "localhost/app", "localhost", "localhost", "app", "latest",
	    "localhost/app", "localhost/app:latest" },
	{ "ghcr.io/a/b/c__d.e-f--g:_T.a-g", "ghcr.io", "ghcr.io",
	    "a/b/c__d.e-f--g", "_T.a-g", "ghcr.io/a/b/c__d.e-f--g",
	    "ghcr.io/a/b/c__d.e-f--g:_T.a-g" },
	{ "[::1]:5000/x", "[::1]:5000", "[::1]:5000", "x", "latest",
	    "[::1]:5000/x", "[::1]:5000/x:latest" },
	{ "Host.Example:443/app", "Host.Example:443", "Host.Example:443", "app",
	    "latest", "Host.Example:443/app", "Host.Example:443/app:latest" },
};

static void
test_ok(void **state)
{
	struct ref *r;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *c = &ok_cases[i];

		assert_int_equal(ref_parse(c->in, &r, why, sizeof(why)), 0);
		assert_string_equal(ref_registry(r), c->registry);
		assert_string_equal(ref_api_host(r), c->api);
		assert_string_equal(ref_repository(r), c->repo);
		assert_string_equal(ref_tag(r), c->tag);
		assert_string_equal(ref_identity(r), c->identity);
		assert_string_equal(ref_string(r), c->string);
		assert_null(ref_digest(r));
		ref_free(r);
	}
}

static void
test_digest(void **state)
{
	struct ref *r, *c;
	char why[256];
	struct digest d;

	(void)state;
	assert_int_equal(ref_parse("127.0.0.1:5000/demo/app@sha256:" D64, &r,
			     why, sizeof(why)),
	    0);
	assert_null(ref_tag(r));
	assert_false(ref_tag_given(r));
	assert_non_null(ref_digest(r));
	assert_string_equal(
	    ref_string(r), "127.0.0.1:5000/demo/app@sha256:" D64);
	ref_free(r);

	assert_int_equal(
	    ref_parse("busybox:1@sha256:" D64, &r, why, sizeof(why)), 0);
	assert_string_equal(ref_tag(r), "1");
	assert_true(ref_tag_given(r));
	assert_string_equal(
	    ref_string(r), "docker.io/library/busybox:1@sha256:" D64);
	d = *ref_digest(r);
	d.v[0] ^= 1;
	assert_non_null(c = ref_with_digest(r, &d));
	assert_null(ref_tag(c));
	assert_string_equal(ref_identity(c), "index.docker.io/library/busybox");
	assert_true(digest_equal(ref_digest(c), &d));
	ref_free(c);
	ref_free(r);
}

struct bad_case {
	const char *in;
	const char *why; /* substring of the reason */
};

static const struct bad_case bad_cases[] = {
	{ "", "empty" },
	{ "Busybox", "lowercase" },
	{ "127.0.0.1:5000/Demo/app", "lowercase" },
	{ "app:", "bad tag" },
	{ "app:-x", "bad tag" },
	{ "app:a/b", "bad port" },
	{ "app@sha256:abc", "bad digest" },
	{ "app@sha256:" D64 "@x", "more than one" },
	{ "app@", "bad digest" },
	{ "@sha256:" D64, "missing repository" },
	{ "127.0.0.1:5000/", "missing repository" },
	{ "a//b", "bad repository" },
	{ "a/b/", "bad repository" },
	{ "a..b", "bad repository" },
	{ "a_-b", "bad repository" },
	{ "-a", "bad repository" },
	{ "a b", "space" },
	{ "a\tb", "space" },
	{ "host:0/app", "bad port" },
	{ "host:65536/app", "bad port" },
	{ "host:x/app", "bad port" },
	{ "-host.io/app", "may not start" },
	{ "ho_st.io/app", "bad registry host" },
	{ "[zz]:1/app", "IPv6" },
	{ "caf\xc3\xa9", "non-ASCII" },
};

static void
test_bad(void **state)
{
	struct ref *r = (struct ref *)1;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		int rc = ref_parse(bad_cases[i].in, &r, why, sizeof(why));

		if (rc != TS_ERR_REF_INVALID ||
		    strstr(why, bad_cases[i].why) == NULL)
			fail_msg("'%s': rc %d why '%s', want '%s'",
			    bad_cases[i].in, rc, why, bad_cases[i].why);
		assert_null(r);
	}
}

static void
test_limits(void **state)
{
	char buf[REF_MAX_LEN + 2];
	struct ref *r;
	char why[256];

	(void)state;
	/* tag of 128 is fine, 129 is not */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "app:", 4);
	memset(buf + 4, 't', 128);
	assert_int_equal(ref_parse(buf, &r, why, sizeof(why)), 0);
	ref_free(r);
	buf[4 + 128] = 't';
	assert_int_equal(
	    ref_parse(buf, &r, why, sizeof(why)), TS_ERR_REF_INVALID);
	/* name of 255 is fine, 256 is not */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, "h.io/", 5);
	memset(buf + 5, 'a', 250);
	assert_int_equal(ref_parse(buf, &r, why, sizeof(why)), 0);
	ref_free(r);
	buf[255] = 'a';
	assert_int_equal(
	    ref_parse(buf, &r, why, sizeof(why)), TS_ERR_REF_INVALID);
	assert_non_null(strstr(why, "longer than"));
	/* Hub names count "docker.io/library/" (found by fuzz_ref) */
	memset(buf, 0, sizeof(buf));
	memset(buf, 'a', 244);
	assert_int_equal(
	    ref_parse(buf, &r, why, sizeof(why)), TS_ERR_REF_INVALID);
	assert_non_null(strstr(why, "once normalised"));
	memset(buf, 0, sizeof(buf));
	memset(buf, 'a', 255 - 18);
	assert_int_equal(ref_parse(buf, &r, why, sizeof(why)), 0);
	ref_free(r);
	/* whole text over the cap */
	memset(buf, 'a', REF_MAX_LEN + 1);
	buf[REF_MAX_LEN + 1] = '\0';
	assert_int_equal(
	    ref_parse(buf, &r, why, sizeof(why)), TS_ERR_REF_INVALID);
	assert_int_equal(ref_parse(NULL, &r, NULL, 0), TS_ERR_REF_INVALID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
