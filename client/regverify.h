/*
 * regverify.h - the registry half of `tokensign verify IMAGE`: resolve the
 * image (and, with recursive, every child of an index), fetch each
 * "sha256-<hex>.sig" manifest and its payload blobs through client/oci.h,
 * and hand them to the strict verifier (client/verify.h,
 * verify_and_report()).  The sigformat side owns the command line
 * (client/cmd_verify.c) and calls regverify_image() from its remote path.
 */
#ifndef TS_CLIENT_REGVERIFY_H
#define TS_CLIENT_REGVERIFY_H

#include <stdio.h>

struct http_opts;
struct verify_key;
struct verify_policy;

/*
 * Verifies image with k under pol; pol->digest is set here to each
 * resolved digest (pol->identity and annotations are the caller's).
 * hopts (may be NULL) carries --ca-file and friends.  Verified payloads go
 * to out as JSON, the summary to summary.  Returns a TS_EXIT_* status: OK
 * when every checked manifest has a valid signature, NO_SIGNATURES,
 * INVALID, REGISTRY (registry/auth/transport error), USAGE (bad reference).
 */
int regverify_image(const struct verify_key *k, struct verify_policy *pol,
    const char *image, const struct http_opts *hopts, int recursive, FILE *out,
    FILE *summary);

#endif /* TS_CLIENT_REGVERIFY_H */
