/*
 * fuzz_policy.c - the policy file parser (agent/policyrules.c): any bytes
 * must parse or fail cleanly; when they parse, a few decisions over fixed
 * peers and requests must not crash, leak or disagree with themselves.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/policyrules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const uris[] = { "spiffe://ci.example/runner-a" };
static const char *const dns[] = { "runner-a.ci.example" };
static const char *const ak[] = { "ci-run-id" };
static const char *const av[] = { "1" };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policyrules *p = NULL;
	struct policyrules_peer peers[2] = {
		{ .transport = POLICYRULES_PEER_TLS,
		    .cn = "runner-a",
		    .uris = uris,
		    .nuris = 1,
		    .dns = dns,
		    .ndns = 1 },
		{ .transport = POLICYRULES_PEER_UNIX,
		    .uid = 1000,
		    .gid = 1000 },
	};
	struct policyrules_request reqs[2] = {
		{ .op = POLICYRULES_OP_PAYLOAD,
		    .key_id = "sha256:aa",
		    .key_label = "release",
		    .docker_reference = "registry.example.com/team-a/app",
		    .annot_keys = ak,
		    .annot_values = av,
		    .nannot = 1 },
		{ .op = POLICYRULES_OP_DIGEST, .key_label = "release" },
	};
	struct policyrules_decision d;
	struct policyrules_ticket *t;
	char err[256];
	size_t i, j;

	if (policyrules_load_buf(
		(const char *)data, size, &p, err, sizeof(err)) != 0) {
		if (memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		return 0;
	}
	for (i = 0; i < 2; i++) {
		for (j = 0; j < 2; j++) {
			if (policyrules_check(
				p, &peers[i], &reqs[j], 1000, &d, &t) == 0) {
				if (t == NULL || !d.allowed)
					abort();
				policyrules_release(t);
			} else if (t != NULL || d.allowed || d.rule[0] == '\0')
				abort();
		}
	}
	/* reloading the same bytes must succeed too */
	if (policyrules_reload_buf(
		p, (const char *)data, size, err, sizeof(err)) != 0)
		abort();
	policyrules_free(p);
	(void)policyrules_glob_match((const char *)"a/**/b*", "a/x/y/bz");
	return 0;
}
