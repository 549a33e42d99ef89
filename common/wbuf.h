/*
 * wbuf.h - bounds-checked wire buffer (style.md section 4).
 *
 * A wbuf holds bytes [off, size) waiting to be read and grows on put up to
 * its max_size.  Every read either succeeds completely or consumes nothing.
 * Integers are big-endian; strings are a u32 length then the bytes.
 * Buffers wipe their memory when freed or reset.
 */
#ifndef TS_COMMON_WBUF_H
#define TS_COMMON_WBUF_H

#include <stddef.h>
#include <stdint.h>

#define WBUF_SIZE_MAX  (16 * 1024 * 1024) /* hard ceiling of any wbuf */
#define WBUF_SIZE_INIT 256

struct wbuf;

/* Returns a new empty buffer that may grow to max_size, or NULL on OOM. */
struct wbuf *wbuf_new(size_t max_size);
/*
 * Returns a read-only view of len bytes at data (no copy), or NULL.
 * WARNING: data must outlive the view and must not change under it.
 */
struct wbuf *wbuf_from(const void *data, size_t len);
/* Wipes and frees; NULL is fine. */
void wbuf_free(struct wbuf *b);
/* Wipes the contents and empties the buffer (keeps max_size). */
void wbuf_reset(struct wbuf *b);

/* Returns the number of unread bytes. */
size_t wbuf_len(const struct wbuf *b);
/* Returns the maximum size. */
size_t wbuf_max_size(const struct wbuf *b);
/* Changes the maximum size; fails if the contents already exceed it. */
int wbuf_set_max_size(struct wbuf *b, size_t max_size)
    __attribute__((warn_unused_result));
/* Returns a borrowed pointer to the unread bytes (valid until next put). */
const uint8_t *wbuf_ptr(const struct wbuf *b);
/* Returns a borrowed writable pointer, or NULL for a read-only view. */
uint8_t *wbuf_mutable_ptr(struct wbuf *b);

/* Discards len unread bytes from the front / back. */
int wbuf_consume(struct wbuf *b, size_t len)
    __attribute__((warn_unused_result));
int wbuf_consume_end(struct wbuf *b, size_t len)
    __attribute__((warn_unused_result));

/* Reads: 0 on success; on failure nothing is consumed. */
int wbuf_get(struct wbuf *b, void *out, size_t len)
    __attribute__((warn_unused_result));
int wbuf_get_u8(struct wbuf *b, uint8_t *v) __attribute__((warn_unused_result));
int wbuf_get_u32(struct wbuf *b, uint32_t *v)
    __attribute__((warn_unused_result));
int wbuf_get_u64(struct wbuf *b, uint64_t *v)
    __attribute__((warn_unused_result));
/* Reads a string; *out is a malloc'd copy (NUL-terminated for safety). */
int wbuf_get_string(struct wbuf *b, uint8_t **out, size_t *lenp)
    __attribute__((warn_unused_result));
/* Reads a string; *out borrows into b (valid while b is unchanged). */
int wbuf_get_string_direct(struct wbuf *b, const uint8_t **out, size_t *lenp)
    __attribute__((warn_unused_result));
/* Reads a string that must hold no NUL byte; *out is a malloc'd C string. */
int wbuf_get_cstring(struct wbuf *b, char **out, size_t *lenp)
    __attribute__((warn_unused_result));
/* Reads a string into a new read-only child view of b (no copy). */
int wbuf_get_stringb(struct wbuf *b, struct wbuf **child)
    __attribute__((warn_unused_result));
/* Peeks a u32 at offset bytes into the unread data; consumes nothing. */
int wbuf_peek_u32(const struct wbuf *b, size_t offset, uint32_t *v)
    __attribute__((warn_unused_result));

/* Writes: 0 on success, TS_ERR_WIRE_BUF_FULL past max_size. */
int wbuf_put(struct wbuf *b, const void *data, size_t len)
    __attribute__((warn_unused_result));
int wbuf_put_u8(struct wbuf *b, uint8_t v) __attribute__((warn_unused_result));
int wbuf_put_u32(struct wbuf *b, uint32_t v)
    __attribute__((warn_unused_result));
int wbuf_put_u64(struct wbuf *b, uint64_t v)
    __attribute__((warn_unused_result));
int wbuf_put_string(struct wbuf *b, const void *data, size_t len)
    __attribute__((warn_unused_result));
int wbuf_put_cstring(struct wbuf *b, const char *s)
    __attribute__((warn_unused_result));
/* Appends the unread bytes of v as a string. */
int wbuf_put_stringb(struct wbuf *b, const struct wbuf *v)
    __attribute__((warn_unused_result));
/* Overwrites 4 bytes at offset (from the unread start) with v. */
int wbuf_poke_u32(struct wbuf *b, size_t offset, uint32_t v)
    __attribute__((warn_unused_result));
/*
 * Reserves len bytes at the end and returns a pointer to them in *dp (for
 * read(2) into the buffer); the bytes count as written.
 */
int wbuf_reserve(struct wbuf *b, size_t len, uint8_t **dp)
    __attribute__((warn_unused_result));

#endif /* TS_COMMON_WBUF_H */
