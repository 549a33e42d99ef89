/*
 * log.h - leveled logging to stderr or syslog (style.md section 3).
 *
 * WARNING: never pass a PIN, passphrase, key material or unbounded untrusted
 * string; log untrusted text with a precision ("%.100s").
 */
#ifndef TS_COMMON_LOG_H
#define TS_COMMON_LOG_H

#include <stdarg.h>

enum ts_log_level {
	TS_LOG_QUIET = 0,
	TS_LOG_FATAL,
	TS_LOG_ERROR,
	TS_LOG_INFO,
	TS_LOG_VERBOSE,
	TS_LOG_DEBUG,
	TS_LOG_DEBUG2
};

/* Sets program name, level and sink (syslog when use_syslog != 0). */
void ts_log_init(const char *progname, enum ts_log_level level, int use_syslog);
/* Returns the current level. */
enum ts_log_level ts_log_level(void);
void ts_log_set_level(enum ts_log_level level);

void ts_log(enum ts_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ts_log_loc(enum ts_log_level level, const char *func, int line, int r,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ts_vlog(enum ts_log_level level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Logs at TS_LOG_FATAL and exits 1.  Only for broken invariants. */
void ts_fatal_loc(const char *func, int line, int r, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* _f: prefix the function name; _r: append ts_err(r). */
#define error(...)   ts_log(TS_LOG_ERROR, __VA_ARGS__)
#define logit(...)   ts_log(TS_LOG_INFO, __VA_ARGS__)
#define verbose(...) ts_log(TS_LOG_VERBOSE, __VA_ARGS__)
#define debug(...)   ts_log(TS_LOG_DEBUG, __VA_ARGS__)
#define error_f(...) \
	ts_log_loc(TS_LOG_ERROR, __func__, __LINE__, 0, __VA_ARGS__)
#define error_fr(r, ...) \
	ts_log_loc(TS_LOG_ERROR, __func__, __LINE__, r, __VA_ARGS__)
#define logit_f(...) ts_log_loc(TS_LOG_INFO, __func__, __LINE__, 0, __VA_ARGS__)
#define verbose_f(...) \
	ts_log_loc(TS_LOG_VERBOSE, __func__, __LINE__, 0, __VA_ARGS__)
#define debug_f(...) \
	ts_log_loc(TS_LOG_DEBUG, __func__, __LINE__, 0, __VA_ARGS__)
#define debug_fr(r, ...) \
	ts_log_loc(TS_LOG_DEBUG, __func__, __LINE__, r, __VA_ARGS__)
#define debug2_f(...) \
	ts_log_loc(TS_LOG_DEBUG2, __func__, __LINE__, 0, __VA_ARGS__)
#define fatal_f(...)	 ts_fatal_loc(__func__, __LINE__, 0, __VA_ARGS__)
#define fatal_fr(r, ...) ts_fatal_loc(__func__, __LINE__, r, __VA_ARGS__)

#endif /* TS_COMMON_LOG_H */
