/*
 * test_wbuf.c - the wire buffer: typed round trips, truncation, one byte
 * over the maximum, zero length, embedded NUL, and "a failed read left the
 * cursor unmoved" (style.md section 7).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/wbuf.h"

static void
test_roundtrip(void **state)
{
	struct wbuf *b;
	uint8_t u8;
	uint32_t u32;
	uint64_t u64;
	uint8_t *s;
	char *cs;
	size_t len;

	(void)state;
	assert_non_null(b = wbuf_new(1024));
	assert_int_equal(wbuf_put_u8(b, 0xab), 0);
	assert_int_equal(wbuf_put_u32(b, 0x01020304), 0);
	assert_int_equal(wbuf_put_u64(b, 0x1122334455667788ULL), 0);
	assert_int_equal(wbuf_put_string(b, "a\0b", 3), 0);
	assert_int_equal(wbuf_put_cstring(b, "hello"), 0);
	assert_int_equal(wbuf_len(b), 1 + 4 + 8 + 7 + 9);
	/* big-endian on the wire */
	assert_memory_equal(wbuf_ptr(b), "\xab\x01\x02\x03\x04", 5);
	assert_int_equal(wbuf_get_u8(b, &u8), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(wbuf_get_u32(b, &u32), 0);
	assert_int_equal(u32, 0x01020304);
	assert_int_equal(wbuf_get_u64(b, &u64), 0);
	assert_true(u64 == 0x1122334455667788ULL);
	assert_int_equal(wbuf_get_string(b, &s, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "a\0b", 3);
	free(s);
	assert_int_equal(wbuf_get_cstring(b, &cs, &len), 0);
	assert_string_equal(cs, "hello");
	free(cs);
	assert_int_equal(wbuf_len(b), 0);
	wbuf_free(b);
}

static void
test_truncated_leaves_cursor(void **state)
{
	struct wbuf *b;
	uint32_t u32;
	uint64_t u64;
	uint8_t *s;
	const uint8_t *sp;
	struct wbuf *child;
	size_t len;

	(void)state;
	/* a string claiming 10 bytes with only 3 present */
	static const uint8_t data[] = { 0, 0, 0, 10, 'a', 'b', 'c' };
	assert_non_null(b = wbuf_from(data, sizeof(data)));
	assert_int_equal(wbuf_get_string(b, &s, &len), TS_ERR_WIRE_TRUNCATED);
	assert_null(s);
	assert_int_equal(wbuf_len(b), sizeof(data));
	assert_int_equal(
	    wbuf_get_string_direct(b, &sp, &len), TS_ERR_WIRE_TRUNCATED);
	assert_int_equal(wbuf_get_stringb(b, &child), TS_ERR_WIRE_TRUNCATED);
	assert_int_equal(wbuf_get_u64(b, &u64), TS_ERR_WIRE_TRUNCATED);
	assert_int_equal(wbuf_len(b), sizeof(data));
	assert_int_equal(wbuf_get_u32(b, &u32), 0);
	assert_int_equal(u32, 10);
	assert_int_equal(wbuf_get_u32(b, &u32), TS_ERR_WIRE_TRUNCATED);
	assert_int_equal(wbuf_len(b), 3);
	wbuf_free(b);
}

static void
test_max_size(void **state)
{
	struct wbuf *b;
	uint8_t big[65];

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_non_null(b = wbuf_new(64));
	assert_int_equal(wbuf_put(b, big, 64), 0);
	/* one byte over the maximum is refused and writes nothing */
	assert_int_equal(wbuf_put_u8(b, 1), TS_ERR_WIRE_BUF_FULL);
	assert_int_equal(wbuf_len(b), 64);
	wbuf_reset(b);
	assert_int_equal(wbuf_len(b), 0);
	assert_int_equal(wbuf_put(b, big, 65), TS_ERR_WIRE_BUF_FULL);
	/* a string whose header fits but body does not writes nothing */
	assert_int_equal(wbuf_put_string(b, big, 61), TS_ERR_WIRE_BUF_FULL);
	assert_int_equal(wbuf_len(b), 0);
	assert_int_equal(wbuf_put_string(b, big, 60), 0);
	assert_int_equal(wbuf_len(b), 64);
	wbuf_free(b);
	assert_null(wbuf_new(WBUF_SIZE_MAX + 1));
}

static void
test_zero_length_and_nul(void **state)
{
	struct wbuf *b;
	char *cs;
	uint8_t *s;
	size_t len;

	(void)state;
	assert_non_null(b = wbuf_new(128));
	assert_int_equal(wbuf_put_string(b, NULL, 0), 0);
	assert_int_equal(wbuf_get_string(b, &s, &len), 0);
	assert_int_equal(len, 0);
	assert_non_null(s);
	free(s);
	/* embedded NUL is rejected by the C-string reader, cursor kept */
	assert_int_equal(wbuf_put_string(b, "ab\0cd", 5), 0);
	assert_int_equal(
	    wbuf_get_cstring(b, &cs, &len), TS_ERR_WIRE_BAD_STRING);
	assert_null(cs);
	assert_int_equal(wbuf_len(b), 9);
	wbuf_free(b);
}

static void
test_child_view(void **state)
{
	struct wbuf *b, *child;
	uint32_t v;

	(void)state;
	assert_non_null(b = wbuf_new(128));
	assert_int_equal(wbuf_put_u32(b, 8), 0);
	assert_int_equal(wbuf_put_u32(b, 7), 0);
	assert_int_equal(wbuf_put_u32(b, 9), 0);
	assert_int_equal(wbuf_put_u8(b, 1), 0);
	assert_int_equal(wbuf_get_stringb(b, &child), 0);
	assert_int_equal(wbuf_len(child), 8);
	assert_int_equal(wbuf_len(b), 1);
	assert_int_equal(wbuf_get_u32(child, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(wbuf_get_u32(child, &v), 0);
	assert_int_equal(v, 9);
	/* the view is read-only */
	assert_int_equal(wbuf_put_u8(child, 0), TS_ERR_INVALID_ARG);
	assert_null(wbuf_mutable_ptr(child));
	wbuf_free(child);
	wbuf_free(b);
}

static void
test_poke_peek_consume(void **state)
{
	struct wbuf *b;
	uint32_t v;

	(void)state;
	assert_non_null(b = wbuf_new(128));
	assert_int_equal(wbuf_put_u32(b, 0), 0);
	assert_int_equal(wbuf_put_u8(b, 5), 0);
	assert_int_equal(wbuf_poke_u32(b, 0, 1), 0);
	assert_int_equal(wbuf_poke_u32(b, 2, 1), TS_ERR_WIRE_TRUNCATED);
	assert_int_equal(wbuf_peek_u32(b, 0, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(wbuf_peek_u32(b, 1, &v), 0);
	assert_int_equal(wbuf_peek_u32(b, 2, &v), TS_ERR_WIRE_TRUNCATED);
	assert_int_equal(wbuf_peek_u32(b, SIZE_MAX, &v), TS_ERR_WIRE_TRUNCATED);
	assert_int_equal(wbuf_consume(b, 6), TS_ERR_WIRE_TRUNCATED);
	assert_int_equal(wbuf_consume_end(b, 1), 0);
	assert_int_equal(wbuf_len(b), 4);
	assert_int_equal(wbuf_consume(b, SIZE_MAX), TS_ERR_WIRE_TRUNCATED);
	assert_int_equal(wbuf_consume(b, 4), 0);
	assert_int_equal(wbuf_len(b), 0);
	wbuf_free(b);
}

static void
test_grow_after_consume(void **state)
{
	struct wbuf *b;
	uint8_t chunk[100], out[100];
	int i;

	(void)state;
	/* steady-state streaming never exceeds max when data is consumed */
	assert_non_null(b = wbuf_new(256));
	for (i = 0; i < 50; i++) {
		memset(chunk, i, sizeof(chunk));
		assert_int_equal(wbuf_put(b, chunk, sizeof(chunk)), 0);
		assert_int_equal(wbuf_get(b, out, 60), 0);
		assert_int_equal(wbuf_get(b, out + 60, 40), 0);
		assert_memory_equal(chunk, out, sizeof(out));
	}
	wbuf_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_truncated_leaves_cursor),
		cmocka_unit_test(test_max_size),
		cmocka_unit_test(test_zero_length_and_nul),
		cmocka_unit_test(test_child_view),
		cmocka_unit_test(test_poke_peek_consume),
		cmocka_unit_test(test_grow_after_consume),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
