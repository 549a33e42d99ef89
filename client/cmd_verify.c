/*
 * cmd_verify.c - `tokensign verify`: check cosign signatures with a public
 * key (docs/verify.md).
 *
 *   tokensign verify --key pub.pem [-a k=v]... [--identity REF] --local DIR
 *   tokensign verify --key pub.pem [-a k=v]... --identity REF
 *       --payload FILE --signature FILE --digest DIGEST
 *   tokensign verify --key pub.pem [-a k=v]... [--identity REF] IMAGE
 *
 * --local reads a containers/image `dir:` layout (what `skopeo copy ...
 * dir:DIR` writes): manifest.json, whose sha256 is the expected digest, and
 * signature-1, signature-2, ...; sigstore ones start with
 * "\0sigstore-json\n", others (GPG simple signing) are skipped and counted.
 * The offline modes have no image reference, so --identity names the
 * expected identity and is required.
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
#include "client/regverify.h"
#include "client/verify.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/log.h"
#include "common/payload.h"

#include <openssl/evp.h>

/* containers/image's dir: signature prefix for sigstore attachments */
#define SIGSTORE_PREFIX	    "\0sigstore-json\n"
#define SIGSTORE_PREFIX_LEN 15
/* a manifest.json (c/image caps manifests at 4 MiB) */
#define VERIFY_MANIFEST_MAX (4 * 1024 * 1024)
/* one signature-N file: a 4 MiB payload grows by 4/3 in base64 */
#define VERIFY_SIGFILE_MAX	   (6 * 1024 * 1024)
#define VERIFY_MAX_ANNOTATION_ARGS PAYLOAD_MAX_ANNOTATIONS

struct verify_args {
	const char *key;
	const char *identity;
	const char *local;
	const char *payload;
	const char *signature;
	const char *digest;
	const char *image;
	int recursive;
	struct http_opts hopts;
	struct payload_kv ann[VERIFY_MAX_ANNOTATION_ARGS];
	char *ann_mem[2 * VERIFY_MAX_ANNOTATION_ARGS];
	size_t n_ann;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: tokensign verify --key PUB.pem [-a KEY=VALUE]... "
	    "[--identity REF]\n"
	    "                        [--recursive] [registry options] IMAGE\n"
	    "       tokensign verify --key PUB.pem [-a KEY=VALUE]... "
	    "--identity REF --local DIR\n"
	    "       tokensign verify --key PUB.pem [-a KEY=VALUE]... "
	    "--identity REF\n"
	    "                        --payload FILE --signature FILE "
	    "--digest sha256:HEX\n"
	    "\n"
	    "  --recursive                also verify every child of an "
	    "index\n" HTTP_OPTS_USAGE "\n"
	    "Prints the verified payloads as JSON on stdout and a summary on "
	    "stderr.\n"
	    "Exit status: 0 verified, %d no signatures, %d none valid, %d "
	    "registry error, %d bad arguments.\n",
	    TS_EXIT_NO_SIGNATURES, TS_EXIT_INVALID, TS_EXIT_REGISTRY,
	    TS_EXIT_USAGE);
}

static void
args_free(struct verify_args *a)
{
	size_t i;

	for (i = 0; i < 2 * a->n_ann; i++)
		free(a->ann_mem[i]);
	http_opts_cleanup(&a->hopts);
}

/* Returns 0, or TS_EXIT_USAGE after printing why. */
static int
parse_args(int argc, char **argv, struct verify_args *a)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "annotations", required_argument, NULL, 'a' },
		{ "identity", required_argument, NULL, 'i' },
		{ "local", required_argument, NULL, 'l' },
		{ "payload", required_argument, NULL, 'p' },
		{ "signature", required_argument, NULL, 's' },
		{ "digest", required_argument, NULL, 'd' },
		{ "recursive", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		HTTP_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	char *k, *v;
	int c, r;

	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "a:h", opts, NULL)) != -1) {
		if ((r = http_opts_handle(&a->hopts, c, optarg)) != 0) {
			if (r < 0) {
				error("verify: invalid registry option: %s",
				    ts_err(r));
				return TS_EXIT_USAGE;
			}
			continue;
		}
		switch (c) {
		case 'k':
			a->key = optarg;
			break;
		case 'a':
			if (a->n_ann >= VERIFY_MAX_ANNOTATION_ARGS) {
				error("verify: more than %d -a options",
				    VERIFY_MAX_ANNOTATION_ARGS);
				return TS_EXIT_USAGE;
			}
			if ((r = payload_kv_parse(optarg, &k, &v)) != 0) {
				error("verify: -a \"%.100s\": expected "
				      "KEY=VALUE with a non-empty KEY",
				    optarg);
				return TS_EXIT_USAGE;
			}
			a->ann_mem[2 * a->n_ann] = k;
			a->ann_mem[2 * a->n_ann + 1] = v;
			a->ann[a->n_ann].key = k;
			a->ann[a->n_ann].value = v;
			a->n_ann++;
			break;
		case 'i':
			a->identity = optarg;
			break;
		case 'l':
			a->local = optarg;
			break;
		case 'p':
			a->payload = optarg;
			break;
		case 's':
			a->signature = optarg;
			break;
		case 'd':
			a->digest = optarg;
			break;
		case 'r':
			a->recursive = 1;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return TS_EXIT_USAGE;
		}
	}
	if (optind < argc)
		a->image = argv[optind++];
	if (optind < argc) {
		error("verify: unexpected argument \"%.100s\" (one IMAGE at a "
		      "time)",
		    argv[optind]);
		return TS_EXIT_USAGE;
	}
	if (a->key == NULL) {
		error("verify: --key PUB.pem is required");
		return TS_EXIT_USAGE;
	}
	if ((a->local != NULL) + (a->payload != NULL) + (a->image != NULL) !=
	    1) {
		error("verify: give exactly one of IMAGE, --local DIR or "
		      "--payload FILE");
		usage(stderr);
		return TS_EXIT_USAGE;
	}
	if (a->payload != NULL && (a->signature == NULL || a->digest == NULL)) {
		error("verify: --payload needs --signature FILE and --digest "
		      "DIGEST");
		return TS_EXIT_USAGE;
	}
	if (a->payload == NULL && (a->signature != NULL || a->digest != NULL)) {
		error("verify: --signature and --digest go with --payload");
		return TS_EXIT_USAGE;
	}
	if (a->image == NULL && a->recursive) {
		error("verify: --recursive needs an IMAGE");
		return TS_EXIT_USAGE;
	}
	if (a->image == NULL && a->identity == NULL) {
		error("verify: offline verification has no image reference: "
		      "--identity REF is required");
		return TS_EXIT_USAGE;
	}
	return 0;
}

static void
report_read_error(const char *what, const char *path, int r, size_t max)
{
	if (r == TS_ERR_TOO_LARGE)
		error("verify: %s %.200s is larger than %zu bytes", what, path,
		    max);
	else if (r == TS_ERR_NOT_FOUND)
		error("verify: %s %.200s does not exist", what, path);
	else
		error("verify: cannot read %s %.200s: %s", what, path,
		    strerror(errno));
}

/* One decoded sigstore signature-N file. */
struct sigfile {
	char *source;
	char *media_type;
	uint8_t *payload;
	size_t payload_len;
	char *sig_b64;
	char *certificate;
};

static void
sigfile_clear(struct sigfile *s)
{
	free(s->source);
	free(s->media_type);
	free(s->payload);
	free(s->sig_b64);
	free(s->certificate);
	memset(s, 0, sizeof(*s));
}

static char *
dup_opt(const json_t *ann, const char *key)
{
	json_t *v = json_object_get(ann, key);

	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

/*
 * Parses the JSON after the prefix: exactly {mimeType, payload,
 * annotations} (containers/image internal/signature/sigstore.go), payload
 * standard base64, annotations strings.  Returns 0 or TS_ERR_PARSE with
 * why.
 */
static int
sigfile_parse(const uint8_t *data, size_t len, struct sigfile *s, char *why,
    size_t why_len)
{
	static const char *const keys[] = { "mimeType", "payload",
		"annotations" };
	json_t *root = NULL, *ann;
	const char *mt, *pl, *k;
	json_t *v;
	size_t pll;
	int r;

	if ((r = tsjson_parse(data, len, VERIFY_SIGFILE_MAX, TSJSON_OBJECT,
		 &root, why, why_len)) != 0 ||
	    (r = tsjson_exact_keys(root, keys, 3, "signature", why, why_len)) !=
		0 ||
	    (r = tsjson_get_string(root, "mimeType", "signature", &mt, NULL,
		 why, why_len)) != 0 ||
	    (r = tsjson_get_string(
		 root, "payload", "signature", &pl, &pll, why, why_len)) != 0 ||
	    (r = tsjson_get_object(
		 root, "annotations", "signature", &ann, why, why_len)) != 0)
		goto out;
	r = TS_ERR_PARSE;
	json_object_foreach(ann, k, v)
	{
		if (!json_is_string(v)) {
			snprintf(why, why_len,
			    "annotation \"%.100s\" is not a string", k);
			goto out;
		}
	}
	if (verify_base64_decode(
		pl, pll, PAYLOAD_MAX_LEN, &s->payload, &s->payload_len) != 0) {
		snprintf(why, why_len,
		    "payload is not valid base64 or over "
		    "the size limit");
		goto out;
	}
	if ((s->media_type = strdup(mt)) == NULL) {
		r = TS_ERR_ALLOC;
		goto out;
	}
	s->sig_b64 = dup_opt(ann, "dev.cosignproject.cosign/signature");
	s->certificate = dup_opt(ann, "dev.sigstore.cosign/certificate");
	r = 0;
out:
	json_decref(root);
	return r;
}

static int
verify_local(
    const struct verify_key *k, struct verify_policy *pol, const char *dir)
{
	struct sigfile files[VERIFY_MAX_CANDIDATES];
	struct verify_candidate cand[VERIFY_MAX_CANDIDATES];
	struct digest md;
	uint8_t *buf = NULL;
	size_t len, n = 0, skipped = 0, i;
	char path[4096], why[TSJSON_WHY_MAX];
	int r, status = TS_EXIT_FAILURE;

	memset(files, 0, sizeof(files));
	snprintf(path, sizeof(path), "%s/manifest.json", dir);
	if ((r = ts_read_file(path, VERIFY_MANIFEST_MAX, TS_FILE_REGULAR, &buf,
		 &len)) != 0) {
		report_read_error(
		    "image manifest", path, r, VERIFY_MANIFEST_MAX);
		goto out;
	}
	if ((r = digest_compute(DIGEST_ALG_SHA256, buf, len, &md)) != 0)
		goto out;
	free(buf);
	buf = NULL;
	pol->digest = &md;
	for (i = 1;; i++) {
		snprintf(path, sizeof(path), "%s/signature-%zu", dir, i);
		r = ts_read_file(
		    path, VERIFY_SIGFILE_MAX, TS_FILE_REGULAR, &buf, &len);
		if (r == TS_ERR_NOT_FOUND)
			break;
		if (r != 0) {
			report_read_error(
			    "signature", path, r, VERIFY_SIGFILE_MAX);
			goto out;
		}
		if (len < SIGSTORE_PREFIX_LEN ||
		    memcmp(buf, SIGSTORE_PREFIX, SIGSTORE_PREFIX_LEN) != 0) {
			/* a GPG simple-signing signature: not ours */
			verbose("signature-%zu is not a sigstore signature: "
				"skipped",
			    i);
			skipped++;
		} else {
			if (n >= VERIFY_MAX_CANDIDATES) {
				error("verify: more than %d signatures in "
				      "%.200s",
				    VERIFY_MAX_CANDIDATES, dir);
				status = TS_EXIT_INVALID;
				goto out;
			}
			if (sigfile_parse(buf + SIGSTORE_PREFIX_LEN,
				len - SIGSTORE_PREFIX_LEN, &files[n], why,
				sizeof(why)) != 0) {
				/*
				 * containers/image fails the whole image when
				 * a signature cannot be read: so do we.
				 */
				error("verify: signature-%zu is malformed: %s",
				    i, why);
				status = TS_EXIT_INVALID;
				goto out;
			}
			snprintf(path, sizeof(path), "signature-%zu", i);
			if ((files[n].source = strdup(path)) == NULL)
				goto out;
			cand[n].media_type = files[n].media_type;
			cand[n].payload = files[n].payload;
			cand[n].payload_len = files[n].payload_len;
			cand[n].sig_b64 = files[n].sig_b64;
			cand[n].certificate = files[n].certificate;
			cand[n].source = files[n].source;
			n++;
		}
		free(buf);
		buf = NULL;
	}
	status = verify_and_report(k, cand, n, pol, skipped, stdout, stderr);
out:
	free(buf);
	for (i = 0; i < n + 1 && i < VERIFY_MAX_CANDIDATES; i++)
		sigfile_clear(&files[i]);
	return status;
}

/* Any byte that cannot be in a text file: then the file is raw bytes. */
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

static int
verify_files(const struct verify_key *k, struct verify_policy *pol,
    const struct verify_args *a)
{
	struct verify_candidate cand;
	struct digest d;
	uint8_t *payload = NULL, *sigf = NULL;
	char *sig_b64 = NULL;
	size_t plen, slen;
	const char *why = NULL;
	int r, status = TS_EXIT_FAILURE;

	if ((r = digest_parse_str(a->digest, &d, &why)) != 0) {
		error("verify: --digest \"%.100s\": %s", a->digest, why);
		status = TS_EXIT_USAGE;
		goto out;
	}
	pol->digest = &d;
	if ((r = ts_read_file(a->payload, PAYLOAD_MAX_LEN, TS_FILE_REGULAR,
		 &payload, &plen)) != 0) {
		report_read_error("payload", a->payload, r, PAYLOAD_MAX_LEN);
		goto out;
	}
	if ((r = ts_read_file(a->signature, VERIFY_SIG_B64_MAX, TS_FILE_REGULAR,
		 &sigf, &slen)) != 0) {
		report_read_error(
		    "signature", a->signature, r, VERIFY_SIG_B64_MAX);
		goto out;
	}
	if (is_binary(sigf, slen)) {
		/* raw signature bytes (e.g. DER): encode for the common path */
		if (slen > VERIFY_SIG_MAX_LEN ||
		    (sig_b64 = malloc(4 * ((slen + 2) / 3) + 1)) == NULL) {
			error("verify: signature file %.200s is too large",
			    a->signature);
			goto out;
		}
		EVP_EncodeBlock((unsigned char *)sig_b64, sigf, (int)slen);
	} else {
		/* base64 text, as cosign --output-signature writes it */
		while (slen > 0 &&
		    (sigf[slen - 1] == '\n' || sigf[slen - 1] == '\r' ||
			sigf[slen - 1] == ' ' || sigf[slen - 1] == '\t'))
			slen--;
		if ((sig_b64 = strndup((char *)sigf, slen)) == NULL)
			goto out;
	}
	memset(&cand, 0, sizeof(cand));
	cand.media_type = PAYLOAD_MEDIA_TYPE;
	cand.payload = payload;
	cand.payload_len = plen;
	cand.sig_b64 = sig_b64;
	cand.source = a->signature;
	status = verify_and_report(k, &cand, 1, pol, 0, stdout, stderr);
out:
	free(payload);
	free(sigf);
	free(sig_b64);
	return status;
}

int
cmd_verify(int argc, char **argv)
{
	struct verify_args a;
	struct verify_policy pol;
	struct verify_key *k = NULL;
	char why[TSJSON_WHY_MAX];
	int r, status = TS_EXIT_USAGE;

	memset(&a, 0, sizeof(a));
	memset(&pol, 0, sizeof(pol));
	if ((r = parse_args(argc, argv, &a)) != 0) {
		status = r < 0 ? TS_EXIT_OK : r;
		goto out;
	}
	if (verify_key_load_file(a.key, &k, why, sizeof(why)) != 0) {
		error("verify: --key %.200s: %s", a.key, why);
		goto out;
	}
	if (a.identity != NULL) {
		char *n = NULL, *t = NULL, *d = NULL;

		r = verify_ref_normalize(a.identity, &n, &t, &d);
		free(n);
		free(t);
		free(d);
		if (r != 0) {
			error("verify: --identity \"%.200s\" is not a valid "
			      "docker reference",
			    a.identity);
			goto out;
		}
	}
	pol.annotations = a.ann;
	pol.n_annotations = a.n_ann;
	if (a.identity != NULL) {
		pol.identity = a.identity;
		pol.identity_mode = VERIFY_ID_AUTO;
	} else
		pol.identity = a.image; /* by repository, as cosign */
	if (a.local != NULL)
		status = verify_local(k, &pol, a.local);
	else if (a.payload != NULL)
		status = verify_files(k, &pol, &a);
	else
		/* fetch through client/oci.h: client/regverify.c */
		status = regverify_image(
		    k, &pol, a.image, &a.hopts, a.recursive, stdout, stderr);
out:
	verify_key_free(k);
	args_free(&a);
	return status;
}
