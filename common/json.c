/*
 * json.c - strict JSON reading over jansson and Go-compatible writing.
 *
 * Why Go's rules: cosign and ggcr produce payloads, manifests and configs
 * with Go's encoding/json, and we want byte-identical blobs (formats.md
 * 1.2, 2.2, 2.3) so digests and the dedupe rules behave like cosign's.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "common/wbuf.h"

/*
 * jansson's iterators take json_t * although they do not modify the object;
 * going through uintptr_t keeps -Wcast-qual meaningful elsewhere.
 */
static json_t *
unconst(const json_t *v)
{
	return (json_t *)(uintptr_t)v;
}

int
tsjson_parse(const void *data, size_t len, size_t max_len, int flags,
    json_t **out, char *why, size_t why_len)
{
	json_error_t err;
	json_t *v = NULL;
	size_t jflags = JSON_REJECT_DUPLICATES;
	int r = TS_ERR_INTERNAL;

	if (out != NULL)
		*out = NULL;
	if (why != NULL && why_len > 0)
		why[0] = '\0';
	if (out == NULL || (data == NULL && len > 0)) {
		ts_errbuf(why, why_len, "no input");
		return TS_ERR_INVALID_ARG;
	}
	if (max_len == 0 || max_len > TSJSON_MAX_DOC)
		max_len = TSJSON_MAX_DOC;
	if (len > max_len) {
		ts_errbuf(why, why_len,
		    "JSON document of %zu bytes exceeds %zu", len, max_len);
		r = TS_ERR_TOO_LARGE;
		goto out;
	}
	if ((flags & TSJSON_OBJECT) == 0)
		jflags |= JSON_DECODE_ANY;
	if ((flags & TSJSON_NUMBERS_AS_REAL) != 0)
		jflags |= JSON_DECODE_INT_AS_REAL;
	/*
	 * json_loadb rejects trailing non-space data (no
	 * JSON_DISABLE_EOF_CHECK), "\u0000" in strings (no JSON_ALLOW_NUL)
	 * and invalid UTF-8; nesting is bounded by JSON_PARSER_MAX_DEPTH.
	 */
	if ((v = json_loadb(len == 0 ? "" : data, len, jflags, &err)) == NULL) {
		ts_errbuf(why, why_len, "invalid JSON at byte %d: %.100s",
		    err.position, err.text);
		r = TS_ERR_PARSE;
		goto out;
	}
	if ((flags & TSJSON_OBJECT) != 0 && !json_is_object(v)) {
		ts_errbuf(why, why_len, "JSON top level is not an object");
		r = TS_ERR_PARSE;
		goto out;
	}
	*out = v;
	v = NULL;
	r = 0;
out:
	json_decref(v);
	return r;
}

int
tsjson_exact_keys(const json_t *o, const char *const *keys, size_t n,
    const char *what, char *why, size_t why_len)
{
	const char *k;
	json_t *v;
	size_t i;

	if (!json_is_object(o)) {
		ts_errbuf(why, why_len, "%s is not a JSON object", what);
		return TS_ERR_PARSE;
	}
	for (i = 0; i < n; i++) {
		if (json_object_get(o, keys[i]) == NULL) {
			ts_errbuf(why, why_len, "%s: missing key \"%s\"", what,
			    keys[i]);
			return TS_ERR_PARSE;
		}
	}
	/* Keys are compared case-sensitively (jansson and c/image alike). */
	json_object_foreach(unconst(o), k, v)
	{
		for (i = 0; i < n; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (i == n) {
			ts_errbuf(why, why_len, "%s: unexpected key \"%.100s\"",
			    what, k);
			return TS_ERR_PARSE;
		}
	}
	return 0;
}

static int
get_member(const json_t *o, const char *key, const char *what, json_t **v,
    char *why, size_t why_len)
{
	*v = NULL;
	if (!json_is_object(o)) {
		ts_errbuf(why, why_len, "%s is not a JSON object", what);
		return TS_ERR_PARSE;
	}
	if ((*v = json_object_get(o, key)) == NULL) {
		ts_errbuf(why, why_len, "%s: missing key \"%s\"", what, key);
		return TS_ERR_NOT_FOUND;
	}
	return 0;
}

int
tsjson_get_object(const json_t *o, const char *key, const char *what,
    json_t **out, char *why, size_t why_len)
{
	json_t *v;
	int r;

	*out = NULL;
	if ((r = get_member(o, key, what, &v, why, why_len)) != 0)
		return r;
	if (!json_is_object(v)) {
		ts_errbuf(why, why_len, "%s.%s is not an object", what, key);
		return TS_ERR_PARSE;
	}
	*out = v;
	return 0;
}

int
tsjson_get_array(const json_t *o, const char *key, const char *what,
    json_t **out, char *why, size_t why_len)
{
	json_t *v;
	int r;

	*out = NULL;
	if ((r = get_member(o, key, what, &v, why, why_len)) != 0)
		return r;
	if (!json_is_array(v)) {
		ts_errbuf(why, why_len, "%s.%s is not an array", what, key);
		return TS_ERR_PARSE;
	}
	*out = v;
	return 0;
}

int
tsjson_get_string(const json_t *o, const char *key, const char *what,
    const char **out, size_t *len, char *why, size_t why_len)
{
	json_t *v;
	int r;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if ((r = get_member(o, key, what, &v, why, why_len)) != 0)
		return r;
	if (!json_is_string(v)) {
		ts_errbuf(why, why_len, "%s.%s is not a string", what, key);
		return TS_ERR_PARSE;
	}
	*out = json_string_value(v);
	if (len != NULL)
		*len = json_string_length(v);
	return 0;
}

int
tsjson_value_int(const json_t *v, int64_t *out)
{
	double d;

	*out = 0;
	if (json_is_integer(v)) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_real(v))
		return TS_ERR_PARSE;
	d = json_real_value(v);
	/* Range first: converting an out-of-range double is undefined. */
	if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
		return TS_ERR_PARSE;
	if ((double)(int64_t)d != d)
		return TS_ERR_PARSE;
	*out = (int64_t)d;
	return 0;
}

int
tsjson_get_int(const json_t *o, const char *key, const char *what, int64_t *out,
    char *why, size_t why_len)
{
	json_t *v;
	int r;

	*out = 0;
	if ((r = get_member(o, key, what, &v, why, why_len)) != 0)
		return r;
	if (!json_is_number(v)) {
		ts_errbuf(why, why_len, "%s.%s is not a number", what, key);
		return TS_ERR_PARSE;
	}
	if (tsjson_value_int(v, out) != 0) {
		ts_errbuf(why, why_len, "%s.%s is not an integer", what, key);
		return TS_ERR_PARSE;
	}
	return 0;
}

/*
 * Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid, with
 * exactly Go's utf8.DecodeRune acceptance: no overlongs, no surrogates,
 * nothing above U+10FFFF.  *cp gets the code point.
 */
static size_t
utf8_seq(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		uint8_t b = s[i];

		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf))
			return 0;
		v = v << 6 | (b & 0x3f);
	}
	*cp = v;
	return need;
}

int
tsjson_put_string_go(struct wbuf *b, const char *str, size_t len)
{
	static const char xd[] = "0123456789abcdef";
	const uint8_t *s = (const uint8_t *)str;
	size_t i = 0, start = 0, sl;
	uint32_t cp;
	char esc[6];
	int r;

	if (len > TSJSON_MAX_STRING)
		return TS_ERR_TOO_LARGE;
	if (str == NULL && len > 0)
		return TS_ERR_INVALID_ARG;
	if ((r = wbuf_put_u8(b, '"')) != 0)
		return r;
	while (i < len) {
		const char *rep = NULL;
		size_t rlen = 0, adv = 1;
		uint8_t c = s[i];

		if (c < 0x80) {
			if (c >= 0x20 && c != '"' && c != '\\' && c != '<' &&
			    c != '>' && c != '&') {
				i++;
				continue;
			}
			switch (c) {
			case '"':
				rep = "\\\"";
				break;
			case '\\':
				rep = "\\\\";
				break;
			case '\b':
				rep = "\\b";
				break;
			case '\f':
				rep = "\\f";
				break;
			case '\n':
				rep = "\\n";
				break;
			case '\r':
				rep = "\\r";
				break;
			case '\t':
				rep = "\\t";
				break;
			default:
				/* other controls and the HTML-unsafe <>& */
				memcpy(esc, "\\u00", 4);
				esc[4] = xd[c >> 4];
				esc[5] = xd[c & 0xf];
				rep = esc;
				rlen = 6;
				break;
			}
		} else {
			sl = utf8_seq(s + i, len - i, &cp);
			if (sl == 0)
				rep =
				    "\\ufffd"; /* one per invalid byte, as Go */
			else if (cp == 0x2028 || cp == 0x2029)
				rep = cp == 0x2028 ? "\\u2028" : "\\u2029";
			else {
				i += sl;
				continue;
			}
			adv = sl == 0 ? 1 : sl;
		}
		if (rlen == 0)
			rlen = strlen(rep);
		if ((r = wbuf_put(b, s + start, i - start)) != 0 ||
		    (r = wbuf_put(b, rep, rlen)) != 0)
			return r;
		i += adv;
		start = i;
	}
	if ((r = wbuf_put(b, s + start, i - start)) != 0 ||
	    (r = wbuf_put_u8(b, '"')) != 0)
		return r;
	return 0;
}

int
tsjson_put_raw(struct wbuf *b, const char *lit)
{
	return wbuf_put(b, lit, strlen(lit));
}

/*
 * Go's float64 encoding: shortest digits that round-trip, 'f' notation
 * for 1e-6 <= |f| < 1e21, else 'e' with a 2-digit minimum exponent except
 * that "e-07" is shortened to "e-7".
 */
static int
put_real_go(struct wbuf *b, double f)
{
	char tmp[64], digits[32], outb[400];
	int p, e, nd, k, o = 0, neg = 0;
	double a = f < 0 ? -f : f;
	char *ep;

	if (f != f || a > 1.7976931348623157e308)
		return TS_ERR_INVALID_ARG; /* Go refuses NaN and Inf too */
	if (f == 0) {
		/* Go writes "-0" for negative zero. */
		return tsjson_put_raw(b, 1 / f < 0 ? "-0" : "0");
	}
	for (p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, a);
		if (strtod(tmp, NULL) == a)
			break;
	}
	/* tmp is "d[.ddd]e[+-]XX" */
	nd = 0;
	for (k = 0; tmp[k] != 'e' && tmp[k] != '\0'; k++)
		if (tmp[k] != '.')
			digits[nd++] = tmp[k];
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	e = (int)strtol(tmp + k + 1, &ep, 10);
	neg = f < 0;
	if (neg)
		outb[o++] = '-';
	if (a >= 1e-6 && a < 1e21) {
		if (e >= nd - 1) {
			memcpy(outb + o, digits, nd);
			o += nd;
			for (k = 0; k < e - (nd - 1); k++)
				outb[o++] = '0';
		} else if (e >= 0) {
			memcpy(outb + o, digits, e + 1);
			o += e + 1;
			outb[o++] = '.';
			memcpy(outb + o, digits + e + 1, nd - e - 1);
			o += nd - e - 1;
		} else {
			outb[o++] = '0';
			outb[o++] = '.';
			for (k = 0; k < -e - 1; k++)
				outb[o++] = '0';
			memcpy(outb + o, digits, nd);
			o += nd;
		}
		outb[o] = '\0';
	} else {
		outb[o++] = digits[0];
		if (nd > 1) {
			outb[o++] = '.';
			memcpy(outb + o, digits + 1, nd - 1);
			o += nd - 1;
		}
		snprintf(outb + o, sizeof(outb) - o, "e%c%02d",
		    e < 0 ? '-' : '+', e < 0 ? -e : e);
		/* Go: "e-07" becomes "e-7" */
		if (e < 0 && -e < 10)
			snprintf(outb + o, sizeof(outb) - o, "e-%d", -e);
	}
	return tsjson_put_raw(b, outb);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int
tsjson_put_value_go(struct wbuf *b, const json_t *v)
{
	const char **keys = NULL;
	const char *k;
	json_t *m;
	char num[32];
	size_t i, n;
	int r = TS_ERR_INTERNAL;

	switch (json_typeof(v)) {
	case JSON_NULL:
		return tsjson_put_raw(b, "null");
	case JSON_TRUE:
		return tsjson_put_raw(b, "true");
	case JSON_FALSE:
		return tsjson_put_raw(b, "false");
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return tsjson_put_raw(b, num);
	case JSON_REAL:
		return put_real_go(b, json_real_value(v));
	case JSON_STRING:
		return tsjson_put_string_go(
		    b, json_string_value(v), json_string_length(v));
	case JSON_ARRAY:
		if ((r = wbuf_put_u8(b, '[')) != 0)
			return r;
		for (i = 0; i < json_array_size(v); i++) {
			if ((i > 0 && (r = wbuf_put_u8(b, ',')) != 0) ||
			    (r = tsjson_put_value_go(
				 b, json_array_get(v, i))) != 0)
				return r;
		}
		return wbuf_put_u8(b, ']');
	case JSON_OBJECT:
		n = json_object_size(v);
		if (n > 0 && (keys = calloc(n, sizeof(*keys))) == NULL)
			return TS_ERR_ALLOC;
		i = 0;
		json_object_foreach(unconst(v), k, m)
		{
			if (i < n)
				keys[i++] = k;
		}
		n = i;
		qsort(keys, n, sizeof(*keys), cmp_str);
		if ((r = wbuf_put_u8(b, '{')) != 0)
			goto out;
		for (i = 0; i < n; i++) {
			if ((i > 0 && (r = wbuf_put_u8(b, ',')) != 0) ||
			    (r = tsjson_put_string_go(
				 b, keys[i], strlen(keys[i]))) != 0 ||
			    (r = wbuf_put_u8(b, ':')) != 0 ||
			    (r = tsjson_put_value_go(
				 b, json_object_get(v, keys[i]))) != 0)
				goto out;
		}
		r = wbuf_put_u8(b, '}');
		goto out;
	}
	return TS_ERR_INVALID_ARG;
out:
	free(keys);
	return r;
}
