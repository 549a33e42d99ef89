/*
 * verify.h - verify cosign simple-signing signatures with a public key, as
 * containers/image's sigstoreSigned policy does (formats.md 7.1), only
 * stricter.  Offline: no network here.  The remote path (`tokensign verify
 * IMAGE`) fetches the .sig manifest and payload blobs through client/oci.h
 * and hands them to verify_candidates(); the offline paths in
 * client/cmd_verify.c do the same with files.
 *
 * Order of checks for one signature (each failure has its own code):
 *   1. the signature annotation is present and is standard base64
 *      (TS_ERR_BASE64);
 *   2. the signature verifies over the RAW stored payload bytes with the
 *      key, hash SHA-256 (TS_ERR_SIG_INVALID);
 *   3. the payload parses with the strict rules (TS_ERR_PAYLOAD_INVALID);
 *   4. docker-manifest-digest equals the expected digest
 *      (TS_ERR_DIGEST_MISMATCH);
 *   5. docker-reference matches the expected identity (TS_ERR_SIG_IDENTITY);
 *   6. every required annotation -a k=v equals optional[k]
 *      (TS_ERR_SIG_ANNOTATION).
 */
#ifndef TS_CLIENT_VERIFY_H
#define TS_CLIENT_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/digest.h"
#include "common/payload.h"

#define VERIFY_KEY_MAX_LEN    (64 * 1024) /* a PEM public key file */
#define VERIFY_SIG_MAX_LEN    4096 /* decoded signature bytes (RSA-16384) */
#define VERIFY_SIG_B64_MAX    8192 /* base64 signature text */
#define VERIFY_MAX_CANDIDATES 1000 /* = SIGMANIFEST_MAX_LAYERS */

struct verify_key; /* a loaded public key; opaque */

/*
 * Loads a public key from PEM text, reading only the FIRST PEM block as
 * sigstore's cryptoutils does: "PUBLIC KEY" (SPKI: ECDSA P-256/P-384/
 * P-521, RSA >= 2048 bits, Ed25519) or "RSA PUBLIC KEY" (PKCS#1).  Returns
 * 0 and a new key (caller verify_key_free()s), or TS_ERR_KEY_INVALID with
 * the problem in why.
 */
int verify_key_load_pem(const uint8_t *pem, size_t len, struct verify_key **out,
    char *why, size_t why_len) __attribute__((warn_unused_result));
/* As verify_key_load_pem on a file (capped at VERIFY_KEY_MAX_LEN). */
int verify_key_load_file(const char *path, struct verify_key **out, char *why,
    size_t why_len) __attribute__((warn_unused_result));
void verify_key_free(struct verify_key *k);
/* Returns a static description: "ecdsa-p256", "rsa", "ed25519", ... */
const char *verify_key_type(const struct verify_key *k);

/* How verify_policy.identity is matched. */
enum verify_identity_mode {
	/*
	 * By repository only, like containers/image matchRepository: any tag
	 * or digest in identity and in the signature is ignored, so cosign's
	 * tagless identity and skopeo's "repo:tag" both match.  The default,
	 * and what `tokensign verify IMAGE` uses with the image's reference.
	 */
	VERIFY_ID_REPOSITORY = 0,
	/*
	 * For an explicit --identity REF: when REF has a tag or digest the
	 * signature must name exactly that (matchExact: a tagless cosign
	 * identity then fails); without one, as VERIFY_ID_REPOSITORY.
	 */
	VERIFY_ID_AUTO = 1,
};

/* What a signature must say to be accepted. */
struct verify_policy {
	/* Required: the manifest digest being verified. */
	const struct digest *digest;
	/*
	 * The identity to match docker-reference against, a docker reference
	 * normalised as docker does ("busybox" is "docker.io/library/busybox",
	 * "index.docker.io" is "docker.io"); see identity_mode.  NULL skips
	 * the identity check: pass NULL only when the user explicitly asked.
	 */
	const char *identity;
	enum verify_identity_mode identity_mode;
	/* Required optional[k] == v pairs. */
	const struct payload_kv *annotations;
	size_t n_annotations;
};

/*
 * Verifies one signature.  sig_b64 is the annotation value (NULL when the
 * annotation is missing).  Returns 0 and, when parsed != NULL, the parsed
 * payload (caller payload_free()s); otherwise one of the codes listed at
 * the top with the reason in why.
 */
int verify_one(const struct verify_key *k, const uint8_t *payload,
    size_t payload_len, const char *sig_b64, const struct verify_policy *pol,
    struct payload **parsed, char *why, size_t why_len)
    __attribute__((warn_unused_result));
/* As verify_one with the signature bytes already decoded. */
int verify_one_raw(const struct verify_key *k, const uint8_t *payload,
    size_t payload_len, const uint8_t *sig, size_t sig_len,
    const struct verify_policy *pol, struct payload **parsed, char *why,
    size_t why_len) __attribute__((warn_unused_result));

/*
 * Standard base64 (RFC 4648 alphabet, padding required) decoded exactly as
 * Go's base64.StdEncoding, which containers/image and cosign use: CR and LF
 * anywhere are ignored (PEM-style wrapped signatures exist in the wild),
 * any other byte outside the alphabet, a missing or misplaced '=', or a
 * length that is not a multiple of 4 is TS_ERR_BASE64.  Decoded output over
 * max_out is TS_ERR_TOO_LARGE.  Returns 0 and a malloc'd buffer.
 */
int verify_base64_decode(const char *in, size_t in_len, size_t max_out,
    uint8_t **out, size_t *out_len) __attribute__((warn_unused_result));

/* One entry of a .sig manifest or dir: layout, as the caller found it. */
struct verify_candidate {
	const char *media_type; /* layer media type / mimeType */
	const uint8_t *payload; /* raw payload bytes (blob) */
	size_t payload_len;
	const char *sig_b64; /* signature annotation, NULL when missing */
	const char *certificate; /* certificate annotation, NULL if none */
	const char *source; /* for messages: "layer 2", "signature-1" */
};

struct verify_report; /* the outcome for a list of candidates; opaque */

/*
 * Verifies every candidate: layers whose media type is not simple-signing
 * are counted as non-signature attachments and skipped (containers/image
 * does the same); each signature is checked with verify_one().  Never stops
 * at the first failure.  Returns 0 and a report (caller frees) — even when
 * nothing verified —, or TS_ERR_ALLOC/TS_ERR_INVALID_ARG.
 */
int verify_candidates(const struct verify_key *k,
    const struct verify_candidate *c, size_t n, const struct verify_policy *pol,
    struct verify_report **out) __attribute__((warn_unused_result));
void verify_report_free(struct verify_report *rep);
/* Counts: verified signatures, signatures seen, other attachments. */
size_t verify_report_valid(const struct verify_report *rep);
size_t verify_report_signatures(const struct verify_report *rep);
size_t verify_report_others(const struct verify_report *rep);
/* Adds n skipped non-sigstore (GPG) signatures to the summary. */
void verify_report_add_skipped(struct verify_report *rep, size_t n);
/*
 * Returns the TS_EXIT_* status (client/commands.h): OK when at least one
 * signature verified, NO_SIGNATURES when there was none to check, INVALID
 * otherwise.
 */
int verify_report_exit_status(const struct verify_report *rep);
/*
 * Prints the verified payloads as a JSON array of the raw payload objects
 * to out (one line), and a human summary with each rejection's reason to
 * summary.  Either may be NULL.
 */
void verify_report_print(
    const struct verify_report *rep, FILE *out, FILE *summary);

/*
 * The whole tail of a verify command, shared by the offline paths and the
 * remote `tokensign verify IMAGE` path: verifies c[0..n) under pol, adds
 * skipped (non-sigstore) signatures to the summary, prints the verified
 * payloads as JSON on out and the summary on summary.  Returns a TS_EXIT_*
 * status: OK (at least one verified), NO_SIGNATURES, INVALID, or FAILURE
 * when memory ran out.
 */
int verify_and_report(const struct verify_key *k,
    const struct verify_candidate *c, size_t n, const struct verify_policy *pol,
    size_t skipped, FILE *out, FILE *summary);

/*
 * Docker reference normalisation used for identity matching (formats.md
 * 6.4): "busybox" -> "docker.io/library/busybox", "index.docker.io" ->
 * "docker.io"; path components lowercase per the distribution grammar.
 * Returns 0 with malloc'd *name and *tag / *dig (NULL when absent; caller
 * frees all three), or TS_ERR_REF_INVALID.
 */
int verify_ref_normalize(const char *ref, char **name, char **tag, char **dig)
    __attribute__((warn_unused_result));

#endif /* TS_CLIENT_VERIFY_H */
