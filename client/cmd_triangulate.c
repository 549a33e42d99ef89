/*
 * cmd_triangulate.c - tokensign triangulate IMAGE: print the reference of
 * the image's cosign signature tag (cosign triangulate), resolving a tag to
 * its digest first.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "client/commands.h"
#include "client/http.h"
#include "client/oci.h"
#include "client/ref.h"
#include "client/sign_upload.h"
#include "common/digest.h"
#include "common/err.h"
#include "common/log.h"

int
cmd_triangulate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", 0, NULL, 'h' },
		HTTP_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct http_opts hopts = { 0 };
	struct http_client *http = NULL;
	struct oci *o = NULL;
	struct ref *ref = NULL;
	struct oci_manifest *m = NULL;
	struct digest d;
	char why[256], tag[DIGEST_TAG_MAX];
	int opt, h, r, rc = TS_EXIT_FAILURE;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if ((h = http_opts_handle(&hopts, opt, optarg)) != 0) {
			if (h < 0) {
				rc = TS_EXIT_USAGE;
				goto out;
			}
			continue;
		}
		if (opt == 'h') {
			printf("usage: tokensign triangulate [options] IMAGE\n"
			       "%s",
			    HTTP_OPTS_USAGE);
			rc = TS_EXIT_OK;
			goto out;
		}
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (argc - optind != 1) {
		error("usage: tokensign triangulate [options] IMAGE");
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (ref_parse(argv[optind], &ref, why, sizeof(why)) != 0) {
		error("%.200s: %s", argv[optind], why);
		rc = TS_EXIT_USAGE;
		goto out;
	}
	if (ref_digest(ref) != NULL)
		d = *ref_digest(ref);
	else {
		if (http_global_init() != 0 ||
		    (http = http_client_new(&hopts)) == NULL ||
		    (o = oci_new(http, ref, "pull")) == NULL) {
			rc = TS_EXIT_FAILURE;
			goto out;
		}
		if ((r = oci_manifest_get(o, ref, &m)) != 0) {
			error("%s: cannot resolve the image: %s",
			    ref_string(ref), ts_err(r));
			rc = sign_exit_status(r);
			goto out;
		}
		d = m->digest;
	}
	if (digest_tag(&d, ".sig", tag, sizeof(tag)) != 0)
		goto out;
	printf("%s:%s\n", ref_identity(ref), tag);
	rc = TS_EXIT_OK;
out:
	oci_manifest_free(m);
	oci_free(o);
	http_client_free(http);
	ref_free(ref);
	http_opts_cleanup(&hopts);
	return rc;
}
