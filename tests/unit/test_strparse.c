/*
 * test_strparse.c - the bounded tokenizer: every call honours its max,
 * empty tokens fail, a failed call leaves the cursor unmoved, embedded NUL
 * stops a token.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/strparse.h"

static void
test_until(void **state)
{
	struct strparse sp;
	struct strslice s;

	(void)state;
	strparse_init(&sp, "abc,def", 7);
	assert_int_equal(strparse_until(&sp, ",", 2, &s), TS_ERR_TOO_LARGE);
	assert_int_equal(strparse_left(&sp), 7); /* unmoved */
	assert_int_equal(strparse_until(&sp, ",", 3, &s), 0);
	assert_true(strslice_eq(&s, "abc"));
	assert_int_equal(strparse_until(&sp, ",", 3, &s), TS_ERR_PARSE);
	assert_int_equal(strparse_single(&sp, ','), 0);
	assert_int_equal(strparse_until(&sp, ",", 3, &s), 0);
	assert_true(strslice_eq(&s, "def"));
	assert_int_equal(strparse_left(&sp), 0);
	assert_int_equal(strparse_peek(&sp), -1);
	assert_int_equal(strparse_single(&sp, ','), TS_ERR_PARSE);
	/* embedded NUL ends a token; length is bounded, not NUL-terminated */
	strparse_init(&sp, "ab\0cd", 5);
	assert_int_equal(strparse_until(&sp, ",", 10, &s), 0);
	assert_int_equal(s.len, 2);
	strparse_init(&sp, "abcdef", 3);
	assert_int_equal(strparse_until(&sp, ",", 10, &s), 0);
	assert_true(strslice_eq(&s, "abc"));
}

static void
test_quoted(void **state)
{
	struct strparse sp;
	struct strslice s;
	char *d;
	int esc;

	(void)state;
	strparse_init(&sp, "\"a\\\"b\" rest", 11);
	/* max bounds the raw inside, escapes included */
	assert_int_equal(strparse_quoted(&sp, 3, &s, &esc), TS_ERR_TOO_LARGE);
	assert_int_equal(strparse_left(&sp), 11);
	assert_int_equal(strparse_quoted(&sp, 4, &s, &esc), 0);
	assert_true(esc);
	assert_int_equal(s.len, 4);
	assert_non_null(d = strslice_dup(&s, 1));
	assert_string_equal(d, "a\"b");
	free(d);
	assert_int_equal(strparse_peek(&sp), ' ');
	strparse_init(&sp, "\"abcd\"", 6);
	assert_int_equal(strparse_quoted(&sp, 3, &s, &esc), TS_ERR_TOO_LARGE);
	assert_int_equal(strparse_left(&sp), 6);
	strparse_init(&sp, "\"abc", 4);
	assert_int_equal(strparse_quoted(&sp, 10, &s, &esc), TS_ERR_PARSE);
	strparse_init(&sp, "\"ab\\", 4);
	assert_int_equal(strparse_quoted(&sp, 10, &s, &esc), TS_ERR_PARSE);
	strparse_init(&sp, "\"a\nb\"", 5);
	assert_int_equal(strparse_quoted(&sp, 10, &s, &esc), TS_ERR_PARSE);
	strparse_init(&sp, "\"\"", 2);
	assert_int_equal(strparse_quoted(&sp, 10, &s, &esc), 0);
	assert_int_equal(s.len, 0);
	strparse_init(&sp, "abc", 3);
	assert_int_equal(strparse_quoted(&sp, 10, &s, &esc), TS_ERR_PARSE);
}

static void
test_number_span(void **state)
{
	struct strparse sp;
	struct strslice s;
	uint64_t v;

	(void)state;
	strparse_init(&sp, "65535x", 6);
	assert_int_equal(strparse_number(&sp, 65534, &v), TS_ERR_TOO_LARGE);
	assert_int_equal(strparse_left(&sp), 6);
	assert_int_equal(strparse_number(&sp, 65535, &v), 0);
	assert_int_equal(v, 65535);
	assert_int_equal(strparse_number(&sp, 65535, &v), TS_ERR_PARSE);
	strparse_init(&sp, "99999999999999999999", 20);
	assert_int_equal(
	    strparse_number(&sp, UINT64_MAX, &v), TS_ERR_TOO_LARGE);
	strparse_init(&sp, "Bearer realm", 12);
	assert_int_equal(strparse_span(&sp, strparse_is_tchar, 64, &s), 0);
	assert_true(strslice_caseeq(&s, "bearer"));
	assert_false(strslice_eq(&s, "bearer"));
	strparse_blanks(&sp);
	assert_int_equal(
	    strparse_span(&sp, strparse_is_tchar, 4, &s), TS_ERR_TOO_LARGE);
	assert_int_equal(strparse_span(&sp, strparse_is_tchar, 5, &s), 0);
	assert_true(strslice_eq(&s, "realm"));
	assert_int_equal(
	    strparse_span(&sp, strparse_is_tchar, 5, &s), TS_ERR_PARSE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_until),
		cmocka_unit_test(test_quoted),
		cmocka_unit_test(test_number_span),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
