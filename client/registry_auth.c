/*
 * registry_auth.c - challenge parsing, credential lookup and the token
 * flow.  See docs/internals/registry.md for the order of credential
 * sources and why.
 */
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "client/http.h"
#include "client/registry_auth.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strparse.h"

#define HUB_CONFIG_KEY	 "https://index.docker.io/v1/"
#define HELPER_TIMEOUT_S 30
#define MAX_TOKENS	 16

/* ---- WWW-Authenticate ---------------------------------------------- */

static char *
lower_dup(const struct strslice *s)
{
	char *r = strslice_dup(s, 0);
	size_t i;

	for (i = 0; r != NULL && r[i] != '\0'; i++)
		if (r[i] >= 'A' && r[i] <= 'Z')
			r[i] = (char)(r[i] - 'A' + 'a');
	return r;
}

static int
is_token68(int c)
{
	return strparse_is_alnum(c) || c == '-' || c == '.' || c == '_' ||
	    c == '~' || c == '+' || c == '/';
}

void
wwwauth_clear(struct wwwauth *wa)
{
	size_t i, j;

	for (i = 0; i < wa->n; i++) {
		free(wa->ch[i].scheme);
		for (j = 0; j < wa->ch[i].nparams; j++) {
			free(wa->ch[i].params[j].name);
			free(wa->ch[i].params[j].value);
		}
	}
	memset(wa, 0, sizeof(*wa));
}

/*
 * At sp: is this "name =" (a parameter) rather than the scheme of the
 * next challenge?  Consumes nothing.
 */
static int
looks_like_param(const struct strparse *at)
{
	struct strparse sp = *at;
	struct strslice s;

	if (strparse_span(&sp, strparse_is_tchar, WWWAUTH_MAX_NAME, &s) != 0)
		return 0;
	strparse_blanks(&sp);
	if (strparse_single(&sp, '=') != 0)
		return 0;
	/* "abc==" is token68 padding, not a parameter with value "=" */
	strparse_blanks(&sp);
	return strparse_peek(&sp) == '"' ||
	    (strparse_peek(&sp) > 0 && strparse_is_tchar(strparse_peek(&sp)));
}

int
wwwauth_parse(const char *str, size_t len, struct wwwauth *wa)
{
	struct strparse sp;
	struct strslice s, v;
	struct wwwauth_challenge *c;
	struct wwwauth_param *p;
	int r, esc;

	if (len > WWWAUTH_MAX_LEN)
		return TS_ERR_TOO_LARGE;
	strparse_init(&sp, str, len);
	for (;;) {
		/* skip empty list elements */
		for (;;) {
			strparse_blanks(&sp);
			if (strparse_single(&sp, ',') != 0)
				break;
		}
		if (strparse_left(&sp) == 0)
			return 0;
		if (wa->n == WWWAUTH_MAX_CHALLENGES)
			return TS_ERR_TOO_LARGE;
		if ((r = strparse_span(
			 &sp, strparse_is_tchar, WWWAUTH_MAX_NAME, &s)) != 0)
			return r;
		c = &wa->ch[wa->n];
		memset(c, 0, sizeof(*c));
		if ((c->scheme = lower_dup(&s)) == NULL)
			return TS_ERR_ALLOC;
		wa->n++;
		strparse_blanks(&sp);
		/* token68 form ("Basic abc=="): skipped, registries use params */
		if (strparse_left(&sp) > 0 && !looks_like_param(&sp) &&
		    strparse_peek(&sp) != ',') {
			if ((r = strparse_span(
				 &sp, is_token68, WWWAUTH_MAX_VALUE, &s)) != 0)
				return r;
			while (strparse_single(&sp, '=') == 0)
				;
			strparse_blanks(&sp);
			if (strparse_left(&sp) > 0 && strparse_peek(&sp) != ',')
				return TS_ERR_PARSE;
			continue;
		}
		/* #auth-param */
		for (;;) {
			strparse_blanks(&sp);
			if (!looks_like_param(&sp))
				break;
			if (c->nparams == WWWAUTH_MAX_PARAMS)
				return TS_ERR_TOO_LARGE;
			if ((r = strparse_span(&sp, strparse_is_tchar,
				 WWWAUTH_MAX_NAME, &s)) != 0)
				return r;
			strparse_blanks(&sp);
			if ((r = strparse_single(&sp, '=')) != 0)
				return r;
			strparse_blanks(&sp);
			esc = 0;
			if (strparse_peek(&sp) == '"')
				r = strparse_quoted(
				    &sp, WWWAUTH_MAX_VALUE, &v, &esc);
			else
				r = strparse_span(&sp, strparse_is_tchar,
				    WWWAUTH_MAX_VALUE, &v);
			if (r != 0)
				return r;
			p = &c->params[c->nparams];
			p->name = lower_dup(&s);
			p->value = strslice_dup(&v, esc);
			if (p->name == NULL || p->value == NULL) {
				free(p->name);
				free(p->value);
				p->name = p->value = NULL;
				return TS_ERR_ALLOC;
			}
			c->nparams++;
			strparse_blanks(&sp);
			if (strparse_left(&sp) == 0)
				return 0;
			if ((r = strparse_single(&sp, ',')) != 0)
				return r;
			/* after ',' either another param or a new challenge */
			for (;;) {
				strparse_blanks(&sp);
				if (strparse_single(&sp, ',') != 0)
					break;
			}
			if (!looks_like_param(&sp))
				break;
		}
	}
}

const char *
wwwauth_param(const struct wwwauth_challenge *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nparams; i++)
		if (strcmp(c->params[i].name, name) == 0)
			return c->params[i].value;
	return NULL;
}

/*
 * Wipes a secret held in a jansson string before the tree is freed.
 * jansson gives only a const pointer to memory it owns and frees.
 */
static void
wipe_json_string(json_t *v)
{
	OPENSSL_cleanse(
	    (void *)(uintptr_t)json_string_value(v), json_string_length(v));
}

/* ---- base64 ---------------------------------------------------------- */

char *
regauth_b64_encode(const void *data, size_t len)
{
	char *out;

	if (len > 64 * 1024 * 1024)
		return NULL;
	if ((out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

int
regauth_b64_decode(const char *s, unsigned char **out, size_t *out_len)
{
	size_t len = strlen(s), pad = 0, i;
	unsigned char *buf;
	int n;

	*out = NULL;
	*out_len = 0;
	if (len % 4 != 0 || len > 16 * 1024 * 1024)
		return TS_ERR_BASE64;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			(ch >= '0' && ch <= '9') || ch == '+' || ch == '/' ||
			(ch == '=' && i >= len - 2)))
			return TS_ERR_BASE64;
	}
	if (len > 0 && s[len - 1] == '=')
		pad++;
	if (len > 1 && s[len - 2] == '=')
		pad++;
	if (pad == 1 && len > 1 && s[len - 2] == '=')
		return TS_ERR_BASE64;
	if ((buf = malloc(len / 4 * 3 + 1)) == NULL)
		return TS_ERR_ALLOC;
	n = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)len);
	if (n < 0 || (size_t)n < pad) {
		free(buf);
		return TS_ERR_BASE64;
	}
	*out_len = (size_t)n - pad;
	buf[*out_len] = '\0';
	*out = buf;
	return 0;
}

/* ---- credentials ----------------------------------------------------- */

static void
freestr(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void
regcreds_free(struct regcreds *c)
{
	if (c == NULL)
		return;
	freestr(c->username);
	freestr(c->password);
	freestr(c->identity_token);
	freestr(c->registry_token);
	free(c);
}

static int
read_file_capped(const char *path, size_t max, char **out, size_t *out_len)
{
	FILE *f;
	char *buf = NULL;
	size_t n;
	int r = TS_ERR_INTERNAL;

	*out = NULL;
	*out_len = 0;
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? TS_ERR_NOT_FOUND : TS_ERR_CREDENTIALS;
	if ((buf = malloc(max + 1)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		error("cannot read %.200s", path);
		r = TS_ERR_CREDENTIALS;
		goto out;
	}
	if (n > max) {
		error("%.200s is larger than %zu bytes", path, max);
		r = TS_ERR_CREDENTIALS;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	buf = NULL;
	r = 0;
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, max + 1);
		free(buf);
	}
	fclose(f);
	return r;
}

static int
load_json(const char *path, json_t **doc)
{
	char *buf = NULL, why[TSJSON_WHY_MAX];
	size_t len;
	int r;

	*doc = NULL;
	if ((r = read_file_capped(path, REGAUTH_MAX_CONFIG, &buf, &len)) != 0)
		return r;
	r = tsjson_parse(
	    buf, len, REGAUTH_MAX_CONFIG, TSJSON_OBJECT, doc, why, sizeof(why));
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (r != 0) {
		error("%.200s: %s", path, why);
		return TS_ERR_CREDENTIALS;
	}
	return 0;
}

/* Reduces a config key ("https://host:5000/v1/") to "host:5000". */
static void
key_hostname(const char *key, char *buf, size_t len)
{
	const char *p = key, *end;
	size_t n;

	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	else if (strncmp(p, "https://", 8) == 0)
		p += 8;
	end = strchr(p, '/');
	n = end ? (size_t)(end - p) : strlen(p);
	if (n >= len)
		n = len - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
}

static int
is_hub(const char *registry)
{
	return strcmp(registry, "docker.io") == 0;
}

/* Decodes an auths entry ({"auth": b64(user:pass)} or username/password). */
static int
creds_from_entry(const json_t *e, const char *where, struct regcreds **out)
{
	struct regcreds *c = NULL;
	const json_t *v;
	unsigned char *raw = NULL;
	size_t rawlen = 0, ul;
	char *colon;
	int r = TS_ERR_INTERNAL;

	*out = NULL;
	if (!json_is_object(e)) {
		error("%s: entry is not an object", where);
		return TS_ERR_CREDENTIALS;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return TS_ERR_ALLOC;
	if ((v = json_object_get(e, "auth")) != NULL && json_is_string(v) &&
	    json_string_length(v) > 0) {
		if (regauth_b64_decode(json_string_value(v), &raw, &rawlen) !=
			0 ||
		    memchr(raw, '\0', rawlen) != NULL ||
		    (colon = strchr((char *)raw, ':')) == NULL) {
			error("%s: \"auth\" is not base64 of user:password",
			    where);
			r = TS_ERR_CREDENTIALS;
			goto out;
		}
		ul = (size_t)(colon - (char *)raw);
		if (ul == 0) {
			error("%s: \"auth\" has an empty user name", where);
			r = TS_ERR_CREDENTIALS;
			goto out;
		}
		c->username = strndup((char *)raw, ul);
		c->password = strdup(colon + 1);
		if (c->username == NULL || c->password == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
	} else if ((v = json_object_get(e, "username")) != NULL &&
	    json_is_string(v)) {
		const json_t *pw = json_object_get(e, "password");

		c->username = strdup(json_string_value(v));
		c->password =
		    strdup(json_is_string(pw) ? json_string_value(pw) : "");
		if (c->username == NULL || c->password == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
	}
	if ((v = json_object_get(e, "identitytoken")) != NULL &&
	    json_is_string(v) && json_string_length(v) > 0 &&
	    (c->identity_token = strdup(json_string_value(v))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if ((v = json_object_get(e, "registrytoken")) != NULL &&
	    json_is_string(v) && json_string_length(v) > 0 &&
	    (c->registry_token = strdup(json_string_value(v))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if (c->username == NULL && c->registry_token == NULL &&
	    c->identity_token == NULL) {
		r = TS_ERR_NOT_FOUND;
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	if (raw != NULL) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	regcreds_free(c);
	return r;
}

/* Docker-style lookup in "auths": exact key, then key reduced to host. */
static const json_t *
auths_find_docker(json_t *auths, const char *registry)
{
	const char *key;
	json_t *v;
	char h[512];

	if (!json_is_object(auths))
		return NULL;
	if (is_hub(registry)) {
		if ((v = json_object_get(auths, HUB_CONFIG_KEY)) != NULL)
			return v;
		if ((v = json_object_get(auths, "docker.io")) != NULL)
			return v;
		if ((v = json_object_get(auths, "index.docker.io")) != NULL)
			return v;
		return NULL;
	}
	if ((v = json_object_get(auths, registry)) != NULL)
		return v;
	json_object_foreach(auths, key, v)
	{
		key_hostname(key, h, sizeof(h));
		if (strcmp(h, registry) == 0)
			return v;
	}
	return NULL;
}

/* containers auth.json: "host/ns/repo", then shorter, then "host". */
static const json_t *
auths_find_containers(
    json_t *auths, const char *registry, const char *repository)
{
	char key[1024];
	char *slash;
	json_t *v;

	if (!json_is_object(auths))
		return NULL;
	snprintf(key, sizeof(key), "%s/%s", registry, repository);
	for (;;) {
		if ((v = json_object_get(auths, key)) != NULL)
			return v;
		if ((slash = strrchr(key, '/')) == NULL)
			break;
		*slash = '\0';
	}
	return auths_find_docker(auths, registry);
}

static int
valid_helper_name(const char *s)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) > 64)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!strparse_is_alnum(s[i]) && s[i] != '-' && s[i] != '_' &&
		    s[i] != '.')
			return 0;
	return 1;
}

/*
 * Runs "docker-credential-<name> get" with the server URL on stdin
 * (formats.md 6.3).  The secret arrives on stdout, never via argv.
 */
static int
run_helper(const char *name, const char *server, struct regcreds **out)
{
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, st = 0, r;
	char prog[128], *buf = NULL, why[TSJSON_WHY_MAX];
	size_t len = 0;
	ssize_t n;
	pid_t pid = -1;
	json_t *doc = NULL;
	const char *user = NULL, *secret = NULL;
	size_t ulen, slen;
	struct regcreds *c = NULL;
	struct pollfd pfd;

	*out = NULL;
	if (!valid_helper_name(name)) {
		error("credential helper name '%.64s' is not valid", name);
		return TS_ERR_CREDENTIALS;
	}
	snprintf(prog, sizeof(prog), "docker-credential-%s", name);
	if ((buf = malloc(REGAUTH_MAX_HELPER_OUT + 1)) == NULL)
		return TS_ERR_ALLOC;
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(outp, O_CLOEXEC) != 0) {
		r = TS_ERR_SYSTEM;
		goto out;
	}
	if ((pid = fork()) == -1) {
		r = TS_ERR_SYSTEM;
		goto out;
	}
	if (pid == 0) {
		char get[] = "get";
		char *argv[] = { prog, get, NULL };

		if (dup2(in[0], 0) == -1 || dup2(outp[1], 1) == -1)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvp(prog, argv);
		_exit(127);
	}
	close(in[0]);
	close(outp[1]);
	in[0] = outp[1] = -1;
	{
		/* small write to a pipe: cannot block on a 64 KiB buffer */
		size_t sl = strlen(server), w = 0;
		void (*old)(int) = signal(SIGPIPE, SIG_IGN);

		while (w < sl) {
			n = write(in[1], server + w, sl - w);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			w += (size_t)n;
		}
		signal(SIGPIPE, old);
		close(in[1]);
		in[1] = -1;
	}
	pfd.fd = outp[0];
	pfd.events = POLLIN;
	for (;;) {
		int pr = poll(&pfd, 1, HELPER_TIMEOUT_S * 1000);

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0) {
			error("credential helper %s timed out", prog);
			kill(pid, SIGKILL);
			r = TS_ERR_CREDENTIALS;
			goto out;
		}
		n = read(outp[0], buf + len, REGAUTH_MAX_HELPER_OUT + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > REGAUTH_MAX_HELPER_OUT) {
			error("credential helper %s: output too large", prog);
			kill(pid, SIGKILL);
			r = TS_ERR_CREDENTIALS;
			goto out;
		}
	}
	buf[len] = '\0';
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	pid = -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		if (strstr(buf, "credentials not found") != NULL) {
			r = TS_ERR_NOT_FOUND;
			goto out;
		}
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127 && len == 0)
			error("credential helper %s not found on PATH", prog);
		else
			error("credential helper %s failed: %.100s", prog,
			    len ? "(message on stdout withheld)" : "no output");
		r = TS_ERR_CREDENTIALS;
		goto out;
	}
	if (tsjson_parse(buf, len, REGAUTH_MAX_HELPER_OUT, TSJSON_OBJECT, &doc,
		why, sizeof(why)) != 0 ||
	    tsjson_get_string(doc, "Username", "helper output", &user, &ulen,
		why, sizeof(why)) != 0 ||
	    tsjson_get_string(doc, "Secret", "helper output", &secret, &slen,
		why, sizeof(why)) != 0) {
		error("credential helper %s: bad output: %s", prog, why);
		r = TS_ERR_CREDENTIALS;
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	if (strcmp(user, "<token>") == 0)
		c->identity_token = strdup(secret);
	else {
		c->username = strdup(user);
		c->password = strdup(secret);
	}
	if ((c->identity_token == NULL && c->username == NULL) ||
	    (c->username != NULL && c->password == NULL)) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	*out = c;
	c = NULL;
	r = 0;
out:
	if (pid > 0) {
		while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
			;
	}
	if (in[0] != -1)
		close(in[0]);
	if (in[1] != -1)
		close(in[1]);
	if (outp[0] != -1)
		close(outp[0]);
	if (outp[1] != -1)
		close(outp[1]);
	if (doc != NULL) {
		/* the secret lives inside the json tree: wipe its string */
		json_t *sv = json_object_get(doc, "Secret");

		if (json_is_string(sv))
			wipe_json_string(sv);
		json_decref(doc);
	}
	OPENSSL_cleanse(buf, REGAUTH_MAX_HELPER_OUT + 1);
	free(buf);
	regcreds_free(c);
	return r;
}

static int
lookup_containers(const char *path, const char *registry,
    const char *repository, struct regcreds **out)
{
	json_t *doc = NULL;
	const json_t *e;
	char where[600];
	int r;

	*out = NULL;
	if ((r = load_json(path, &doc)) != 0)
		return r;
	e = auths_find_containers(
	    json_object_get(doc, "auths"), registry, repository);
	snprintf(where, sizeof(where), "%.500s: auths", path);
	r = e == NULL ? TS_ERR_NOT_FOUND : creds_from_entry(e, where, out);
	json_decref(doc);
	return r;
}

static int
lookup_docker(const char *path, const char *registry, struct regcreds **out)
{
	json_t *doc = NULL, *helpers, *h, *store;
	const json_t *e;
	char where[600];
	const char *server = is_hub(registry) ? HUB_CONFIG_KEY : registry;
	int r;

	*out = NULL;
	if ((r = load_json(path, &doc)) != 0)
		return r;
	/* credHelpers[host] first, then credsStore, then auths (6.2) */
	helpers = json_object_get(doc, "credHelpers");
	if (json_is_object(helpers) &&
	    ((h = json_object_get(helpers, registry)) != NULL ||
		(is_hub(registry) &&
		    (h = json_object_get(helpers, HUB_CONFIG_KEY)) != NULL)) &&
	    json_is_string(h)) {
		r = run_helper(json_string_value(h), server, out);
		goto done;
	}
	store = json_object_get(doc, "credsStore");
	if (json_is_string(store) && json_string_length(store) > 0) {
		r = run_helper(json_string_value(store), server, out);
		if (r != TS_ERR_NOT_FOUND)
			goto done;
	}
	e = auths_find_docker(json_object_get(doc, "auths"), registry);
	snprintf(where, sizeof(where), "%.500s: auths", path);
	r = e == NULL ? TS_ERR_NOT_FOUND : creds_from_entry(e, where, out);
done:
	json_decref(doc);
	return r;
}

int
regcreds_lookup(
    const char *registry, const char *repository, struct regcreds **out)
{
	const char *env;
	char path[4096];
	int r;

	*out = NULL;
	if ((env = getenv("REGISTRY_AUTH_FILE")) != NULL && env[0] != '\0') {
		r = lookup_containers(env, registry, repository, out);
		if (r != TS_ERR_NOT_FOUND)
			return r;
	} else if ((env = getenv("XDG_RUNTIME_DIR")) != NULL &&
	    env[0] != '\0') {
		snprintf(path, sizeof(path), "%s/containers/auth.json", env);
		r = lookup_containers(path, registry, repository, out);
		if (r != TS_ERR_NOT_FOUND)
			return r;
	}
	if ((env = getenv("DOCKER_CONFIG")) != NULL && env[0] != '\0')
		snprintf(path, sizeof(path), "%s/config.json", env);
	else if ((env = getenv("HOME")) != NULL && env[0] != '\0')
		snprintf(path, sizeof(path), "%s/.docker/config.json", env);
	else
		return TS_ERR_NOT_FOUND;
	return lookup_docker(path, registry, out);
}

/* ---- auth state -------------------------------------------------------- */

enum auth_scheme { AUTH_NONE = 0, AUTH_BASIC, AUTH_BEARER };

struct token {
	char *scope;
	char *value; /* "Bearer <token>" */
};

struct regauth {
	char *registry;
	enum auth_scheme scheme;
	char *realm, *service;
	struct regcreds *creds;
	int creds_loaded;
	char *basic; /* "Basic <b64>" */
	struct token tokens[MAX_TOKENS];
	size_t ntokens;
	unsigned token_requests;
};

struct regauth *
regauth_new(const char *registry)
{
	struct regauth *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	if ((a->registry = strdup(registry)) == NULL) {
		free(a);
		return NULL;
	}
	return a;
}

void
regauth_free(struct regauth *a)
{
	size_t i;

	if (a == NULL)
		return;
	free(a->registry);
	free(a->realm);
	free(a->service);
	regcreds_free(a->creds);
	freestr(a->basic);
	for (i = 0; i < a->ntokens; i++) {
		free(a->tokens[i].scope);
		freestr(a->tokens[i].value);
	}
	free(a);
}

unsigned
regauth_token_requests(const struct regauth *a)
{
	return a->token_requests;
}

static const struct token *
find_token(const struct regauth *a, const char *repository)
{
	size_t i, rl = strlen(repository);

	/* scope is "repository:<repo>:<actions>" */
	for (i = 0; i < a->ntokens; i++)
		if (strncmp(a->tokens[i].scope, "repository:", 11) == 0 &&
		    strncmp(a->tokens[i].scope + 11, repository, rl) == 0 &&
		    a->tokens[i].scope[11 + rl] == ':')
			return &a->tokens[i];
	return NULL;
}

int
regauth_header(struct regauth *a, const char *repository, char **hdr)
{
	const struct token *t;

	*hdr = NULL;
	if (a->creds != NULL && a->creds->registry_token != NULL &&
	    a->scheme == AUTH_BEARER) {
		size_t n = strlen(a->creds->registry_token) + 8;

		if ((*hdr = malloc(n)) == NULL)
			return TS_ERR_ALLOC;
		snprintf(*hdr, n, "Bearer %s", a->creds->registry_token);
		return 0;
	}
	if (a->scheme == AUTH_BASIC && a->basic != NULL) {
		return (*hdr = strdup(a->basic)) == NULL ? TS_ERR_ALLOC : 0;
	}
	if (a->scheme == AUTH_BEARER && (t = find_token(a, repository)) != NULL)
		return (*hdr = strdup(t->value)) == NULL ? TS_ERR_ALLOC : 0;
	return 0;
}

static int
load_creds(struct regauth *a, const char *repository)
{
	int r;

	if (a->creds_loaded)
		return a->creds != NULL ? 0 : TS_ERR_NOT_FOUND;
	a->creds_loaded = 1;
	r = regcreds_lookup(a->registry, repository, &a->creds);
	if (r == 0)
		debug_f("credentials found for %.200s", a->registry);
	return r;
}

static char *
basic_value(const struct regcreds *c)
{
	size_t n = strlen(c->username) + strlen(c->password) + 2, vl;
	char *up, *b64, *v = NULL;

	if ((up = malloc(n)) == NULL)
		return NULL;
	snprintf(up, n, "%s:%s", c->username, c->password);
	b64 = regauth_b64_encode(up, n - 1);
	freestr(up);
	if (b64 == NULL)
		return NULL;
	vl = strlen(b64) + 7;
	if ((v = malloc(vl)) != NULL)
		snprintf(v, vl, "Basic %s", b64);
	freestr(b64);
	return v;
}

/*
 * The OAuth2 form of the token request (distribution's "oauth" token
 * spec) for an identity token, the refresh token `docker login` stores
 * for registries that issue one: POST to the realm with
 * grant_type=refresh_token.  Sets req's method, body and headers; *bodyp
 * (it holds the secret) is the caller's to wipe.
 */
static int
oauth_request(const struct regauth *a, const char *scope, struct http_req *req,
    char **bodyp)
{
	static const char *const hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded", NULL
	};
	const char *kv[10];
	size_t n = 0;

	kv[n++] = "grant_type";
	kv[n++] = "refresh_token";
	if (a->service != NULL) {
		kv[n++] = "service";
		kv[n++] = a->service;
	}
	kv[n++] = "client_id";
	kv[n++] = "tokensign";
	kv[n++] = "scope";
	kv[n++] = scope;
	kv[n++] = "refresh_token";
	kv[n++] = a->creds->identity_token;
	if ((*bodyp = http_form_encode(kv, n / 2)) == NULL)
		return TS_ERR_ALLOC;
	req->method = "POST";
	req->url = a->realm;
	req->headers = hdrs;
	req->body = *bodyp;
	req->body_len = strlen(*bodyp);
	req->body_secret = 1;
	return 0;
}

static int
fetch_token(struct regauth *a, struct http_client *http, const char *scope)
{
	struct http_req req = { 0 };
	struct http_resp *resp = NULL;
	char *url = NULL, *u2 = NULL, *basic = NULL, *form = NULL, desc[512];
	char why[TSJSON_WHY_MAX];
	json_t *doc = NULL, *tv;
	const char *tok = NULL;
	struct token *t;
	size_t n;
	int r = TS_ERR_INTERNAL;

	if (a->ntokens == MAX_TOKENS) {
		free(a->tokens[0].scope);
		freestr(a->tokens[0].value);
		memmove(&a->tokens[0], &a->tokens[1],
		    (MAX_TOKENS - 1) * sizeof(a->tokens[0]));
		a->ntokens--;
	}
	if (a->creds != NULL && a->creds->identity_token != NULL) {
		if ((r = oauth_request(a, scope, &req, &form)) != 0)
			goto out;
	} else {
		url = a->service != NULL
		    ? http_url_add_query(a->realm, "service", a->service)
		    : strdup(a->realm);
		if (url == NULL ||
		    (u2 = http_url_add_query(url, "scope", scope)) == NULL) {
			error("token realm '%.200s' is not a valid URL",
			    a->realm);
			r = TS_ERR_REG_AUTH;
			goto out;
		}
		if (a->creds != NULL && a->creds->username != NULL &&
		    (basic = basic_value(a->creds)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		req.method = "GET";
		req.url = u2;
		req.authorization = basic;
	}
	req.max_body = HTTP_MAX_TOKEN;
	a->token_requests++;
	if ((r = http_do(http, &req, &resp)) != 0)
		goto out;
	if (http_resp_status(resp) != 200) {
		http_resp_describe(resp, desc, sizeof(desc));
		error("token service %.200s refused %s access to %.200s: %s",
		    a->realm,
		    form != NULL ? "the identity token's (OAuth2 refresh)"
			: basic != NULL ? "authenticated"
					: "anonymous",
		    scope, desc);
		r = TS_ERR_REG_AUTH;
		goto out;
	}
	if (tsjson_parse(http_resp_body(resp), http_resp_body_len(resp),
		HTTP_MAX_TOKEN, TSJSON_OBJECT, &doc, why, sizeof(why)) != 0) {
		error("token service answer is not JSON: %s", why);
		r = TS_ERR_REG_AUTH;
		goto out;
	}
	/* "token" or "access_token" (6.1 step 3) */
	if (json_is_string(tv = json_object_get(doc, "token")) &&
	    json_string_length(tv) > 0)
		tok = json_string_value(tv);
	else if (json_is_string(tv = json_object_get(doc, "access_token")) &&
	    json_string_length(tv) > 0)
		tok = json_string_value(tv);
	if (tok == NULL) {
		error("token service answer has no token");
		r = TS_ERR_REG_AUTH;
		goto out;
	}
	for (n = 0; tok[n] != '\0'; n++)
		if ((unsigned char)tok[n] <= 0x20 ||
		    (unsigned char)tok[n] >= 0x7f) {
			error("token service sent a token with bad bytes");
			r = TS_ERR_REG_AUTH;
			goto out;
		}
	t = &a->tokens[a->ntokens];
	n = strlen(tok) + 8;
	t->scope = strdup(scope);
	t->value = malloc(n);
	if (t->scope == NULL || t->value == NULL) {
		free(t->scope);
		free(t->value);
		r = TS_ERR_ALLOC;
		goto out;
	}
	snprintf(t->value, n, "Bearer %s", tok);
	a->ntokens++;
	r = 0;
out:
	if (doc != NULL) {
		json_t *x;

		if (json_is_string(x = json_object_get(doc, "token")))
			wipe_json_string(x);
		if (json_is_string(x = json_object_get(doc, "access_token")))
			wipe_json_string(x);
		json_decref(doc);
	}
	http_resp_free(resp);
	free(url);
	free(u2);
	freestr(basic);
	freestr(form);
	return r;
}

int
regauth_challenge(struct regauth *a, struct http_client *http,
    const struct http_resp *resp, const char *repository, const char *actions)
{
	struct wwwauth wa;
	const struct wwwauth_challenge *pick = NULL;
	const char *h, *realm, *service;
	char scope[1024];
	size_t i, k;
	int r = TS_ERR_INTERNAL, had;

	memset(&wa, 0, sizeof(wa));
	for (k = 0; (h = http_resp_header(resp, "WWW-Authenticate", k)) != NULL;
	     k++) {
		if ((r = wwwauth_parse(h, strlen(h), &wa)) != 0) {
			error("registry %.200s sent a malformed "
			      "WWW-Authenticate header",
			    a->registry);
			r = TS_ERR_REG_AUTH;
			goto out;
		}
	}
	/* the first Bearer or Basic challenge (6.1 step 1) */
	for (i = 0; i < wa.n && pick == NULL; i++)
		if (strcmp(wa.ch[i].scheme, "bearer") == 0 ||
		    strcmp(wa.ch[i].scheme, "basic") == 0)
			pick = &wa.ch[i];
	if (pick == NULL) {
		error("registry %.200s demands authentication without a "
		      "Basic or Bearer challenge",
		    a->registry);
		r = TS_ERR_REG_AUTH;
		goto out;
	}
	r = load_creds(a, repository);
	if (r != 0 && r != TS_ERR_NOT_FOUND) {
		r = TS_ERR_REG_AUTH;
		goto out;
	}
	if (strcmp(pick->scheme, "basic") == 0) {
		if (a->creds == NULL || a->creds->username == NULL) {
			error("registry %.200s requires a login and no "
			      "credentials were found (docker config.json, "
			      "credential helper or containers auth.json)",
			    a->registry);
			r = TS_ERR_REG_AUTH;
			goto out;
		}
		if (a->scheme == AUTH_BASIC && a->basic != NULL) {
			error("registry %.200s rejected the user name or "
			      "password for %.100s",
			    a->registry, a->creds->username);
			r = TS_ERR_REG_AUTH;
			goto out;
		}
		a->scheme = AUTH_BASIC;
		if ((a->basic = basic_value(a->creds)) == NULL) {
			r = TS_ERR_ALLOC;
			goto out;
		}
		r = 0;
		goto out;
	}
	/* Bearer */
	if ((realm = wwwauth_param(pick, "realm")) == NULL ||
	    realm[0] == '\0') {
		error("registry %.200s: Bearer challenge without realm",
		    a->registry);
		r = TS_ERR_REG_AUTH;
		goto out;
	}
	if (a->creds != NULL && a->creds->registry_token != NULL) {
		if (a->scheme == AUTH_BEARER) {
			error("registry %.200s rejected the registry token",
			    a->registry);
			r = TS_ERR_REG_AUTH;
			goto out;
		}
		a->scheme = AUTH_BEARER;
		r = 0;
		goto out;
	}
	service = wwwauth_param(pick, "service");
	snprintf(scope, sizeof(scope), "repository:%s:%s", repository, actions);
	had = a->scheme == AUTH_BEARER && find_token(a, repository) != NULL;
	if (had) {
		const char *err = wwwauth_param(pick, "error");

		/* a token we got was refused: no second try with the same */
		error("registry %.200s refused the token for %.200s%s%.100s",
		    a->registry, scope, err ? ": " : "", err ? err : "");
		r = TS_ERR_REG_AUTH;
		goto out;
	}
	free(a->realm);
	free(a->service);
	a->realm = strdup(realm);
	a->service = service ? strdup(service) : NULL;
	if (a->realm == NULL || (service != NULL && a->service == NULL)) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	a->scheme = AUTH_BEARER;
	if ((r = fetch_token(a, http, scope)) != 0) {
		r = r == TS_ERR_ALLOC ? r : TS_ERR_REG_AUTH;
		goto out;
	}
	r = 0;
out:
	wwwauth_clear(&wa);
	return r;
}
