/*
 * main.c - tokensign, the client: a table of subcommands (style.md
 * section 1).  Start-up does nothing but dispatch, so `tokensign version`
 * stays cheap.
 */
#include <stdio.h>
#include <string.h>

#include "client/commands.h"
#include "common/log.h"

struct cmd_entry {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct cmd_entry cmd_table[] = {
	{ "version", cmd_version, "print the version" },
	{ "pkcs11", cmd_pkcs11, "list tokens and keys, sign with a token" },
	{ "verify", cmd_verify, "verify cosign signatures with a public key" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: tokensign COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
		fprintf(
		    f, "  %-14s %s\n", cmd_table[i].name, cmd_table[i].summary);
	fprintf(f,
	    "\nRun 'tokensign COMMAND --help' for a command's "
	    "options.\n");
}

int
main(int argc, char **argv)
{
	size_t i;

	ts_log_init("tokensign", TS_LOG_INFO, 0);
	if (argc < 2) {
		usage(stderr);
		return TS_EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return TS_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(1, argv + 1);
	for (i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
		if (strcmp(argv[1], cmd_table[i].name) == 0)
			return cmd_table[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "tokensign: unknown command '%.64s'\n", argv[1]);
	usage(stderr);
	return TS_EXIT_USAGE;
}
