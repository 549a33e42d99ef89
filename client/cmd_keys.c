/*
 * cmd_keys.c - `tokensign keys` and `tokensign public-key`: the agent's
 * keys and their public halves.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/agent_client.h"
#include "client/commands.h"
#include "common/err.h"
#include "common/proto.h"

static void
fp_hex(const uint8_t *fp, char *out)
{
	static const char hx[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 32; i++) {
		out[2 * i] = hx[fp[i] >> 4];
		out[2 * i + 1] = hx[fp[i] & 15];
	}
	out[64] = '\0';
}

int
cmd_agent_keys(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uri", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_conn *c = NULL;
	struct agent_keylist *l = NULL;
	const struct agent_key *k;
	char fp[65];
	size_t i;
	int ch, r, uri = 0, rc = TS_EXIT_FAILURE;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "uh", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			uri = 1;
			break;
		case 'h':
			printf(
			    "usage: tokensign keys [--uri]\n"
			    "Lists the agent's keys: id, type, bits, label, "
			    "token, SHA-256 fingerprint of the public key.\n");
			return TS_EXIT_OK;
		default:
			return TS_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: tokensign keys [--uri]\n");
		return TS_EXIT_USAGE;
	}
	if ((r = agent_connect(NULL, &c)) != 0)
		return agent_perror(NULL, r, "connect");
	if ((r = agent_list_keys(c, &l)) != 0) {
		rc = agent_perror(c, r, "list keys");
		goto out;
	}
	for (i = 0; i < l->n; i++) {
		k = &l->keys[i];
		fp_hex(k->fingerprint, fp);
		printf("%s  %-10s %4u  %-16s %-12s sha256:%s%s\n", k->id,
		    k->type, k->bits, k->label, k->token, fp,
		    (k->flags & TS_KEY_PRESENT) ? "" : "  (token absent)");
		if (uri)
			printf("    %s\n", k->uri);
	}
	if (l->n == 0)
		fprintf(stderr, "tokensign: the agent has no keys\n");
	rc = TS_EXIT_OK;
out:
	agent_keylist_free(l);
	agent_close(c);
	return rc;
}

int
cmd_public_key(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent_conn *c = NULL;
	struct agent_keylist *l = NULL;
	const struct agent_key *k;
	const char *ref = NULL, *outp = NULL;
	char *pem = NULL;
	FILE *f = NULL;
	int ch, r, rc = TS_EXIT_FAILURE;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "k:o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'k':
			ref = optarg;
			break;
		case 'o':
			outp = optarg;
			break;
		case 'h':
			printf("usage: tokensign public-key [--key KEY] "
			       "[-o FILE]\n"
			       "KEY is a key id or label from 'tokensign keys' "
			       "or a PKCS#11 URI;\nit may be omitted when the "
			       "agent has one key.\n");
			return TS_EXIT_OK;
		default:
			return TS_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: tokensign public-key [--key KEY]\n");
		return TS_EXIT_USAGE;
	}
	if ((r = agent_connect(NULL, &c)) != 0)
		return agent_perror(NULL, r, "connect");
	if ((r = agent_list_keys(c, &l)) != 0) {
		rc = agent_perror(c, r, "list keys");
		goto out;
	}
	if ((r = agent_keylist_find(l, ref, &k)) != 0) {
		if (ref == NULL && r == TS_ERR_P11_KEY_AMBIGUOUS)
			fprintf(stderr,
			    "tokensign: the agent has %zu keys: "
			    "choose one with --key\n",
			    l->n);
		else
			fprintf(stderr, "tokensign: key \"%.200s\": %s\n",
			    ref != NULL ? ref : "", ts_err(r));
		rc = TS_EXIT_TOKEN;
		goto out;
	}
	if ((r = agent_key_pem(k, &pem)) != 0) {
		fprintf(stderr, "tokensign: key %s: %s\n", k->id, ts_err(r));
		goto out;
	}
	if (outp != NULL) {
		if ((f = fopen(outp, "w")) == NULL) {
			perror(outp);
			goto out;
		}
		if (fputs(pem, f) < 0 || fclose(f) != 0) {
			f = NULL;
			fprintf(stderr, "tokensign: cannot write %s\n", outp);
			remove(outp);
			goto out;
		}
		f = NULL;
	} else
		fputs(pem, stdout);
	rc = TS_EXIT_OK;
out:
	if (f != NULL)
		fclose(f);
	free(pem);
	agent_keylist_free(l);
	agent_close(c);
	return rc;
}
