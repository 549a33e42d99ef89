/*
 * sign_upload.h - the store half of `tokensign sign` (client/cmd_sign.c),
 * shared with `tokensign attach signature`: resolve an image, pre-flight
 * push access, append a signature layer to its "sha256-<hex>.sig" manifest
 * (no duplicate), PUT the manifest last, and settle against concurrent
 * writers (docs/internals/registry.md).
 */
#ifndef TS_CLIENT_SIGN_UPLOAD_H
#define TS_CLIENT_SIGN_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

struct http_opts;

/*
 * Stores an existing signature (raw bytes sig) over payload for image.
 * The image is resolved first and must be the manifest *expect (the
 * payload's docker-manifest-digest) -- TS_ERR_DIGEST_MISMATCH otherwise,
 * before anything is written.  The caller has parsed and, when it could,
 * verified the payload and signature.  *already is set to 1 when an
 * identical layer was already stored.  Returns 0 or a TS_ERR_* (logged);
 * map it with sign_exit_status().
 */
int sign_attach(const struct http_opts *hopts, const char *image,
    const uint8_t *payload, size_t payload_len, const uint8_t *sig,
    size_t sig_len, const struct digest *expect, int *already)
    __attribute__((warn_unused_result));

/* Returns the TS_EXIT_* status for a TS_ERR_* code of sign/attach. */
int sign_exit_status(int r);

#endif /* TS_CLIENT_SIGN_UPLOAD_H */
