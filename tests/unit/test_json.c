/*
 * test_json.c - strict parsing (duplicates, trailing data, caps, NUL) and
 * the Go json.Marshal-compatible writer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/json.h"
#include "common/wbuf.h"

static int
parse(const char *s, int flags)
{
	json_t *v = NULL;
	char why[TSJSON_WHY_MAX];
	int r;

	r = tsjson_parse(s, strlen(s), 0, flags, &v, why, sizeof(why));
	if (r == 0)
		assert_non_null(v);
	else {
		assert_null(v);
		assert_true(why[0] != '\0');
	}
	json_decref(v);
	return r;
}

static void
test_parse_strict(void **state)
{
	json_t *v;
	char why[TSJSON_WHY_MAX];

	(void)state;
	assert_int_equal(parse("{\"a\":1}", TSJSON_OBJECT), 0);
	assert_int_equal(parse("{\"a\":1}  \n", TSJSON_OBJECT), 0);
	assert_int_equal(
	    parse("{\"a\":1,\"a\":2}", TSJSON_OBJECT), TS_ERR_PARSE);
	assert_int_equal(
	    parse("{\"o\":{\"a\":1,\"a\":2}}", TSJSON_OBJECT), TS_ERR_PARSE);
	assert_int_equal(parse("{\"a\":1}x", TSJSON_OBJECT), TS_ERR_PARSE);
	assert_int_equal(parse("{\"a\":1}{}", TSJSON_OBJECT), TS_ERR_PARSE);
	assert_int_equal(parse("[1]", TSJSON_OBJECT), TS_ERR_PARSE);
	assert_int_equal(parse("[1]", TSJSON_ANY), 0);
	assert_int_equal(parse("\"a\\u0000b\"", TSJSON_ANY), TS_ERR_PARSE);
	assert_int_equal(parse("\"\xff\"", TSJSON_ANY), TS_ERR_PARSE);
	assert_int_equal(parse("", TSJSON_ANY), TS_ERR_PARSE);
	/* embedded raw NUL after a valid document */
	assert_int_equal(
	    tsjson_parse("{}\0", 3, 0, TSJSON_OBJECT, &v, why, sizeof(why)),
	    TS_ERR_PARSE);
	/* cap: exactly max is fine, one over is refused before parsing */
	assert_int_equal(
	    tsjson_parse("{}   ", 5, 5, TSJSON_OBJECT, &v, why, sizeof(why)),
	    0);
	json_decref(v);
	assert_int_equal(
	    tsjson_parse("{}    ", 6, 5, TSJSON_OBJECT, &v, why, sizeof(why)),
	    TS_ERR_TOO_LARGE);
	assert_null(v);
}

static void
test_getters(void **state)
{
	static const char *const keys[] = { "s", "i", "r" };
	json_t *v, *o;
	const char *s;
	size_t len;
	int64_t i;
	char why[TSJSON_WHY_MAX];
	const char *doc = "{\"s\":\"x\",\"i\":5,\"r\":1e3,\"f\":1.5,\"o\":{}}";

	(void)state;
	assert_int_equal(tsjson_parse(doc, strlen(doc), 0, TSJSON_OBJECT, &v,
			     why, sizeof(why)),
	    0);
	assert_int_equal(
	    tsjson_get_string(v, "s", "doc", &s, &len, why, sizeof(why)), 0);
	assert_string_equal(s, "x");
	assert_int_equal(
	    tsjson_get_string(v, "i", "doc", &s, &len, why, sizeof(why)),
	    TS_ERR_PARSE);
	assert_non_null(strstr(why, "doc.i is not a string"));
	assert_int_equal(
	    tsjson_get_string(v, "S", "doc", &s, &len, why, sizeof(why)),
	    TS_ERR_NOT_FOUND);
	assert_int_equal(
	    tsjson_get_int(v, "i", "doc", &i, why, sizeof(why)), 0);
	assert_int_equal(i, 5);
	assert_int_equal(
	    tsjson_get_int(v, "r", "doc", &i, why, sizeof(why)), 0);
	assert_int_equal(i, 1000);
	assert_int_equal(
	    tsjson_get_int(v, "f", "doc", &i, why, sizeof(why)), TS_ERR_PARSE);
	assert_int_equal(
	    tsjson_get_object(v, "o", "doc", &o, why, sizeof(why)), 0);
	assert_int_equal(tsjson_exact_keys(v, keys, 3, "doc", why, sizeof(why)),
	    TS_ERR_PARSE);
	assert_non_null(strstr(why, "unexpected key"));
	json_decref(v);
}

static char *
go_string(const char *s, size_t len)
{
	struct wbuf *b = wbuf_new(4096);
	char *out;
	size_t n;

	assert_non_null(b);
	assert_int_equal(tsjson_put_string_go(b, s, len), 0);
	n = wbuf_len(b);
	out = calloc(1, n + 1);
	assert_non_null(out);
	assert_int_equal(wbuf_get(b, out, n), 0);
	wbuf_free(b);
	return out;
}

static void
check_go(const char *in, size_t len, const char *want)
{
	char *got = go_string(in, len);

	assert_string_equal(got, want);
	free(got);
}

static void
test_go_escaping(void **state)
{
	(void)state;
	/* formats.md 1.2 [ran] example */
	check_go("a<b>&c", 6, "\"a\\u003cb\\u003e\\u0026c\"");
	check_go("x\xe2\x80\xa8y\"\\/\xc3\xa9\x01", 11,
	    "\"x\\u2028y\\\"\\\\/\xc3\xa9\\u0001\"");
	check_go("\xe2\x80\xa9", 3, "\"\\u2029\"");
	/* Go >= 1.22 short forms; other controls as \u00xx lowercase */
	check_go("\b\f\n\r\t\x1f\x7f", 7, "\"\\b\\f\\n\\r\\t\\u001f\x7f\"");
	check_go("\0", 1, "\"\\u0000\"");
	/* invalid UTF-8: one U+FFFD per bad byte, as Go's DecodeRune */
	check_go("a\xffz", 3, "\"a\\ufffdz\"");
	check_go("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
	check_go(
	    "\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	check_go("\xe2\x82", 2, "\"\\ufffd\\ufffd\""); /* truncated */
	check_go("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	check_go("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");
	check_go("\xef\xbf\xbd", 3, "\"\xef\xbf\xbd\""); /* real U+FFFD kept */
	check_go("", 0, "\"\"");
}

static void
check_value(const char *doc, const char *want)
{
	struct wbuf *b = wbuf_new(4096);
	json_t *v;
	char why[TSJSON_WHY_MAX], *got;
	size_t n;

	assert_int_equal(
	    tsjson_parse(doc, strlen(doc), 0,
		TSJSON_ANY | TSJSON_NUMBERS_AS_REAL, &v, why, sizeof(why)),
	    0);
	assert_int_equal(tsjson_put_value_go(b, v), 0);
	n = wbuf_len(b);
	got = calloc(1, n + 1);
	assert_int_equal(wbuf_get(b, got, n), 0);
	assert_string_equal(got, want);
	free(got);
	json_decref(v);
	wbuf_free(b);
}

static void
test_go_values(void **state)
{
	(void)state;
	check_value("{\"z\":1,\"a\":[true,false,null],\"m\":{\"b\":\"<\"}}",
	    "{\"a\":[true,false,null],\"m\":{\"b\":\"\\u003c\"},\"z\":1}");
	check_value("[1.5,0.000001,1e21,1e20,1e-7,-2,0.1,123456789]",
	    "[1.5,0.000001,1e+21,100000000000000000000,1e-7,-2,0.1,123456789]");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_strict),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_go_escaping),
		cmocka_unit_test(test_go_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
