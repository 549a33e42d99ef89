/*
 * fileio.c - one capped whole-file reader.  It reads at most max + 1 bytes
 * so an oversized file is detected without trusting st_size (which is 0
 * for pipes and may change under us).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fileio.h"

int
ts_read_file(
    const char *path, size_t max, int flags, uint8_t **out, size_t *out_len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t n = 0;
	ssize_t got;
	int fd, saved, r = TS_ERR_SYSTEM;

	*out = NULL;
	*out_len = 0;
	if (max >= SIZE_MAX)
		return TS_ERR_INVALID_ARG;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_SYSTEM;
	if (fstat(fd, &st) != 0)
		goto out;
	if ((flags & TS_FILE_REGULAR) != 0 && !S_ISREG(st.st_mode)) {
		errno = EINVAL;
		r = TS_ERR_INVALID_ARG;
		goto out;
	}
	if ((buf = malloc(max + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	while (n <= max && (got = read(fd, buf + n, max + 1 - n)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		n += (size_t)got;
	}
	if (n > max) {
		r = TS_ERR_TOO_LARGE;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	buf = NULL;
	r = 0;
out:
	saved = errno; /* the caller's message reads it; close may change it */
	close(fd);
	errno = saved;
	free(buf);
	return r;
}
