#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "common/atomicio.h"
#include "common/err.h"

static int
atomic_wait(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n;

	for (;;) {
		n = poll(&pfd, 1, timeout_ms);
		if (n > 0)
			return 0;
		if (n == 0)
			return TS_ERR_TIMEOUT;
		if (errno != EINTR)
			return TS_ERR_IO;
	}
}

int
atomic_read(int fd, void *buf, size_t len, int timeout_ms)
{
	unsigned char *p = buf;
	size_t done = 0;
	ssize_t n;
	int r;

	while (done < len) {
		n = read(fd, p + done, len - done);
		if (n == 0)
			return TS_ERR_AGENT_CLOSED;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if ((r = atomic_wait(fd, POLLIN, timeout_ms)) !=
				    0)
					return r;
				continue;
			}
			return errno == ECONNRESET ? TS_ERR_AGENT_CLOSED
						   : TS_ERR_IO;
		}
		done += (size_t)n;
	}
	return 0;
}

int
atomic_write(int fd, const void *buf, size_t len, int timeout_ms)
{
	const unsigned char *p = buf;
	size_t done = 0;
	ssize_t n;
	int r;

	while (done < len) {
		n = write(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if ((r = atomic_wait(
					 fd, POLLOUT, timeout_ms)) != 0)
					return r;
				continue;
			}
			return errno == EPIPE || errno == ECONNRESET
			    ? TS_ERR_AGENT_CLOSED
			    : TS_ERR_IO;
		}
		done += (size_t)n;
	}
	return 0;
}
