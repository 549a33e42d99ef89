/*
 * digest.h - OCI content digests "<algorithm>:<lowercase hex>" (image-spec
 * descriptor.md, go-digest): parse strictly, format, compute, compare, and
 * derive the cosign attachment tag "sha256-<hex>.sig" (formats.md 2.1).
 *
 * struct digest is a small fixed-size value (no heap, no ownership), so it is
 * deliberately not opaque: callers keep it on the stack and copy it.  Treat
 * the fields as read-only and use the functions below to fill it.
 */
#ifndef TS_COMMON_DIGEST_H
#define TS_COMMON_DIGEST_H

#include <stddef.h>
#include <stdint.h>

enum digest_alg {
	DIGEST_ALG_NONE = 0,
	DIGEST_ALG_SHA256 = 1,
	DIGEST_ALG_SHA384 = 2,
	DIGEST_ALG_SHA512 = 3,
};

#define DIGEST_MAX_BYTES 64 /* sha512 */
/* "sha512:" + 128 hex + NUL; any formatted digest fits. */
#define DIGEST_STR_MAX (7 + 2 * DIGEST_MAX_BYTES + 1)
/* "sha512-" + 128 hex + ".sig"-style suffix of up to 15 chars + NUL. */
#define DIGEST_TAG_MAX (DIGEST_STR_MAX + 16)

struct digest {
	enum digest_alg alg;
	size_t len; /* bytes used in v */
	uint8_t v[DIGEST_MAX_BYTES];
};

/*
 * Parses s[0..len) as "<alg>:<hex>".  The hex must be lowercase and exactly
 * as long as the algorithm's output.  Returns 0, TS_ERR_UNSUPPORTED for a
 * well-formed but unknown algorithm (e.g. "md5:..."), or
 * TS_ERR_DIGEST_INVALID.  *why (may be NULL) gets a static reason.
 */
int digest_parse(const char *s, size_t len, struct digest *out,
    const char **why) __attribute__((warn_unused_result));
/* As digest_parse on a NUL-terminated string. */
int digest_parse_str(const char *s, struct digest *out, const char **why)
    __attribute__((warn_unused_result));

/* Writes "<alg>:<hex>" into buf; returns 0 or TS_ERR_TOO_LARGE. */
int digest_format(const struct digest *d, char *buf, size_t buflen)
    __attribute__((warn_unused_result));
/* Writes the bare lowercase hex; returns 0 or TS_ERR_TOO_LARGE. */
int digest_hex(const struct digest *d, char *buf, size_t buflen)
    __attribute__((warn_unused_result));

/* Hashes data with alg into *out; returns 0 or TS_ERR_CRYPTO/INVALID_ARG. */
int digest_compute(enum digest_alg alg, const void *data, size_t len,
    struct digest *out) __attribute__((warn_unused_result));
/*
 * Returns 0 when data hashes (with d's algorithm) to d,
 * TS_ERR_DIGEST_MISMATCH otherwise.  Comparison is constant time.
 */
int digest_verify(const struct digest *d, const void *data, size_t len)
    __attribute__((warn_unused_result));
/* Returns 1 when a and b are the same algorithm and value, else 0. */
int digest_equal(const struct digest *a, const struct digest *b);

/*
 * Writes the attachment tag "<alg>-<hex><suffix>", e.g. suffix ".sig" gives
 * cosign's "sha256-<hex>.sig" (formats.md 2.1), ".att" attestations, ""
 * the referrers fallback tag.  Returns 0 or TS_ERR_TOO_LARGE.
 */
int digest_tag(const struct digest *d, const char *suffix, char *buf,
    size_t buflen) __attribute__((warn_unused_result));

/* Returns the algorithm's name ("sha256"...), or "none". */
const char *digest_alg_name(enum digest_alg alg);
/* Returns the output length in bytes of alg, 0 for none. */
size_t digest_alg_len(enum digest_alg alg);

#endif /* TS_COMMON_DIGEST_H */
