/*
 * oci.h - the distribution API calls tokensign makes (formats.md 5), on top
 * of client/http.h and client/registry_auth.h.
 *
 * A struct oci talks to one registry through one http client (one
 * keep-alive connection); its auth state caches tokens for the call.  Use
 * one struct oci per job and per registry.
 *
 * Every manifest read sends the full Accept list, caps the body, checks the
 * Content-Type against the manifest's own mediaType and verifies the
 * digest of the bytes (against the reference's digest, or against the
 * registry's Docker-Content-Digest for a tag).  Errors name the registry's
 * JSON error when there is one.
 *
 * For the sigformat verifier (tokensign verify IMAGE): oci_new(),
 * oci_manifest_get() to resolve the image, oci_sig_get() for the .sig
 * manifest (TS_ERR_SIG_NONE when there is none) and oci_blob_get() for each
 * payload layer.
 */
#ifndef TS_CLIENT_OCI_H
#define TS_CLIENT_OCI_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

struct http_client;
struct ref;

#define OCI_MT_MANIFEST	 "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_INDEX	 "application/vnd.oci.image.index.v1+json"
#define OCI_MT_DOCKER_V2 "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_LIST \
	"application/vnd.docker.distribution.manifest.list.v2+json"
#define OCI_ACCEPT_ALL                                                     \
	"Accept: " OCI_MT_MANIFEST ", " OCI_MT_INDEX ", " OCI_MT_DOCKER_V2 \
	", " OCI_MT_DOCKER_LIST
#define OCI_MAX_INDEX_CHILDREN 1024

struct oci;

/* A manifest as fetched: exact bytes, media type, verified digest. */
struct oci_manifest {
	uint8_t *data;
	size_t len;
	char *media_type; /* without parameters */
	struct digest digest;
};

/*
 * Returns a new session for the registry of ref ("docker.io" credentials,
 * API host from ref), asking tokens for actions ("pull" or "pull,push").
 * http is borrowed and must outlive the session.  NULL on OOM.
 */
struct oci *oci_new(
    struct http_client *http, const struct ref *ref, const char *actions);
void oci_free(struct oci *o);
/* The http client (for request counts). */
struct http_client *oci_http(struct oci *o);

void oci_manifest_free(struct oci_manifest *m);
/* Returns 1 for an index or Docker manifest list. */
int oci_manifest_is_index(const struct oci_manifest *m);
/*
 * Lists the digests of an index's children (manifests[].digest).  Returns
 * 0 and a malloc'd array, TS_ERR_MANIFEST_INVALID or TS_ERR_TOO_LARGE.
 */
int oci_index_children(const struct oci_manifest *m, struct digest **out,
    size_t *n) __attribute__((warn_unused_result));

/*
 * GETs the manifest of ref (its digest when it has one, else its tag).
 * Returns 0 and *out (caller frees), TS_ERR_REG_NOT_FOUND,
 * TS_ERR_DIGEST_MISMATCH, TS_ERR_MANIFEST_INVALID (type mismatch or
 * unsupported), TS_ERR_TOO_LARGE, TS_ERR_REG_AUTH, TS_ERR_HTTP...
 */
int oci_manifest_get(struct oci *o, const struct ref *ref,
    struct oci_manifest **out) __attribute__((warn_unused_result));
/* As oci_manifest_get for repository + tag-or-digest text, any cap. */
int oci_manifest_get_raw(struct oci *o, const char *repo, const char *tagdg,
    const struct digest *expect, size_t max, struct oci_manifest **out)
    __attribute__((warn_unused_result));
/*
 * HEADs repo:tagdg; *out gets Docker-Content-Digest.  Returns 0,
 * TS_ERR_REG_NOT_FOUND, TS_ERR_REG_PROTOCOL (no digest header)...
 */
int oci_manifest_head(struct oci *o, const char *repo, const char *tagdg,
    struct digest *out) __attribute__((warn_unused_result));
/* PUTs a manifest under tag; *out (may be NULL) gets its digest. */
int oci_manifest_put(struct oci *o, const char *repo, const char *tag,
    const char *media_type, const uint8_t *data, size_t len, struct digest *out)
    __attribute__((warn_unused_result));

/*
 * GETs the cosign signature manifest "sha256-<hex>.sig" of image digest d.
 * Returns 0 and *out, TS_ERR_SIG_NONE when the tag does not exist (404
 * MANIFEST_UNKNOWN), or an error.  The caller checks the media type
 * (sigmanifest_parse).
 */
int oci_sig_get(struct oci *o, const char *repo, const struct digest *d,
    struct oci_manifest **out) __attribute__((warn_unused_result));

/* HEADs a blob: *exists = 1 (200) or 0 (404). */
int oci_blob_exists(struct oci *o, const char *repo, const struct digest *d,
    int *exists) __attribute__((warn_unused_result));
/* GETs a blob of at most max bytes and verifies its digest. */
int oci_blob_get(struct oci *o, const char *repo, const struct digest *d,
    size_t max, uint8_t **out, size_t *len) __attribute__((warn_unused_result));
/*
 * Starts a monolithic upload (POST .../blobs/uploads/): *location gets the
 * absolute upload URL (malloc'd).  Used by sign's pre-flight to prove push
 * access before anything is signed.
 */
int oci_upload_start(struct oci *o, const char *repo, char **location)
    __attribute__((warn_unused_result));
/* PUTs data to location with digest=d appended to its query. */
int oci_upload_finish(struct oci *o, const char *repo, const char *location,
    const uint8_t *data, size_t len, const struct digest *d)
    __attribute__((warn_unused_result));
/* Cancels an upload (DELETE location); failures are ignored. */
void oci_upload_cancel(struct oci *o, const char *repo, const char *location);
/*
 * Uploads a blob: POST then PUT, or only PUT when *location is set (it is
 * consumed and freed).  When check_exists, HEAD first and skip the upload
 * when present.
 */
int oci_blob_put(struct oci *o, const char *repo, const uint8_t *data,
    size_t len, const struct digest *d, int check_exists, char **location)
    __attribute__((warn_unused_result));

#endif /* TS_CLIENT_OCI_H */
