/*
 * main.c - tokensign, the client: a table of subcommands (style.md
 * section 1).  Start-up does nothing but dispatch, so `tokensign version`
 * stays cheap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/commands.h"
#include "common/log.h"
#include "pkcs11/uri.h"

struct cmd_entry {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct cmd_entry cmd_table[] = {
	{ "sign", cmd_sign_image, "sign images in their registry" },
	{ "attach", cmd_attach, "attach signature: upload a detached one" },
	{ "verify", cmd_verify, "verify cosign signatures with a public key" },
	{ "triangulate", cmd_triangulate, "print an image's signature tag" },
	{ "tree", cmd_tree, "list an image's signatures" },
	{ "keys", cmd_agent_keys, "list the agent's keys" },
	{ "public-key", cmd_public_key, "print a key's public key (PEM)" },
	{ "ssh-keys", cmd_ssh_keys, "print keys as authorized_keys lines" },
	{ "agent", cmd_agent, "agent status, lock, unlock, sign" },
	{ "audit", cmd_audit, "verify the agent's audit log chain" },
	{ "pkcs11", cmd_pkcs11, "list tokens and keys, sign with a token" },
	{ "version", cmd_version, "print the version" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f,
	    "usage: tokensign [--agent tls://HOST:PORT|SOCKET] [--tls-cert F "
	    "--tls-key F --tls-ca F]\n"
	    "                 COMMAND [ARGS]\n\ncommands:\n");
	for (i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++)
		fprintf(
		    f, "  %-14s %s\n", cmd_table[i].name, cmd_table[i].summary);
	fprintf(f,
	    "\nRun 'tokensign COMMAND --help' for a command's "
	    "options.\n");
}

/*
 * Returns 1 when an argument holds a PKCS#11 URI carrying pin-value
 * ("--key", "--key=pkcs11:...", a positional URI): argv is readable by
 * every user (/proc/PID/cmdline), so such a PIN has already leaked and
 * must not be used or encouraged.
 */
static int
argv_has_pin_value(int argc, char **argv)
{
	struct p11_uri *uri;
	char err[P11_URI_ERRBUF_SIZE];
	const char *u;
	int i, pin;

	for (i = 1; i < argc; i++) {
		if ((u = strcasestr(argv[i], "pkcs11:")) == NULL ||
		    strcasestr(u, "pin-value") == NULL)
			continue;
		uri = NULL;
		if (p11_uri_parse(u, &uri, err, sizeof(err)) != 0)
			continue; /* the command reports a bad URI */
		pin = p11_uri_get(uri, P11_URI_PIN_VALUE) != NULL;
		p11_uri_free(uri);
		if (pin)
			return 1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	size_t i;

	ts_log_init("tokensign", TS_LOG_INFO, 0);
	if (argv_has_pin_value(argc, argv)) {
		fprintf(stderr,
		    "tokensign: refusing a URI with pin-value on the command "
		    "line (other users can read it); the agent holds the PIN "
		    "(--pin-source), and tokensign pkcs11 takes --pin-source "
		    "FILE or --pin-env VAR\n");
		return TS_EXIT_USAGE;
	}
	/* Global agent options (issue 5): --agent, --tls-cert/key/ca. */
	while (argc >= 3 && strncmp(argv[1], "--", 2) == 0) {
		static const char *const glob[][2] = {
			{ "--agent", "TOKENSIGN_AGENT" },
			{ "--tls-cert", "TOKENSIGN_TLS_CERT" },
			{ "--tls-key", "TOKENSIGN_TLS_KEY" },
			{ "--tls-ca", "TOKENSIGN_TLS_CA" },
		};
		for (i = 0; i < sizeof(glob) / sizeof(glob[0]); i++)
			if (strcmp(argv[1], glob[i][0]) == 0)
				break;
		if (i == sizeof(glob) / sizeof(glob[0]))
			break;
		if (setenv(glob[i][1], argv[2], 1) != 0)
			return TS_EXIT_USAGE;
		argv[2] = argv[0];
		argv += 2;
		argc -= 2;
	}
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
