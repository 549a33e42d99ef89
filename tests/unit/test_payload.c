/*
 * test_payload.c - golden bytes of the cosign payload builder (formats.md
 * 1.2, and a real cosign payload from the containers/image fixtures) and
 * every rejection rule of the strict parser (formats.md 1.1).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/payload.h"

#define D634      \
	"sha256:" \
	"634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
#define DE3B      \
	"sha256:" \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* Produced by real cosign: dir-img-cosign-valid/signature-1's payload. */
static const char cosign_fixture[] =
    "{\"critical\":{\"identity\":{\"docker-reference\":\"192.168.64.2:5000/"
    "cosign-signed-single-sample\"},\"image\":{\"docker-manifest-digest\":"
    "\"" D634 "\"},\"type\":\"cosign container image signature\"},"
    "\"optional\":null}";

/* Produced by skopeo: dir-img-cosign-valid-with-tag. */
static const char skopeo_fixture[] =
    "{\"critical\":{\"identity\":{\"docker-reference\":\"192.168.64.2:5000/"
    "skopeo-signed:tag\"},\"image\":{\"docker-manifest-digest\":\"" D634
    "\"},\"type\":\"cosign container image signature\"},\"optional\":{"
    "\"creator\":\"containers/image 5.21.2-dev\",\"timestamp\":1657296609}}";

static void
check_build(const char *ref, const char *dig, const struct payload_kv *kv,
    size_t n, const char *want)
{
	struct digest d;
	uint8_t *out = NULL;
	size_t len = 0;

	assert_int_equal(digest_parse_str(dig, &d, NULL), 0);
	assert_int_equal(payload_build(ref, &d, kv, n, &out, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
}

static void
test_build_golden(void **state)
{
	const struct payload_kv kv[] = {
		{ "z", "1" },
		{ "a<b>&c", "x\xe2\x80\xa8y\"\\/\xc3\xa9\x01" },
	};

	(void)state;
	/* formats.md 1.2, first [ran] line (with a real digest) */
	check_build("index.docker.io/library/busybox", DE3B, NULL, 0,
	    "{\"critical\":{\"identity\":{\"docker-reference\":\"index.docker."
	    "io/library/"
	    "busybox\"},\"image\":{\"docker-manifest-digest\":\"" DE3B
	    "\"},\"type\":\"cosign container image signature\"},\"optional\":"
	    "null}");
	/* formats.md 1.2, second [ran] line: sorted keys, Go escaping */
	check_build("index.docker.io/library/busybox", DE3B, kv, 2,
	    "{\"critical\":{\"identity\":{\"docker-reference\":\"index.docker."
	    "io/library/"
	    "busybox\"},\"image\":{\"docker-manifest-digest\":\"" DE3B
	    "\"},\"type\":\"cosign container image signature\"},\"optional\":{"
	    "\"a\\u003cb\\u003e\\u0026c\":\"x\\u2028y\\\"\\\\/"
	    "\xc3\xa9\\u0001\","
	    "\"z\":\"1\"}}");
	/* byte-identical to what cosign wrote for the fixture */
	check_build("192.168.64.2:5000/cosign-signed-single-sample", D634, NULL,
	    0, cosign_fixture);
}

static void
test_build_rejects(void **state)
{
	const struct payload_kv dup[] = { { "k", "1" }, { "k", "2" } };
	struct digest d;
	uint8_t *out = (uint8_t *)1;
	size_t len = 1;

	(void)state;
	assert_int_equal(digest_parse_str(DE3B, &d, NULL), 0);
	assert_int_equal(
	    payload_build("r", &d, dup, 2, &out, &len), TS_ERR_INVALID_ARG);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_int_equal(
	    payload_build("", &d, NULL, 0, &out, &len), TS_ERR_INVALID_ARG);
	assert_int_equal(
	    payload_build(NULL, &d, NULL, 0, &out, &len), TS_ERR_INVALID_ARG);
	memset(&d, 0, sizeof(d));
	assert_int_equal(
	    payload_build("r", &d, NULL, 0, &out, &len), TS_ERR_INVALID_ARG);
}

static struct payload *
parse_ok(const char *s)
{
	struct payload *p = NULL;
	char why[256];

	why[0] = '\0';
	if (payload_parse(
		(const uint8_t *)s, strlen(s), &p, why, sizeof(why)) != 0)
		fail_msg("rejected: %s: %s", why, s);
	return p;
}

static void
test_parse_accepts(void **state)
{
	struct payload *p;
	const char *v, *k;
	int64_t ts;
	char buf[4096];

	(void)state;
	p = parse_ok(cosign_fixture);
	assert_string_equal(payload_docker_reference(p),
	    "192.168.64.2:5000/cosign-signed-single-sample");
	assert_string_equal(payload_manifest_digest_str(p), D634);
	assert_int_equal(payload_manifest_digest(p)->alg, DIGEST_ALG_SHA256);
	assert_false(payload_has_optional(p));
	assert_int_equal(payload_optional_count(p), 0);
	assert_int_equal(
	    payload_optional_string(p, "creator", &v), TS_ERR_NOT_FOUND);
	assert_int_equal(payload_timestamp(p, &ts), TS_ERR_NOT_FOUND);
	payload_free(p);

	p = parse_ok(skopeo_fixture);
	assert_true(payload_has_optional(p));
	assert_int_equal(payload_optional_string(p, "creator", &v), 0);
	assert_string_equal(v, "containers/image 5.21.2-dev");
	assert_int_equal(payload_timestamp(p, &ts), 0);
	assert_int_equal(ts, 1657296609);
	assert_int_equal(
	    payload_optional_string(p, "timestamp", &v), TS_ERR_PARSE);
	assert_int_equal(payload_optional_count(p), 2);
	assert_int_equal(payload_optional_at(p, 0, &k, &v), 0);
	assert_string_equal(k, "creator");
	assert_int_equal(payload_optional_at(p, 1, &k, &v), 0);
	assert_string_equal(k, "timestamp");
	assert_null(v);
	assert_int_equal(payload_optional_at(p, 2, &k, &v), TS_ERR_NOT_FOUND);
	payload_free(p);

	/* Go decodes timestamps as float64: integral reals are fine */
#define WRAP(opt)                                                              \
	"{\"critical\":{\"identity\":{\"docker-reference\":\"r\"},\"image\":{" \
	"\"docker-manifest-digest\":\"" DE3B                                   \
	"\"},\"type\":\"cosign container image signature\"},\"optional\":" opt \
	"}"
	payload_free(parse_ok(WRAP("{\"timestamp\":1.0}")));
	payload_free(parse_ok(WRAP("{\"timestamp\":1e3}")));
	payload_free(parse_ok(WRAP("{\"timestamp\":-5}")));
	payload_free(parse_ok(WRAP("{}")));
	/* other optional members are ignored, whatever their type */
	p = parse_ok(WRAP("{\"x\":[1,{\"y\":null}],\"n\":1e300,\"k\":\"v\"}"));
	assert_int_equal(payload_optional_string(p, "k", &v), 0);
	assert_string_equal(v, "v");
	payload_free(p);
	/* whitespace between tokens and around the document is JSON */
	payload_free(
	    parse_ok(" {\"optional\" : null ,\"critical\":{\"type\":"
		     "\"cosign container image signature\",\"image\":{"
		     "\"docker-manifest-digest\":\"" DE3B
		     "\"},\"identity\":{\"docker-reference\":\"r\"}}}\n"));
	/* a payload of exactly the maximum size is parsed */
	memset(buf, ' ', sizeof(buf));
	memcpy(buf, cosign_fixture, strlen(cosign_fixture));
	buf[sizeof(buf) - 1] = '\0';
	payload_free(parse_ok(buf));
}

struct bad_case {
	const char *doc;
	const char *why; /* substring the reason must contain */
};

static const struct bad_case bad_cases[] = {
	{ "", "invalid JSON" },
	{ "null", "invalid JSON" },
	{ "[]", "not an object" },
	{ "{", "invalid JSON" },
	{ "not json", "invalid JSON" },
	/* trailing data after the object */
	{ WRAP("null") "x", "invalid JSON" },
	{ WRAP("null") "{}", "invalid JSON" },
	/* duplicate keys, at every level */
	{ "{\"optional\":null,\"optional\":null,\"critical\":{}}",
	    "duplicate" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"type\":\"cosign container image signature\",\"image\":{"
	  "\"docker-manifest-digest\":\"" DE3B "\"},\"identity\":{"
	  "\"docker-reference\":\"r\"}},\"optional\":null}",
	    "duplicate" },
	{ WRAP("{\"creator\":\"a\",\"creator\":\"b\"}"), "duplicate" },
	/* exact key sets, case-sensitive */
	{ "{\"critical\":{}}", "missing key \"optional\"" },
	{ "{\"optional\":null}", "missing key \"critical\"" },
	{ "{\"Critical\":{},\"optional\":null}", "critical" },
	{ "{\"critical\":{},\"optional\":null,\"extra\":1}", "unexpected key" },
	{ "{\"critical\":null,\"optional\":null}", "critical" },
	{ "{\"critical\":[],\"optional\":null}", "critical" },
	{ "{\"critical\":{\"image\":{\"docker-manifest-digest\":\"" DE3B
	  "\"},\"identity\":{\"docker-reference\":\"r\"}},\"optional\":null}",
	    "missing key \"type\"" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"" DE3B "\"},\"identity\":{"
	  "\"docker-reference\":\"r\"},\"x\":1},\"optional\":null}",
	    "unexpected key \"x\"" },
	/* type */
	{ "{\"critical\":{\"type\":\"atomic container signature\",\"image\":{"
	  "\"docker-manifest-digest\":\"" DE3B "\"},\"identity\":{"
	  "\"docker-reference\":\"r\"}},\"optional\":null}",
	    "unrecognized signature type" },
	{ "{\"critical\":{\"type\":\"Cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"" DE3B "\"},\"identity\":{"
	  "\"docker-reference\":\"r\"}},\"optional\":null}",
	    "unrecognized signature type" },
	{ "{\"critical\":{\"type\":null,\"image\":{\"docker-manifest-digest\":"
	  "\"" DE3B "\"},\"identity\":{\"docker-reference\":\"r\"}},"
	  "\"optional\":null}",
	    "type is not a string" },
	/* image */
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"Docker-manifest-digest\":\"" DE3B "\"},\"identity\":{"
	  "\"docker-reference\":\"r\"}},\"optional\":null}",
	    "critical.image: missing key" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"" DE3B "\",\"x\":\"\"},"
	  "\"identity\":{\"docker-reference\":\"r\"}},\"optional\":null}",
	    "critical.image: unexpected key" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"sha256:abc\"},\"identity\":{"
	  "\"docker-reference\":\"r\"}},\"optional\":null}",
	    "wrong length" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"sha256:E3B0C44298FC1C149AFB"
	  "F4C8996FB92427AE41E4649B934CA495991B7852B855\"},\"identity\":{"
	  "\"docker-reference\":\"r\"}},\"optional\":null}",
	    "lowercase" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"md5:d41d8cd98f00b204e98009"
	  "98ecf8427e\"},\"identity\":{\"docker-reference\":\"r\"}},"
	  "\"optional\":null}",
	    "unsupported digest algorithm" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":5},\"identity\":{"
	  "\"docker-reference\":\"r\"}},\"optional\":null}",
	    "not a string" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":\"" DE3B "\",\"identity\":{\"docker-reference\":\"r\"}},"
	  "\"optional\":null}",
	    "image is not an object" },
	/* identity */
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"" DE3B "\"},\"identity\":{"
	  "\"docker-reference\":\"r\",\"tag\":\"x\"}},\"optional\":null}",
	    "critical.identity: unexpected key" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"" DE3B
	  "\"},\"identity\":{}},"
	  "\"optional\":null}",
	    "critical.identity: missing key" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"" DE3B "\"},\"identity\":{"
	  "\"docker-reference\":null}},\"optional\":null}",
	    "not a string" },
	/* optional */
	{ WRAP("\"\""), "neither null nor an object" },
	{ WRAP("[]"), "neither null nor an object" },
	{ WRAP("0"), "neither null nor an object" },
	{ WRAP("false"), "neither null nor an object" },
	{ WRAP("{\"creator\":1}"), "creator is not a string" },
	{ WRAP("{\"creator\":null}"), "creator is not a string" },
	{ WRAP("{\"timestamp\":\"1\"}"), "timestamp is not a number" },
	{ WRAP("{\"timestamp\":1.5}"), "timestamp is not an integer" },
	{ WRAP("{\"timestamp\":1e30}"), "timestamp is not an integer" },
	{ WRAP("{\"timestamp\":null}"), "timestamp is not a number" },
	/* strings: NUL escape and invalid UTF-8 are refused */
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"" DE3B "\"},\"identity\":{"
	  "\"docker-reference\":\"r\\u0000x\"}},\"optional\":null}",
	    "invalid JSON" },
	{ "{\"critical\":{\"type\":\"cosign container image signature\","
	  "\"image\":{\"docker-manifest-digest\":\"" DE3B "\"},\"identity\":{"
	  "\"docker-reference\":\"r\xff\"}},\"optional\":null}",
	    "invalid JSON" },
};

static void
test_parse_rejects(void **state)
{
	struct payload *p;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		p = (struct payload *)1;
		why[0] = '\0';
		if (payload_parse((const uint8_t *)bad_cases[i].doc,
			strlen(bad_cases[i].doc), &p, why,
			sizeof(why)) != TS_ERR_PAYLOAD_INVALID)
			fail_msg("case %zu accepted: %s", i, bad_cases[i].doc);
		assert_null(p);
		if (strstr(why, bad_cases[i].why) == NULL)
			fail_msg("case %zu: reason \"%s\" lacks \"%s\"", i, why,
			    bad_cases[i].why);
	}
}

static void
test_parse_limits(void **state)
{
	struct payload *p;
	uint8_t *big;
	char why[256];
	size_t n = PAYLOAD_MAX_LEN + 1;

	(void)state;
	/* one byte over the maximum is refused before parsing */
	assert_non_null(big = malloc(n));
	memset(big, ' ', n);
	memcpy(big, cosign_fixture, strlen(cosign_fixture));
	assert_int_equal(payload_parse(big, n, &p, why, sizeof(why)),
	    TS_ERR_PAYLOAD_INVALID);
	assert_non_null(strstr(why, "exceeds"));
	/* exactly the maximum is fine */
	assert_int_equal(payload_parse(big, n - 1, &p, why, sizeof(why)), 0);
	payload_free(p);
	free(big);
	/* embedded NUL byte right after a valid document */
	big = malloc(strlen(cosign_fixture) + 1);
	memcpy(big, cosign_fixture, strlen(cosign_fixture) + 1);
	assert_int_equal(payload_parse(big, strlen(cosign_fixture) + 1, &p, why,
			     sizeof(why)),
	    TS_ERR_PAYLOAD_INVALID);
	/* truncation at every length */
	for (n = 0; n < strlen(cosign_fixture); n++)
		assert_int_equal(
		    payload_parse(big, n, &p, NULL, 0), TS_ERR_PAYLOAD_INVALID);
	free(big);
}

static void
test_roundtrip_and_kv(void **state)
{
	const struct payload_kv kv[] = { { "env", "prod" }, { "a", "" } };
	struct payload *p;
	struct digest d;
	uint8_t *out;
	size_t len;
	char *k, *v;
	const char *s;

	(void)state;
	assert_int_equal(digest_parse_str(D634, &d, NULL), 0);
	assert_int_equal(
	    payload_build("127.0.0.1:5000/demo/app", &d, kv, 2, &out, &len), 0);
	assert_int_equal(payload_parse(out, len, &p, NULL, 0), 0);
	assert_true(digest_equal(payload_manifest_digest(p), &d));
	assert_int_equal(payload_optional_string(p, "env", &s), 0);
	assert_string_equal(s, "prod");
	payload_free(p);
	free(out);

	assert_int_equal(payload_kv_parse("k=v=w", &k, &v), 0);
	assert_string_equal(k, "k");
	assert_string_equal(v, "v=w");
	free(k);
	free(v);
	assert_int_equal(payload_kv_parse("k=", &k, &v), 0);
	assert_string_equal(v, "");
	free(k);
	free(v);
	assert_int_equal(
	    payload_kv_parse("novalue", &k, &v), TS_ERR_INVALID_ARG);
	assert_null(k);
	assert_int_equal(payload_kv_parse("=v", &k, &v), TS_ERR_INVALID_ARG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_golden),
		cmocka_unit_test(test_build_rejects),
		cmocka_unit_test(test_parse_accepts),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_roundtrip_and_kv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
