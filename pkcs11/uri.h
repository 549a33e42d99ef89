/*
 * uri.h - RFC 7512 PKCS#11 URIs (formats.md section 8).
 *
 * A parsed URI is an opaque struct p11_uri holding the path attributes
 * (token, object, id, ...), the query attributes (pin-source, pin-value,
 * module-path, module-name) and any vendor attributes, all percent-decoded.
 * A missing attribute is a wildcard when matching.  Text attributes never
 * contain a NUL byte; `id` is raw bytes.
 */
#ifndef TS_PKCS11_URI_H
#define TS_PKCS11_URI_H

#include <stddef.h>
#include <stdint.h>

#define P11_URI_MAX_LEN	    8192 /* longest URI text we parse */
#define P11_URI_MAX_VENDOR  16 /* vendor attributes kept per URI */
#define P11_URI_ERRBUF_SIZE 160 /* enough for any parse error message */

struct p11_uri;

/* Text attributes, path then query. */
enum p11_uri_attr {
	P11_URI_TOKEN = 0,
	P11_URI_MANUFACTURER,
	P11_URI_SERIAL,
	P11_URI_MODEL,
	P11_URI_LIBRARY_MANUFACTURER,
	P11_URI_LIBRARY_DESCRIPTION,
	P11_URI_SLOT_MANUFACTURER,
	P11_URI_SLOT_DESCRIPTION,
	P11_URI_OBJECT,
	/* query attributes */
	P11_URI_PIN_SOURCE,
	P11_URI_PIN_VALUE,
	P11_URI_MODULE_NAME,
	P11_URI_MODULE_PATH,
	P11_URI_NATTR
};

/* The `type` attribute (CKA_CLASS). */
enum p11_uri_type {
	P11_URI_TYPE_ANY = 0, /* absent */
	P11_URI_TYPE_PUBLIC,
	P11_URI_TYPE_PRIVATE,
	P11_URI_TYPE_CERT,
	P11_URI_TYPE_SECRET_KEY,
	P11_URI_TYPE_DATA
};

/* Formatter flags. */
#define P11_URI_FMT_MODULE     0x01 /* include module-path / module-name */
#define P11_URI_FMT_PIN_SOURCE 0x02 /* include pin-source */
/*
 * WARNING: puts the PIN itself into the text; only for a caller that
 * writes it to a private place (never argv, never logs).
 */
#define P11_URI_FMT_PIN_VALUE 0x04

/* Returns a new empty URI ("pkcs11:", matches everything), or NULL on OOM. */
struct p11_uri *p11_uri_new(void);
/* Frees a URI, wiping pin-value; NULL is fine. */
void p11_uri_free(struct p11_uri *uri);

/*
 * Parses text into *urip (caller frees with p11_uri_free).  Returns 0,
 * TS_ERR_P11_URI (errbuf, if not NULL, gets a message naming the problem:
 * duplicate attribute, unknown type, bad escape, pin-source with
 * pin-value, ...) or TS_ERR_ALLOC.  Whitespace (" \t\r\n\v") anywhere in
 * text is ignored, as p11-kit does, so wrapped URIs work.
 */
int p11_uri_parse(const char *text, struct p11_uri **urip, char *errbuf,
    size_t errlen) __attribute__((warn_unused_result));

/*
 * Formats the canonical text into *outp (malloc'd, caller frees; use
 * freezero() when P11_URI_FMT_PIN_VALUE was given).  Path attributes come
 * in a fixed order, `id` is percent-encoded byte by byte and so is `+`.
 * Returns 0 or TS_ERR_ALLOC.
 */
int p11_uri_format(const struct p11_uri *uri, int flags, char **outp)
    __attribute__((warn_unused_result));

/* Returns the decoded text attribute (borrowed), or NULL when absent. */
const char *p11_uri_get(const struct p11_uri *uri, enum p11_uri_attr attr);
/*
 * Sets (value != NULL) or clears (NULL) a text attribute, copying value.
 * Returns 0, TS_ERR_INVALID_ARG or TS_ERR_ALLOC.
 */
int p11_uri_set(struct p11_uri *uri, enum p11_uri_attr attr, const char *value)
    __attribute__((warn_unused_result));

/* Returns the decoded `id` bytes (borrowed) and *lenp, or NULL if absent. */
const uint8_t *p11_uri_get_id(const struct p11_uri *uri, size_t *lenp);
/* Sets (id != NULL) or clears the `id`; returns 0 or TS_ERR_ALLOC. */
int p11_uri_set_id(struct p11_uri *uri, const uint8_t *id, size_t len)
    __attribute__((warn_unused_result));

/* Returns the `type`, P11_URI_TYPE_ANY when absent. */
enum p11_uri_type p11_uri_get_type(const struct p11_uri *uri);
/* Sets the `type` (P11_URI_TYPE_ANY clears it). */
void p11_uri_set_type(struct p11_uri *uri, enum p11_uri_type type);

/* Returns 1 and *slotp when `slot-id` is present, else 0. */
int p11_uri_get_slot_id(const struct p11_uri *uri, uint64_t *slotp);
/* Sets the `slot-id`. */
void p11_uri_set_slot_id(struct p11_uri *uri, uint64_t slot);

/*
 * Returns 1 and the version when `library-version` is present, else 0.
 * "M" gives minor 0.
 */
int p11_uri_get_library_version(
    const struct p11_uri *uri, unsigned *majorp, unsigned *minorp);

/* Returns the number of vendor attributes (path and query). */
size_t p11_uri_vendor_count(const struct p11_uri *uri);
/*
 * Returns 0 and borrowed name/value of vendor attribute i (in_query 1 when
 * it came from the query), or TS_ERR_NOT_FOUND.
 */
int p11_uri_vendor_get(const struct p11_uri *uri, size_t i, const char **namep,
    const char **valuep, int *in_queryp);

/*
 * Returns 1 when the URI names nothing beyond what matching a token needs
 * (no object/id/type), else 0.
 */
int p11_uri_is_token_only(const struct p11_uri *uri);

/*
 * Returns 1 when text attribute attr is absent in uri or equals value
 * (value given as the token wrote it: fixed-width, blank padded, len
 * bytes; trailing blanks are ignored), else 0.
 */
int p11_uri_match_text(const struct p11_uri *uri, enum p11_uri_attr attr,
    const char *value, size_t len);

/* Returns the attribute name ("token", "pin-source", ...) or NULL. */
const char *p11_uri_attr_name(enum p11_uri_attr attr);

#endif /* TS_PKCS11_URI_H */
