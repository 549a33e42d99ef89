/*
 * ref.h - container image references (docker/distribution reference
 * grammar, formats.md 5 and 6.4):
 *
 *   [host[:port]/]path[:tag][@digest]
 *
 * The first component is a registry host only when it holds '.' or ':' or
 * is "localhost" (splitDockerDomain); otherwise the image is on Docker Hub.
 * Hub names are normalised: "docker.io" and "index.docker.io" are the same
 * registry, a one-part repository gets "library/", and the API is spoken to
 * registry-1.docker.io.  Without tag and digest the tag is "latest".
 * Repository names must be lowercase.
 */
#ifndef TS_CLIENT_REF_H
#define TS_CLIENT_REF_H

#include <stddef.h>

#include "common/digest.h"

#define REF_MAX_LEN	 4096 /* whole reference text */
#define REF_NAME_MAX	 255 /* host/name, as docker caps it */
#define REF_TAG_MAX	 128
#define REF_HUB_REGISTRY "docker.io"
#define REF_HUB_API_HOST "registry-1.docker.io"
#define REF_HUB_IDENTITY "index.docker.io"

struct ref;

/*
 * Parses s.  Returns 0 and a new ref in *out (caller ref_free()s it), or
 * TS_ERR_REF_INVALID with the problem named in why (may be NULL), or
 * TS_ERR_ALLOC.
 */
int ref_parse(const char *s, struct ref **out, char *why, size_t why_len)
    __attribute__((warn_unused_result));
/* Frees r; NULL is fine. */
void ref_free(struct ref *r);
/* Returns a copy of r pinned to digest d (tag kept for messages), or NULL. */
struct ref *ref_with_digest(const struct ref *r, const struct digest *d);

/* Registry as named for users and credentials: "docker.io", "host:5000". */
const char *ref_registry(const struct ref *r);
/* Host[:port] the API is spoken to: "registry-1.docker.io", "host:5000". */
const char *ref_api_host(const struct ref *r);
/* Repository path: "library/busybox", "demo/app". */
const char *ref_repository(const struct ref *r);
/* The tag, "latest" when none was given and no digest; NULL otherwise. */
const char *ref_tag(const struct ref *r);
/* Returns 1 when the user wrote a tag. */
int ref_tag_given(const struct ref *r);
/* Returns the digest, or NULL when the reference has none. */
const struct digest *ref_digest(const struct ref *r);
/* Returns 1 for Docker Hub. */
int ref_is_hub(const struct ref *r);
/*
 * cosign's identity (formats.md 1.3): "<registry>/<repository>" with Hub
 * spelled index.docker.io.  Borrowed from r.
 */
const char *ref_identity(const struct ref *r);
/* "<registry>/<repo>[:tag][@digest]" for messages.  Borrowed from r. */
const char *ref_string(const struct ref *r);

#endif /* TS_CLIENT_REF_H */
