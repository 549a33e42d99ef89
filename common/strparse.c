/*
 * strparse.c - bounded slice tokenizer.  Every function checks lengths by
 * subtraction against the bytes left, and moves the cursor only on success.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/strparse.h"

void
strparse_init(struct strparse *sp, const char *s, size_t len)
{
	sp->p = s;
	sp->left = s == NULL ? 0 : len;
}

size_t
strparse_left(const struct strparse *sp)
{
	return sp->left;
}

int
strparse_peek(const struct strparse *sp)
{
	return sp->left == 0 ? -1 : (unsigned char)sp->p[0];
}

static void
advance(struct strparse *sp, size_t n)
{
	sp->p += n;
	sp->left -= n;
}

int
strparse_single(struct strparse *sp, char c)
{
	if (sp->left == 0 || sp->p[0] != c)
		return TS_ERR_PARSE;
	advance(sp, 1);
	return 0;
}

void
strparse_blanks(struct strparse *sp)
{
	while (sp->left > 0 && (sp->p[0] == ' ' || sp->p[0] == '\t'))
		advance(sp, 1);
}

int
strparse_until(
    struct strparse *sp, const char *stop, size_t max, struct strslice *out)
{
	size_t n = 0;

	out->ptr = NULL;
	out->len = 0;
	while (n < sp->left && sp->p[n] != '\0' &&
	    strchr(stop, sp->p[n]) == NULL) {
		if (n == max)
			return TS_ERR_TOO_LARGE;
		n++;
	}
	if (n == 0)
		return TS_ERR_PARSE;
	out->ptr = sp->p;
	out->len = n;
	advance(sp, n);
	return 0;
}

int
strparse_span(
    struct strparse *sp, int (*ok)(int), size_t max, struct strslice *out)
{
	size_t n = 0;

	out->ptr = NULL;
	out->len = 0;
	while (n < sp->left && ok((unsigned char)sp->p[n])) {
		if (n == max)
			return TS_ERR_TOO_LARGE;
		n++;
	}
	if (n == 0)
		return TS_ERR_PARSE;
	out->ptr = sp->p;
	out->len = n;
	advance(sp, n);
	return 0;
}

int
strparse_quoted(
    struct strparse *sp, size_t max, struct strslice *out, int *escaped)
{
	size_t n = 1, len = 0;
	unsigned char c;

	out->ptr = NULL;
	out->len = 0;
	*escaped = 0;
	if (sp->left == 0 || sp->p[0] != '"')
		return TS_ERR_PARSE;
	for (;;) {
		if (n >= sp->left)
			return TS_ERR_PARSE; /* unterminated */
		c = (unsigned char)sp->p[n];
		if (c == '"')
			break;
		if (c == '\\') {
			*escaped = 1;
			if (sp->left - n < 2)
				return TS_ERR_PARSE;
			n++;
			c = (unsigned char)sp->p[n];
			len++;
		}
		/* qdtext: HTAB, SP, VCHAR, obs-text; no other controls */
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return TS_ERR_PARSE;
		n++;
		len++;
		if (len > max)
			return TS_ERR_TOO_LARGE;
	}
	out->ptr = sp->p + 1;
	out->len = n - 1;
	advance(sp, n + 1);
	return 0;
}

int
strparse_number(struct strparse *sp, uint64_t max_value, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = 0;
	unsigned d;

	*out = 0;
	while (n < sp->left && sp->p[n] >= '0' && sp->p[n] <= '9') {
		if (n == 19)
			return TS_ERR_TOO_LARGE;
		d = (unsigned)(sp->p[n] - '0');
		v = v * 10 + d; /* 19 digits cannot overflow uint64 */
		n++;
	}
	if (n == 0)
		return TS_ERR_PARSE;
	if (v > max_value)
		return TS_ERR_TOO_LARGE;
	*out = v;
	advance(sp, n);
	return 0;
}

int
strparse_is_tchar(int c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int
strparse_is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

int
strparse_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

int
strslice_eq(const struct strslice *s, const char *lit)
{
	size_t l = strlen(lit);

	return s->len == l && (l == 0 || memcmp(s->ptr, lit, l) == 0);
}

int
strslice_caseeq(const struct strslice *s, const char *lit)
{
	size_t l = strlen(lit);

	return s->len == l && (l == 0 || strncasecmp(s->ptr, lit, l) == 0);
}

char *
strslice_dup(const struct strslice *s, int unescape)
{
	char *r;
	size_t i, j = 0;

	if (s->len > 0 && memchr(s->ptr, '\0', s->len) != NULL)
		return NULL;
	if ((r = malloc(s->len + 1)) == NULL)
		return NULL;
	for (i = 0; i < s->len; i++) {
		if (unescape && s->ptr[i] == '\\' && i + 1 < s->len)
			i++;
		r[j++] = s->ptr[i];
	}
	r[j] = '\0';
	return r;
}
