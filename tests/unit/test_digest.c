/*
 * test_digest.c - OCI digest parsing (go-digest rules), formatting, hashing
 * and the cosign "sha256-<hex>.sig" tag.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/digest.h"
#include "common/err.h"

/* sha256("") */
#define EMPTY256 \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void
test_parse_format_roundtrip(void **state)
{
	struct digest d;
	char buf[DIGEST_STR_MAX];
	const char *why = "x";

	(void)state;
	assert_int_equal(digest_parse_str("sha256:" EMPTY256, &d, &why), 0);
	assert_null(why);
	assert_int_equal(d.alg, DIGEST_ALG_SHA256);
	assert_int_equal(d.len, 32);
	assert_int_equal(d.v[0], 0xe3);
	assert_int_equal(digest_format(&d, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "sha256:" EMPTY256);
	/* exactly-sized buffer works, one byte less does not */
	assert_int_equal(digest_format(&d, buf, 7 + 64 + 1), 0);
	assert_int_equal(digest_format(&d, buf, 7 + 64), TS_ERR_TOO_LARGE);
}

static void
test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"sha256",
		"sha256:",
		":" EMPTY256,
		"sha256:" EMPTY256 "0",
		"sha256:" EMPTY256 "\n",
		"SHA256:" EMPTY256,
		"sha256:"
		"E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B8"
		"55",
		"sha256:"
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8"
		"5",
		"sha256:"
		"g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8"
		"55",
		"sha256 :" EMPTY256,
		"sha512:" EMPTY256,
	};
	struct digest d;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(
		    digest_parse_str(bad[i], &d, &why), TS_ERR_DIGEST_INVALID);
		assert_non_null(why);
		assert_int_equal(d.alg, DIGEST_ALG_NONE);
	}
	/* embedded NUL: the length, not strlen, counts */
	assert_int_equal(
	    digest_parse("sha256:" EMPTY256 "\0", 7 + 64 + 1, &d, &why),
	    TS_ERR_DIGEST_INVALID);
	/* unknown but well-formed algorithm: a distinct, clear error */
	assert_int_equal(
	    digest_parse_str("md5:d41d8cd98f00b204e9800998ecf8427e", &d, &why),
	    TS_ERR_UNSUPPORTED);
	assert_non_null(strstr(why, "unsupported"));
}

static void
test_compute_verify_tag(void **state)
{
	struct digest d, e;
	char buf[DIGEST_TAG_MAX];

	(void)state;
	assert_int_equal(digest_compute(DIGEST_ALG_SHA256, "", 0, &d), 0);
	assert_int_equal(digest_parse_str("sha256:" EMPTY256, &e, NULL), 0);
	assert_true(digest_equal(&d, &e));
	assert_int_equal(digest_verify(&e, "", 0), 0);
	assert_int_equal(digest_verify(&e, "x", 1), TS_ERR_DIGEST_MISMATCH);
	assert_int_equal(digest_tag(&d, ".sig", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "sha256-" EMPTY256 ".sig");
	assert_int_equal(digest_tag(&d, "", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "sha256-" EMPTY256);
	assert_int_equal(
	    digest_tag(&d, ".sig", buf, 7 + 64 + 4), TS_ERR_TOO_LARGE);
	assert_int_equal(digest_hex(&d, buf, sizeof(buf)), 0);
	assert_string_equal(buf, EMPTY256);
	/* sha512 round trip */
	assert_int_equal(digest_compute(DIGEST_ALG_SHA512, "abc", 3, &d), 0);
	assert_int_equal(digest_format(&d, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), 7 + 128);
	assert_int_equal(digest_parse_str(buf, &e, NULL), 0);
	assert_true(digest_equal(&d, &e));
	assert_int_equal(digest_verify(&e, "abc", 3), 0);
	/* different algorithms never compare equal */
	assert_int_equal(digest_compute(DIGEST_ALG_SHA256, "abc", 3, &e), 0);
	assert_false(digest_equal(&d, &e));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_format_roundtrip),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_compute_verify_tag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
