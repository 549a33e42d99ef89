/*
 * secmem.h - memory for secrets (PINs, passphrases) and process hardening
 * (style.md sections 5 and 6).
 *
 * Secret buffers are mlock'ed and excluded from core dumps
 * (MADV_DONTDUMP); they are wiped before release.
 */
#ifndef TS_COMMON_SECMEM_H
#define TS_COMMON_SECMEM_H

#include <stddef.h>

/*
 * Returns a zeroed, locked, no-dump buffer of len bytes (len <= 4096), or
 * NULL.  Release it with secmem_free().  If mlock fails (RLIMIT_MEMLOCK)
 * the buffer is still returned but a debug message is logged.
 */
void *secmem_alloc(size_t len);
/* Wipes and releases a secmem_alloc() buffer; NULL is fine. */
void secmem_free(void *p, size_t len);
/* Wipes len bytes then frees p (plain malloc'd memory); NULL is fine. */
void freezero(void *p, size_t len);
/*
 * Returns 0 when the len bytes at a and b are equal, in time that does
 * not depend on where they differ.
 * WARNING: only the contents are constant time, not len.
 */
int secmem_eq_ct(const void *a, const void *b, size_t len);
/*
 * Process hardening: RLIMIT_CORE 0, PR_SET_DUMPABLE 0.  Returns 0 or
 * TS_ERR_SYSTEM.
 */
int secmem_harden_process(void);
/* Makes sure fds 0-2 are open (on /dev/null if they were closed). */
void secmem_sanitise_stdfd(void);

#endif /* TS_COMMON_SECMEM_H */
