/*
 * cmd_agent.c - `tokensign agent status|lock|unlock|sign`.
 *
 * Passphrases come from the terminal (no echo), a file or an inherited
 * fd, never from argv, and are wiped after use.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <jansson.h>

#include "client/agent_client.h"
#include "client/commands.h"
#include "common/err.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/secmem.h"
#include "pkcs11/pin.h"

#define AGENT_CMD_MAX_ITEMS TS_PROTO_MAX_BATCH
#define AGENT_CMD_FILE_MAX  (4 * 1024 * 1024)

static void
agent_usage(FILE *f)
{
	fprintf(f,
	    "usage: tokensign agent status [--json]\n"
	    "       tokensign agent lock|unlock [--passphrase-file FILE | "
	    "--passphrase-fd N]\n"
	    "       tokensign agent sign [--key KEY] (--payload FILE | "
	    "--digest HEX [--hash ALG])... [-o OUT]\n"
	    "The agent is found through $%s.  unlock also takes a token PIN "
	    "when the\nagent reports \"needs unlock\" after its PIN "
	    "timeout.\n",
	    TS_ENV_AUTH_SOCK);
}

/* Reads a secret from fd (up to TS_PROTO_MAX_PASS, one newline cut). */
static int
read_secret_fd(int fd, char *buf, size_t *lenp)
{
	size_t n = 0;
	ssize_t k;

	*lenp = 0;
	while (n < TS_PROTO_MAX_PASS + 1) {
		k = read(fd, buf + n, TS_PROTO_MAX_PASS + 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return TS_ERR_IO;
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n > TS_PROTO_MAX_PASS)
		return TS_ERR_TOO_LARGE;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0)
		return TS_ERR_INVALID_ARG;
	*lenp = n;
	return 0;
}

static int
get_passphrase(const char *file, int fd, int confirm, char *buf, size_t *lenp)
{
	struct p11_pin *p = NULL, *q = NULL;
	const char *d, *e;
	size_t dl, el;
	int r, own = -1;

	if (file != NULL) {
		if ((own = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
			fprintf(stderr, "tokensign: %s: %s\n", file,
			    strerror(errno));
			return TS_ERR_IO;
		}
		r = read_secret_fd(own, buf, lenp);
		close(own);
		return r;
	}
	if (fd >= 0)
		return read_secret_fd(fd, buf, lenp);
	if ((r = p11_pin_from_prompt("Agent passphrase: ", &p)) != 0)
		return r;
	d = p11_pin_data(p, &dl);
	if (confirm) {
		if ((r = p11_pin_from_prompt("Again: ", &q)) != 0)
			goto out;
		e = p11_pin_data(q, &el);
		if (el != dl || CRYPTO_memcmp(d, e, dl) != 0) {
			fprintf(stderr, "tokensign: passphrases differ\n");
			r = TS_ERR_INVALID_ARG;
			goto out;
		}
	}
	if (dl > TS_PROTO_MAX_PASS) {
		r = TS_ERR_TOO_LARGE;
		goto out;
	}
	memcpy(buf, d, dl);
	*lenp = dl;
	r = 0;
out:
	p11_pin_free(p);
	p11_pin_free(q);
	return r;
}

static int
do_status(struct agent_conn *c)
{
	struct agent_status *s = NULL;
	size_t i;
	int r;

	if ((r = agent_status(c, &s)) != 0)
		return agent_perror(c, r, "status");
	printf("agent: %s, protocol %u\n", agent_name(c), s->version);
	printf("state: %s%s\n",
	    (s->flags & TS_STATUS_LOCKED) ? "locked" : "unlocked",
	    (s->flags & TS_STATUS_NEEDS_UNLOCK)
		? ", needs unlock (token logged out)"
		: "");
	printf("uptime: %llu s\nsignatures: %llu\nerrors: %llu\n"
	       "connections: %u\n",
	    (unsigned long long)s->uptime, (unsigned long long)s->signatures,
	    (unsigned long long)s->errors, s->connections);
	for (i = 0; i < s->ntokens; i++) {
		/*
		 * An empty label: a --token spec not seen yet, or (present)
		 * whose token came and refused to log in.
		 */
		if (s->tokens[i].label[0] == '\0' && s->tokens[i].present)
			printf("token: %s arrived, not served: login failed, "
			       "not tried again (see the agent's log)\n",
			    s->tokens[i].uri);
		else if (s->tokens[i].label[0] == '\0')
			printf("token: %s waiting (not inserted yet)\n",
			    s->tokens[i].uri);
		else
			printf("token: %s %s%s\n", s->tokens[i].label,
			    s->tokens[i].present ? "present" : "absent",
			    s->tokens[i].logged_in ? ", logged in"
						   : ", logged out");
	}
	for (i = 0; i < s->nkeys; i++)
		printf("key: %s %s signatures %llu errors %llu\n",
		    s->keys[i].id, s->keys[i].label,
		    (unsigned long long)s->keys[i].signatures,
		    (unsigned long long)s->keys[i].errors);
	agent_status_free(s);
	return TS_EXIT_OK;
}

/*
 * `agent status --json`: the STATUS reply as one JSON object on one line,
 * for collectors (docs/deployment.md, "Metrics").  Counters are totals
 * since the agent started; "up" is false (with "error") when the agent
 * cannot be asked, so a scrape still gets a well-formed answer.
 */
static int
print_json(json_t *o)
{
	int r;

	r = json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (r != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
		return TS_EXIT_FAILURE;
	return TS_EXIT_OK;
}

static int
status_json_down(int r)
{
	json_t *o;

	if ((o = json_object()) == NULL ||
	    json_object_set_new(o, "up", json_false()) != 0 ||
	    json_object_set_new(o, "error", json_string(ts_err(r))) != 0)
		fatal_f("out of memory");
	(void)print_json(o);
	return TS_EXIT_AGENT;
}

static json_t *
jcount(uint64_t v)
{
	/* json_int_t is long long: a counter never reaches 2^63 */
	return json_integer((json_int_t)v);
}

static int
do_status_json(struct agent_conn *c)
{
	struct agent_status *s = NULL;
	json_t *o = NULL, *toks, *keys, *t;
	size_t i;
	int r, bad = 0, spec;

	if ((r = agent_status(c, &s)) != 0) {
		(void)agent_perror(c, r, "status");
		return status_json_down(r);
	}
	if ((o = json_object()) == NULL || (toks = json_array()) == NULL ||
	    (keys = json_array()) == NULL)
		fatal_f("out of memory");
	bad |= json_object_set_new(o, "up", json_true());
	bad |= json_object_set_new(o, "agent", json_string(agent_name(c)));
	bad |= json_object_set_new(o, "protocol", json_integer(s->version));
	bad |= json_object_set_new(
	    o, "locked", json_boolean(s->flags & TS_STATUS_LOCKED));
	bad |= json_object_set_new(
	    o, "needs_unlock", json_boolean(s->flags & TS_STATUS_NEEDS_UNLOCK));
	bad |= json_object_set_new(o, "uptime_seconds", jcount(s->uptime));
	bad |= json_object_set_new(o, "signatures", jcount(s->signatures));
	bad |= json_object_set_new(o, "errors", jcount(s->errors));
	bad |= json_object_set_new(o, "connections", jcount(s->connections));
	for (i = 0; i < s->ntokens; i++) {
		/* token labels and URIs come from the token: JSON-escaped */
		if ((t = json_object()) == NULL)
			fatal_f("out of memory");
		bad |= json_object_set_new(
		    t, "label", json_string(s->tokens[i].label));
		bad |= json_object_set_new(
		    t, "uri", json_string(s->tokens[i].uri));
		bad |= json_object_set_new(
		    t, "present", json_boolean(s->tokens[i].present));
		bad |= json_object_set_new(
		    t, "logged_in", json_boolean(s->tokens[i].logged_in));
		spec = s->tokens[i].label[0] == '\0';
		bad |= json_object_set_new(
		    t, "waiting", json_boolean(spec && !s->tokens[i].present));
		bad |= json_object_set_new(t, "login_failed",
		    json_boolean(spec && s->tokens[i].present));
		bad |= json_array_append_new(toks, t);
	}
	for (i = 0; i < s->nkeys; i++) {
		if ((t = json_object()) == NULL)
			fatal_f("out of memory");
		bad |= json_object_set_new(t, "id", json_string(s->keys[i].id));
		bad |= json_object_set_new(
		    t, "label", json_string(s->keys[i].label));
		bad |= json_object_set_new(
		    t, "signatures", jcount(s->keys[i].signatures));
		bad |=
		    json_object_set_new(t, "errors", jcount(s->keys[i].errors));
		bad |= json_array_append_new(keys, t);
	}
	bad |= json_object_set_new(o, "tokens", toks);
	bad |= json_object_set_new(o, "keys", keys);
	agent_status_free(s);
	if (bad != 0) {
		/* json_string() refuses invalid UTF-8 from a token label */
		error("status: the agent's reply cannot be rendered as JSON");
		json_decref(o);
		return TS_EXIT_FAILURE;
	}
	return print_json(o);
}

static int
read_file(const char *path, uint8_t **datap, size_t *lenp)
{
	int r;

	if ((r = ts_read_file(path, AGENT_CMD_FILE_MAX, 0, datap, lenp)) == 0)
		return 0;
	if (r == TS_ERR_TOO_LARGE)
		fprintf(stderr, "tokensign: %s: too large\n", path);
	else if (r == TS_ERR_NOT_FOUND || r == TS_ERR_SYSTEM)
		fprintf(stderr, "tokensign: %s: %s\n", path, strerror(errno));
	return r;
}

static int
hex_decode(const char *s, uint8_t *out, size_t max, size_t *lenp)
{
	size_t n = strlen(s), i;
	int hi, lo;

	*lenp = 0;
	if (n % 2 != 0 || n / 2 > max)
		return TS_ERR_INVALID_ARG;
	for (i = 0; i < n / 2; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return TS_ERR_INVALID_ARG;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*lenp = n / 2;
	return 0;
}

static int
write_sig(const char *path, const uint8_t *sig, size_t len)
{
	unsigned char b64[4 * (1024 + 2) / 3 + 4];
	FILE *f;
	int n;

	if (path == NULL) {
		if (len > 1024)
			return TS_ERR_TOO_LARGE;
		n = EVP_EncodeBlock(b64, sig, (int)len);
		printf("%.*s\n", n, (const char *)b64);
		return 0;
	}
	if ((f = fopen(path, "wb")) == NULL) {
		fprintf(stderr, "tokensign: %s: %s\n", path, strerror(errno));
		return TS_ERR_IO;
	}
	if (fwrite(sig, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "tokensign: %s: write failed\n", path);
		remove(path);
		return TS_ERR_IO;
	}
	return 0;
}

static int
do_sign(struct agent_conn *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "payload", required_argument, NULL, 'p' },
		{ "digest", required_argument, NULL, 'd' },
		{ "hash", required_argument, NULL, 'a' },
		{ "output", required_argument, NULL, 'o' },
		{ "batch", no_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_batch_item *items = NULL;
	struct agent_keylist *l = NULL;
	const struct agent_key *k;
	uint8_t **bufs = NULL, *sig = NULL;
	const char *ref = NULL, *out = NULL;
	char *path = NULL;
	size_t n = 0, i, siglen = 0;
	int ch, r, hash = TS_HASH_SHA256, batch = 0, rc = TS_EXIT_FAILURE;

	if ((items = calloc(AGENT_CMD_MAX_ITEMS, sizeof(*items))) == NULL ||
	    (bufs = calloc(AGENT_CMD_MAX_ITEMS, sizeof(*bufs))) == NULL)
		goto out;
	optind = 1;
	while (
	    (ch = getopt_long(argc, argv, "k:p:d:a:o:b", opts, NULL)) != -1) {
		if ((ch == 'p' || ch == 'd') && n >= AGENT_CMD_MAX_ITEMS) {
			fprintf(stderr, "tokensign: at most %d items\n",
			    AGENT_CMD_MAX_ITEMS);
			rc = TS_EXIT_USAGE;
			goto out;
		}
		switch (ch) {
		case 'k':
			ref = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'b':
			batch = 1;
			break;
		case 'a':
			if (strcmp(optarg, "sha256") == 0)
				hash = TS_HASH_SHA256;
			else if (strcmp(optarg, "sha384") == 0)
				hash = TS_HASH_SHA384;
			else if (strcmp(optarg, "sha512") == 0)
				hash = TS_HASH_SHA512;
			else {
				fprintf(stderr,
				    "tokensign: --hash is sha256, "
				    "sha384 or sha512\n");
				rc = TS_EXIT_USAGE;
				goto out;
			}
			break;
		case 'p':
			if (read_file(optarg, &bufs[n], &items[n].len) != 0)
				goto out;
			items[n].kind = TS_BATCH_PAYLOAD;
			items[n].data = bufs[n];
			n++;
			break;
		case 'd':
			if ((bufs[n] = malloc(64)) == NULL ||
			    hex_decode(optarg, bufs[n], 64, &items[n].len) !=
				0 ||
			    items[n].len == 0) {
				fprintf(stderr,
				    "tokensign: --digest takes "
				    "hex (up to 64 bytes)\n");
				rc = TS_EXIT_USAGE;
				n++;
				goto out;
			}
			items[n].kind = TS_BATCH_DIGEST;
			items[n].hash = -1; /* set below from --hash */
			items[n].data = bufs[n];
			n++;
			break;
		default:
			agent_usage(stderr);
			rc = TS_EXIT_USAGE;
			goto out;
		}
	}
	if (n == 0 || optind != argc || ((n > 1 || batch) && out == NULL)) {
		fprintf(stderr,
		    "tokensign: agent sign needs --payload or "
		    "--digest (and -o PREFIX for a batch)\n");
		rc = TS_EXIT_USAGE;
		goto out;
	}
	for (i = 0; i < n; i++)
		if (items[i].kind == TS_BATCH_DIGEST)
			items[i].hash = hash;
	if (ref == NULL) {
		if ((r = agent_list_keys(c, &l)) != 0) {
			rc = agent_perror(c, r, "list keys");
			goto out;
		}
		if ((r = agent_keylist_find(l, NULL, &k)) != 0) {
			fprintf(stderr,
			    "tokensign: the agent has %zu keys: "
			    "choose one with --key\n",
			    l->n);
			rc = TS_EXIT_USAGE;
			goto out;
		}
		ref = k->id;
	}
	if (n == 1 && !batch) {
		if (items[0].kind == TS_BATCH_PAYLOAD)
			r = agent_sign_payload(
			    c, ref, items[0].data, items[0].len, &sig, &siglen);
		else
			r = agent_sign_digest(c, ref, items[0].hash,
			    items[0].data, items[0].len, &sig, &siglen);
		if (r != 0) {
			rc = agent_perror(c, r, "sign");
			goto out;
		}
		if (write_sig(out, sig, siglen) != 0)
			goto out;
		rc = TS_EXIT_OK;
		goto out;
	}
	if ((r = agent_sign_batch(c, ref, items, n)) != 0) {
		rc = agent_perror(c, r, "sign batch");
		goto out;
	}
	rc = TS_EXIT_OK;
	for (i = 0; i < n; i++) {
		free(path);
		if (asprintf(&path, "%s.%zu", out, i + 1) < 0) {
			path = NULL;
			rc = TS_EXIT_FAILURE;
			goto out;
		}
		if (items[i].r != 0) {
			fprintf(stderr, "tokensign: item %zu: %s\n", i + 1,
			    ts_err(items[i].r));
			rc = TS_EXIT_AGENT;
			continue;
		}
		if (write_sig(path, items[i].sig, items[i].siglen) != 0)
			rc = TS_EXIT_FAILURE;
	}
out:
	for (i = 0; items != NULL && i < AGENT_CMD_MAX_ITEMS; i++)
		free(items[i].sig);
	for (i = 0; bufs != NULL && i < n; i++)
		free(bufs[i]);
	free(bufs);
	free(items);
	free(sig);
	free(path);
	agent_keylist_free(l);
	return rc;
}

int
cmd_agent(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "passphrase-file", required_argument, NULL, 'f' },
		{ "passphrase-fd", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_conn *c = NULL;
	const char *sub, *file = NULL;
	char *pass = NULL, *end;
	size_t plen = 0;
	long fd = -1;
	int ch, r, rc = TS_EXIT_FAILURE, json = 0;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0) {
		agent_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? TS_EXIT_USAGE : TS_EXIT_OK;
	}
	sub = argv[1];
	if (strcmp(sub, "status") != 0 && strcmp(sub, "lock") != 0 &&
	    strcmp(sub, "unlock") != 0 && strcmp(sub, "sign") != 0) {
		fprintf(
		    stderr, "tokensign: unknown agent command '%.64s'\n", sub);
		agent_usage(stderr);
		return TS_EXIT_USAGE;
	}
	if (strcmp(sub, "lock") == 0 || strcmp(sub, "unlock") == 0) {
		optind = 1;
		while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) !=
		    -1) {
			if (ch == 'f')
				file = optarg;
			else if (ch == 'F') {
				fd = strtol(optarg, &end, 10);
				if (*optarg == '\0' || *end != '\0' || fd < 0 ||
				    fd > 1024) {
					fprintf(stderr,
					    "tokensign: bad "
					    "--passphrase-fd\n");
					return TS_EXIT_USAGE;
				}
			} else {
				agent_usage(stderr);
				return TS_EXIT_USAGE;
			}
		}
		if (optind != argc - 1) {
			agent_usage(stderr);
			return TS_EXIT_USAGE;
		}
		if ((pass = secmem_alloc(TS_PROTO_MAX_PASS + 1)) == NULL)
			return TS_EXIT_FAILURE;
		if ((r = get_passphrase(
			 file, (int)fd, sub[0] == 'l', pass, &plen)) != 0) {
			fprintf(stderr,
			    "tokensign: cannot read the "
			    "passphrase: %s\n",
			    ts_err(r));
			goto out;
		}
	} else if (strcmp(sub, "status") == 0 &&
	    (argc > 3 || (argc == 3 && strcmp(argv[2], "--json") != 0))) {
		agent_usage(stderr);
		return TS_EXIT_USAGE;
	}
	json = strcmp(sub, "status") == 0 && argc == 3;
	if ((r = agent_connect(NULL, &c)) != 0) {
		rc = agent_perror(NULL, r, "connect");
		if (json)
			rc = status_json_down(r);
		goto out;
	}
	if (strcmp(sub, "status") == 0)
		rc = json ? do_status_json(c) : do_status(c);
	else if (strcmp(sub, "sign") == 0)
		rc = do_sign(c, argc - 1, argv + 1);
	else {
		r = sub[0] == 'l' ? agent_lock(c, pass, plen)
				  : agent_unlock(c, pass, plen);
		if (r != 0)
			rc = agent_perror(c, r, sub);
		else {
			printf("agent %sed\n", sub);
			rc = TS_EXIT_OK;
		}
	}
out:
	if (pass != NULL)
		secmem_free(pass, TS_PROTO_MAX_PASS + 1);
	agent_close(c);
	return rc;
}
