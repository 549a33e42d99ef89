/*
 * cmd_ssh_keys.c - `tokensign ssh-keys`: the agent's public keys in
 * OpenSSH authorized_keys format, one line per key ssh can use
 * ("<type> <base64 blob> <label>"), for authorized_keys files, git's
 * allowed-signers files and `user.signingkey key::...`.
 *
 * `--pem FILE` converts a PEM public key offline instead (the same line
 * `ssh-keygen -i -m PKCS8 -f FILE` prints, plus the comment), so keys
 * exported with `tokensign public-key` or p11tool need no agent.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "client/agent_client.h"
#include "client/commands.h"
#include "common/err.h"
#include "common/sshkey.h"

static void
ssh_keys_usage(FILE *f)
{
	fprintf(f,
	    "usage: tokensign ssh-keys [--key KEY] [--comment TEXT]\n"
	    "       tokensign ssh-keys --pem FILE [--comment TEXT]\n"
	    "Prints public keys in OpenSSH authorized_keys format.\n");
}

/* Prints the line for one SPKI key; returns 0 or a TS_ERR_* code. */
static int
print_line(const uint8_t *spki, size_t len, const char *comment)
{
	char *line = NULL;
	int r;

	if ((r = sshkey_authorized_line(spki, len, comment, &line)) != 0)
		return r;
	printf("%s\n", line);
	free(line);
	return 0;
}

static int
from_pem(const char *path, const char *comment)
{
	FILE *f = NULL;
	EVP_PKEY *pk = NULL;
	unsigned char *der = NULL;
	int n, r = TS_ERR_INTERNAL;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(
		    stderr, "tokensign: ssh-keys: cannot open %.200s\n", path);
		return TS_EXIT_FAILURE;
	}
	pk = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (pk == NULL || (n = i2d_PUBKEY(pk, &der)) <= 0) {
		ERR_clear_error();
		fprintf(stderr,
		    "tokensign: ssh-keys: %.200s is not a PEM public key\n",
		    path);
		EVP_PKEY_free(pk);
		return TS_EXIT_FAILURE;
	}
	r = print_line(der, (size_t)n, comment);
	if (r != 0)
		fprintf(stderr, "tokensign: ssh-keys: %.200s: %s\n", path,
		    r == TS_ERR_UNSUPPORTED
			? "key type not usable with ssh (P-256, Ed25519, "
			  "RSA >= 2048 only)"
			: ts_err(r));
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	return r == 0 ? TS_EXIT_OK : TS_EXIT_FAILURE;
}

static int
ssh_keys_from_agent(const char *key, const char *comment)
{
	struct agent_conn *c = NULL;
	struct agent_keylist *l = NULL;
	const struct agent_key *k;
	size_t i, printed = 0;
	int r, rc = TS_EXIT_OK;

	if ((r = agent_connect(NULL, &c)) != 0)
		return agent_perror(c, r, "ssh-keys: connect to the agent");
	if ((r = agent_list_keys(c, &l)) != 0) {
		rc = agent_perror(c, r, "ssh-keys: list keys");
		goto out;
	}
	if (key != NULL) {
		if ((r = agent_keylist_find(l, key, &k)) != 0) {
			fprintf(stderr,
			    "tokensign: ssh-keys: key \"%.200s\": %s\n", key,
			    ts_err(r));
			rc = TS_EXIT_TOKEN;
			goto out;
		}
		if ((r = print_line(k->spki, k->spki_len,
			 comment ? comment : k->label)) != 0) {
			fprintf(stderr,
			    "tokensign: ssh-keys: key %s (%s) is not usable "
			    "with ssh (P-256, Ed25519, RSA >= 2048 only)\n",
			    k->id, k->type);
			rc = TS_EXIT_TOKEN;
		}
		goto out;
	}
	/* every key ssh can use; the others (P-384...) are skipped */
	for (i = 0; i < l->n; i++) {
		k = &l->keys[i];
		if (print_line(k->spki, k->spki_len,
			comment ? comment : k->label) == 0)
			printed++;
	}
	if (printed == 0) {
		fprintf(stderr,
		    "tokensign: ssh-keys: the agent holds no key "
		    "usable with ssh\n");
		rc = TS_EXIT_TOKEN;
	}
out:
	agent_keylist_free(l);
	agent_close(c);
	return rc;
}

int
cmd_ssh_keys(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "pem", required_argument, NULL, 'p' },
		{ "comment", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = NULL, *pem = NULL, *comment = NULL;
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "k:p:C:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			key = optarg;
			break;
		case 'p':
			pem = optarg;
			break;
		case 'C':
			comment = optarg;
			break;
		case 'h':
			ssh_keys_usage(stdout);
			return TS_EXIT_OK;
		default:
			ssh_keys_usage(stderr);
			return TS_EXIT_USAGE;
		}
	}
	if (optind != argc || (pem != NULL && key != NULL)) {
		ssh_keys_usage(stderr);
		return TS_EXIT_USAGE;
	}
	if (pem != NULL)
		return from_pem(pem, comment);
	return ssh_keys_from_agent(key, comment);
}
