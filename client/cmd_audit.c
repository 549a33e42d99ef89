/*
 * cmd_audit.c - `tokensign audit verify FILE [--head HEX]`: checks the
 * agent's hash-chained audit log (agent/audit.h): every line is a JSON
 * object whose "prev" is the SHA-256 of the previous line (64 zeros for
 * the first).  An edited or deleted line breaks the chain at the line
 * after it.  Removing lines at the end cannot be seen from the file
 * alone: --head compares the last line's hash with one noted earlier
 * (the agent logs it at exit).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "client/commands.h"

#define AUDIT_VERIFY_LINE_MAX 65536

static void
hex32(const unsigned char *md, char *out)
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
}

static int
audit_verify(const char *path, const char *head)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char expect[65], *line = NULL;
	json_t *o = NULL, *prev;
	json_error_t jerr;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	FILE *f;
	int rc = TS_EXIT_FAILURE;

	memset(expect, '0', 64);
	expect[64] = '\0';
	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "tokensign: %s: %s\n", path, strerror(errno));
		return TS_EXIT_FAILURE;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (n > AUDIT_VERIFY_LINE_MAX) {
			fprintf(
			    stderr, "%s:%zu: line too long\n", path, lineno);
			goto out;
		}
		if (line[n - 1] != '\n') {
			fprintf(stderr, "%s:%zu: incomplete last line\n", path,
			    lineno);
			goto out;
		}
		line[--n] = '\0';
		json_decref(o);
		if ((o = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES,
			 &jerr)) == NULL ||
		    !json_is_object(o)) {
			fprintf(stderr, "%s:%zu: not a JSON object\n", path,
			    lineno);
			goto out;
		}
		prev = json_object_get(o, "prev");
		if (!json_is_string(prev) ||
		    strcmp(json_string_value(prev), expect) != 0) {
			fprintf(stderr,
			    "%s:%zu: chain broken: \"prev\" does not match the "
			    "previous line (a line was edited, inserted or "
			    "deleted)\n",
			    path, lineno);
			goto out;
		}
		SHA256((const unsigned char *)line, (size_t)n, md);
		hex32(md, expect);
	}
	if (ferror(f)) {
		fprintf(stderr, "tokensign: %s: read error\n", path);
		goto out;
	}
	if (head != NULL && strcmp(head, expect) != 0) {
		fprintf(stderr,
		    "%s: last line hash %s differs from --head "
		    "(lines removed at the end?)\n",
		    path, expect);
		goto out;
	}
	printf("%s: %zu lines, chain intact, head %s\n", path, lineno, expect);
	rc = TS_EXIT_OK;
out:
	json_decref(o);
	free(line);
	fclose(f);
	return rc;
}

int
cmd_audit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "head", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *head = NULL;
	int ch;

	if (argc < 2 || strcmp(argv[1], "verify") != 0) {
		fprintf(stderr,
		    "usage: tokensign audit verify FILE "
		    "[--head SHA256HEX]\n");
		return TS_EXIT_USAGE;
	}
	optind = 1;
	while ((ch = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (ch != 'H')
			return TS_EXIT_USAGE;
		head = optarg;
	}
	if (optind != argc - 2) {
		fprintf(stderr,
		    "usage: tokensign audit verify FILE "
		    "[--head SHA256HEX]\n");
		return TS_EXIT_USAGE;
	}
	return audit_verify(argv[argc - 1], head);
}
