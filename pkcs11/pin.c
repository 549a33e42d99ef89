/*
 * pin.c - PIN sources.  Every PIN lives in secmem (mlocked, no-dump) and
 * is wiped on free; stack buffers that saw it are cleansed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"
#include "pkcs11/pin.h"

struct p11_pin {
	char *buf; /* secmem, P11_PIN_MAX_LEN + 1 bytes */
	size_t len;
};

static struct p11_pin *
pin_new(void)
{
	struct p11_pin *pin;

	if ((pin = calloc(1, sizeof(*pin))) == NULL)
		return NULL;
	if ((pin->buf = secmem_alloc(P11_PIN_MAX_LEN + 1)) == NULL) {
		free(pin);
		return NULL;
	}
	return pin;
}

void
p11_pin_free(struct p11_pin *pin)
{
	if (pin == NULL)
		return;
	secmem_free(pin->buf, P11_PIN_MAX_LEN + 1);
	freezero(pin, sizeof(*pin));
}

const char *
p11_pin_data(const struct p11_pin *pin, size_t *lenp)
{
	*lenp = pin->len;
	return pin->buf;
}

/* Checks and adopts the len bytes already in pin->buf. */
static int
pin_finish(struct p11_pin *pin, size_t len, const char *what)
{
	if (len == 0) {
		error_f("%s: the PIN is empty", what);
		return TS_ERR_P11_PIN_SOURCE;
	}
	if (memchr(pin->buf, '\0', len) != NULL) {
		error_f("%s: the PIN contains a NUL byte", what);
		return TS_ERR_P11_PIN_SOURCE;
	}
	pin->len = len;
	pin->buf[len] = '\0';
	return 0;
}

int
p11_pin_from_bytes(const void *data, size_t len, struct p11_pin **pinp)
{
	struct p11_pin *pin = NULL;
	int r = TS_ERR_INTERNAL;

	*pinp = NULL;
	if (len > P11_PIN_MAX_LEN) {
		error_f("PIN longer than %d bytes", P11_PIN_MAX_LEN);
		r = TS_ERR_P11_PIN_SOURCE;
		goto out;
	}
	if ((pin = pin_new()) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	memcpy(pin->buf, data, len);
	if ((r = pin_finish(pin, len, "PIN")) != 0)
		goto out;
	*pinp = pin;
	pin = NULL;
	r = 0;
out:
	p11_pin_free(pin);
	return r;
}

int
p11_pin_dup(const struct p11_pin *pin, struct p11_pin **pinp)
{
	return p11_pin_from_bytes(pin->buf, pin->len, pinp);
}

int
p11_pin_from_file(const char *path, struct p11_pin **pinp)
{
	struct p11_pin *pin = NULL;
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd = -1, r = TS_ERR_P11_PIN_SOURCE;

	*pinp = NULL;
	if ((fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC)) == -1) {
		error_f("PIN file %.200s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		error_f("PIN file %.200s is not a regular file", path);
		goto out;
	}
	/* as ssh does for private keys: refuse a PIN others can read */
	if ((st.st_mode & 077) != 0) {
		error_f("PIN file %.200s is accessible by group or others "
			"(mode %03o); run chmod 600 on it",
		    path, (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (st.st_uid != getuid() && st.st_uid != 0) {
		error_f("PIN file %.200s is owned by uid %u, not by you", path,
		    (unsigned)st.st_uid);
		goto out;
	}
	if ((pin = pin_new()) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	/* read one byte more than the maximum plus "\r\n" to see overlong */
	while (len < P11_PIN_MAX_LEN + 1) {
		n = read(fd, pin->buf + len, P11_PIN_MAX_LEN + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			error_f("PIN file %.200s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > 0 && pin->buf[len - 1] == '\n')
		len--;
	if (len > 0 && pin->buf[len - 1] == '\r')
		len--;
	if (len > P11_PIN_MAX_LEN) {
		error_f("PIN file %.200s: PIN longer than %d bytes", path,
		    P11_PIN_MAX_LEN);
		goto out;
	}
	if ((r = pin_finish(pin, len, "PIN file")) != 0)
		goto out;
	*pinp = pin;
	pin = NULL;
	r = 0;
out:
	if (fd != -1)
		close(fd);
	p11_pin_free(pin);
	return r;
}

int
p11_pin_from_env(const char *var, struct p11_pin **pinp)
{
	const char *v;
	int r;

	*pinp = NULL;
	if (var == NULL || (v = getenv(var)) == NULL || *v == '\0') {
		error_f("environment variable %.64s is not set or empty",
		    var != NULL ? var : "(null)");
		return TS_ERR_P11_PIN_SOURCE;
	}
	if (strlen(v) > P11_PIN_MAX_LEN) {
		error_f("environment variable %.64s: PIN longer than %d bytes",
		    var, P11_PIN_MAX_LEN);
		return TS_ERR_P11_PIN_SOURCE;
	}
	r = p11_pin_from_bytes(v, strlen(v), pinp);
	return r;
}

int
p11_pin_from_source(const char *src, struct p11_pin **pinp)
{
	*pinp = NULL;
	if (src == NULL || *src == '\0') {
		error_f("empty pin-source");
		return TS_ERR_P11_PIN_SOURCE;
	}
	if (*src == '|') {
		/* running a program named by a URI is code execution */
		error_f("pin-source programs ('|...') are not supported");
		return TS_ERR_UNSUPPORTED;
	}
	if (strncmp(src, "file:", 5) == 0) {
		src += 5;
		/* file:///path and file:/path both name /path */
		if (strncmp(src, "//", 2) == 0)
			src += 2;
	}
	if (*src != '/') {
		error_f("pin-source must be an absolute path or file: URI");
		return TS_ERR_P11_PIN_SOURCE;
	}
	return p11_pin_from_file(src, pinp);
}

int
p11_pin_from_prompt(const char *prompt, struct p11_pin **pinp)
{
	struct p11_pin *pin = NULL;
	struct termios old, noecho;
	size_t len = 0;
	ssize_t n;
	char c = 0;
	int fd = -1, restore = 0, r = TS_ERR_P11_PIN_SOURCE;

	*pinp = NULL;
	if ((fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)) == -1) {
		error_f("cannot prompt for the PIN: no terminal (%s)",
		    strerror(errno));
		goto out;
	}
	if ((pin = pin_new()) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if (tcgetattr(fd, &old) == -1) {
		error_f("cannot prompt for the PIN: %s", strerror(errno));
		goto out;
	}
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	noecho.c_lflag |= ICANON;
	if (tcsetattr(fd, TCSAFLUSH, &noecho) == -1) {
		error_f("cannot turn off echo: %s", strerror(errno));
		goto out;
	}
	restore = 1;
	if (prompt != NULL && write(fd, prompt, strlen(prompt)) < 0)
		debug_f("prompt write failed");
	/* XXX a signal here leaves echo off; the agent never prompts */
	for (;;) {
		n = read(fd, &c, 1);
		if (n == -1 && errno == EINTR) {
			r = TS_ERR_INTERRUPTED;
			goto out;
		}
		if (n <= 0 || c == '\n' || c == '\r')
			break;
		if (len >= P11_PIN_MAX_LEN) {
			error_f("PIN longer than %d bytes", P11_PIN_MAX_LEN);
			goto out;
		}
		pin->buf[len++] = c;
	}
	if ((r = pin_finish(pin, len, "prompt")) != 0)
		goto out;
	*pinp = pin;
	pin = NULL;
	r = 0;
out:
	OPENSSL_cleanse(&c, sizeof(c));
	if (restore) {
		tcsetattr(fd, TCSAFLUSH, &old);
		if (write(fd, "\n", 1) < 0)
			debug_f("newline write failed");
	}
	if (fd != -1)
		close(fd);
	p11_pin_free(pin);
	return r;
}
