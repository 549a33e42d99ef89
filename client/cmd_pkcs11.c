/*
 * cmd_pkcs11.c - `tokensign pkcs11 tokens|keys|pubkey|sign`: talk to a
 * token directly, without the agent (debugging, listing URIs).
 *
 * The PIN never comes from argv: --pin-source FILE, --pin-env VAR, a
 * pin-source in the URI, the token's PIN pad (--no-pin) or a prompt on
 * /dev/tty.  A URI given on the command line that carries pin-value is
 * refused, since argv is world-readable in /proc.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "client/commands.h"
#include "common/err.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/secmem.h"
#include "pkcs11/key.h"
#include "pkcs11/pin.h"
#include "pkcs11/provider.h"
#include "pkcs11/sign.h"
#include "pkcs11/token.h"
#include "pkcs11/uri.h"

#define P11CMD_MAX_MESSAGE (64 * 1024 * 1024) /* --message file cap */

struct p11cmd {
	const char *module;
	const char *allow;
	const char *pin_source;
	const char *pin_env;
	int no_pin;
	int json;
	int final_try;
	const char *uri_text;
	const char *digest_hex;
	const char *message;
	const char *out;
	const char *hash;
	struct p11_uri *uri;
	struct p11_provider *prov;
};

static void
p11cmd_usage(FILE *f)
{
	fprintf(f,
	    "usage: tokensign pkcs11 tokens --module PATH [--output json]\n"
	    "       tokensign pkcs11 keys --module PATH [URI] [PIN] "
	    "[--output json]\n"
	    "       tokensign pkcs11 pubkey --module PATH URI\n"
	    "       tokensign pkcs11 sign --module PATH URI (--digest HEX "
	    "[--hash ALG] | --message FILE)\n"
	    "                 [PIN] [--out FILE]\n"
	    "PIN: --pin-source FILE | --pin-env VAR | --no-pin (PIN pad); "
	    "default: the URI's\n"
	    "     pin-source, else a prompt on the terminal.  Never on the "
	    "command line.\n"
	    "--allow-module PATTERNS  comma-separated globs the module's real "
	    "path must\n"
	    "                         match (default %s)\n"
	    "--final-try              allow spending the PIN's last try\n",
	    P11_PROVIDER_ALLOW_DEFAULT);
}

/* Exit status for a TS_ERR_* code. */
static int
p11cmd_exit(int r)
{
	if (r == 0)
		return TS_EXIT_OK;
	if (r == TS_ERR_P11_URI || r == TS_ERR_INVALID_ARG)
		return TS_EXIT_USAGE;
	return TS_EXIT_TOKEN;
}

static int
p11cmd_fail(int r, const char *what)
{
	fprintf(stderr, "tokensign pkcs11: %s: %s\n", what, ts_err(r));
	return p11cmd_exit(r);
}

/* Sanitises token text for a terminal: control bytes become '?'. */
static void
print_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static int
p11cmd_open(struct p11cmd *c)
{
	char err[P11_URI_ERRBUF_SIZE];
	const char *module = c->module;
	int r;

	if (c->uri_text != NULL) {
		if ((r = p11_uri_parse(
			 c->uri_text, &c->uri, err, sizeof(err))) != 0) {
			fprintf(stderr, "tokensign pkcs11: bad URI: %s\n",
			    r == TS_ERR_P11_URI ? err : ts_err(r));
			return TS_EXIT_USAGE;
		}
		if (p11_uri_get(c->uri, P11_URI_PIN_VALUE) != NULL) {
			fprintf(stderr,
			    "tokensign pkcs11: refusing a URI with pin-value "
			    "on the command line (other users can read it); "
			    "use --pin-source FILE or --pin-env VAR\n");
			return TS_EXIT_USAGE;
		}
		if (module == NULL)
			module = p11_uri_get(c->uri, P11_URI_MODULE_PATH);
	}
	if (c->uri == NULL && (c->uri = p11_uri_new()) == NULL)
		return p11cmd_fail(TS_ERR_ALLOC, "URI");
	if (module == NULL) {
		fprintf(stderr,
		    "tokensign pkcs11: --module PATH is required "
		    "(or module-path in the URI)\n");
		return TS_EXIT_USAGE;
	}
	if ((r = p11_provider_open(module, c->allow, &c->prov)) != 0) {
		fprintf(stderr, "tokensign pkcs11: module %.200s: %s\n", module,
		    ts_err(r));
		return p11cmd_exit(r);
	}
	return TS_EXIT_OK;
}

/* Gets the PIN per the options; *pinp NULL means the PIN pad. */
static int
p11cmd_pin(struct p11cmd *c, struct p11_token *tok, struct p11_pin **pinp)
{
	const char *src;
	char prompt[96];
	int r;

	*pinp = NULL;
	if (c->no_pin)
		return 0;
	/* --pin-source takes a plain (maybe relative) path or a file: URI */
	if (c->pin_source != NULL && strncmp(c->pin_source, "file:", 5) != 0 &&
	    c->pin_source[0] != '|')
		return p11_pin_from_file(c->pin_source, pinp);
	if (c->pin_source != NULL)
		return p11_pin_from_source(c->pin_source, pinp);
	if (c->pin_env != NULL)
		return p11_pin_from_env(c->pin_env, pinp);
	if ((src = p11_uri_get(c->uri, P11_URI_PIN_SOURCE)) != NULL)
		return p11_pin_from_source(src, pinp);
	if (p11_token_protected_auth(tok))
		return 0;
	snprintf(prompt, sizeof(prompt),
	    "PIN for token %.32s: ", p11_token_label(tok));
	r = p11_pin_from_prompt(prompt, pinp);
	return r;
}

static int
p11cmd_login(struct p11cmd *c, struct p11_token *tok)
{
	struct p11_pin *pin = NULL;
	int st, r;

	if (p11_token_logged_in(tok))
		return 0;
	if ((r = p11cmd_pin(c, tok, &pin)) != 0)
		return r;
	r = p11_token_login(tok, pin,
	    P11_LOGIN_KEEP_PIN | (c->final_try ? P11_LOGIN_FINAL_TRY : 0));
	p11_pin_free(pin);
	if (r == TS_ERR_P11_PIN_INCORRECT &&
	    (st = p11_token_pin_status(tok)) > 0) {
		if (st & P11_PIN_FINAL_TRY)
			fprintf(stderr,
			    "tokensign pkcs11: warning: one PIN "
			    "try left before the PIN locks\n");
		else if (st & P11_PIN_COUNT_LOW)
			fprintf(stderr,
			    "tokensign pkcs11: warning: the token "
			    "reports few PIN tries left\n");
	}
	return r;
}

static int
cmd_tokens(struct p11cmd *c)
{
	struct p11_token *tok;
	json_t *arr = NULL, *o;
	char *s;
	size_t i, n;

	n = p11_provider_token_count(c->prov);
	if (c->json && (arr = json_array()) == NULL)
		return p11cmd_fail(TS_ERR_ALLOC, "json");
	for (i = 0; i < n; i++) {
		tok = p11_provider_token(c->prov, i);
		if (!p11_token_match_uri(tok, c->uri))
			continue;
		if (c->json) {
			o = json_pack("{s:I,s:s,s:b,s:b,s:s,s:s,s:s,s:s,s:s,"
				      "s:b,s:b}",
			    "slot_id", (json_int_t)p11_token_slot_id(tok),
			    "slot_description", p11_token_slot_description(tok),
			    "present", p11_token_present(tok), "initialized",
			    p11_token_initialized(tok), "label",
			    p11_token_label(tok), "manufacturer",
			    p11_token_manufacturer(tok), "model",
			    p11_token_model(tok), "serial",
			    p11_token_serial(tok), "uri", p11_token_uri(tok),
			    "login_required", p11_token_login_required(tok),
			    "protected_authentication_path",
			    p11_token_protected_auth(tok));
			if (o == NULL || json_array_append_new(arr, o) != 0) {
				json_decref(arr);
				return p11cmd_fail(TS_ERR_ALLOC, "json");
			}
			continue;
		}
		if (!p11_token_present(tok)) {
			printf("slot %llu: (no token) ",
			    (unsigned long long)p11_token_slot_id(tok));
			print_text(stdout, p11_token_slot_description(tok));
			printf("\n");
			continue;
		}
		if (!p11_token_initialized(tok)) {
			printf("slot %llu: (token not initialised) ",
			    (unsigned long long)p11_token_slot_id(tok));
			print_text(stdout, p11_token_slot_description(tok));
			printf("\n");
			continue;
		}
		printf("slot %llu: token '",
		    (unsigned long long)p11_token_slot_id(tok));
		print_text(stdout, p11_token_label(tok));
		printf("' serial ");
		print_text(stdout, p11_token_serial(tok));
		printf("\n  %s\n", p11_token_uri(tok));
	}
	if (c->json) {
		if ((s = json_dumps(arr, JSON_INDENT(2))) == NULL) {
			json_decref(arr);
			return p11cmd_fail(TS_ERR_ALLOC, "json");
		}
		printf("%s\n", s);
		free(s);
		json_decref(arr);
	}
	return TS_EXIT_OK;
}

static char *
hex_of(const uint8_t *v, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	char *s;
	size_t i;

	if ((s = malloc(2 * len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		s[2 * i] = hx[v[i] >> 4];
		s[2 * i + 1] = hx[v[i] & 0xf];
	}
	s[2 * len] = '\0';
	return s;
}

static int
cmd_keys(struct p11cmd *c, int pem_only)
{
	struct p11_token *tok;
	struct p11_key *key;
	json_t *arr = NULL, *o;
	const uint8_t *id;
	char *s, *idhex;
	size_t i, j, n, nk, idlen, shown = 0;
	int want_login, r, rc = TS_EXIT_OK;

	want_login = c->pin_source != NULL || c->pin_env != NULL || c->no_pin ||
	    p11_uri_get(c->uri, P11_URI_PIN_SOURCE) != NULL;
	/*
	 * One PIN, one token: trying it on every token would spend a try on
	 * each whose PIN differs.
	 */
	if (want_login &&
	    (r = p11_provider_find_token(c->prov, c->uri, &tok)) != 0) {
		if (r == TS_ERR_AMBIGUOUS)
			fprintf(stderr,
			    "tokensign pkcs11: several tokens match; name one "
			    "(pkcs11:token=...) to log in with a PIN\n");
		return p11cmd_fail(r, "login");
	}
	if (c->json && (arr = json_array()) == NULL)
		return p11cmd_fail(TS_ERR_ALLOC, "json");
	n = p11_provider_token_count(c->prov);
	for (i = 0; i < n; i++) {
		tok = p11_provider_token(c->prov, i);
		if (!p11_token_present(tok) || !p11_token_initialized(tok) ||
		    !p11_token_match_uri(tok, c->uri))
			continue;
		if (want_login && (r = p11cmd_login(c, tok)) != 0) {
			rc = p11cmd_fail(r, "login");
			goto out;
		}
		nk = p11_token_key_count(tok);
		for (j = 0; j < nk; j++) {
			key = p11_token_key(tok, j);
			if (!p11_key_present(key) ||
			    !p11_key_match_uri(key, c->uri))
				continue;
			shown++;
			if (pem_only) {
				fputs(p11_key_spki_pem(key), stdout);
				continue;
			}
			id = p11_key_id(key, &idlen);
			if ((idhex = hex_of(id, idlen)) == NULL) {
				rc = p11cmd_fail(TS_ERR_ALLOC, "hex");
				goto out;
			}
			if (c->json) {
				o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s,s:s,"
					      "s:b,s:b,s:s}",
				    "uri", p11_key_uri(key), "token",
				    p11_token_label(tok), "label",
				    p11_key_label(key), "id", idhex, "bits",
				    (int)p11_key_bits(key), "type",
				    p11_key_type_name(key), "fingerprint",
				    p11_key_fingerprint_str(key),
				    "always_authenticate",
				    p11_key_always_auth(key), "has_private",
				    p11_key_has_private(key), "public_key_pem",
				    p11_key_spki_pem(key));
				free(idhex);
				if (o == NULL ||
				    json_array_append_new(arr, o) != 0) {
					rc = p11cmd_fail(TS_ERR_ALLOC, "json");
					goto out;
				}
				continue;
			}
			printf("%s\n  %s %u bits, id %s, %s%s\n",
			    p11_key_uri(key), p11_key_type_name(key),
			    p11_key_bits(key), idhex,
			    p11_key_fingerprint_str(key),
			    p11_key_always_auth(key) ? ", always-authenticate"
						     : "");
			free(idhex);
		}
	}
	if (pem_only && shown != 1) {
		rc = p11cmd_fail(shown == 0 ? TS_ERR_P11_KEY_NOT_FOUND
					    : TS_ERR_P11_KEY_AMBIGUOUS,
		    c->uri_text != NULL ? c->uri_text : "pkcs11:");
		goto out;
	}
	if (c->json) {
		if ((s = json_dumps(arr, JSON_INDENT(2))) == NULL) {
			rc = p11cmd_fail(TS_ERR_ALLOC, "json");
			goto out;
		}
		printf("%s\n", s);
		free(s);
	}
out:
	json_decref(arr);
	return rc;
}

/* Decodes hex into out (cap bytes); returns the length or 0 when bad. */
static size_t
unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t i, n = strlen(s);
	int hi, lo;

	if (n == 0 || n % 2 != 0 || n / 2 > cap)
		return 0;
	for (i = 0; i < n / 2; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return 0;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return n / 2;
}

static int
read_file(const char *path, uint8_t **datap, size_t *lenp)
{
	int r;

	if ((r = ts_read_file(path, P11CMD_MAX_MESSAGE, 0, datap, lenp)) == 0)
		return 0;
	if (r == TS_ERR_TOO_LARGE)
		fprintf(stderr,
		    "tokensign pkcs11: %.200s: larger than %d bytes\n", path,
		    P11CMD_MAX_MESSAGE);
	else if (r == TS_ERR_NOT_FOUND || r == TS_ERR_SYSTEM)
		fprintf(stderr, "tokensign pkcs11: %.200s: %s\n", path,
		    strerror(errno));
	return r;
}

/* Writes data to path atomically (temp file + rename): nothing half-written. */
static int
write_file(const char *path, const uint8_t *data, size_t len)
{
	char *tmp = NULL;
	size_t n;
	int fd = -1, r = TS_ERR_SYSTEM;

	n = strlen(path) + 16;
	if ((tmp = malloc(n)) == NULL)
		return TS_ERR_ALLOC;
	snprintf(tmp, n, "%s.tmpXXXXXX", path);
	if ((fd = mkstemp(tmp)) == -1) {
		fprintf(stderr, "tokensign pkcs11: %.200s: %s\n", path,
		    strerror(errno));
		free(tmp);
		return TS_ERR_SYSTEM;
	}
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) != 0 ||
	    close(fd) != 0) {
		fd = -1;
		fprintf(stderr, "tokensign pkcs11: %.200s: %s\n", path,
		    strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		fprintf(stderr, "tokensign pkcs11: %.200s: %s\n", path,
		    strerror(errno));
		goto out;
	}
	r = 0;
out:
	if (fd != -1)
		close(fd);
	if (r != 0)
		unlink(tmp);
	free(tmp);
	return r;
}

static int
p11cmd_sign(struct p11cmd *c)
{
	struct p11_key *key = NULL;
	uint8_t digest[64], *msg = NULL, *sig = NULL;
	char *b64 = NULL;
	size_t dlen = 0, mlen = 0, siglen = 0;
	enum p11_hash alg = P11_HASH_SHA256;
	int r, rc = TS_EXIT_FAILURE;

	if ((c->digest_hex == NULL) == (c->message == NULL)) {
		fprintf(stderr,
		    "tokensign pkcs11 sign: give exactly one of "
		    "--digest HEX and --message FILE\n");
		return TS_EXIT_USAGE;
	}
	if (c->digest_hex != NULL) {
		if ((dlen = unhex(c->digest_hex, digest, sizeof(digest))) ==
		    0) {
			fprintf(stderr,
			    "tokensign pkcs11 sign: --digest must "
			    "be hex (64, 96 or 128 digits)\n");
			return TS_EXIT_USAGE;
		}
		if (c->hash == NULL)
			alg = dlen == 48 ? P11_HASH_SHA384
			    : dlen == 64 ? P11_HASH_SHA512
					 : P11_HASH_SHA256;
		else if (strcmp(c->hash, "sha256") == 0)
			alg = P11_HASH_SHA256;
		else if (strcmp(c->hash, "sha384") == 0)
			alg = P11_HASH_SHA384;
		else if (strcmp(c->hash, "sha512") == 0)
			alg = P11_HASH_SHA512;
		else {
			fprintf(stderr,
			    "tokensign pkcs11 sign: --hash must "
			    "be sha256, sha384 or sha512\n");
			return TS_EXIT_USAGE;
		}
		if (dlen != p11_hash_len(alg)) {
			fprintf(stderr,
			    "tokensign pkcs11 sign: a %s digest is %zu bytes, "
			    "got %zu\n",
			    c->hash != NULL ? c->hash : "sha256",
			    p11_hash_len(alg), dlen);
			return TS_EXIT_USAGE;
		}
	} else if ((r = read_file(c->message, &msg, &mlen)) != 0) {
		return TS_EXIT_FAILURE;
	}
	if ((r = p11_provider_find_key(c->prov, c->uri, &key)) != 0) {
		rc = p11cmd_fail(r, c->uri_text);
		goto out;
	}
	if ((r = p11cmd_login(c, p11_key_token(key))) != 0) {
		rc = p11cmd_fail(r, "login");
		goto out;
	}
	if (msg != NULL)
		r = p11_sign_message(key, msg, mlen, NULL, &sig, &siglen);
	else
		r = p11_sign_digest(
		    key, alg, digest, dlen, NULL, &sig, &siglen);
	if (r != 0) {
		rc = p11cmd_fail(r, "sign");
		goto out;
	}
	if (c->out != NULL) {
		if (write_file(c->out, sig, siglen) != 0)
			goto out;
	} else {
		if ((b64 = malloc(4 * ((siglen + 2) / 3) + 1)) == NULL) {
			rc = p11cmd_fail(TS_ERR_ALLOC, "base64");
			goto out;
		}
		EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
		printf("%s\n", b64);
	}
	rc = TS_EXIT_OK;
out:
	free(msg);
	free(sig);
	free(b64);
	return rc;
}

int
cmd_pkcs11(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "allow-module", required_argument, NULL, 'A' },
		{ "pin-source", required_argument, NULL, 'p' },
		{ "pin-env", required_argument, NULL, 'e' },
		{ "no-pin", no_argument, NULL, 'N' },
		{ "final-try", no_argument, NULL, 'F' },
		{ "output", required_argument, NULL, 'o' },
		{ "digest", required_argument, NULL, 'd' },
		{ "hash", required_argument, NULL, 'H' },
		{ "message", required_argument, NULL, 'M' },
		{ "out", required_argument, NULL, 'O' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct p11cmd c;
	const char *sub;
	int ch, rc;

	memset(&c, 0, sizeof(c));
	if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		p11cmd_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? TS_EXIT_USAGE : TS_EXIT_OK;
	}
	sub = argv[1];
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "m:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			c.module = optarg;
			break;
		case 'A':
			c.allow = optarg;
			break;
		case 'p':
			c.pin_source = optarg;
			break;
		case 'e':
			c.pin_env = optarg;
			break;
		case 'N':
			c.no_pin = 1;
			break;
		case 'F':
			c.final_try = 1;
			break;
		case 'o':
			if (strcmp(optarg, "json") == 0)
				c.json = 1;
			else if (strcmp(optarg, "text") != 0) {
				fprintf(stderr,
				    "tokensign pkcs11: --output "
				    "must be json or text\n");
				return TS_EXIT_USAGE;
			}
			break;
		case 'd':
			c.digest_hex = optarg;
			break;
		case 'H':
			c.hash = optarg;
			break;
		case 'M':
			c.message = optarg;
			break;
		case 'O':
			c.out = optarg;
			break;
		case 'v':
			ts_log_set_level(TS_LOG_DEBUG);
			break;
		case 'h':
			p11cmd_usage(stdout);
			return TS_EXIT_OK;
		default:
			p11cmd_usage(stderr);
			return TS_EXIT_USAGE;
		}
	}
	if ((c.pin_source != NULL) + (c.pin_env != NULL) + c.no_pin > 1) {
		fprintf(stderr,
		    "tokensign pkcs11: give at most one of "
		    "--pin-source, --pin-env, --no-pin\n");
		return TS_EXIT_USAGE;
	}
	if (optind < argc)
		c.uri_text = argv[optind++];
	if (optind < argc) {
		fprintf(stderr,
		    "tokensign pkcs11: unexpected argument "
		    "'%.64s'\n",
		    argv[optind]);
		return TS_EXIT_USAGE;
	}
	if (strcmp(sub, "tokens") != 0 && strcmp(sub, "keys") != 0 &&
	    strcmp(sub, "pubkey") != 0 && strcmp(sub, "sign") != 0) {
		fprintf(stderr,
		    "tokensign pkcs11: unknown subcommand "
		    "'%.64s'\n",
		    sub);
		p11cmd_usage(stderr);
		return TS_EXIT_USAGE;
	}
	if ((strcmp(sub, "sign") == 0 || strcmp(sub, "pubkey") == 0) &&
	    c.uri_text == NULL) {
		fprintf(stderr, "tokensign pkcs11 %s: a key URI is required\n",
		    sub);
		return TS_EXIT_USAGE;
	}
	if ((rc = p11cmd_open(&c)) != TS_EXIT_OK)
		goto out;
	if (strcmp(sub, "tokens") == 0)
		rc = cmd_tokens(&c);
	else if (strcmp(sub, "keys") == 0)
		rc = cmd_keys(&c, 0);
	else if (strcmp(sub, "pubkey") == 0)
		rc = cmd_keys(&c, 1);
	else
		rc = p11cmd_sign(&c);
out:
	p11_uri_free(c.uri);
	p11_provider_free(c.prov);
	return rc;
}
