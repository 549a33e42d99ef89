/*
 * test_http.c - transport policy that needs no server: loopback detection,
 * the plain-HTTP allow list, query appending to upload Locations that
 * already carry a query (formats.md 5.3), relative Location resolution.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/http.h"
#include "common/err.h"

static void
test_loopback(void **state)
{
	(void)state;
	assert_true(http_host_is_loopback("127.0.0.1:5000"));
	assert_true(http_host_is_loopback("127.255.3.4"));
	assert_true(http_host_is_loopback("localhost"));
	assert_true(http_host_is_loopback("LOCALHOST:80"));
	assert_true(http_host_is_loopback("[::1]:5000"));
	assert_false(http_host_is_loopback("128.0.0.1"));
	assert_false(http_host_is_loopback("localhost.evil.com"));
	assert_false(http_host_is_loopback("127.0.0.1.evil.com"));
	assert_false(http_host_is_loopback("[::2]:5000"));
	assert_false(http_host_is_loopback("registry.example.com"));
	assert_false(http_host_is_loopback(""));
}

static void
test_scheme(void **state)
{
	const char *allow[] = { "reg.lan:5000", "mirror.lan" };
	struct http_opts o = { 0 };
	struct http_client *c;

	(void)state;
	assert_int_equal(http_global_init(), 0);
	o.allow_http = allow;
	o.n_allow_http = 2;
	assert_non_null(c = http_client_new(&o));
	assert_string_equal(http_scheme_for(c, "127.0.0.1:5000"), "http");
	assert_string_equal(http_scheme_for(c, "reg.lan:5000"), "http");
	assert_string_equal(http_scheme_for(c, "reg.lan:5001"), "https");
	assert_string_equal(http_scheme_for(c, "mirror.lan:443"), "http");
	assert_string_equal(http_scheme_for(c, "ghcr.io"), "https");
	http_client_free(c);
	o.ca_file = "/nonexistent/ca.pem";
	assert_null(http_client_new(&o));
}

static void
test_opts(void **state)
{
	struct http_opts o = { 0 };

	(void)state;
	assert_int_equal(http_opts_handle(&o, HTTP_OPT_ALLOW_HTTP, "a:1"), 1);
	assert_int_equal(http_opts_handle(&o, HTTP_OPT_ALLOW_HTTP, "b"), 1);
	assert_int_equal(o.n_allow_http, 2);
	assert_int_equal(http_opts_handle(&o, HTTP_OPT_ALLOW_HTTP, "h/p"),
	    TS_ERR_INVALID_ARG);
	assert_int_equal(http_opts_handle(&o, HTTP_OPT_INSECURE, NULL), 1);
	assert_true(o.insecure);
	assert_int_equal(http_opts_handle(&o, 'x', NULL), 0);
	http_opts_cleanup(&o);
}

static void
test_urls(void **state)
{
	char *u;

	(void)state;
	assert_non_null(u = http_url_add_query(
			    "http://r:5000/v2/a/blobs/uploads/u?_state=xy",
			    "digest", "sha256:ab"));
	assert_string_equal(u,
	    "http://r:5000/v2/a/blobs/uploads/u?_state=xy&digest=sha256%3aab");
	free(u);
	assert_non_null(u = http_url_add_query("https://r/up", "digest", "d"));
	assert_string_equal(u, "https://r/up?digest=d");
	free(u);
	assert_non_null(
	    u = http_url_resolve("http://r:5000/v2/a/blobs/uploads/",
		"/v2/a/blobs/uploads/123?_state=z"));
	assert_string_equal(u, "http://r:5000/v2/a/blobs/uploads/123?_state=z");
	free(u);
	assert_non_null(u = http_url_resolve("http://r/v2/x", "https://s/y"));
	assert_string_equal(u, "https://s/y");
	free(u);
	assert_null(http_url_add_query("not a url", "a", "b"));
}

static void
test_form(void **state)
{
	const char *kv[] = { "grant_type", "refresh_token", "scope",
		"repository:a/b:pull,push", "refresh_token",
		"x+y/z= \xc3\xa9~" };
	char *f;

	(void)state;
	assert_non_null(f = http_form_encode(kv, 3));
	assert_string_equal(f,
	    "grant_type=refresh_token&scope=repository%3Aa%2Fb%3Apull%2Cpush"
	    "&refresh_token=x%2By%2Fz%3D%20%C3%A9~");
	free(f);
	assert_non_null(f = http_form_encode(kv, 0));
	assert_string_equal(f, "");
	free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_scheme),
		cmocka_unit_test(test_opts),
		cmocka_unit_test(test_urls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
