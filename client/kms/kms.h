/*
 * kms.h - the cosign KMS plugin "sigstore-kms-tokensign" (issue 7).
 *
 * cosign (sigstore/sigstore pkg/signature/kms/cliplugin, protocol "v1")
 * runs `sigstore-kms-tokensign v1 '<json>'` with the message on stdin and
 * reads one JSON object from stdout; the exit status is ignored and stderr
 * goes to the user.  Methods: defaultAlgorithm, supportedAlgorithms,
 * createKey, publicKey, signMessage, verifySignature.  Byte fields are
 * standard base64, hashFunc is Go's crypto.Hash number (SHA256 = 5,
 * SHA384 = 6, SHA512 = 7), errors go in "errorMessage".
 *
 * The protocol logic is here, socket-free; the agent is reached through a
 * struct kms_backend (client/kms/main.c binds it to client/agent_client),
 * so the whole JSON surface is unit-tested without an agent.
 */
#ifndef TS_CLIENT_KMS_H
#define TS_CLIENT_KMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Go crypto.Hash numbers (crypto/crypto.go). */
#define KMS_GO_SHA256 5
#define KMS_GO_SHA384 6
#define KMS_GO_SHA512 7

/* Largest stdin we read: a simple-signing payload's cap (payload.h). */
#define KMS_MAX_STDIN (4 * 1024 * 1024)
/* Largest argv[2] JSON. */
#define KMS_MAX_ARGS (64 * 1024)

#define KMS_SCHEME "tokensign://"

struct kms_backend {
	/*
	 * Resolves key reference ref (key id, label or PKCS#11 URI) to the
	 * agent's SPKI DER.  Returns 0 and a malloc'd *spki, or TS_ERR_*
	 * (TS_ERR_AGENT_CONNECT, TS_ERR_P11_KEY_NOT_FOUND, ...).
	 */
	int (*public_key)(
	    void *arg, const char *ref, uint8_t **spki, size_t *spki_len);
	/*
	 * SIGN_PAYLOAD: the agent parses, policy-checks, audits, hashes and
	 * signs the simple-signing payload.  Returns 0 and a malloc'd
	 * signature (DER for ECDSA), or TS_ERR_*.
	 */
	int (*sign_payload)(void *arg, const char *ref, const uint8_t *payload,
	    size_t len, uint8_t **sig, size_t *siglen);
	/*
	 * SIGN_DIGEST with hash TS_HASH_SHA256/384/512 (common/proto.h).  Same result convention.
	 */
	int (*sign_digest)(void *arg, const char *ref, int hash,
	    const uint8_t *digest, size_t len, uint8_t **sig, size_t *siglen);
	/*
	 * Optional (may be NULL): the agent's own text for the last refusal
	 * (policy rule, lock), added to errorMessage; "" when none.
	 */
	const char *(*last_error)(void *arg);
};

/*
 * Runs one plugin invocation: argv as the program got it, stdin `in`.
 * Writes exactly one JSON object and a newline to out, whatever happens.
 * Returns 0 when the method succeeded, else the TS_ERR_* code whose text
 * is in errorMessage.
 */
int kms_run(const struct kms_backend *be, void *arg, int argc,
    char *const *argv, FILE *in, FILE *out);

/*
 * Turns cosign's keyResourceID ("tokensign://REF" or just "REF") into the
 * agent key reference: a leading "pkcs11%3A" (any case) is percent-decoded
 * once, so PKCS#11 URIs survive cosign's own "://" split.  Returns 0 and a
 * malloc'd string, or TS_ERR_INVALID_ARG (empty, bad %HH, NUL).
 */
int kms_keyref_decode(const char *resource_id, char **ref)
    __attribute__((warn_unused_result));

/*
 * Returns the sigstore algorithm name of SPKI key spki
 * ("ecdsa-sha2-256-nistp256", "ed25519", "rsa-sign-pkcs1-2048-sha256"...),
 * or NULL for a key cosign cannot verify everywhere (formats.md 9).
 */
const char *kms_key_algorithm(const uint8_t *spki, size_t len);

#endif /* TS_CLIENT_KMS_H */
