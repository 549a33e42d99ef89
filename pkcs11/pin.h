/*
 * pin.h - PIN sources (style.md section 5).
 *
 * A struct p11_pin holds a PIN in locked, no-dump memory (secmem) and wipes
 * it when freed.  PINs come from a file, an environment variable named by
 * the caller, a prompt on /dev/tty without echo, or bytes the caller
 * already holds.  "No PIN" is a NULL struct p11_pin pointer: the token's
 * protected authentication path (PIN pad) is used, see token.h.
 * PINs never come from argv.
 */
#ifndef TS_PKCS11_PIN_H
#define TS_PKCS11_PIN_H

#include <stddef.h>

#define P11_PIN_MAX_LEN 256 /* longest PIN accepted from any source */

struct p11_pin;

/*
 * Reads a PIN from a file into *pinp (caller frees with p11_pin_free).
 * The file must be a regular file owned by the caller (or root) and not
 * readable or writable by group or others; one trailing "\n" or "\r\n" is
 * removed.  Returns 0, TS_ERR_P11_PIN_SOURCE (unreadable, bad mode, empty,
 * too long, embedded NUL; the reason is logged) or TS_ERR_ALLOC.
 */
int p11_pin_from_file(const char *path, struct p11_pin **pinp)
    __attribute__((warn_unused_result));

/*
 * Reads a PIN from environment variable var into *pinp (caller frees).
 * The variable is left in place; a caller that wants it gone unsets it.
 * Returns 0, TS_ERR_P11_PIN_SOURCE (unset or empty, too long) or
 * TS_ERR_ALLOC.
 */
int p11_pin_from_env(const char *var, struct p11_pin **pinp)
    __attribute__((warn_unused_result));

/*
 * Prompts on /dev/tty with echo off and reads one line into *pinp (caller
 * frees).  Returns 0, TS_ERR_P11_PIN_SOURCE (no terminal, empty line),
 * TS_ERR_INTERRUPTED or TS_ERR_ALLOC.
 */
int p11_pin_from_prompt(const char *prompt, struct p11_pin **pinp)
    __attribute__((warn_unused_result));

/*
 * Interprets an RFC 7512 pin-source value: "file:/path" or "/path" reads
 * the file as p11_pin_from_file().  A "|program" source is refused
 * (formats.md section 8).  Returns as p11_pin_from_file(), or
 * TS_ERR_UNSUPPORTED for program sources.
 */
int p11_pin_from_source(const char *pin_source, struct p11_pin **pinp)
    __attribute__((warn_unused_result));

/*
 * Copies len bytes into a new PIN in *pinp (caller frees).  Returns 0,
 * TS_ERR_P11_PIN_SOURCE (empty, too long, embedded NUL) or TS_ERR_ALLOC.
 */
int p11_pin_from_bytes(const void *data, size_t len, struct p11_pin **pinp)
    __attribute__((warn_unused_result));

/* Returns a new copy of pin in *pinp (caller frees); 0 or TS_ERR_ALLOC. */
int p11_pin_dup(const struct p11_pin *pin, struct p11_pin **pinp)
    __attribute__((warn_unused_result));

/* Wipes and frees; NULL is fine. */
void p11_pin_free(struct p11_pin *pin);

/*
 * Returns a borrowed pointer to the PIN bytes (NUL-terminated) and *lenp.
 * WARNING: secret; never log, copy into plain memory, or keep past
 * p11_pin_free().
 */
const char *p11_pin_data(const struct p11_pin *pin, size_t *lenp);

#endif /* TS_PKCS11_PIN_H */
