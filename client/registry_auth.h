/*
 * registry_auth.h - registry authentication (formats.md 6): anonymous,
 * Basic, and the Bearer token flow, with credentials from the docker
 * config (auths, credHelpers, credsStore) and the containers auth file.
 *
 * A struct regauth belongs to one registry and one http client (one job):
 * it keeps the challenge it saw and a token per scope for the whole call.
 *
 * WARNING: credentials and tokens are secrets.  They are never logged,
 * never passed in argv (helpers get the server URL on stdin), and wiped
 * when freed.
 */
#ifndef TS_CLIENT_REGISTRY_AUTH_H
#define TS_CLIENT_REGISTRY_AUTH_H

#include <stddef.h>

struct http_client;
struct http_resp;

#define WWWAUTH_MAX_CHALLENGES 8
#define WWWAUTH_MAX_PARAMS     16
#define WWWAUTH_MAX_NAME       64
#define WWWAUTH_MAX_VALUE      2048
#define WWWAUTH_MAX_LEN	       8192
#define REGAUTH_MAX_HELPER_OUT (64 * 1024)
#define REGAUTH_MAX_CONFIG     (1024 * 1024)

struct wwwauth_param {
	char *name; /* lowercased */
	char *value;
};

struct wwwauth_challenge {
	char *scheme; /* lowercased: "basic", "bearer", ... */
	struct wwwauth_param params[WWWAUTH_MAX_PARAMS];
	size_t nparams;
};

struct wwwauth {
	struct wwwauth_challenge ch[WWWAUTH_MAX_CHALLENGES];
	size_t n;
};

/*
 * Parses WWW-Authenticate header values (RFC 7235: one or more challenges,
 * each a scheme then comma-separated key=value or key="quoted" params)
 * and appends the challenges to *wa (zero it first).  Returns 0,
 * TS_ERR_PARSE or TS_ERR_TOO_LARGE (over the WWWAUTH_MAX_* caps).
 */
int wwwauth_parse(const char *s, size_t len, struct wwwauth *wa)
    __attribute__((warn_unused_result));
/* Frees the strings in wa (not wa itself). */
void wwwauth_clear(struct wwwauth *wa);
/* Returns the value of param name of challenge c, or NULL. */
const char *wwwauth_param(const struct wwwauth_challenge *c, const char *name);

/* Credentials for one registry. */
struct regcreds {
	char *username;
	char *password; /* or a helper's Secret */
	char *identity_token; /* refresh token (not used for exchange yet) */
	char *registry_token; /* sent as Bearer directly */
};

/*
 * Finds credentials for registry ("docker.io" or host[:port]) and
 * repository: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json
 * (most specific key wins), then $DOCKER_CONFIG/config.json or
 * ~/.docker/config.json (credHelpers, credsStore, auths).  Returns 0 with
 * *out (caller regcreds_free()s), TS_ERR_NOT_FOUND when none exist,
 * TS_ERR_CREDENTIALS for a broken file or failing helper (message logged).
 */
int regcreds_lookup(const char *registry, const char *repository,
    struct regcreds **out) __attribute__((warn_unused_result));
/* Wipes and frees; NULL is fine. */
void regcreds_free(struct regcreds *c);

struct regauth;

/* Returns a new auth state for registry, or NULL on OOM. */
struct regauth *regauth_new(const char *registry);
void regauth_free(struct regauth *a);

/*
 * Returns 0 and the Authorization value to send for repository (malloc'd
 * in *hdr; NULL when nothing is known to be needed yet).
 */
int regauth_header(struct regauth *a, const char *repository, char **hdr)
    __attribute__((warn_unused_result));
/*
 * Handles a 401: parses its WWW-Authenticate, loads credentials and, for
 * Bearer, fetches a token for "repository:<repository>:<actions>" with
 * http.  Returns 0 when a retry makes sense (then regauth_header gives the
 * new value), TS_ERR_REG_AUTH when it cannot succeed (reason logged).
 */
int regauth_challenge(struct regauth *a, struct http_client *http,
    const struct http_resp *resp, const char *repository, const char *actions)
    __attribute__((warn_unused_result));
/* Token service requests made (for the request count). */
unsigned regauth_token_requests(const struct regauth *a);

/* Base64 helpers (standard alphabet with padding). */
char *regauth_b64_encode(const void *data, size_t len);
int regauth_b64_decode(const char *s, unsigned char **out, size_t *out_len)
    __attribute__((warn_unused_result));

#endif /* TS_CLIENT_REGISTRY_AUTH_H */
