/*
 * audit.c - hash-chained JSON lines with group-committed fdatasync.
 *
 * Writers serialise on a mutex for write(2) so the chain order equals the
 * file order; the fdatasync runs outside the mutex and covers every line
 * written before it started (group commit): a writer waits until some
 * fdatasync begun after its write has finished.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "agent/audit.h"
#include "common/err.h"
#include "common/log.h"

#define AUDIT_TAIL_READ 65536

struct audit {
	int fd;
	char *path;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char prev[2 * SHA256_DIGEST_LENGTH + 1];
	unsigned long long written; /* lines written */
	unsigned long long synced; /* lines known durable */
	int syncing;
	int failed; /* a write failed: refuse everything after */
};

static void
hex_sha256(const void *data, size_t len, char out[65])
{
	static const char hx[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t i;

	SHA256(data, len, md);
	for (i = 0; i < sizeof(md); i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
}

/* Sets a->prev from the last line of the existing file. */
static int
audit_read_tail(struct audit *a)
{
	char *buf = NULL, *start, *end;
	off_t size, from;
	ssize_t n;
	int r = TS_ERR_AUDIT_WRITE;

	memset(a->prev, '0', 64);
	a->prev[64] = '\0';
	if ((size = lseek(a->fd, 0, SEEK_END)) < 0)
		goto out;
	if (size == 0) {
		r = 0;
		goto out;
	}
	from = size > AUDIT_TAIL_READ ? size - AUDIT_TAIL_READ : 0;
	if ((buf = malloc((size_t)(size - from) + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((n = pread(a->fd, buf, (size_t)(size - from), from)) != size - from)
		goto out;
	buf[n] = '\0';
	if (buf[n - 1] != '\n') {
		/* A torn last line (crash mid-write): chain over it anyway. */
		error_f("%s: last line incomplete", a->path);
		end = buf + n;
	} else
		end = buf + n - 1;
	start = end;
	while (start > buf && start[-1] != '\n')
		start--;
	if (start == buf && from != 0) {
		error_f("%s: last line longer than %d bytes", a->path,
		    AUDIT_TAIL_READ);
		goto out;
	}
	hex_sha256(start, (size_t)(end - start), a->prev);
	r = 0;
out:
	free(buf);
	return r;
}

int
audit_open(const char *path, struct audit **ap)
{
	struct audit *a = NULL;
	int r = TS_ERR_INTERNAL;

	*ap = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->path = strdup(path)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	a->fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	if ((a->fd = open(path,
		 O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) <
	    0) {
		error_f("%s: %s", path, strerror(errno));
		r = TS_ERR_AUDIT_WRITE;
		goto out;
	}
	if ((r = audit_read_tail(a)) != 0)
		goto out;
	*ap = a;
	a = NULL;
	r = 0;
out:
	audit_close(a);
	return r;
}

void
audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->fd >= 0) {
		(void)fdatasync(a->fd);
		close(a->fd);
		/* For `tokensign audit verify --head`: tail truncation. */
		if (a->written > 0)
			logit("audit log %.200s: %llu lines written, head %s",
			    a->path, a->written, a->prev);
	}
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cv);
	free(a->path);
	free(a);
}

const char *
audit_path(const struct audit *a)
{
	return a->path;
}

static int
set_str(json_t *o, const char *k, const char *v)
{
	if (v == NULL)
		return 0;
	/* Invalid UTF-8 never reaches here (payload and exe are checked). */
	return json_object_set_new(o, k, json_string(v));
}

/* Builds the line without "prev"; returns a malloc'd string or NULL. */
static char *
audit_format(const struct audit_rec *rec)
{
	json_t *o = NULL, *pe;
	char tbuf[64];
	struct timespec ts;
	struct tm tm;
	char *s = NULL;
	int bad = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return NULL;
	if ((o = json_object()) == NULL)
		return NULL;
	bad |= json_object_set_new(o, "time", json_string(tbuf)) != 0;
	bad |= json_object_set_new(
		   o, "ms", json_integer(ts.tv_nsec / 1000000)) != 0;
	bad |= set_str(o, "event", rec->event) != 0;
	if (rec->peer != NULL) {
		pe = json_object();
		bad |= pe == NULL;
		if (pe != NULL) {
			bad |=
			    json_object_set_new(pe, "uid",
				json_integer((json_int_t)rec->peer->uid)) != 0;
			bad |=
			    json_object_set_new(pe, "gid",
				json_integer((json_int_t)rec->peer->gid)) != 0;
			bad |=
			    json_object_set_new(pe, "pid",
				json_integer((json_int_t)rec->peer->pid)) != 0;
			if (rec->peer->exe[0] != '\0')
				bad |= set_str(pe, "exe", rec->peer->exe) != 0;
			if (rec->peer->identity[0] != '\0')
				bad |= set_str(pe, "identity",
					   rec->peer->identity) != 0;
			bad |= json_object_set_new(o, "peer", pe) != 0;
		}
	}
	bad |= set_str(o, "key_id", rec->key_id) != 0;
	bad |= set_str(o, "key", rec->key_fp) != 0;
	bad |= set_str(o, "image", rec->image) != 0;
	bad |= set_str(o, "manifest_digest", rec->manifest_digest) != 0;
	bad |= set_str(o, "hash", rec->hash) != 0;
	bad |= set_str(o, "digest", rec->digest_hex) != 0;
	if (rec->batch_index != 0)
		bad |= json_object_set_new(o, "batch_index",
			   json_integer((json_int_t)rec->batch_index)) != 0;
	bad |= set_str(o, "result", rec->result == 0 ? "ok" : "refused") != 0;
	if (rec->result != 0) {
		bad |= json_object_set_new(
			   o, "error", json_string(ts_err(rec->result))) != 0;
		bad |= set_str(o, "reason", rec->reason) != 0;
	}
	if (!bad)
		s = json_dumps(
		    o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
	json_decref(o);
	return s;
}

/* Appends one line to the file; called with a->mu held. */
static int
audit_append_locked(struct audit *a, const struct audit_rec *rec)
{
	char *body = NULL, *line = NULL;
	size_t blen, llen;
	ssize_t n;
	int r = TS_ERR_AUDIT_WRITE;

	if (a->failed)
		goto out;
	if ((body = audit_format(rec)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	blen = strlen(body);
	if (blen < 2 || blen > AUDIT_LINE_MAX)
		goto out;
	/* body ends with '}': splice in ,"prev":"<64 hex>"} and '\n'. */
	llen = blen - 1 + 9 + 64 + 3;
	if ((line = malloc(llen)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	memcpy(line, body, blen - 1);
	memcpy(line + blen - 1, ",\"prev\":\"", 9);
	memcpy(line + blen - 1 + 9, a->prev, 64);
	memcpy(line + blen - 1 + 9 + 64, "\"}\n", 3);
	n = write(a->fd, line, llen);
	if (n != (ssize_t)llen) {
		/* A short append would corrupt the chain: stop logging. */
		error_f("%s: write: %s", a->path,
		    n < 0 ? strerror(errno) : "short write");
		a->failed = 1;
		goto out;
	}
	hex_sha256(line, llen - 1, a->prev);
	a->written++;
	r = 0;
out:
	free(body);
	free(line);
	return r;
}

int
audit_log_n(struct audit *a, const struct audit_rec *recs, size_t n)
{
	unsigned long long mine, target;
	size_t i;
	int r = 0, s;

	if (a == NULL)
		return 0;
	pthread_mutex_lock(&a->mu);
	for (i = 0; i < n && r == 0; i++)
		r = audit_append_locked(a, &recs[i]);
	mine = a->written;
	while (r == 0 && a->synced < mine && !a->failed) {
		if (a->syncing) {
			pthread_cond_wait(&a->cv, &a->mu);
			continue;
		}
		a->syncing = 1;
		target = a->written;
		pthread_mutex_unlock(&a->mu);
		s = fdatasync(a->fd);
		pthread_mutex_lock(&a->mu);
		a->syncing = 0;
		if (s != 0) {
			error_f("%s: fdatasync: %s", a->path, strerror(errno));
			a->failed = 1;
		} else if (target > a->synced)
			a->synced = target;
		pthread_cond_broadcast(&a->cv);
	}
	if (r == 0 && a->failed)
		r = TS_ERR_AUDIT_WRITE;
	pthread_mutex_unlock(&a->mu);
	return r;
}

int
audit_log(struct audit *a, const struct audit_rec *rec)
{
	return audit_log_n(a, rec, 1);
}
