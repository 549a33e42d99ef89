/*
 * sshkey.h - OpenSSH public key blobs and signature blobs for the keys the
 * agent holds (RFC 4253 6.6, RFC 5656 3.1, RFC 8709, RFC 8332; the
 * ssh-agent protocol RFC 9987).
 *
 * Only the three key kinds ssh can use from a token are supported:
 * EC P-256 ("ecdsa-sha2-nistp256"), Ed25519 ("ssh-ed25519") and RSA of at
 * least SSHKEY_RSA_MIN_BITS ("ssh-rsa" key blob, signed only with
 * "rsa-sha2-256" or "rsa-sha2-512").  P-384 and P-521 keys are refused
 * (TS_ERR_UNSUPPORTED): the agent's P-384 keys are for cosign only.
 *
 * Every encoder writes canonical blobs (minimal mpints), so two blobs of
 * the same key are byte-identical and matching is a byte compare.
 * All encoding and parsing goes through common/wbuf.
 */
#ifndef TS_COMMON_SSHKEY_H
#define TS_COMMON_SSHKEY_H

#include <stddef.h>
#include <stdint.h>

struct wbuf;

enum sshkey_type {
	SSHKEY_UNKNOWN = 0,
	SSHKEY_ECDSA_P256 = 1,
	SSHKEY_ED25519 = 2,
	SSHKEY_RSA = 3,
};

/*
 * Signature algorithms.  SSHKEY_SIG_RSA_SHA1 ("ssh-rsa") exists only so a
 * request for it can be named and refused: we never make SHA-1 signatures.
 */
enum sshkey_sigalg {
	SSHKEY_SIG_NONE = 0,
	SSHKEY_SIG_ECDSA_P256_SHA256 = 1, /* "ecdsa-sha2-nistp256" */
	SSHKEY_SIG_ED25519 = 2, /* "ssh-ed25519", pure over the data */
	SSHKEY_SIG_RSA_SHA256 = 3, /* "rsa-sha2-256" */
	SSHKEY_SIG_RSA_SHA512 = 4, /* "rsa-sha2-512" */
	SSHKEY_SIG_RSA_SHA1 = 5, /* "ssh-rsa": always refused */
};

/* SSH_AGENTC_SIGN_REQUEST flags (RFC 9987 section 4.5.1). */
#define SSHKEY_AGENT_RSA_SHA2_256 0x02
#define SSHKEY_AGENT_RSA_SHA2_512 0x04

#define SSHKEY_RSA_MIN_BITS 2048
#define SSHKEY_RSA_MAX_BITS 16384
/* Any key blob or signature blob we make or accept fits in this. */
#define SSHKEY_BLOB_MAX 4096
/* Longest comment put on an authorized_keys line. */
#define SSHKEY_COMMENT_MAX 256

/* Returns the key type name ("ssh-ed25519"...), or "unknown". */
const char *sshkey_type_name(enum sshkey_type t);
/* Returns the signature algorithm name ("rsa-sha2-256"...), or "unknown". */
const char *sshkey_sigalg_name(enum sshkey_sigalg a);

/*
 * Appends the OpenSSH public key blob of the SPKI DER key spki[0..len) to
 * out and stores its type in *type (may be NULL).  Returns 0,
 * TS_ERR_KEY_INVALID (not a parseable SPKI, trailing bytes),
 * TS_ERR_UNSUPPORTED (other curve, RSA below SSHKEY_RSA_MIN_BITS, other
 * algorithm), TS_ERR_WIRE_BUF_FULL or TS_ERR_ALLOC.  On failure out is
 * left as it was.
 */
int sshkey_blob_from_spki(const uint8_t *spki, size_t len, struct wbuf *out,
    enum sshkey_type *type) __attribute__((warn_unused_result));

/*
 * Parses a public key blob strictly (known type, exact field sizes,
 * minimal mpints, no trailing bytes).  Returns 0 and the type in *type,
 * TS_ERR_KEY_INVALID, or TS_ERR_UNSUPPORTED for a well-formed blob of a
 * type we do not hold (e.g. "ssh-dss", "ecdsa-sha2-nistp384").
 */
int sshkey_blob_parse(const uint8_t *blob, size_t len, enum sshkey_type *type)
    __attribute__((warn_unused_result));

/*
 * Converts a key blob back to SPKI DER.  Returns 0 and a malloc'd DER in
 * *spki (caller frees), or the errors of sshkey_blob_parse / TS_ERR_CRYPTO.
 */
int sshkey_blob_to_spki(const uint8_t *blob, size_t len, uint8_t **spki,
    size_t *spki_len) __attribute__((warn_unused_result));

/*
 * Returns 0 when blob[0..len) is the key blob of SPKI key spki[0..slen),
 * TS_ERR_NOT_FOUND when it is another key (or a key we cannot express),
 * TS_ERR_ALLOC.  Byte compare against our canonical blob.
 */
int sshkey_blob_match(const uint8_t *blob, size_t len, const uint8_t *spki,
    size_t slen) __attribute__((warn_unused_result));

/*
 * Builds the authorized_keys line "<type> <base64 blob>[ <comment>]" (no
 * newline) for the SPKI key.  comment may be NULL or empty; it is cut at
 * SSHKEY_COMMENT_MAX bytes and any control character or space becomes '_'
 * so one key is always one line of three fields.  Returns 0 and a
 * malloc'd string in *line (caller frees), or the errors of
 * sshkey_blob_from_spki.
 */
int sshkey_authorized_line(const uint8_t *spki, size_t len, const char *comment,
    char **line) __attribute__((warn_unused_result));

/*
 * Writes the OpenSSH fingerprint "SHA256:<unpadded base64>" of a key blob
 * into buf (at least 51 bytes).  Returns 0 or TS_ERR_TOO_LARGE.
 */
int sshkey_fingerprint(const uint8_t *blob, size_t len, char *buf,
    size_t buflen) __attribute__((warn_unused_result));
#define SSHKEY_FP_MAX 52

/*
 * Chooses the signature algorithm for a key of type t and the
 * SIGN_REQUEST flags.  RSA: SHA2_512 wins over SHA2_256 (as OpenSSH's
 * agent does); neither flag means "ssh-rsa" with SHA-1, which is refused
 * with TS_ERR_UNSUPPORTED (*alg is still set to SSHKEY_SIG_RSA_SHA1 so the
 * caller can name it).  EC and Ed25519 ignore the RSA flags.  Returns 0,
 * TS_ERR_UNSUPPORTED or TS_ERR_INVALID_ARG.
 */
int sshkey_sigalg_for(enum sshkey_type t, uint32_t flags,
    enum sshkey_sigalg *alg) __attribute__((warn_unused_result));

/*
 * Appends the SSH signature blob for alg to out:
 *  - ECDSA: sig is the DER ECDSA-Sig-Value; written as
 *    string "ecdsa-sha2-nistp256", string(mpint r, mpint s);
 *  - Ed25519: sig is the raw 64 bytes; string "ssh-ed25519", string(sig);
 *  - RSA: sig is the raw signature, exactly modulus_len bytes; string
 *    "rsa-sha2-256"/"rsa-sha2-512", string(sig).
 * modulus_len is only read for RSA.  Returns 0, TS_ERR_INVALID_ARG (bad
 * DER, wrong length, r or s out of range), TS_ERR_UNSUPPORTED (SHA-1),
 * TS_ERR_WIRE_BUF_FULL or TS_ERR_ALLOC.  On failure out is left as it was.
 */
int sshkey_sig_encode(enum sshkey_sigalg alg, const uint8_t *sig, size_t siglen,
    size_t modulus_len, struct wbuf *out) __attribute__((warn_unused_result));

/*
 * Parses an SSH signature blob (the inverse of sshkey_sig_encode).
 * Returns 0, the algorithm in *alg and a malloc'd signature in the form
 * OpenSSL verifies (DER for ECDSA, raw otherwise) in *sig (caller frees),
 * TS_ERR_INVALID_ARG for a malformed blob, TS_ERR_UNSUPPORTED for an
 * unknown algorithm.
 */
int sshkey_sig_decode(const uint8_t *blob, size_t len, enum sshkey_sigalg *alg,
    uint8_t **sig, size_t *siglen) __attribute__((warn_unused_result));

#endif /* TS_COMMON_SSHKEY_H */
