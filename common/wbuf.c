/*
 * wbuf.c - the only place that memcpy's wire data (style.md section 8).
 *
 * Invariant: off <= size <= alloc <= max_size <= WBUF_SIZE_MAX, and a
 * read-only view (readonly != 0) never writes d.  wbuf_sanity() checks it
 * on every call and aborts on corruption rather than limp on.
 * Bounds are checked by subtraction (len > size - off) so the check itself
 * cannot overflow.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/wbuf.h"

struct wbuf {
	uint8_t *d;
	size_t off; /* first unread byte */
	size_t size; /* end of data */
	size_t alloc; /* bytes allocated at d */
	size_t max_size;
	int readonly; /* a view: d is borrowed */
};

static void
wbuf_sanity(const struct wbuf *b)
{
	if (b == NULL || b->off > b->size || b->size > b->alloc ||
	    b->max_size > WBUF_SIZE_MAX ||
	    (!b->readonly && b->alloc > b->max_size) ||
	    (b->d == NULL && b->alloc != 0))
		abort();
}

struct wbuf *
wbuf_new(size_t max_size)
{
	struct wbuf *b;

	if (max_size > WBUF_SIZE_MAX)
		return NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->max_size = max_size;
	return b;
}

struct wbuf *
wbuf_from(const void *data, size_t len)
{
	struct wbuf *b;

	if (len > WBUF_SIZE_MAX || (data == NULL && len != 0))
		return NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	/* The cast drops const; readonly guarantees it is never written. */
	b->d = (uint8_t *)(uintptr_t)data;
	b->size = b->alloc = b->max_size = len;
	b->readonly = 1;
	return b;
}

void
wbuf_free(struct wbuf *b)
{
	if (b == NULL)
		return;
	wbuf_sanity(b);
	if (!b->readonly && b->d != NULL) {
		OPENSSL_cleanse(b->d, b->alloc);
		free(b->d);
	}
	OPENSSL_cleanse(b, sizeof(*b));
	free(b);
}

void
wbuf_reset(struct wbuf *b)
{
	wbuf_sanity(b);
	if (!b->readonly && b->d != NULL)
		OPENSSL_cleanse(b->d, b->alloc);
	if (b->readonly)
		b->off = b->size;
	else
		b->off = b->size = 0;
}

size_t
wbuf_len(const struct wbuf *b)
{
	wbuf_sanity(b);
	return b->size - b->off;
}

size_t
wbuf_max_size(const struct wbuf *b)
{
	wbuf_sanity(b);
	return b->max_size;
}

int
wbuf_set_max_size(struct wbuf *b, size_t max_size)
{
	wbuf_sanity(b);
	if (b->readonly)
		return TS_ERR_INVALID_ARG;
	if (max_size > WBUF_SIZE_MAX || max_size < b->alloc)
		return TS_ERR_WIRE_BUF_FULL;
	b->max_size = max_size;
	return 0;
}

const uint8_t *
wbuf_ptr(const struct wbuf *b)
{
	wbuf_sanity(b);
	return b->d == NULL ? (const uint8_t *)"" : b->d + b->off;
}

uint8_t *
wbuf_mutable_ptr(struct wbuf *b)
{
	wbuf_sanity(b);
	if (b->readonly || b->d == NULL)
		return NULL;
	return b->d + b->off;
}

int
wbuf_consume(struct wbuf *b, size_t len)
{
	wbuf_sanity(b);
	if (len > b->size - b->off)
		return TS_ERR_WIRE_TRUNCATED;
	b->off += len;
	/* Reclaim the space once everything was read. */
	if (b->off == b->size && !b->readonly)
		b->off = b->size = 0;
	return 0;
}

int
wbuf_consume_end(struct wbuf *b, size_t len)
{
	wbuf_sanity(b);
	if (len > b->size - b->off)
		return TS_ERR_WIRE_TRUNCATED;
	b->size -= len;
	return 0;
}

/*
 * Makes room for len more bytes.  Compacts consumed space first, then grows
 * geometrically; the old allocation is wiped before it is released so no
 * copy of secret data is left behind by realloc.
 */
static int
wbuf_grow(struct wbuf *b, size_t len)
{
	size_t need, nalloc;
	uint8_t *nd;

	if (b->readonly)
		return TS_ERR_INVALID_ARG;
	if (b->off > 0) {
		memmove(b->d, b->d + b->off, b->size - b->off);
		OPENSSL_cleanse(b->d + (b->size - b->off), b->off);
		b->size -= b->off;
		b->off = 0;
	}
	if (len > b->max_size || b->size > b->max_size - len)
		return TS_ERR_WIRE_BUF_FULL;
	need = b->size + len;
	if (need <= b->alloc)
		return 0;
	nalloc = b->alloc < WBUF_SIZE_INIT ? WBUF_SIZE_INIT : b->alloc;
	while (nalloc < need)
		nalloc = nalloc > b->max_size / 2 ? b->max_size : nalloc * 2;
	if (nalloc > b->max_size)
		nalloc = b->max_size;
	if ((nd = malloc(nalloc)) == NULL)
		return TS_ERR_ALLOC;
	if (b->d != NULL) {
		memcpy(nd, b->d, b->size);
		OPENSSL_cleanse(b->d, b->alloc);
		free(b->d);
	}
	b->d = nd;
	b->alloc = nalloc;
	return 0;
}

int
wbuf_reserve(struct wbuf *b, size_t len, uint8_t **dp)
{
	int r;

	*dp = NULL;
	wbuf_sanity(b);
	if ((r = wbuf_grow(b, len)) != 0)
		return r;
	*dp = b->d + b->size;
	b->size += len;
	return 0;
}

int
wbuf_put(struct wbuf *b, const void *data, size_t len)
{
	uint8_t *p;
	int r;

	if (len == 0)
		return 0;
	if ((r = wbuf_reserve(b, len, &p)) != 0)
		return r;
	memcpy(p, data, len);
	return 0;
}

int
wbuf_put_u8(struct wbuf *b, uint8_t v)
{
	return wbuf_put(b, &v, 1);
}

int
wbuf_put_u32(struct wbuf *b, uint32_t v)
{
	uint8_t d[4];

	d[0] = (uint8_t)(v >> 24);
	d[1] = (uint8_t)(v >> 16);
	d[2] = (uint8_t)(v >> 8);
	d[3] = (uint8_t)v;
	return wbuf_put(b, d, sizeof(d));
}

int
wbuf_put_u64(struct wbuf *b, uint64_t v)
{
	uint8_t d[8];
	int i;

	for (i = 0; i < 8; i++)
		d[i] = (uint8_t)(v >> (56 - 8 * i));
	return wbuf_put(b, d, sizeof(d));
}

int
wbuf_put_string(struct wbuf *b, const void *data, size_t len)
{
	uint8_t *p;
	int r;

	if (len > UINT32_MAX)
		return TS_ERR_WIRE_TOO_LONG;
	if (len > SIZE_MAX - 4)
		return TS_ERR_WIRE_TOO_LONG;
	/* Reserve both parts at once so a failure writes nothing. */
	if ((r = wbuf_reserve(b, 4 + len, &p)) != 0)
		return r;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	if (len != 0)
		memcpy(p + 4, data, len);
	return 0;
}

int
wbuf_put_cstring(struct wbuf *b, const char *s)
{
	return wbuf_put_string(b, s, s == NULL ? 0 : strlen(s));
}

int
wbuf_put_stringb(struct wbuf *b, const struct wbuf *v)
{
	return wbuf_put_string(b, wbuf_ptr(v), wbuf_len(v));
}

int
wbuf_poke_u32(struct wbuf *b, size_t offset, uint32_t v)
{
	uint8_t *p;

	wbuf_sanity(b);
	if (b->readonly)
		return TS_ERR_INVALID_ARG;
	if (offset > b->size - b->off || 4 > b->size - b->off - offset)
		return TS_ERR_WIRE_TRUNCATED;
	p = b->d + b->off + offset;
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 0;
}

int
wbuf_get(struct wbuf *b, void *out, size_t len)
{
	wbuf_sanity(b);
	if (len > b->size - b->off)
		return TS_ERR_WIRE_TRUNCATED;
	if (len != 0)
		memcpy(out, b->d + b->off, len);
	return wbuf_consume(b, len);
}

int
wbuf_peek_u32(const struct wbuf *b, size_t offset, uint32_t *v)
{
	const uint8_t *p;

	*v = 0;
	wbuf_sanity(b);
	if (offset > b->size - b->off || 4 > b->size - b->off - offset)
		return TS_ERR_WIRE_TRUNCATED;
	p = b->d + b->off + offset;
	*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	    (uint32_t)p[3];
	return 0;
}

int
wbuf_get_u8(struct wbuf *b, uint8_t *v)
{
	*v = 0;
	return wbuf_get(b, v, 1);
}

int
wbuf_get_u32(struct wbuf *b, uint32_t *v)
{
	int r;

	if ((r = wbuf_peek_u32(b, 0, v)) != 0)
		return r;
	return wbuf_consume(b, 4);
}

int
wbuf_get_u64(struct wbuf *b, uint64_t *v)
{
	uint8_t d[8];
	int i, r;

	*v = 0;
	if ((r = wbuf_get(b, d, sizeof(d))) != 0)
		return r;
	for (i = 0; i < 8; i++)
		*v = (*v << 8) | d[i];
	return 0;
}

int
wbuf_get_string_direct(struct wbuf *b, const uint8_t **out, size_t *lenp)
{
	uint32_t len;
	int r;

	*out = NULL;
	if (lenp != NULL)
		*lenp = 0;
	if ((r = wbuf_peek_u32(b, 0, &len)) != 0)
		return r;
	if (len > b->size - b->off - 4)
		return TS_ERR_WIRE_TRUNCATED;
	*out = b->d + b->off + 4;
	if (lenp != NULL)
		*lenp = len;
	return wbuf_consume(b, 4 + (size_t)len);
}

int
wbuf_get_string(struct wbuf *b, uint8_t **out, size_t *lenp)
{
	const uint8_t *p;
	uint32_t len;
	uint8_t *copy;
	int r;

	*out = NULL;
	if (lenp != NULL)
		*lenp = 0;
	/* Validate before allocating, then consume: all or nothing. */
	if ((r = wbuf_peek_u32(b, 0, &len)) != 0)
		return r;
	if (len > b->size - b->off - 4)
		return TS_ERR_WIRE_TRUNCATED;
	if ((copy = malloc((size_t)len + 1)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = wbuf_get_string_direct(b, &p, NULL)) != 0) {
		free(copy);
		return r;
	}
	if (len != 0)
		memcpy(copy, p, len);
	copy[len] = '\0';
	*out = copy;
	if (lenp != NULL)
		*lenp = len;
	return 0;
}

int
wbuf_get_cstring(struct wbuf *b, char **out, size_t *lenp)
{
	const uint8_t *p;
	uint32_t len;
	char *copy;
	int r;

	*out = NULL;
	if (lenp != NULL)
		*lenp = 0;
	if ((r = wbuf_peek_u32(b, 0, &len)) != 0)
		return r;
	if (len > b->size - b->off - 4)
		return TS_ERR_WIRE_TRUNCATED;
	p = b->d + b->off + 4;
	if (len != 0 && memchr(p, '\0', len) != NULL)
		return TS_ERR_WIRE_BAD_STRING;
	if ((copy = malloc((size_t)len + 1)) == NULL)
		return TS_ERR_ALLOC;
	if (len != 0)
		memcpy(copy, p, len);
	copy[len] = '\0';
	if ((r = wbuf_consume(b, 4 + (size_t)len)) != 0) {
		free(copy);
		return r;
	}
	*out = copy;
	if (lenp != NULL)
		*lenp = len;
	return 0;
}

int
wbuf_get_stringb(struct wbuf *b, struct wbuf **child)
{
	const uint8_t *p;
	uint32_t len;
	struct wbuf *c;
	int r;

	*child = NULL;
	if ((r = wbuf_peek_u32(b, 0, &len)) != 0)
		return r;
	if (len > b->size - b->off - 4)
		return TS_ERR_WIRE_TRUNCATED;
	p = b->d + b->off + 4;
	if ((c = wbuf_from(p, len)) == NULL)
		return TS_ERR_ALLOC;
	if ((r = wbuf_consume(b, 4 + (size_t)len)) != 0) {
		wbuf_free(c);
		return r;
	}
	*child = c;
	return 0;
}
