/*
 * strparse.h - a bounded slice tokenizer for text protocols (style.md 4;
 * the idea of curl's lib/curlx/strparse.h, written for our needs).
 *
 * A struct strparse is a cursor over len bytes that need not be
 * NUL-terminated (an HTTP header value, a reference, a config line).
 * Every call that takes a token also takes a max: a token longer than max
 * is TS_ERR_TOO_LARGE, an empty one (where a token is required) is
 * TS_ERR_PARSE.  A failed call consumes nothing.  Slices borrow the input;
 * they are valid while the input is.
 */
#ifndef TS_COMMON_STRPARSE_H
#define TS_COMMON_STRPARSE_H

#include <stddef.h>
#include <stdint.h>

struct strslice {
	const char *ptr; /* borrowed; not NUL-terminated */
	size_t len;
};

struct strparse {
	const char *p; /* next unread byte */
	size_t left; /* unread bytes */
};

/* Starts a cursor over s[0..len). */
void strparse_init(struct strparse *sp, const char *s, size_t len);
/* Returns the number of unread bytes. */
size_t strparse_left(const struct strparse *sp);
/* Returns the next byte, or -1 at the end; consumes nothing. */
int strparse_peek(const struct strparse *sp);

/* Consumes byte c if it is next: returns 0, else TS_ERR_PARSE. */
int strparse_single(struct strparse *sp, char c)
    __attribute__((warn_unused_result));
/* Skips spaces and tabs (RFC 7230 OWS); never fails. */
void strparse_blanks(struct strparse *sp);

/*
 * Takes the bytes up to (not including) the first byte found in stop, or
 * up to the end.  The token must be 1..max bytes.
 */
int strparse_until(struct strparse *sp, const char *stop, size_t max,
    struct strslice *out) __attribute__((warn_unused_result));
/* Takes the longest run (1..max bytes) of bytes for which ok(byte) holds. */
int strparse_span(struct strparse *sp, int (*ok)(int), size_t max,
    struct strslice *out) __attribute__((warn_unused_result));
/*
 * Takes an RFC 7230 quoted-string: '"', then qdtext or '\' quoted-pair,
 * then '"'.  out is the raw inside (escapes still in it, 0..max bytes);
 * *escaped is set to 1 when a backslash occurred.  An unterminated string
 * or a control byte inside is TS_ERR_PARSE.
 */
int strparse_quoted(struct strparse *sp, size_t max, struct strslice *out,
    int *escaped) __attribute__((warn_unused_result));
/*
 * Takes a decimal number of 1..19 digits not above max_value.  Leading
 * zeros are allowed.  Returns 0, TS_ERR_PARSE or TS_ERR_TOO_LARGE.
 */
int strparse_number(struct strparse *sp, uint64_t max_value, uint64_t *out)
    __attribute__((warn_unused_result));

/* Character classes for strparse_span. */
int strparse_is_tchar(int c); /* RFC 7230 token character */
int strparse_is_alnum(int c);
int strparse_is_digit(int c);

/* Returns 1 when s equals the NUL-terminated lit exactly / ignoring case. */
int strslice_eq(const struct strslice *s, const char *lit);
int strslice_caseeq(const struct strslice *s, const char *lit);
/*
 * Returns a malloc'd NUL-terminated copy of s, with backslash escapes
 * removed when unescape is set; NULL on OOM or when s holds a NUL byte.
 */
char *strslice_dup(const struct strslice *s, int unescape);

#endif /* TS_COMMON_STRPARSE_H */
