/*
 * test_uri.c - RFC 7512 parser and formatter (pkcs11/uri.c): every
 * attribute, percent-encoding both ways, every error case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "pkcs11/uri.h"

static struct p11_uri *
parse_ok(const char *text)
{
	struct p11_uri *uri = NULL;
	char err[P11_URI_ERRBUF_SIZE];
	int r;

	r = p11_uri_parse(text, &uri, err, sizeof(err));
	if (r != 0)
		fail_msg("parse '%s' failed: %s", text, err);
	assert_non_null(uri);
	return uri;
}

/* Parses text expecting TS_ERR_P11_URI and a message containing want. */
static void
parse_bad(const char *text, const char *want)
{
	struct p11_uri *uri = (struct p11_uri *)1;
	char err[P11_URI_ERRBUF_SIZE];
	int r;

	r = p11_uri_parse(text, &uri, err, sizeof(err));
	if (r != TS_ERR_P11_URI)
		fail_msg("parse '%s': want TS_ERR_P11_URI, got %d", text, r);
	assert_null(uri);
	if (strstr(err, want) == NULL)
		fail_msg(
		    "parse '%s': message '%s' lacks '%s'", text, err, want);
}

static void
check_format(const struct p11_uri *uri, int flags, const char *want)
{
	char *s = NULL;

	assert_int_equal(p11_uri_format(uri, flags, &s), 0);
	assert_string_equal(s, want);
	free(s);
}

static void
test_empty(void **state)
{
	struct p11_uri *uri;
	size_t len;
	uint64_t slot;
	unsigned ma, mi;
	int a;

	(void)state;
	uri = parse_ok("pkcs11:");
	for (a = 0; a < P11_URI_NATTR; a++)
		assert_null(p11_uri_get(uri, (enum p11_uri_attr)a));
	assert_null(p11_uri_get_id(uri, &len));
	assert_int_equal(p11_uri_get_type(uri), P11_URI_TYPE_ANY);
	assert_int_equal(p11_uri_get_slot_id(uri, &slot), 0);
	assert_int_equal(p11_uri_get_library_version(uri, &ma, &mi), 0);
	assert_int_equal(p11_uri_vendor_count(uri), 0);
	assert_int_equal(p11_uri_is_token_only(uri), 1);
	check_format(uri, ~0, "pkcs11:");
	p11_uri_free(uri);
	/* scheme is case-insensitive; an empty query is fine */
	uri = parse_ok("PKCS11:?");
	p11_uri_free(uri);
}

static void
test_every_path_attribute(void **state)
{
	struct p11_uri *uri;
	const uint8_t *id;
	size_t len;
	uint64_t slot;
	unsigned ma, mi;

	(void)state;
	uri = parse_ok("pkcs11:token=T;manufacturer=M;serial=S;model=Mo;"
		       "library-manufacturer=LM;library-description=LD;"
		       "library-version=2.40;slot-manufacturer=SM;"
		       "slot-description=SD;slot-id=18446744073709551615;"
		       "object=O;id=%01%ab;type=private");
	assert_string_equal(p11_uri_get(uri, P11_URI_TOKEN), "T");
	assert_string_equal(p11_uri_get(uri, P11_URI_MANUFACTURER), "M");
	assert_string_equal(p11_uri_get(uri, P11_URI_SERIAL), "S");
	assert_string_equal(p11_uri_get(uri, P11_URI_MODEL), "Mo");
	assert_string_equal(
	    p11_uri_get(uri, P11_URI_LIBRARY_MANUFACTURER), "LM");
	assert_string_equal(
	    p11_uri_get(uri, P11_URI_LIBRARY_DESCRIPTION), "LD");
	assert_string_equal(p11_uri_get(uri, P11_URI_SLOT_MANUFACTURER), "SM");
	assert_string_equal(p11_uri_get(uri, P11_URI_SLOT_DESCRIPTION), "SD");
	assert_string_equal(p11_uri_get(uri, P11_URI_OBJECT), "O");
	assert_int_equal(p11_uri_get_slot_id(uri, &slot), 1);
	assert_true(slot == UINT64_MAX);
	assert_int_equal(p11_uri_get_library_version(uri, &ma, &mi), 1);
	assert_int_equal(ma, 2);
	assert_int_equal(mi, 40);
	id = p11_uri_get_id(uri, &len);
	assert_non_null(id);
	assert_int_equal(len, 2);
	assert_int_equal(id[0], 0x01);
	assert_int_equal(id[1], 0xab);
	assert_int_equal(p11_uri_get_type(uri), P11_URI_TYPE_PRIVATE);
	assert_int_equal(p11_uri_is_token_only(uri), 0);
	check_format(uri, 0,
	    "pkcs11:token=T;manufacturer=M;serial=S;model=Mo;"
	    "library-manufacturer=LM;library-description=LD;"
	    "library-version=2.40;slot-manufacturer=SM;slot-description=SD;"
	    "slot-id=18446744073709551615;object=O;id=%01%AB;type=private");
	p11_uri_free(uri);

	uri = parse_ok("pkcs11:library-version=3");
	assert_int_equal(p11_uri_get_library_version(uri, &ma, &mi), 1);
	assert_int_equal(ma, 3);
	assert_int_equal(mi, 0);
	p11_uri_free(uri);
}

static void
test_types(void **state)
{
	static const struct {
		const char *text;
		enum p11_uri_type type;
	} t[] = {
		{ "pkcs11:type=public", P11_URI_TYPE_PUBLIC },
		{ "pkcs11:type=private", P11_URI_TYPE_PRIVATE },
		{ "pkcs11:type=cert", P11_URI_TYPE_CERT },
		{ "pkcs11:type=secret-key", P11_URI_TYPE_SECRET_KEY },
		{ "pkcs11:type=data", P11_URI_TYPE_DATA },
		{ "pkcs11:object-type=cert", P11_URI_TYPE_CERT },
		{ "pkcs11:objecttype=public", P11_URI_TYPE_PUBLIC },
	};
	struct p11_uri *uri;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uri = parse_ok(t[i].text);
		assert_int_equal(p11_uri_get_type(uri), t[i].type);
		p11_uri_free(uri);
	}
}

static void
test_query_attributes(void **state)
{
	struct p11_uri *uri;

	(void)state;
	uri = parse_ok("pkcs11:token=a?module-path=/usr/lib/x.so&"
		       "module-name=softhsm2&pin-source=file:/tmp/p%20in");
	assert_string_equal(
	    p11_uri_get(uri, P11_URI_MODULE_PATH), "/usr/lib/x.so");
	assert_string_equal(p11_uri_get(uri, P11_URI_MODULE_NAME), "softhsm2");
	assert_string_equal(
	    p11_uri_get(uri, P11_URI_PIN_SOURCE), "file:/tmp/p in");
	assert_null(p11_uri_get(uri, P11_URI_PIN_VALUE));
	/* query attributes only on request */
	check_format(uri, 0, "pkcs11:token=a");
	check_format(uri, P11_URI_FMT_MODULE,
	    "pkcs11:token=a?module-name=softhsm2&module-path=/usr/lib/x.so");
	check_format(uri, P11_URI_FMT_MODULE | P11_URI_FMT_PIN_SOURCE,
	    "pkcs11:token=a?module-name=softhsm2&module-path=/usr/lib/x.so"
	    "&pin-source=file:/tmp/p%20in");
	check_format(uri, P11_URI_FMT_PIN_SOURCE,
	    "pkcs11:token=a?pin-source=file:/tmp/p%20in");
	p11_uri_free(uri);

	uri = parse_ok("pkcs11:?pin-value=12%2634");
	assert_string_equal(p11_uri_get(uri, P11_URI_PIN_VALUE), "12&34");
	check_format(uri, 0, "pkcs11:");
	check_format(uri, P11_URI_FMT_PIN_VALUE, "pkcs11:?pin-value=12%2634");
	p11_uri_free(uri);

	/* legacy pinfile is pin-source */
	uri = parse_ok("pkcs11:?pinfile=/p");
	assert_string_equal(p11_uri_get(uri, P11_URI_PIN_SOURCE), "/p");
	p11_uri_free(uri);
}

static void
test_percent_decoding(void **state)
{
	struct p11_uri *uri;
	const uint8_t *id;
	size_t len;

	(void)state;
	/* lowercase and uppercase escapes; '+' literal; '&' allowed in path */
	uri = parse_ok("pkcs11:token=My%20Token%2a;object=a+b&c%3B%3f%25;"
		       "id=%Ff%00");
	assert_string_equal(p11_uri_get(uri, P11_URI_TOKEN), "My Token*");
	assert_string_equal(p11_uri_get(uri, P11_URI_OBJECT), "a+b&c;?%");
	id = p11_uri_get_id(uri, &len);
	assert_int_equal(len, 2);
	assert_int_equal(id[0], 0xff);
	assert_int_equal(id[1], 0x00);
	/* canonical: '+' and ';' '?' '%' encoded, '&' kept in the path */
	check_format(uri, 0,
	    "pkcs11:token=My%20Token*;object=a%2Bb&c%3B%3F%25;id=%FF%00");
	p11_uri_free(uri);

	/* UTF-8 passes through as bytes */
	uri = parse_ok("pkcs11:token=%C3%A9t%C3%A9");
	assert_string_equal(
	    p11_uri_get(uri, P11_URI_TOKEN), "\xc3\xa9t\xc3\xa9");
	check_format(uri, 0, "pkcs11:token=%C3%A9t%C3%A9");
	p11_uri_free(uri);

	/* whitespace is dropped, as p11-kit does */
	uri = parse_ok(" pkcs11:token=a\n b;\tobject=c ");
	assert_string_equal(p11_uri_get(uri, P11_URI_TOKEN), "ab");
	p11_uri_free(uri);

	/* empty values and an empty id */
	uri = parse_ok("pkcs11:object=;id=");
	assert_string_equal(p11_uri_get(uri, P11_URI_OBJECT), "");
	id = p11_uri_get_id(uri, &len);
	assert_non_null(id);
	assert_int_equal(len, 0);
	check_format(uri, 0, "pkcs11:object=;id=");
	p11_uri_free(uri);
}

static void
test_encoding_every_byte(void **state)
{
	struct p11_uri *uri, *back;
	uint8_t id[256];
	char text[256], *s = NULL, err[P11_URI_ERRBUF_SIZE];
	const uint8_t *got;
	size_t i, len;

	(void)state;
	uri = p11_uri_new();
	assert_non_null(uri);
	for (i = 0; i < 256; i++)
		id[i] = (uint8_t)i;
	for (i = 0; i < 255; i++)
		text[i] = (char)(i + 1);
	text[255] = '\0';
	assert_int_equal(p11_uri_set_id(uri, id, sizeof(id)), 0);
	assert_int_equal(p11_uri_set(uri, P11_URI_OBJECT, text), 0);
	assert_int_equal(p11_uri_set(uri, P11_URI_PIN_SOURCE, text), 0);
	assert_int_equal(p11_uri_format(uri, P11_URI_FMT_PIN_SOURCE, &s), 0);
	/* every id byte is escaped: "id=" then 256 * "%HH" */
	assert_non_null(strstr(s, "id=%00%01%02"));
	assert_null(strchr(s, '+'));
	assert_null(strchr(s, ' '));
	assert_int_equal(p11_uri_parse(s, &back, err, sizeof(err)), 0);
	got = p11_uri_get_id(back, &len);
	assert_int_equal(len, 256);
	assert_memory_equal(got, id, 256);
	assert_string_equal(p11_uri_get(back, P11_URI_OBJECT), text);
	assert_string_equal(p11_uri_get(back, P11_URI_PIN_SOURCE), text);
	free(s);
	p11_uri_free(back);
	p11_uri_free(uri);
}

static void
test_vendor(void **state)
{
	struct p11_uri *uri;
	const char *name, *value;
	int inq;

	(void)state;
	uri = parse_ok("pkcs11:token=t;x-foo=b%20ar;vendor_2=1?x-q=/a|b");
	assert_int_equal(p11_uri_vendor_count(uri), 3);
	assert_int_equal(p11_uri_vendor_get(uri, 0, &name, &value, &inq), 0);
	assert_string_equal(name, "x-foo");
	assert_string_equal(value, "b ar");
	assert_int_equal(inq, 0);
	assert_int_equal(p11_uri_vendor_get(uri, 1, &name, &value, &inq), 0);
	assert_string_equal(name, "vendor_2");
	assert_int_equal(p11_uri_vendor_get(uri, 2, &name, &value, &inq), 0);
	assert_string_equal(name, "x-q");
	assert_string_equal(value, "/a|b");
	assert_int_equal(inq, 1);
	assert_int_equal(
	    p11_uri_vendor_get(uri, 3, &name, &value, &inq), TS_ERR_NOT_FOUND);
	check_format(uri, 0, "pkcs11:token=t;x-foo=b%20ar;vendor_2=1?x-q=/a|b");
	p11_uri_free(uri);
}

static void
test_errors(void **state)
{
	(void)state;
	/* duplicates, including legacy aliases and vendor names */
	parse_bad("pkcs11:token=a;token=b", "duplicate attribute 'token'");
	parse_bad("pkcs11:id=%01;id=%02", "duplicate attribute 'id'");
	parse_bad("pkcs11:type=cert;object-type=cert",
	    "duplicate attribute 'object-type'");
	parse_bad("pkcs11:slot-id=1;slot-id=1", "duplicate attribute");
	parse_bad("pkcs11:?pin-source=a&pin-source=b",
	    "duplicate attribute 'pin-source'");
	parse_bad("pkcs11:?pin-source=a&pinfile=b", "duplicate attribute");
	parse_bad("pkcs11:?module-path=/a&module-path=/b", "duplicate");
	parse_bad("pkcs11:x-a=1;x-a=2", "duplicate attribute 'x-a'");
	/* unknown type */
	parse_bad("pkcs11:type=secret", "unknown type 'secret'");
	parse_bad("pkcs11:type=", "unknown type");
	parse_bad("pkcs11:type=PRIVATE", "unknown type");
	/* bad escapes */
	parse_bad("pkcs11:token=%", "bad percent escape in attribute 'token'");
	parse_bad("pkcs11:token=%4", "bad percent escape");
	parse_bad("pkcs11:token=%G0", "bad percent escape");
	parse_bad("pkcs11:id=%0g", "bad percent escape in attribute 'id'");
	parse_bad("pkcs11:?pin-value=%%31", "bad percent escape");
	/* pin-source with pin-value */
	parse_bad("pkcs11:?pin-source=/p&pin-value=1",
	    "pin-source and pin-value together");
	/* NUL in a text attribute */
	parse_bad("pkcs11:token=a%00b", "NUL byte");
	parse_bad("pkcs11:x-v=%00", "NUL byte");
	/* structure */
	parse_bad("pkcs12:token=a", "must start with 'pkcs11:'");
	parse_bad("token=a", "must start with 'pkcs11:'");
	parse_bad("pkcs11:token", "lacks '=value'");
	parse_bad("pkcs11:token=a;", "empty attribute in path");
	parse_bad("pkcs11:;token=a", "empty attribute");
	parse_bad("pkcs11:?&pin-source=a", "empty attribute in query");
	parse_bad("pkcs11:=a", "bad attribute name");
	parse_bad("pkcs11:to.ken=a", "bad attribute name");
	parse_bad("pkcs11:token=a#frag", "'#'");
	parse_bad("pkcs11:token=a?token=b", "belongs in the path");
	parse_bad("pkcs11:pin-value=1", "belongs in the query");
	parse_bad("pkcs11:module-path=/x", "belongs in the query");
	/* characters that must be escaped */
	parse_bad("pkcs11:object=a/b", "character '/' must be percent-encoded");
	parse_bad("pkcs11:object=a\"b", "character '\"'");
	parse_bad("pkcs11:?pin-source=a&b", "lacks '=value'");
	parse_bad(
	    "pkcs11:object=\xc3\xa9", "byte 0xc3 must be percent-encoded");
	parse_bad("pkcs11:object=a|b", "character '|'");
	/* numbers */
	parse_bad("pkcs11:slot-id=", "slot-id must be a decimal number");
	parse_bad("pkcs11:slot-id=-1", "slot-id must be");
	parse_bad("pkcs11:slot-id=0x1", "slot-id must be");
	parse_bad("pkcs11:slot-id=18446744073709551616", "slot-id must be");
	parse_bad("pkcs11:library-version=", "library-version must be");
	parse_bad("pkcs11:library-version=1.", "library-version must be");
	parse_bad("pkcs11:library-version=.1", "library-version must be");
	parse_bad("pkcs11:library-version=1.2.3", "library-version must be");
	parse_bad("pkcs11:library-version=256", "library-version must be");
	parse_bad("pkcs11:library-version=a", "library-version must be");
	/* module-path must be absolute */
	parse_bad("pkcs11:?module-path=lib.so", "absolute path");
}

static void
test_limits(void **state)
{
	struct p11_uri *uri = NULL;
	char *big, vend[1024];
	size_t i, o;

	(void)state;
	/* one byte over the maximum length */
	big = malloc(P11_URI_MAX_LEN + 2);
	assert_non_null(big);
	memcpy(big, "pkcs11:object=", 14);
	memset(big + 14, 'a', P11_URI_MAX_LEN - 14);
	big[P11_URI_MAX_LEN] = '\0';
	assert_int_equal(p11_uri_parse(big, &uri, NULL, 0), 0);
	p11_uri_free(uri);
	big[P11_URI_MAX_LEN] = 'a';
	big[P11_URI_MAX_LEN + 1] = '\0';
	parse_bad(big, "longer than");
	free(big);

	/* vendor attribute cap */
	o = 0;
	memcpy(vend, "pkcs11:", 7);
	o = 7;
	for (i = 0; i <= P11_URI_MAX_VENDOR; i++)
		o += (size_t)snprintf(
		    vend + o, sizeof(vend) - o, "%sv%zu=1", i ? ";" : "", i);
	parse_bad(vend, "too many vendor attributes");

	/* NULL arguments and no error buffer */
	assert_int_equal(
	    p11_uri_parse(NULL, &uri, NULL, 0), TS_ERR_INVALID_ARG);
	assert_int_equal(
	    p11_uri_parse("pkcs11:token=%", &uri, NULL, 0), TS_ERR_P11_URI);
	assert_null(uri);
}

static void
test_setters_and_match(void **state)
{
	struct p11_uri *uri;
	uint64_t slot;

	(void)state;
	uri = p11_uri_new();
	assert_non_null(uri);
	assert_int_equal(p11_uri_set(uri, P11_URI_TOKEN, "ts main"), 0);
	assert_int_equal(
	    p11_uri_set(uri, P11_URI_NATTR, "x"), TS_ERR_INVALID_ARG);
	p11_uri_set_type(uri, P11_URI_TYPE_PUBLIC);
	p11_uri_set_slot_id(uri, 7);
	assert_int_equal(p11_uri_get_slot_id(uri, &slot), 1);
	assert_true(slot == 7);
	check_format(uri, 0, "pkcs11:token=ts%20main;slot-id=7;type=public");
	/* match against a blank-padded fixed-width field */
	assert_int_equal(p11_uri_match_text(uri, P11_URI_TOKEN,
			     "ts main                         ", 32),
	    1);
	assert_int_equal(
	    p11_uri_match_text(uri, P11_URI_TOKEN, "ts mainx", 8), 0);
	assert_int_equal(p11_uri_match_text(uri, P11_URI_TOKEN, "ts", 2), 0);
	/* absent attribute is a wildcard */
	assert_int_equal(
	    p11_uri_match_text(uri, P11_URI_SERIAL, "anything", 8), 1);
	assert_int_equal(p11_uri_set(uri, P11_URI_TOKEN, NULL), 0);
	p11_uri_set_type(uri, P11_URI_TYPE_ANY);
	assert_int_equal(p11_uri_set_id(uri, NULL, 0), 0);
	check_format(uri, 0, "pkcs11:slot-id=7");
	assert_string_equal(
	    p11_uri_attr_name(P11_URI_PIN_SOURCE), "pin-source");
	p11_uri_free(uri);
	p11_uri_free(NULL);
}

/* The formatter's output parses back to the same canonical text. */
static void
test_roundtrip(void **state)
{
	static const char *const in[] = {
		"pkcs11:token=a%2fb;object=%e2%82%ac+x;id=%41",
		("pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;"
		 "serial=1234;token=ts-main;object=p256;type=private"),
		"pkcs11:x=1?pin-source=|cmd&x-y=z",
	};
	struct p11_uri *a, *b;
	char *s1 = NULL, *s2 = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		a = parse_ok(in[i]);
		assert_int_equal(p11_uri_format(a, ~0, &s1), 0);
		b = parse_ok(s1);
		assert_int_equal(p11_uri_format(b, ~0, &s2), 0);
		assert_string_equal(s1, s2);
		free(s1);
		free(s2);
		p11_uri_free(a);
		p11_uri_free(b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_every_path_attribute),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_query_attributes),
		cmocka_unit_test(test_percent_decoding),
		cmocka_unit_test(test_encoding_every_byte),
		cmocka_unit_test(test_vendor),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_setters_and_match),
		cmocka_unit_test(test_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
