/*
 * payload.h - the cosign "simple signing" payload (formats.md section 1).
 *
 * payload_build() writes the bytes exactly as cosign's Go json.Marshal
 * does, so our payload blobs (and their digests) equal cosign's for the same
 * input.  payload_parse() applies exactly containers/image's rules
 * (signature/internal/sigstore_payload.go, formats.md 1.1), plus a few
 * stricter ones documented in docs/internals/payload.md.  The agent calls
 * payload_parse() on every SIGN_PAYLOAD; the verifier calls it on the raw
 * payload bytes only after the signature over those bytes verified.
 */
#ifndef TS_COMMON_PAYLOAD_H
#define TS_COMMON_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/digest.h"

/* containers/image iolimits.MaxSignatureBodySize: 4 MiB. */
#define PAYLOAD_MAX_LEN (4 * 1024 * 1024)
/* Cap on a docker-reference we build (docker caps host/name at 255). */
#define PAYLOAD_REF_MAX 1024
/* Cap on -a annotations per payload. */
#define PAYLOAD_MAX_ANNOTATIONS 256
#define PAYLOAD_TYPE_COSIGN	"cosign container image signature"
#define PAYLOAD_MEDIA_TYPE	"application/vnd.dev.cosign.simplesigning.v1+json"

/* One optional (annotation) pair; both strings borrowed by the callee. */
struct payload_kv {
	const char *key;
	const char *value;
};

struct payload; /* a parsed, validated payload; opaque */

/*
 * Builds the payload for manifest digest d naming docker_reference (the
 * tagless repository, cosign style, e.g. "index.docker.io/library/busybox")
 * with optional pairs kv[0..n) (n == 0: "optional":null).  Keys are
 * sorted bytewise as Go sorts map keys; a duplicate key is
 * TS_ERR_INVALID_ARG (cosign silently keeps the last; we refuse).
 * Returns 0 and a malloc'd buffer in *out (caller frees), TS_ERR_INVALID_ARG,
 * TS_ERR_TOO_LARGE or TS_ERR_ALLOC.
 */
int payload_build(const char *docker_reference, const struct digest *d,
    const struct payload_kv *kv, size_t n, uint8_t **out, size_t *out_len)
    __attribute__((warn_unused_result));

/*
 * Parses data[0..len) with the strict containers/image rules.  Returns 0
 * and a new payload in *out (caller payload_free()s it),
 * TS_ERR_PAYLOAD_INVALID with the problem named in why, or TS_ERR_ALLOC.
 */
int payload_parse(const uint8_t *data, size_t len, struct payload **out,
    char *why, size_t why_len) __attribute__((warn_unused_result));
/* Frees p; NULL is fine. */
void payload_free(struct payload *p);

/* Returns critical.identity.docker-reference, borrowed from p. */
const char *payload_docker_reference(const struct payload *p);
/* Returns critical.image.docker-manifest-digest, borrowed from p. */
const struct digest *payload_manifest_digest(const struct payload *p);
/* Returns the digest exactly as written in the payload, borrowed. */
const char *payload_manifest_digest_str(const struct payload *p);
/* Returns 1 when "optional" is an object, 0 when it is null. */
int payload_has_optional(const struct payload *p);
/*
 * Looks up optional[key].  Returns 0 and a borrowed string,
 * TS_ERR_NOT_FOUND when absent (or optional is null), TS_ERR_PARSE when the
 * value is not a string.
 */
int payload_optional_string(const struct payload *p, const char *key,
    const char **value) __attribute__((warn_unused_result));
/* Returns the number of members of optional (0 when null). */
size_t payload_optional_count(const struct payload *p);
/*
 * Returns member i of optional (in document order): borrowed key, and the
 * string value or NULL when the value is not a string.
 */
int payload_optional_at(const struct payload *p, size_t i, const char **key,
    const char **value) __attribute__((warn_unused_result));
/* optional.timestamp when present: returns 0, or TS_ERR_NOT_FOUND. */
int payload_timestamp(const struct payload *p, int64_t *out)
    __attribute__((warn_unused_result));

/*
 * Splits a "-a key=value" argument at the first '=' (cosign
 * options/annotations.go).  Returns 0 with malloc'd *key and *value
 * (caller frees), or TS_ERR_INVALID_ARG when there is no '=' or the key is
 * empty.
 */
int payload_kv_parse(const char *arg, char **key, char **value)
    __attribute__((warn_unused_result));

#endif /* TS_COMMON_PAYLOAD_H */
