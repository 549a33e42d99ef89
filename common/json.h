/*
 * json.h - the one way tokensign reads and writes JSON.
 *
 * Reading: every untrusted JSON document goes through tsjson_parse(), which
 * wraps jansson with a size cap (named below), rejects duplicate keys
 * (JSON_REJECT_DUPLICATES), data after the top-level value, NUL inside
 * strings and invalid UTF-8.  The result is a jansson json_t tree; callers
 * may read it with jansson's getters (json_object_get, json_string_value
 * ...) but should prefer the typed strict helpers here, which say what is
 * wrong.  Only this module calls json_loadb().
 *
 * Writing: byte-exact output as Go's encoding/json writes it (cosign, ggcr),
 * appended to a struct wbuf.  See tsjson_put_string_go() for the escaping.
 *
 * Error reasons: functions taking (char *why, size_t why_len) write a
 * NUL-terminated, human-readable reason there on failure (may be NULL/0).
 * Untrusted text inside a reason is truncated.
 */
#ifndef TS_COMMON_JSON_H
#define TS_COMMON_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct wbuf;

/* Size caps (style.md 4: every growing text buffer has a named cap). */
#define TSJSON_MAX_DOC	  (4 * 1024 * 1024) /* any JSON document */
#define TSJSON_MAX_SMALL  (64 * 1024) /* tokens, errors, helper output */
#define TSJSON_MAX_STRING (1024 * 1024) /* one string value written */
#define TSJSON_WHY_MAX	  256 /* a reason buffer that is always enough */

/* Flags for tsjson_parse. */
#define TSJSON_ANY	       0x0 /* any top-level value */
#define TSJSON_OBJECT	       0x1 /* top level must be an object */
#define TSJSON_NUMBERS_AS_REAL 0x2 /* all numbers as doubles, like Go's any */

/*
 * Parses data[0..len) strictly (see top).  len over max_len (capped at
 * TSJSON_MAX_DOC) is TS_ERR_TOO_LARGE before anything is read.  Returns 0
 * and a new reference in *out (caller json_decref()s it), TS_ERR_PARSE, or
 * TS_ERR_TOO_LARGE.
 */
int tsjson_parse(const void *data, size_t len, size_t max_len, int flags,
    json_t **out, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/*
 * Checks that object o has exactly the keys in keys[0..n) (case-sensitive):
 * none missing, none extra.  what names o in the reason ("critical").
 * Returns 0 or TS_ERR_PARSE.
 */
int tsjson_exact_keys(const json_t *o, const char *const *keys, size_t n,
    const char *what, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/*
 * Typed member getters.  Return 0 and a borrowed value (valid while o
 * lives), TS_ERR_NOT_FOUND when key is absent, TS_ERR_PARSE when it has
 * another type.  what names o in the reason.
 */
int tsjson_get_object(const json_t *o, const char *key, const char *what,
    json_t **out, char *why, size_t why_len)
    __attribute__((warn_unused_result));
int tsjson_get_array(const json_t *o, const char *key, const char *what,
    json_t **out, char *why, size_t why_len)
    __attribute__((warn_unused_result));
/* *len gets the byte length (jansson strings hold no NUL). */
int tsjson_get_string(const json_t *o, const char *key, const char *what,
    const char **out, size_t *len, char *why, size_t why_len)
    __attribute__((warn_unused_result));
/*
 * Integral number: a JSON integer, or a real with no fractional part that
 * fits int64 (Go's float64 decoding accepts "1e3" and "1.0").
 */
int tsjson_get_int(const json_t *o, const char *key, const char *what,
    int64_t *out, char *why, size_t why_len)
    __attribute__((warn_unused_result));
/* As tsjson_get_int, for a value v itself. */
int tsjson_value_int(const json_t *v, int64_t *out)
    __attribute__((warn_unused_result));

/*
 * Appends s[0..len) as a quoted JSON string, escaped as Go's json.Marshal
 * does (formats.md 1.2):
 *   '"' and '\' -> \" \\;  \n \r \t -> \n \r \t;
 *   U+0008 and U+000C -> \b and \f (Go >= 1.22; older Go wrote \u0008,
 *   \u000c: we follow current Go, the toolchain of cosign v2/v3);
 *   other bytes < 0x20 -> \u00xx (lowercase hex);
 *   '<' '>' '&' -> \u003c \u003e \u0026 (HTML-safe escaping);
 *   U+2028, U+2029 -> \u2028 \u2029;
 *   each invalid UTF-8 byte -> \ufffd;
 *   '/', DEL and all other valid UTF-8 copied unchanged.
 * Returns 0, TS_ERR_TOO_LARGE (len over TSJSON_MAX_STRING) or the wbuf's
 * error when b is full.
 */
int tsjson_put_string_go(struct wbuf *b, const char *s, size_t len)
    __attribute__((warn_unused_result));
/* Appends the bytes of a NUL-terminated literal (no escaping). */
int tsjson_put_raw(struct wbuf *b, const char *lit)
    __attribute__((warn_unused_result));
/*
 * Appends v as Go would marshal the same value decoded into "any": objects
 * with keys sorted bytewise, no whitespace, strings escaped as above,
 * integers in decimal, reals in shortest round-trip form.
 */
int tsjson_put_value_go(struct wbuf *b, const json_t *v)
    __attribute__((warn_unused_result));

#endif /* TS_COMMON_JSON_H */
