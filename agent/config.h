/*
 * config.h - the agent's configuration file (docs/agent-config.md).
 *
 * Line based: "keyword value..." with '#' comments; values may be
 * double-quoted.  Unknown keywords, bad numbers, unknown users or groups
 * and lines over CONFIG_LINE_MAX are errors naming file and line: a bad
 * file is never half applied (the caller keeps its old config).
 */
#ifndef TS_AGENT_CONFIG_H
#define TS_AGENT_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#define CONFIG_MAX_LIST 64
#define CONFIG_LINE_MAX 4096
#define CONFIG_FILE_MAX (1024 * 1024)

enum config_pin {
	CONFIG_PIN_UNSET = 0,
	CONFIG_PIN_NONE,
	CONFIG_PIN_FILE,
	CONFIG_PIN_ENV
};

struct config_token {
	char *uri; /* "pkcs11:token=..." */
	enum config_pin pin_kind; /* UNSET: the global pin source */
	char *pin_value;
};

struct agent_config {
	char *modules[CONFIG_MAX_LIST];
	size_t nmodules;
	char *module_allow; /* allow-list patterns, NULL: default */
	struct config_token tokens[CONFIG_MAX_LIST];
	size_t ntokens;
	enum config_pin pin_kind;
	char *pin_value;
	char *socket;
	char *audit;
	char *askpass;
	uid_t allow_uids[CONFIG_MAX_LIST];
	size_t nallow_uids;
	gid_t allow_gids[CONFIG_MAX_LIST];
	size_t nallow_gids;
	uid_t digest_uids[CONFIG_MAX_LIST];
	size_t ndigest_uids;
	int raw_digest; /* -1 unset, 0 off, 1 on (lists apply) */
	int pin_final_try; /* -1 unset, 0 refuse, 1 allow (last PIN try) */
	int missing_token; /* -1 unset, 0 fail at start, 1 wait for it */
	int reinsert_login; /* -1 unset, 0 wait for UNLOCK, 1 PIN source */
	long presence_ms; /* token presence poll interval; -1 unset, 0 off */
	int pcsc_watch; /* -1 unset (yes), 0 no, 1 yes */
	char *confirm[CONFIG_MAX_LIST]; /* key references */
	size_t nconfirm;
	char *ssh[CONFIG_MAX_LIST]; /* "ssh KEY on|off" key references */
	int ssh_mode[CONFIG_MAX_LIST]; /* SSHPROTO_KEY_ON / _OFF */
	size_t nssh;
	char *touch[CONFIG_MAX_LIST]; /* "touch_timeout KEY SECONDS" refs */
	long touch_s[CONFIG_MAX_LIST];
	size_t ntouch;
	char *keys[CONFIG_MAX_LIST]; /* serve only these (empty: all) */
	size_t nkeys;
	long pin_timeout; /* seconds; -1 unset */
	long max_conns, idle_timeout, frame_timeout, write_timeout, workers;
};

/* Sets every field to "unset". */
void config_init(struct agent_config *c);
/* Frees every string; leaves c initialised.  */
void config_free(struct agent_config *c);

/*
 * Reads path into c (on top of what c holds).  Returns 0, or
 * TS_ERR_CONFIG with "FILE:LINE: problem" in why, or TS_ERR_SYSTEM
 * (unreadable; reason in why).
 */
int config_load(const char *path, struct agent_config *c, char *why,
    size_t whylen) __attribute__((warn_unused_result));
/* Parses one "keyword value..." line (CLI and tests); as config_load. */
int config_line(struct agent_config *c, const char *line, char *why,
    size_t whylen) __attribute__((warn_unused_result));

/* Looks up a user or group by name or number; 0 or TS_ERR_NOT_FOUND. */
int config_parse_uid(const char *s, uid_t *out);
int config_parse_gid(const char *s, gid_t *out);
/* Parses a duration: N, Ns, Nm, Nh; returns seconds or -1. */
long config_parse_duration(const char *s);

#endif /* TS_AGENT_CONFIG_H */
