/*
 * atomicio.h - full read/write loops that retry on EINTR and EAGAIN (the
 * latter by polling), for blocking or non-blocking descriptors.
 */
#ifndef TS_COMMON_ATOMICIO_H
#define TS_COMMON_ATOMICIO_H

#include <stddef.h>

/*
 * Reads exactly len bytes.  Returns 0, TS_ERR_AGENT_CLOSED on EOF before
 * len bytes, TS_ERR_TIMEOUT when timeout_ms (-1 = none) passes with no
 * progress, or TS_ERR_IO.
 */
int atomic_read(int fd, void *buf, size_t len, int timeout_ms)
    __attribute__((warn_unused_result));
/* Writes exactly len bytes; same returns as atomic_read. */
int atomic_write(int fd, const void *buf, size_t len, int timeout_ms)
    __attribute__((warn_unused_result));

#endif /* TS_COMMON_ATOMICIO_H */
