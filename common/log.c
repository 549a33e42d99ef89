/*
 * log.c - stderr/syslog logging.  One mutex serialises lines so threads
 * (token workers, the PC/SC watcher) never interleave output.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "common/err.h"
#include "common/log.h"

#define LOG_LINE_MAX 1024

static const char *log_progname = "tokensign";
static enum ts_log_level log_lvl = TS_LOG_INFO;
static int log_syslog;
static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;

void
ts_log_init(const char *progname, enum ts_log_level level, int use_syslog)
{
	log_progname = progname;
	log_lvl = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(progname, LOG_PID, LOG_AUTH);
}

enum ts_log_level
ts_log_level(void)
{
	return log_lvl;
}

void
ts_log_set_level(enum ts_log_level level)
{
	log_lvl = level;
}

static int
syslog_prio(enum ts_log_level level)
{
	switch (level) {
	case TS_LOG_FATAL:
		return LOG_CRIT;
	case TS_LOG_ERROR:
		return LOG_ERR;
	case TS_LOG_INFO:
		return LOG_INFO;
	default:
		return LOG_DEBUG;
	}
}

/* Replaces control characters so a hostile string cannot forge lines. */
static void
log_sanitise(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

void
ts_vlog(enum ts_log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];

	if (level > log_lvl || log_lvl == TS_LOG_QUIET)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	log_sanitise(line);
	pthread_mutex_lock(&log_mtx);
	if (log_syslog)
		syslog(syslog_prio(level), "%s", line);
	else
		fprintf(stderr, "%s: %s\n", log_progname, line);
	pthread_mutex_unlock(&log_mtx);
}

void
ts_log(enum ts_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ts_vlog(level, fmt, ap);
	va_end(ap);
}

static void log_loc_v(enum ts_log_level, const char *, int, int, const char *,
    va_list) __attribute__((format(printf, 5, 0)));

static void
log_loc_v(enum ts_log_level level, const char *func, int line, int r,
    const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (level >= TS_LOG_DEBUG) {
		if (r != 0)
			ts_log(
			    level, "%s:%d: %s: %s", func, line, msg, ts_err(r));
		else
			ts_log(level, "%s:%d: %s", func, line, msg);
	} else if (r != 0)
		ts_log(level, "%s: %s: %s", func, msg, ts_err(r));
	else
		ts_log(level, "%s: %s", func, msg);
}

void
ts_log_loc(enum ts_log_level level, const char *func, int line, int r,
    const char *fmt, ...)
{
	va_list ap;

	if (level > log_lvl)
		return;
	va_start(ap, fmt);
	log_loc_v(level, func, line, r, fmt, ap);
	va_end(ap);
}

void
ts_fatal_loc(const char *func, int line, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_loc_v(TS_LOG_FATAL, func, line, r, fmt, ap);
	va_end(ap);
	exit(1);
}
