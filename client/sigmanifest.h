/*
 * sigmanifest.h - the cosign signature manifest stored under the tag
 * "sha256-<hex>.sig" (formats.md section 2): parse one read from a
 * registry, append our signature layer without duplicates, merge after a
 * lost read-modify-write race, and render the manifest and config blobs
 * byte-exactly as cosign/ggcr write them.  No network here: client/oci.[ch]
 * moves the bytes.  Design notes in docs/internals/payload.md.
 */
#ifndef TS_CLIENT_SIGMANIFEST_H
#define TS_CLIENT_SIGMANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

#define SIGMANIFEST_MAX_LEN	    (4 * 1024 * 1024) /* c/image manifest cap */
#define SIGMANIFEST_MAX_LAYERS	    1000 /* cosign maxLayers */
#define SIGMANIFEST_MAX_ANNOTATIONS 64 /* per descriptor */

#define OCI_MANIFEST_MEDIA_TYPE "application/vnd.oci.image.manifest.v1+json"
#define OCI_CONFIG_MEDIA_TYPE	"application/vnd.oci.image.config.v1+json"
#define SIG_LAYER_MEDIA_TYPE	"application/vnd.dev.cosign.simplesigning.v1+json"
#define SIG_ANN_SIGNATURE	"dev.cosignproject.cosign/signature"
#define SIG_ANN_CERTIFICATE	"dev.sigstore.cosign/certificate"
#define SIG_ANN_CHAIN		"dev.sigstore.cosign/chain"
#define SIG_ANN_BUNDLE		"dev.sigstore.cosign/bundle"

struct sigmanifest; /* a .sig manifest: ordered layers + annotations */
struct siglayer; /* one layer descriptor */

/* Returns a new manifest with no layers, or NULL on OOM. */
struct sigmanifest *sigmanifest_new(void);
/* Frees m and its layers; NULL is fine. */
void sigmanifest_free(struct sigmanifest *m);

/*
 * Parses a .sig manifest.  content_type is the registry's Content-Type
 * (parameters ignored) or NULL when unknown (e.g. read from a file); either
 * it or the manifest's own mediaType must say OCI image manifest, and they
 * must not disagree: containers/image refuses anything else.  Enforces the
 * size and layer caps above.  Returns 0 and a new manifest in *out (caller
 * frees), TS_ERR_MANIFEST_INVALID / TS_ERR_TOO_LARGE with the problem in
 * why, or TS_ERR_ALLOC.
 */
int sigmanifest_parse(const uint8_t *data, size_t len, const char *content_type,
    struct sigmanifest **out, char *why, size_t why_len)
    __attribute__((warn_unused_result));

/* Returns the number of layers. */
size_t sigmanifest_layer_count(const struct sigmanifest *m);
/* Returns layer i, borrowed from m (NULL when out of range). */
const struct siglayer *sigmanifest_layer(const struct sigmanifest *m, size_t i);
/* Returns the number of simple-signing layers (signatures). */
size_t sigmanifest_signature_count(const struct sigmanifest *m);
/* Returns the number of other layers ("non-signature attachments"). */
size_t sigmanifest_other_count(const struct sigmanifest *m);

/* Layer accessors; strings borrowed from the layer. */
const char *siglayer_media_type(const struct siglayer *l);
int64_t siglayer_size(const struct siglayer *l);
const struct digest *siglayer_digest(const struct siglayer *l);
/* Returns 1 for a simple-signing (cosign signature) layer. */
int siglayer_is_signature(const struct siglayer *l);
/* Returns the value of annotation key, or NULL when absent. */
const char *siglayer_annotation(const struct siglayer *l, const char *key);
/* Returns the number of annotations; siglayer_annotation_at: sorted. */
size_t siglayer_annotation_count(const struct siglayer *l);
int siglayer_annotation_at(const struct siglayer *l, size_t i, const char **key,
    const char **value) __attribute__((warn_unused_result));

/*
 * Makes the layer for one signature: media type simple-signing, digest and
 * size of payload, annotation dev.cosignproject.cosign/signature = sig_b64
 * (standard base64 of the signature bytes).  Returns 0 and a new layer
 * (caller siglayer_free()s), TS_ERR_INVALID_ARG or TS_ERR_ALLOC.
 */
int siglayer_new_signature(const uint8_t *payload, size_t payload_len,
    const char *sig_b64, struct siglayer **out)
    __attribute__((warn_unused_result));
/* Sets (adds or replaces) an annotation, e.g. a certificate.  0 or error. */
int siglayer_set_annotation(struct siglayer *l, const char *key,
    const char *value) __attribute__((warn_unused_result));
/* Returns a deep copy, or NULL on OOM. */
struct siglayer *siglayer_dup(const struct siglayer *l);
void siglayer_free(struct siglayer *l);
/*
 * Returns 1 when a and b have the same media type, size, digest and exactly
 * the same annotations (containers/image layerMatchesSigstoreSignature).
 */
int siglayer_equal(const struct siglayer *a, const struct siglayer *b);

/* Returns 1 when m already has a layer equal to l. */
int sigmanifest_contains(const struct sigmanifest *m, const struct siglayer *l);
/*
 * Appends a copy of l unless an equal layer is present (*added = 0 then).
 * Returns 0, TS_ERR_TOO_LARGE past SIGMANIFEST_MAX_LAYERS, or TS_ERR_ALLOC.
 */
int sigmanifest_append(struct sigmanifest *m, const struct siglayer *l,
    int *added) __attribute__((warn_unused_result));
/*
 * For the read-modify-write loop: given the manifest just read back from
 * the registry (fresh, NULL when the tag does not exist) and our layers
 * ours[0..n), builds *merged = fresh's layers in order followed by each of
 * ours that fresh lacks.  *missing gets how many of ours were missing: 0
 * means every one of our signatures is stored and no PUT is needed.
 * Returns 0 (caller frees *merged), TS_ERR_TOO_LARGE or TS_ERR_ALLOC.
 */
int sigmanifest_merge(const struct sigmanifest *fresh,
    const struct siglayer *const *ours, size_t n, struct sigmanifest **merged,
    size_t *missing) __attribute__((warn_unused_result));

/*
 * Renders the manifest and its config blob, byte-exactly as cosign/ggcr do
 * (formats.md 2.2, 2.3): the config lists every layer's digest in
 * rootfs.diff_ids with one history entry each, and the manifest points at
 * it.  Fails with TS_ERR_INVALID_ARG on a manifest with no layers.  Returns
 * 0 and two malloc'd buffers (caller frees both), or an error.
 */
int sigmanifest_render(const struct sigmanifest *m, uint8_t **manifest,
    size_t *manifest_len, uint8_t **config, size_t *config_len)
    __attribute__((warn_unused_result));

#endif /* TS_CLIENT_SIGMANIFEST_H */
