/*
 * fileio.h - reading a whole input file with a size cap, for the client's
 * --payload/--signature/--message style options.
 */
#ifndef TS_COMMON_FILEIO_H
#define TS_COMMON_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Refuse anything but a regular file (no FIFOs, devices, directories). */
#define TS_FILE_REGULAR 0x01

/*
 * Reads the whole file at path, at most max bytes, into a malloc'd buffer
 * (*out, NUL-terminated for convenience; *out_len excludes the NUL).
 * Returns 0, TS_ERR_NOT_FOUND (ENOENT), TS_ERR_TOO_LARGE (more than max
 * bytes), TS_ERR_INVALID_ARG (not a regular file with TS_FILE_REGULAR),
 * TS_ERR_ALLOC or TS_ERR_SYSTEM (errno says why, preserved for the
 * caller's message).  Nothing is returned on failure.
 */
int ts_read_file(const char *path, size_t max, int flags, uint8_t **out,
    size_t *out_len) __attribute__((warn_unused_result));

#endif /* TS_COMMON_FILEIO_H */
