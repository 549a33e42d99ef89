/*
 * test_err.c - every TS_ERR_* code has its own message, codes are unique,
 * and unknown codes are reported as such (a new code without a message,
 * or a renumbered duplicate, fails here).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"

static void
test_messages_distinct(void **state)
{
	const char *unknown = ts_err(-9999);
	const char *seen[400] = { 0 };
	int code, n = 0, i;

	(void)state;
	assert_string_equal(unknown, "unknown error code");
	assert_string_equal(ts_err(TS_OK), "success");
	for (code = -1; code > -400; code--) {
		const char *m = ts_err(code);
		if (strcmp(m, unknown) == 0)
			continue;
		assert_true(strlen(m) > 3);
		for (i = 0; i < n; i++)
			assert_string_not_equal(seen[i], m);
		seen[n++] = m;
	}
	/* every range has codes */
	assert_true(n > 60);
}

static void
test_ranges(void **state)
{
	(void)state;
	assert_true(TS_ERR_INTERNAL < 0 && TS_ERR_INTERNAL > -30);
	assert_true(
	    TS_ERR_WIRE_TRUNCATED <= -30 && TS_ERR_WIRE_TRUNCATED > -60);
	assert_true(TS_ERR_P11_MODULE <= -60 && TS_ERR_P11_MODULE > -100);
	assert_true(
	    TS_ERR_POLICY_DENIED <= -100 && TS_ERR_POLICY_DENIED > -130);
	assert_true(TS_ERR_TLS <= -130 && TS_ERR_TLS > -160);
	assert_true(TS_ERR_REF_INVALID <= -160 && TS_ERR_REF_INVALID > -200);
	assert_string_not_equal(
	    ts_err(TS_ERR_P11_PIN_INCORRECT), ts_err(TS_ERR_P11_PIN_LOCKED));
	assert_string_not_equal(
	    ts_err(TS_ERR_P11_TOKEN_REMOVED), ts_err(TS_ERR_P11_SESSION));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages_distinct),
		cmocka_unit_test(test_ranges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
