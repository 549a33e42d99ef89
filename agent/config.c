/*
 * config.c - config file parsing through a bounded word splitter.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/config.h"
#include "agent/sshproto.h"
#include "common/err.h"
#include "common/log.h"

#define CONFIG_MAX_WORDS 4

void
config_init(struct agent_config *c)
{
	memset(c, 0, sizeof(*c));
	c->raw_digest = -1;
	c->pin_final_try = -1;
	c->missing_token = -1;
	c->reinsert_login = -1;
	c->presence_ms = -1;
	c->pcsc_watch = -1;
	c->pin_timeout = -1;
	c->max_conns = c->idle_timeout = c->frame_timeout = -1;
	c->write_timeout = c->workers = -1;
}

void
config_free(struct agent_config *c)
{
	size_t i;

	for (i = 0; i < c->nmodules; i++)
		free(c->modules[i]);
	for (i = 0; i < c->ntokens; i++) {
		free(c->tokens[i].uri);
		free(c->tokens[i].pin_value);
	}
	for (i = 0; i < c->nconfirm; i++)
		free(c->confirm[i]);
	for (i = 0; i < c->ntouch; i++)
		free(c->touch[i]);
	for (i = 0; i < c->nssh; i++)
		free(c->ssh[i]);
	for (i = 0; i < c->nkeys; i++)
		free(c->keys[i]);
	free(c->module_allow);
	free(c->pin_value);
	free(c->socket);
	free(c->audit);
	free(c->askpass);
	config_init(c);
}

long
config_parse_duration(const char *s)
{
	char *end;
	long v, mul = 1;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || v < 0)
		return -1;
	if (*end == 's')
		end++;
	else if (*end == 'm') {
		mul = 60;
		end++;
	} else if (*end == 'h') {
		mul = 3600;
		end++;
	}
	if (*end != '\0' || v > 100L * 365 * 86400 / mul)
		return -1;
	return v * mul;
}

static long
parse_count(const char *s, long max)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > max)
		return -1;
	return v;
}

int
config_parse_uid(const char *s, uid_t *out)
{
	struct passwd *pw;
	long v;

	if ((v = parse_count(s, 0x7fffffff)) >= 0 || strcmp(s, "0") == 0) {
		*out = v < 0 ? 0 : (uid_t)v;
		return 0;
	}
	if ((pw = getpwnam(s)) == NULL)
		return TS_ERR_NOT_FOUND;
	*out = pw->pw_uid;
	return 0;
}

int
config_parse_gid(const char *s, gid_t *out)
{
	struct group *gr;
	long v;

	if ((v = parse_count(s, 0x7fffffff)) >= 0 || strcmp(s, "0") == 0) {
		*out = v < 0 ? 0 : (gid_t)v;
		return 0;
	}
	if ((gr = getgrnam(s)) == NULL)
		return TS_ERR_NOT_FOUND;
	*out = gr->gr_gid;
	return 0;
}

/*
 * Splits line into at most CONFIG_MAX_WORDS words in buf (NUL separated);
 * a word may be "double quoted" (no escapes).  Returns the count or -1.
 */
static int
split_words(const char *line, char *buf, size_t buflen, char **words)
{
	const char *p = line;
	size_t o = 0;
	int n = 0;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#' || *p == '\n' || *p == '\r')
			return n;
		if (n == CONFIG_MAX_WORDS)
			return -1;
		words[n++] = buf + o;
		if (*p == '"') {
			p++;
			while (*p != '"') {
				if (*p == '\0' || o + 1 >= buflen)
					return -1;
				buf[o++] = *p++;
			}
			p++;
			if (*p != '\0' && *p != ' ' && *p != '\t' &&
			    *p != '\n' && *p != '\r')
				return -1;
		} else
			while (*p != '\0' && *p != ' ' && *p != '\t' &&
			    *p != '\n' && *p != '\r') {
				if (o + 1 >= buflen)
					return -1;
				buf[o++] = *p++;
			}
		buf[o++] = '\0';
	}
}

static int
set_str(char **dst, const char *v)
{
	char *n;

	if ((n = strdup(v)) == NULL)
		return TS_ERR_ALLOC;
	free(*dst);
	*dst = n;
	return 0;
}

static int
pin_spec(const char *v, enum config_pin *kind, char **value)
{
	if (strcmp(v, "none") == 0) {
		*kind = CONFIG_PIN_NONE;
		return 0;
	}
	if (strncmp(v, "file:", 5) == 0 && v[5] == '/') {
		*kind = CONFIG_PIN_FILE;
		return set_str(value, v + 5);
	}
	if (v[0] == '/') {
		*kind = CONFIG_PIN_FILE;
		return set_str(value, v);
	}
	if (strncmp(v, "env:", 4) == 0 && v[4] != '\0') {
		*kind = CONFIG_PIN_ENV;
		return set_str(value, v + 4);
	}
	return TS_ERR_CONFIG;
}

/*
 * A keyword taking one of two words: w[1] is yes (*out = 1) or no (0),
 * else a config error naming both.
 */
static int
two_way(char **w, int n, const char *yes, const char *no, int *out, char *why,
    size_t whylen)
{
	if (n != 2) {
		snprintf(why, whylen, "%s takes 1 value(s)", w[0]);
		return TS_ERR_CONFIG;
	}
	if (strcmp(w[1], yes) == 0)
		*out = 1;
	else if (strcmp(w[1], no) == 0)
		*out = 0;
	else {
		snprintf(why, whylen, "%s is %s or %s", w[0], yes, no);
		return TS_ERR_CONFIG;
	}
	return 0;
}

int
config_line(struct agent_config *c, const char *line, char *why, size_t whylen)
{
	char buf[CONFIG_LINE_MAX], *w[CONFIG_MAX_WORDS];
	long v;
	int n, r;

	why[0] = '\0';
	if (strlen(line) >= sizeof(buf)) {
		snprintf(why, whylen, "line too long");
		return TS_ERR_CONFIG;
	}
	if ((n = split_words(line, buf, sizeof(buf), w)) < 0) {
		snprintf(why, whylen, "bad quoting or too many words");
		return TS_ERR_CONFIG;
	}
	if (n == 0)
		return 0;
#define NEED(k)                                                              \
	do {                                                                 \
		if (n != (k) + 1) {                                          \
			snprintf(                                            \
			    why, whylen, "%s takes %d value(s)", w[0], (k)); \
			return TS_ERR_CONFIG;                                \
		}                                                            \
	} while (0)
#define LIST_ROOM(cnt)                                              \
	do {                                                        \
		if ((cnt) >= CONFIG_MAX_LIST) {                     \
			snprintf(why, whylen, "too many %s", w[0]); \
			return TS_ERR_CONFIG;                       \
		}                                                   \
	} while (0)
	if (strcmp(w[0], "module") == 0) {
		NEED(1);
		LIST_ROOM(c->nmodules);
		if ((c->modules[c->nmodules] = strdup(w[1])) == NULL)
			return TS_ERR_ALLOC;
		c->nmodules++;
		return 0;
	}
	if (strcmp(w[0], "module_allow") == 0) {
		NEED(1);
		return set_str(&c->module_allow, w[1]);
	}
	if (strcmp(w[0], "token") == 0) {
		if (n != 2 && n != 3) {
			snprintf(why, whylen,
			    "token takes a URI and an "
			    "optional pin source");
			return TS_ERR_CONFIG;
		}
		LIST_ROOM(c->ntokens);
		if (strncmp(w[1], "pkcs11:", 7) != 0) {
			snprintf(why, whylen, "token needs a pkcs11: URI");
			return TS_ERR_CONFIG;
		}
		memset(&c->tokens[c->ntokens], 0, sizeof(c->tokens[0]));
		if (n == 3 &&
		    pin_spec(w[2], &c->tokens[c->ntokens].pin_kind,
			&c->tokens[c->ntokens].pin_value) != 0) {
			snprintf(why, whylen,
			    "bad pin source \"%.100s\" "
			    "(file:/PATH, env:VAR, none)",
			    w[2]);
			return TS_ERR_CONFIG;
		}
		if ((c->tokens[c->ntokens].uri = strdup(w[1])) == NULL)
			return TS_ERR_ALLOC;
		c->ntokens++;
		return 0;
	}
	if (strcmp(w[0], "pin_source") == 0) {
		NEED(1);
		if ((r = pin_spec(w[1], &c->pin_kind, &c->pin_value)) != 0) {
			snprintf(why, whylen,
			    "bad pin source \"%.100s\" "
			    "(file:/PATH, env:VAR, none)",
			    w[1]);
			return r;
		}
		return 0;
	}
	if (strcmp(w[0], "socket") == 0) {
		NEED(1);
		return set_str(&c->socket, w[1]);
	}
	if (strcmp(w[0], "audit") == 0) {
		NEED(1);
		return set_str(&c->audit, w[1]);
	}
	if (strcmp(w[0], "askpass") == 0) {
		NEED(1);
		return set_str(&c->askpass, w[1]);
	}
	if (strcmp(w[0], "allow_uid") == 0 ||
	    strcmp(w[0], "raw_digest_uid") == 0) {
		uid_t uid;

		NEED(1);
		if (config_parse_uid(w[1], &uid) != 0) {
			snprintf(why, whylen, "unknown user \"%.64s\"", w[1]);
			return TS_ERR_CONFIG;
		}
		if (w[0][0] == 'a') {
			LIST_ROOM(c->nallow_uids);
			c->allow_uids[c->nallow_uids++] = uid;
		} else {
			LIST_ROOM(c->ndigest_uids);
			c->digest_uids[c->ndigest_uids++] = uid;
		}
		return 0;
	}
	if (strcmp(w[0], "allow_group") == 0) {
		gid_t gid;

		NEED(1);
		if (config_parse_gid(w[1], &gid) != 0) {
			snprintf(why, whylen, "unknown group \"%.64s\"", w[1]);
			return TS_ERR_CONFIG;
		}
		LIST_ROOM(c->nallow_gids);
		c->allow_gids[c->nallow_gids++] = gid;
		return 0;
	}
	if (strcmp(w[0], "raw_digest") == 0)
		return two_way(w, n, "yes", "no", &c->raw_digest, why, whylen);
	if (strcmp(w[0], "pin_final_try") == 0) /* issue 6 */
		return two_way(
		    w, n, "allow", "refuse", &c->pin_final_try, why, whylen);
	if (strcmp(w[0], "missing_token") == 0) /* absent at start */
		return two_way(
		    w, n, "wait", "fail", &c->missing_token, why, whylen);
	if (strcmp(w[0], "reinsert_login") == 0) /* after a removal */
		return two_way(
		    w, n, "auto", "unlock", &c->reinsert_login, why, whylen);
	if (strcmp(w[0], "ssh") == 0) { /* issue 7: per-key ssh switch */
		NEED(2);
		LIST_ROOM(c->nssh);
		if (strcmp(w[2], "on") == 0)
			c->ssh_mode[c->nssh] = SSHPROTO_KEY_ON;
		else if (strcmp(w[2], "off") == 0)
			c->ssh_mode[c->nssh] = SSHPROTO_KEY_OFF;
		else {
			snprintf(why, whylen, "ssh KEY on|off");
			return TS_ERR_CONFIG;
		}
		if ((c->ssh[c->nssh] = strdup(w[1])) == NULL)
			return TS_ERR_ALLOC;
		c->nssh++;
		return 0;
	}
	if (strcmp(w[0], "key") == 0) {
		NEED(1);
		LIST_ROOM(c->nkeys);
		if ((c->keys[c->nkeys] = strdup(w[1])) == NULL)
			return TS_ERR_ALLOC;
		c->nkeys++;
		return 0;
	}
	if (strcmp(w[0], "touch_timeout") == 0) { /* issue 6: KEY SECONDS */
		NEED(2);
		LIST_ROOM(c->ntouch);
		v = config_parse_duration(w[2]);
		if (v < 0 || v > 3600) {
			snprintf(why, whylen,
			    "bad duration \"%.32s\" for touch_timeout", w[2]);
			return TS_ERR_CONFIG;
		}
		if ((c->touch[c->ntouch] = strdup(w[1])) == NULL)
			return TS_ERR_ALLOC;
		c->touch_s[c->ntouch++] = v;
		return 0;
	}
	if (strcmp(w[0], "confirm") == 0) {
		NEED(1);
		LIST_ROOM(c->nconfirm);
		if ((c->confirm[c->nconfirm] = strdup(w[1])) == NULL)
			return TS_ERR_ALLOC;
		c->nconfirm++;
		return 0;
	}
	if (strcmp(w[0], "pin_timeout") == 0 ||
	    strcmp(w[0], "idle_timeout") == 0 ||
	    strcmp(w[0], "frame_timeout") == 0 ||
	    strcmp(w[0], "write_timeout") == 0) {
		NEED(1);
		if ((v = config_parse_duration(w[1])) < 0 ||
		    (w[0][0] != 'p' && (v < 1 || v > 86400))) {
			snprintf(why, whylen, "bad duration \"%.32s\" for %s",
			    w[1], w[0]);
			return TS_ERR_CONFIG;
		}
		if (w[0][0] == 'p')
			c->pin_timeout = v;
		else if (w[0][0] == 'i')
			c->idle_timeout = v;
		else if (w[0][0] == 'f')
			c->frame_timeout = v;
		else
			c->write_timeout = v;
		return 0;
	}
	if (strcmp(w[0], "pcsc_watch") == 0) /* issue 6 */
		return two_way(w, n, "yes", "no", &c->pcsc_watch, why, whylen);
	if (strcmp(w[0], "presence_poll_ms") == 0) { /* issue 6 */
		NEED(1);
		v = strcmp(w[1], "0") == 0 ? 0 : parse_count(w[1], 60000);
		if (v < 0 || (v > 0 && v < 20)) {
			snprintf(why, whylen,
			    "presence_poll_ms is 0 (off) or 20..60000");
			return TS_ERR_CONFIG;
		}
		c->presence_ms = v;
		return 0;
	}
	if (strcmp(w[0], "max_connections") == 0 ||
	    strcmp(w[0], "workers") == 0) {
		NEED(1);
		v = parse_count(w[1], w[0][0] == 'm' ? 65536 : 64);
		if (v < 0 || (w[0][0] == 'm' && v < 8)) {
			snprintf(why, whylen, "bad number \"%.32s\" for %s",
			    w[1], w[0]);
			return TS_ERR_CONFIG;
		}
		if (w[0][0] == 'm')
			c->max_conns = v;
		else
			c->workers = v;
		return 0;
	}
	snprintf(why, whylen, "unknown keyword \"%.64s\"", w[0]);
	return TS_ERR_CONFIG;
#undef NEED
#undef LIST_ROOM
}

int
config_load(const char *path, struct agent_config *c, char *why, size_t whylen)
{
	char *data = NULL, *line, *nl, lwhy[256];
	struct stat st;
	ssize_t n;
	size_t lineno = 0;
	int fd = -1, r = TS_ERR_INTERNAL;

	why[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0) {
		snprintf(why, whylen, "%.200s: %s", path, strerror(errno));
		r = TS_ERR_SYSTEM;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
		snprintf(
		    why, whylen, "%.200s: not a regular file or too big", path);
		r = TS_ERR_CONFIG;
		goto out;
	}
	if ((data = malloc((size_t)st.st_size + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((n = read(fd, data, (size_t)st.st_size)) != st.st_size) {
		snprintf(why, whylen, "%.200s: short read", path);
		r = TS_ERR_SYSTEM;
		goto out;
	}
	data[n] = '\0';
	if (memchr(data, '\0', (size_t)n) != NULL) {
		snprintf(why, whylen, "%.200s: NUL byte in file", path);
		r = TS_ERR_CONFIG;
		goto out;
	}
	for (line = data; line != NULL && *line != '\0'; line = nl) {
		lineno++;
		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		if ((r = config_line(c, line, lwhy, sizeof(lwhy))) != 0) {
			snprintf(
			    why, whylen, "%.200s:%zu: %s", path, lineno, lwhy);
			goto out;
		}
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(data);
	return r;
}
