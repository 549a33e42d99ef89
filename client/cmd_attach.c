/*
 * cmd_attach.c - tokensign attach signature: store a signature made
 * elsewhere (the cosign KMS plugin, `tokensign agent sign`, `tokensign
 * sign --upload=false`) in the image's "sha256-<hex>.sig" manifest, as
 * cosign's `attach signature` does, with the append/dedupe/settle code of
 * `tokensign sign` (client/sign_upload.h).
 *
 * Unlike cosign, the payload must parse with the strict containers/image
 * rules and name the image's digest, and with --key the signature must
 * verify before anything is written: a signature that no verifier would
 * accept is refused rather than stored.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/commands.h"
#include "client/http.h"
#include "client/ref.h"
#include "client/registry_auth.h"
#include "client/sign_backend.h"
#include "client/sign_upload.h"
#include "client/verify.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/fileio.h"
#include "common/log.h"
#include "common/payload.h"
#include "common/xmalloc.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tokensign attach signature --payload FILE --signature "
	    "FILE\n"
	    "                 [--key PUB.pem|KEYREF] IMAGE\n"
	    "  --payload FILE             the signed simple-signing payload "
	    "bytes\n"
	    "  --signature FILE           its signature: base64 text (as "
	    "cosign writes\n"
	    "                             it) or raw bytes\n"
	    "  --key PUB.pem|KEYREF       verify before uploading: a PEM "
	    "public key file,\n"
	    "                             else an agent key (id, label or "
	    "URI)\n" HTTP_OPTS_USAGE
	    "  -v                         more messages\n");
}

/*
 * Reads a whole regular file of at most max bytes.  Returns 0 and a
 * malloc'd buffer, or an error (logged, naming what and path).
 */
static int
read_file(const char *what, const char *path, size_t max, uint8_t **out,
    size_t *out_len)
{
	int r;

	if ((r = ts_read_file(path, max, TS_FILE_REGULAR, out, out_len)) == 0)
		return 0;
	if (r == TS_ERR_TOO_LARGE)
		error("the %s file %.200s is larger than %zu bytes", what, path,
		    max);
	else if (r == TS_ERR_INVALID_ARG)
		error("the %s file %.200s is not a regular file", what, path);
	else if (r == TS_ERR_NOT_FOUND || r == TS_ERR_SYSTEM) {
		error("cannot open the %s file %.200s: %s", what, path,
		    strerror(errno));
		r = TS_ERR_INVALID_ARG;
	}
	return r;
}

/* Any byte that cannot be in base64 text: then the file is raw bytes. */
static int
is_binary(const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((b[i] < 0x20 && b[i] != '\n' && b[i] != '\r' &&
			b[i] != '\t' && b[i] != ' ') ||
		    b[i] >= 0x7f)
			return 1;
	return 0;
}

/* The signature file as raw signature bytes. */
static int
load_signature(const char *path, uint8_t **sig, size_t *sig_len)
{
	uint8_t *f = NULL;
	size_t n = 0;
	int r;

	*sig = NULL;
	*sig_len = 0;
	if ((r = read_file("signature", path, VERIFY_SIG_B64_MAX, &f, &n)) != 0)
		return r;
	if (n > 0 && is_binary(f, n)) {
		if (n > VERIFY_SIG_MAX_LEN) {
			error("the signature in %.200s is too long", path);
			free(f);
			return TS_ERR_TOO_LARGE;
		}
		*sig = f;
		*sig_len = n;
		return 0;
	}
	while (n > 0 &&
	    (f[n - 1] == '\n' || f[n - 1] == '\r' || f[n - 1] == ' ' ||
		f[n - 1] == '\t'))
		n--;
	if (n == 0) {
		error("the signature file %.200s is empty", path);
		r = TS_ERR_INVALID_ARG;
	} else if ((r = verify_base64_decode((const char *)f, n,
			VERIFY_SIG_MAX_LEN, sig, sig_len)) != 0) {
		error("the signature file %.200s is not standard base64 "
		      "(nor raw signature bytes): %s",
		    path, ts_err(r));
		r = TS_ERR_BASE64;
	}
	free(f);
	return r;
}

/*
 * With --key: a PEM public key file (the strict verifier), otherwise a
 * key of the agent (its public half, from the agent's key list).
 */
static int
check_signature(const char *key, const uint8_t *payload, size_t plen,
    const uint8_t *sig, size_t slen, const struct digest *d)
{
	struct verify_key *vk = NULL;
	struct sign_backend *be = NULL;
	struct verify_policy pol;
	struct stat st;
	char why[256], *b64 = NULL;
	int r;

	if (stat(key, &st) == 0) {
		if ((r = verify_key_load_file(key, &vk, why, sizeof(why))) !=
		    0) {
			error("--key %.200s: %s", key, why);
			return r;
		}
		memset(&pol, 0, sizeof(pol));
		pol.digest = d;
		r = verify_one_raw(
		    vk, payload, plen, sig, slen, &pol, NULL, why, sizeof(why));
		verify_key_free(vk);
		if (r != 0)
			error("the signature does not verify with %.200s: %s: "
			      "nothing attached",
			    key, why);
		return r;
	}
	if ((r = sign_backend_open(key, &be)) != 0)
		return r;
	if ((b64 = regauth_b64_encode(sig, slen)) == NULL)
		fatal_f("out of memory");
	r = sign_backend_verifies(be, payload, plen, b64) ? 0
							  : TS_ERR_SIG_INVALID;
	if (r != 0)
		error("the signature does not verify with the agent's key "
		      "%.200s: nothing attached",
		    key);
	free(b64);
	sign_backend_close(be);
	return r;
}

int
cmd_attach(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "payload", 1, NULL, 'P' },
		{ "signature", 1, NULL, 'S' },
		{ "key", 1, NULL, 'k' },
		{ "verbose", 0, NULL, 'v' },
		{ "help", 0, NULL, 'h' },
		HTTP_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct http_opts hopts = { 0 };
	struct payload *p = NULL;
	struct ref *ref = NULL;
	const char *payload_path = NULL, *sig_path = NULL, *key = NULL;
	uint8_t *payload = NULL, *sig = NULL;
	size_t plen = 0, slen = 0;
	char why[256], *name = NULL, *tag = NULL, *dig = NULL;
	int opt, h, r, rc = TS_EXIT_FAILURE, verbosity = 0, already = 0;

	if (argc < 2 || strcmp(argv[1], "signature") != 0) {
		if (argc >= 2 &&
		    (strcmp(argv[1], "--help") == 0 ||
			strcmp(argv[1], "-h") == 0)) {
			usage(stdout);
			return TS_EXIT_OK;
		}
		error("attach: only 'attach signature' is supported");
		usage(stderr);
		return TS_EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		if ((h = http_opts_handle(&hopts, opt, optarg)) != 0) {
			if (h < 0) {
				rc = TS_EXIT_USAGE;
				goto out;
			}
			continue;
		}
		switch (opt) {
		case 'P':
			payload_path = optarg;
			break;
		case 'S':
			sig_path = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'v':
			verbosity++;
			break;
		case 'h':
			usage(stdout);
			rc = TS_EXIT_OK;
			goto out;
		default:
			usage(stderr);
			rc = TS_EXIT_USAGE;
			goto out;
		}
	}
	if (verbosity > 0)
		ts_log_set_level(verbosity > 1 ? TS_LOG_DEBUG : TS_LOG_VERBOSE);
	if (payload_path == NULL || sig_path == NULL || optind != argc - 1) {
		error("attach signature: --payload, --signature and one IMAGE "
		      "are required");
		usage(stderr);
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (ref_parse(argv[optind], &ref, why, sizeof(why)) != 0) {
		error("%.200s: %s", argv[optind], why);
		rc = TS_EXIT_USAGE;
		goto out;
	}
	/* everything local is checked before the first request */
	if ((r = read_file("payload", payload_path, PAYLOAD_MAX_LEN, &payload,
		 &plen)) != 0) {
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (payload_parse(payload, plen, &p, why, sizeof(why)) != 0) {
		error("the payload in %.200s is not a valid simple-signing "
		      "payload: %s: nothing attached",
		    payload_path, why);
		rc = TS_EXIT_INVALID;
		goto out;
	}
	if ((r = load_signature(sig_path, &sig, &slen)) != 0) {
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (key != NULL &&
	    (r = check_signature(key, payload, plen, sig, slen,
		 payload_manifest_digest(p))) != 0) {
		rc = r == TS_ERR_SIG_INVALID || r == TS_ERR_PAYLOAD_INVALID ||
			r == TS_ERR_DIGEST_MISMATCH
		    ? TS_EXIT_INVALID
		    : sign_exit_status(r);
		goto out;
	}
	/*
	 * cosign attach does not look at docker-reference; a mismatch only
	 * means `tokensign verify IMAGE` will want --identity, so warn.
	 */
	if (verify_ref_normalize(
		payload_docker_reference(p), &name, &tag, &dig) == 0 &&
	    !ref_is_hub(ref) && strcmp(name, ref_identity(ref)) != 0)
		logit("WARNING: the payload names %.200s, not %s: verify it "
		      "with --identity %.200s",
		    payload_docker_reference(p), ref_identity(ref),
		    payload_docker_reference(p));
	if ((r = sign_attach(&hopts, argv[optind], payload, plen, sig, slen,
		 payload_manifest_digest(p), &already)) != 0) {
		rc = r == TS_ERR_DIGEST_MISMATCH ? TS_EXIT_INVALID
						 : sign_exit_status(r);
		goto out;
	}
	logit("%s: signature %s", ref_string(ref),
	    already ? "already present" : "attached");
	rc = TS_EXIT_OK;
out:
	payload_free(p);
	ref_free(ref);
	free(payload);
	free(sig);
	free(name);
	free(tag);
	free(dig);
	http_opts_cleanup(&hopts);
	return rc;
}
