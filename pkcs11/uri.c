/*
 * uri.c - RFC 7512 PKCS#11 URI parser and canonical formatter
 * (formats.md section 8).
 *
 * The parser is strict where leniency would change meaning (duplicates,
 * bad escapes, unknown type, characters that must be escaped, pin-source
 * together with pin-value) and lenient where p11-kit is (whitespace is
 * dropped, the scheme is case-insensitive, %hh in either case, the legacy
 * names objecttype/object-type/pinfile).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/secmem.h"
#include "pkcs11/uri.h"

struct p11_uri_vendor {
	char *name;
	char *value;
	int in_query;
};

struct p11_uri {
	char *attr[P11_URI_NATTR];
	uint8_t *id;
	size_t idlen;
	int has_id;
	enum p11_uri_type type;
	int has_slot;
	uint64_t slot;
	int has_libver;
	unsigned lib_major, lib_minor;
	struct p11_uri_vendor vendor[P11_URI_MAX_VENDOR];
	size_t nvendor;
};

/* Pseudo-attributes that are not plain text, numbered after the text ones. */
enum {
	URI_ID = P11_URI_NATTR,
	URI_TYPE,
	URI_SLOT_ID,
	URI_LIBRARY_VERSION,
	URI_NALL
};

static const struct uri_name {
	const char *name;
	int attr;
	int in_query;
} uri_names[] = {
	{ "token", P11_URI_TOKEN, 0 },
	{ "manufacturer", P11_URI_MANUFACTURER, 0 },
	{ "serial", P11_URI_SERIAL, 0 },
	{ "model", P11_URI_MODEL, 0 },
	{ "library-manufacturer", P11_URI_LIBRARY_MANUFACTURER, 0 },
	{ "library-description", P11_URI_LIBRARY_DESCRIPTION, 0 },
	{ "library-version", URI_LIBRARY_VERSION, 0 },
	{ "slot-manufacturer", P11_URI_SLOT_MANUFACTURER, 0 },
	{ "slot-description", P11_URI_SLOT_DESCRIPTION, 0 },
	{ "slot-id", URI_SLOT_ID, 0 },
	{ "object", P11_URI_OBJECT, 0 },
	{ "id", URI_ID, 0 },
	{ "type", URI_TYPE, 0 },
	{ "pin-source", P11_URI_PIN_SOURCE, 1 },
	{ "pin-value", P11_URI_PIN_VALUE, 1 },
	{ "module-name", P11_URI_MODULE_NAME, 1 },
	{ "module-path", P11_URI_MODULE_PATH, 1 },
	/* legacy spellings p11-kit still accepts */
	{ "objecttype", URI_TYPE, 0 },
	{ "object-type", URI_TYPE, 0 },
	{ "pinfile", P11_URI_PIN_SOURCE, 1 },
};

static const char *const type_names[] = { NULL, "public", "private", "cert",
	"secret-key", "data" };

/* RFC 3986 unreserved plus what RFC 7512 allows unencoded in each part. */
#define URI_UNRESERVED \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
#define URI_PATH_EXTRA	":[]@!$'()*+,=&"
#define URI_QUERY_EXTRA ":[]@!$'()*+,=/?|"

const char *
p11_uri_attr_name(enum p11_uri_attr attr)
{
	size_t i;

	for (i = 0; i < sizeof(uri_names) / sizeof(uri_names[0]); i++)
		if (uri_names[i].attr == (int)attr)
			return uri_names[i].name;
	return NULL;
}

struct p11_uri *
p11_uri_new(void)
{
	return calloc(1, sizeof(struct p11_uri));
}

static void
free_text(char *s)
{
	if (s != NULL)
		freezero(s, strlen(s));
}

void
p11_uri_free(struct p11_uri *uri)
{
	size_t i;

	if (uri == NULL)
		return;
	for (i = 0; i < P11_URI_NATTR; i++)
		free_text(uri->attr[i]); /* wipes pin-value */
	freezero(uri->id, uri->idlen);
	for (i = 0; i < uri->nvendor; i++) {
		free(uri->vendor[i].name);
		free_text(uri->vendor[i].value);
	}
	freezero(uri, sizeof(*uri));
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Percent-decodes s[0..len) into a new buffer (NUL-terminated, *outlenp
 * bytes before the NUL).  Characters outside allowed must have been
 * escaped.  Returns 0, TS_ERR_P11_URI or TS_ERR_ALLOC.
 */
static int
uri_decode(const char *s, size_t len, const char *allowed, const char *name,
    uint8_t **outp, size_t *outlenp, char *errbuf, size_t errlen)
{
	uint8_t *out = NULL;
	size_t i, o = 0;
	int hi, lo, r = TS_ERR_INTERNAL;

	*outp = NULL;
	*outlenp = 0;
	if ((out = malloc(len + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (len - i < 3 || (hi = hexval(s[i + 1])) < 0 ||
			    (lo = hexval(s[i + 2])) < 0) {
				ts_errbuf(errbuf, errlen,
				    "bad percent escape in attribute '%.40s' "
				    "(want %%HH)",
				    name);
				r = TS_ERR_P11_URI;
				goto out;
			}
			out[o++] = (uint8_t)(hi << 4 | lo);
			i += 2;
			continue;
		}
		if (c == 0 ||
		    (strchr(URI_UNRESERVED, c) == NULL &&
			strchr(allowed, c) == NULL)) {
			if (c < 0x21 || c > 0x7e)
				ts_errbuf(errbuf, errlen,
				    "byte 0x%02x must be percent-encoded in "
				    "attribute '%.40s'",
				    c, name);
			else
				ts_errbuf(errbuf, errlen,
				    "character '%c' must be percent-encoded in "
				    "attribute '%.40s'",
				    c, name);
			r = TS_ERR_P11_URI;
			goto out;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	*outp = out;
	*outlenp = o;
	out = NULL;
	r = 0;
out:
	if (out != NULL)
		freezero(out, len + 1);
	return r;
}

static int
valid_name(const char *s, size_t len)
{
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

/* Parses decimal digits into *vp, refusing empty input and overflow. */
static int
parse_u64(const char *s, uint64_t max, uint64_t *vp)
{
	uint64_t v = 0;

	*vp = 0;
	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (max - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*vp = v;
	return 0;
}

static int
set_special(struct p11_uri *uri, int attr, uint8_t *val, size_t vlen,
    char *errbuf, size_t errlen)
{
	uint64_t a, b;
	char *dot;
	size_t i;

	switch (attr) {
	case URI_TYPE:
		for (i = 1; i < sizeof(type_names) / sizeof(type_names[0]);
		     i++) {
			if (strcmp((char *)val, type_names[i]) == 0) {
				uri->type = (enum p11_uri_type)i;
				return 0;
			}
		}
		ts_errbuf(errbuf, errlen,
		    "unknown type '%.40s' (want public, private, cert, "
		    "secret-key or data)",
		    strlen((char *)val) == vlen ? (char *)val : "(binary)");
		return TS_ERR_P11_URI;
	case URI_SLOT_ID:
		if (strlen((char *)val) != vlen ||
		    parse_u64((char *)val, UINT64_MAX, &a) != 0) {
			ts_errbuf(
			    errbuf, errlen, "slot-id must be a decimal number");
			return TS_ERR_P11_URI;
		}
		uri->slot = a;
		uri->has_slot = 1;
		return 0;
	case URI_LIBRARY_VERSION:
		if (strlen((char *)val) != vlen)
			goto badver;
		b = 0;
		if ((dot = strchr((char *)val, '.')) != NULL) {
			*dot = '\0';
			if (parse_u64(dot + 1, 255, &b) != 0)
				goto badver;
		}
		if (parse_u64((char *)val, 255, &a) != 0)
			goto badver;
		uri->lib_major = (unsigned)a;
		uri->lib_minor = (unsigned)b;
		uri->has_libver = 1;
		return 0;
badver:
		ts_errbuf(errbuf, errlen,
		    "library-version must be M or M.m (decimal, each at most "
		    "255)");
		return TS_ERR_P11_URI;
	default:
		return TS_ERR_INTERNAL;
	}
}

/* Parses one name=value element of the path (in_query 0) or query. */
static int
parse_element(struct p11_uri *uri, const char *s, size_t len, int in_query,
    unsigned char *seen, char *errbuf, size_t errlen)
{
	const char *eq;
	const struct uri_name *un = NULL;
	uint8_t *val = NULL;
	size_t i, nlen, vlen = 0;
	char name[64];
	int r = TS_ERR_P11_URI;

	if (len == 0) {
		ts_errbuf(errbuf, errlen, "empty attribute in %s",
		    in_query ? "query" : "path");
		goto out;
	}
	if ((eq = memchr(s, '=', len)) == NULL) {
		ts_errbuf(errbuf, errlen, "attribute '%.*s' lacks '=value'",
		    (int)(len > 40 ? 40 : len), s);
		goto out;
	}
	nlen = (size_t)(eq - s);
	if (!valid_name(s, nlen) || nlen >= sizeof(name)) {
		ts_errbuf(errbuf, errlen,
		    "bad attribute name '%.*s' (letters, digits, '-', '_')",
		    (int)(nlen > 40 ? 40 : nlen), s);
		goto out;
	}
	memcpy(name, s, nlen);
	name[nlen] = '\0';
	for (i = 0; i < sizeof(uri_names) / sizeof(uri_names[0]); i++) {
		if (strcmp(name, uri_names[i].name) == 0) {
			un = &uri_names[i];
			break;
		}
	}
	if (un != NULL && un->in_query != in_query) {
		ts_errbuf(errbuf, errlen, "attribute '%s' belongs in the %s",
		    name,
		    un->in_query ? "query (after '?')" : "path (before '?')");
		goto out;
	}
	if ((r = uri_decode(eq + 1, len - nlen - 1,
		 in_query ? URI_QUERY_EXTRA : URI_PATH_EXTRA, name, &val, &vlen,
		 errbuf, errlen)) != 0)
		goto out;
	r = TS_ERR_P11_URI;
	if (un == NULL) {
		/* vendor attribute (RFC 7512 2.3) */
		for (i = 0; i < uri->nvendor; i++) {
			if (strcmp(uri->vendor[i].name, name) == 0 &&
			    uri->vendor[i].in_query == in_query) {
				ts_errbuf(errbuf, errlen,
				    "duplicate attribute '%s'", name);
				goto out;
			}
		}
		if (uri->nvendor >= P11_URI_MAX_VENDOR) {
			ts_errbuf(errbuf, errlen,
			    "too many vendor attributes (at most %d)",
			    P11_URI_MAX_VENDOR);
			goto out;
		}
		if (strlen((char *)val) != vlen) {
			ts_errbuf(errbuf, errlen,
			    "attribute '%s' contains a NUL byte", name);
			goto out;
		}
		if ((uri->vendor[uri->nvendor].name = strdup(name)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		uri->vendor[uri->nvendor].value = (char *)val;
		uri->vendor[uri->nvendor].in_query = in_query;
		uri->nvendor++;
		val = NULL;
		r = 0;
		goto out;
	}
	if (seen[un->attr]) {
		ts_errbuf(errbuf, errlen, "duplicate attribute '%s'", un->name);
		goto out;
	}
	seen[un->attr] = 1;
	if (un->attr == URI_ID) {
		uri->id = val;
		uri->idlen = vlen;
		uri->has_id = 1;
		val = NULL;
		r = 0;
		goto out;
	}
	if (strlen((char *)val) != vlen) {
		ts_errbuf(errbuf, errlen, "attribute '%s' contains a NUL byte",
		    un->name);
		goto out;
	}
	if (un->attr >= P11_URI_NATTR) {
		r = set_special(uri, un->attr, val, vlen, errbuf, errlen);
		goto out;
	}
	if (un->attr == P11_URI_MODULE_PATH && val[0] != '/') {
		ts_errbuf(
		    errbuf, errlen, "module-path must be an absolute path");
		goto out;
	}
	uri->attr[un->attr] = (char *)val;
	val = NULL;
	r = 0;
out:
	if (val != NULL)
		freezero(val, vlen + 1);
	return r;
}

/* Parses a ';'- or '&'-separated list of elements. */
static int
parse_list(struct p11_uri *uri, const char *s, int in_query,
    unsigned char *seen, char *errbuf, size_t errlen)
{
	const char *end;
	char sep = in_query ? '&' : ';';
	int r;

	if (*s == '\0')
		return 0;
	for (;;) {
		if ((end = strchr(s, sep)) == NULL)
			end = s + strlen(s);
		if ((r = parse_element(uri, s, (size_t)(end - s), in_query,
			 seen, errbuf, errlen)) != 0)
			return r;
		if (*end == '\0')
			return 0;
		s = end + 1;
	}
}

int
p11_uri_parse(
    const char *text, struct p11_uri **urip, char *errbuf, size_t errlen)
{
	struct p11_uri *uri = NULL;
	unsigned char seen[URI_NALL];
	char *copy = NULL, *q;
	size_t i, o, len;
	int r = TS_ERR_INTERNAL;

	*urip = NULL;
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';
	memset(seen, 0, sizeof(seen));
	if (text == NULL) {
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((len = strnlen(text, P11_URI_MAX_LEN + 1)) > P11_URI_MAX_LEN) {
		ts_errbuf(errbuf, errlen, "URI longer than %d bytes",
		    P11_URI_MAX_LEN);
		r = TS_ERR_P11_URI;
		goto out;
	}
	if ((copy = malloc(len + 1)) == NULL || (uri = p11_uri_new()) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	/* p11-kit drops whitespace so that URIs wrapped in files work */
	for (i = o = 0; i < len; i++)
		if (strchr(" \t\r\n\v", text[i]) == NULL)
			copy[o++] = text[i];
	copy[o] = '\0';
	if (strncasecmp(copy, "pkcs11:", 7) != 0) {
		ts_errbuf(errbuf, errlen,
		    "not a PKCS#11 URI (must start with "
		    "'pkcs11:')");
		r = TS_ERR_P11_URI;
		goto out;
	}
	if (strchr(copy, '#') != NULL) {
		ts_errbuf(
		    errbuf, errlen, "character '#' must be percent-encoded");
		r = TS_ERR_P11_URI;
		goto out;
	}
	if ((q = strchr(copy + 7, '?')) != NULL)
		*q++ = '\0';
	if ((r = parse_list(uri, copy + 7, 0, seen, errbuf, errlen)) != 0)
		goto out;
	if (q != NULL && (r = parse_list(uri, q, 1, seen, errbuf, errlen)) != 0)
		goto out;
	if (uri->attr[P11_URI_PIN_SOURCE] != NULL &&
	    uri->attr[P11_URI_PIN_VALUE] != NULL) {
		ts_errbuf(errbuf, errlen,
		    "pin-source and pin-value together are ambiguous");
		r = TS_ERR_P11_URI;
		goto out;
	}
	*urip = uri;
	uri = NULL;
	r = 0;
out:
	if (copy != NULL)
		freezero(copy, len + 1);
	p11_uri_free(uri);
	return r;
}

/* A growing output string for the formatter. */
struct sbuf {
	char *s;
	size_t len, cap;
	int oom;
};

static void
sb_putc(struct sbuf *sb, char c)
{
	char *n;
	size_t ncap;

	if (sb->oom)
		return;
	if (sb->len + 1 >= sb->cap) {
		ncap = sb->cap ? sb->cap * 2 : 128;
		if ((n = malloc(ncap)) == NULL) {
			sb->oom = 1;
			return;
		}
		/* never realloc: the text may hold a PIN, wipe the old copy */
		if (sb->s != NULL) {
			memcpy(n, sb->s, sb->len);
			freezero(sb->s, sb->cap);
		}
		sb->s = n;
		sb->cap = ncap;
	}
	sb->s[sb->len++] = c;
	sb->s[sb->len] = '\0';
}

static void
sb_puts(struct sbuf *sb, const char *s)
{
	for (; *s != '\0'; s++)
		sb_putc(sb, *s);
}

/*
 * Appends len bytes percent-encoded: bytes in allowed pass, everything
 * else (and every byte when allowed is NULL) becomes %HH.  '+' is never in
 * allowed: Go's url.ParseQuery (cosign) would read it as a space.
 */
static void
sb_encode(struct sbuf *sb, const uint8_t *v, size_t len, const char *allowed)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < len; i++) {
		if (allowed != NULL && v[i] != 0 && v[i] != '+' &&
		    (strchr(URI_UNRESERVED, v[i]) != NULL ||
			strchr(allowed, v[i]) != NULL)) {
			sb_putc(sb, (char)v[i]);
			continue;
		}
		sb_putc(sb, '%');
		sb_putc(sb, hex[v[i] >> 4]);
		sb_putc(sb, hex[v[i] & 0xf]);
	}
}

static void
sb_attr(struct sbuf *sb, int *first, char sep, const char *name,
    const char *value, int in_query)
{
	if (!*first)
		sb_putc(sb, sep);
	*first = 0;
	sb_puts(sb, name);
	sb_putc(sb, '=');
	sb_encode(sb, (const uint8_t *)value, strlen(value),
	    in_query ? URI_QUERY_EXTRA : URI_PATH_EXTRA);
}

static void
sb_qattr(struct sbuf *sb, int *qfirst, enum p11_uri_attr a,
    const struct p11_uri *uri)
{
	int first = 1;

	if (uri->attr[a] == NULL)
		return;
	sb_putc(sb, *qfirst ? '?' : '&');
	*qfirst = 0;
	sb_attr(sb, &first, '&', p11_uri_attr_name(a), uri->attr[a], 1);
}

int
p11_uri_format(const struct p11_uri *uri, int flags, char **outp)
{
	static const int path_order[] = { P11_URI_TOKEN, P11_URI_MANUFACTURER,
		P11_URI_SERIAL, P11_URI_MODEL, P11_URI_LIBRARY_MANUFACTURER,
		P11_URI_LIBRARY_DESCRIPTION, URI_LIBRARY_VERSION,
		P11_URI_SLOT_MANUFACTURER, P11_URI_SLOT_DESCRIPTION,
		URI_SLOT_ID, P11_URI_OBJECT, URI_ID, URI_TYPE };
	struct sbuf sb = { NULL, 0, 0, 0 };
	char num[48];
	size_t i;
	int a, first = 1, qfirst;

	*outp = NULL;
	sb_puts(&sb, "pkcs11:");
	for (i = 0; i < sizeof(path_order) / sizeof(path_order[0]); i++) {
		a = path_order[i];
		if (a < P11_URI_NATTR) {
			if (uri->attr[a] != NULL)
				sb_attr(&sb, &first, ';',
				    p11_uri_attr_name((enum p11_uri_attr)a),
				    uri->attr[a], 0);
		} else if (a == URI_LIBRARY_VERSION && uri->has_libver) {
			snprintf(num, sizeof(num), "%u.%u", uri->lib_major,
			    uri->lib_minor);
			sb_attr(&sb, &first, ';', "library-version", num, 0);
		} else if (a == URI_SLOT_ID && uri->has_slot) {
			snprintf(num, sizeof(num), "%llu",
			    (unsigned long long)uri->slot);
			sb_attr(&sb, &first, ';', "slot-id", num, 0);
		} else if (a == URI_ID && uri->has_id) {
			if (!first)
				sb_putc(&sb, ';');
			first = 0;
			sb_puts(&sb, "id=");
			sb_encode(&sb, uri->id, uri->idlen, NULL);
		} else if (a == URI_TYPE && uri->type != P11_URI_TYPE_ANY) {
			sb_attr(
			    &sb, &first, ';', "type", type_names[uri->type], 0);
		}
	}
	for (i = 0; i < uri->nvendor; i++)
		if (!uri->vendor[i].in_query)
			sb_attr(&sb, &first, ';', uri->vendor[i].name,
			    uri->vendor[i].value, 0);
	qfirst = 1;
	if (flags & P11_URI_FMT_MODULE) {
		sb_qattr(&sb, &qfirst, P11_URI_MODULE_NAME, uri);
		sb_qattr(&sb, &qfirst, P11_URI_MODULE_PATH, uri);
	}
	if (flags & P11_URI_FMT_PIN_SOURCE)
		sb_qattr(&sb, &qfirst, P11_URI_PIN_SOURCE, uri);
	if (flags & P11_URI_FMT_PIN_VALUE)
		sb_qattr(&sb, &qfirst, P11_URI_PIN_VALUE, uri);
	for (i = 0; i < uri->nvendor; i++) {
		if (!uri->vendor[i].in_query)
			continue;
		sb_putc(&sb, qfirst ? '?' : '&');
		qfirst = 0;
		first = 1;
		sb_attr(&sb, &first, '&', uri->vendor[i].name,
		    uri->vendor[i].value, 1);
	}
	if (sb.oom) {
		freezero(sb.s, sb.cap);
		return TS_ERR_ALLOC;
	}
	*outp = sb.s;
	return 0;
}

const char *
p11_uri_get(const struct p11_uri *uri, enum p11_uri_attr attr)
{
	if ((unsigned)attr >= P11_URI_NATTR)
		return NULL;
	return uri->attr[attr];
}

int
p11_uri_set(struct p11_uri *uri, enum p11_uri_attr attr, const char *value)
{
	char *v = NULL;

	if ((unsigned)attr >= P11_URI_NATTR)
		return TS_ERR_INVALID_ARG;
	if (value != NULL && (v = strdup(value)) == NULL)
		return TS_ERR_ALLOC;
	free_text(uri->attr[attr]);
	uri->attr[attr] = v;
	return 0;
}

const uint8_t *
p11_uri_get_id(const struct p11_uri *uri, size_t *lenp)
{
	*lenp = 0;
	if (!uri->has_id)
		return NULL;
	*lenp = uri->idlen;
	return uri->id != NULL ? uri->id : (const uint8_t *)"";
}

int
p11_uri_set_id(struct p11_uri *uri, const uint8_t *id, size_t len)
{
	uint8_t *n = NULL;

	if (id != NULL) {
		if ((n = malloc(len + 1)) == NULL)
			return TS_ERR_ALLOC;
		memcpy(n, id, len);
		n[len] = 0;
	}
	freezero(uri->id, uri->idlen);
	uri->id = n;
	uri->idlen = id != NULL ? len : 0;
	uri->has_id = id != NULL;
	return 0;
}

enum p11_uri_type
p11_uri_get_type(const struct p11_uri *uri)
{
	return uri->type;
}

void
p11_uri_set_type(struct p11_uri *uri, enum p11_uri_type type)
{
	if ((unsigned)type > P11_URI_TYPE_DATA)
		type = P11_URI_TYPE_ANY;
	uri->type = type;
}

int
p11_uri_get_slot_id(const struct p11_uri *uri, uint64_t *slotp)
{
	*slotp = uri->has_slot ? uri->slot : 0;
	return uri->has_slot;
}

void
p11_uri_set_slot_id(struct p11_uri *uri, uint64_t slot)
{
	uri->slot = slot;
	uri->has_slot = 1;
}

int
p11_uri_get_library_version(
    const struct p11_uri *uri, unsigned *majorp, unsigned *minorp)
{
	*majorp = uri->has_libver ? uri->lib_major : 0;
	*minorp = uri->has_libver ? uri->lib_minor : 0;
	return uri->has_libver;
}

size_t
p11_uri_vendor_count(const struct p11_uri *uri)
{
	return uri->nvendor;
}

int
p11_uri_vendor_get(const struct p11_uri *uri, size_t i, const char **namep,
    const char **valuep, int *in_queryp)
{
	*namep = *valuep = NULL;
	*in_queryp = 0;
	if (i >= uri->nvendor)
		return TS_ERR_NOT_FOUND;
	*namep = uri->vendor[i].name;
	*valuep = uri->vendor[i].value;
	*in_queryp = uri->vendor[i].in_query;
	return 0;
}

int
p11_uri_is_token_only(const struct p11_uri *uri)
{
	return uri->attr[P11_URI_OBJECT] == NULL && !uri->has_id &&
	    uri->type == P11_URI_TYPE_ANY;
}

/* Returns len without trailing blanks (CK_* fields are blank padded). */
static size_t
space_strlen(const char *s, size_t len)
{
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\0'))
		len--;
	return len;
}

int
p11_uri_match_text(const struct p11_uri *uri, enum p11_uri_attr attr,
    const char *value, size_t len)
{
	const char *want;
	size_t wlen;

	if ((want = p11_uri_get(uri, attr)) == NULL)
		return 1;
	wlen = space_strlen(want, strlen(want));
	len = space_strlen(value, len);
	return wlen == len && memcmp(want, value, len) == 0;
}
