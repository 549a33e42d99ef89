/*
 * err.c - messages for the TS_ERR_* codes.  A table indexed by code keeps
 * code and message side by side so a new code cannot lose its text.
 */
#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>

#include "common/err.h"
#include "common/log.h"

struct err_entry {
	int code;
	const char *msg;
};

static const struct err_entry err_table[] = {
	{ TS_OK, "success" },
	{ TS_ERR_INTERNAL, "internal error" },
	{ TS_ERR_ALLOC, "out of memory" },
	{ TS_ERR_INVALID_ARG, "invalid argument" },
	{ TS_ERR_SYSTEM, "system error" },
	{ TS_ERR_NOT_FOUND, "not found" },
	{ TS_ERR_AMBIGUOUS, "ambiguous: more than one match" },
	{ TS_ERR_TOO_LARGE, "input too large" },
	{ TS_ERR_TIMEOUT, "timed out" },
	{ TS_ERR_EXISTS, "already exists" },
	{ TS_ERR_UNSUPPORTED, "not supported" },
	{ TS_ERR_PARSE, "malformed input" },
	{ TS_ERR_CONFIG, "invalid configuration" },
	{ TS_ERR_CRYPTO, "cryptographic library error" },
	{ TS_ERR_INTERRUPTED, "interrupted" },
	{ TS_ERR_PERMISSION, "permission denied" },

	{ TS_ERR_WIRE_TRUNCATED, "message truncated" },
	{ TS_ERR_WIRE_TOO_LONG, "message or field too long" },
	{ TS_ERR_WIRE_TRAILING, "unexpected trailing bytes in message" },
	{ TS_ERR_WIRE_BAD_TYPE, "unknown message type" },
	{ TS_ERR_WIRE_BAD_STRING, "invalid string in message" },
	{ TS_ERR_WIRE_VERSION, "incompatible protocol version" },
	{ TS_ERR_WIRE_BUF_FULL, "buffer size limit reached" },
	{ TS_ERR_WIRE_BAD_FIELD, "invalid field value in message" },
	{ TS_ERR_AGENT_FAILURE, "agent refused the request" },
	{ TS_ERR_AGENT_CONNECT, "cannot connect to the agent" },
	{ TS_ERR_AGENT_LOCKED, "agent is locked" },
	{ TS_ERR_AGENT_BAD_PASS, "incorrect passphrase" },
	{ TS_ERR_AGENT_CLOSED, "connection closed by peer" },
	{ TS_ERR_AGENT_CONFIRM, "signing was not confirmed" },
	{ TS_ERR_AGENT_NEEDS_UNLOCK, "agent needs unlock: token logged out" },

	{ TS_ERR_P11_MODULE, "PKCS#11 module cannot be loaded" },
	{ TS_ERR_P11_MODULE_DENIED, "PKCS#11 module is not on the allow-list" },
	{ TS_ERR_P11_URI, "malformed PKCS#11 URI" },
	{ TS_ERR_P11_TOKEN_NOT_FOUND, "token not found" },
	{ TS_ERR_P11_KEY_NOT_FOUND, "key not found" },
	{ TS_ERR_P11_KEY_AMBIGUOUS, "key reference matches more than one key" },
	{ TS_ERR_P11_PIN_INCORRECT, "PIN incorrect" },
	{ TS_ERR_P11_PIN_LOCKED, "PIN locked" },
	{ TS_ERR_P11_PIN_FINAL_TRY,
	    "PIN has 1 try left: refusing to spend it from a stored source" },
	{ TS_ERR_P11_PIN_REQUIRED, "a PIN is required but none is available" },
	{ TS_ERR_P11_TOKEN_REMOVED, "token is not present" },
	{ TS_ERR_P11_SESSION, "token session closed" },
	{ TS_ERR_P11_NOT_LOGGED_IN, "not logged in to the token" },
	{ TS_ERR_P11_MECHANISM, "mechanism not supported by the token" },
	{ TS_ERR_P11_KEY_TYPE, "key type or size not supported" },
	{ TS_ERR_P11_BAD_ATTRIBUTE, "token returned an invalid attribute" },
	{ TS_ERR_P11_DEVICE, "token device error" },
	{ TS_ERR_P11_FUNCTION, "PKCS#11 call failed" },
	{ TS_ERR_P11_TOKEN_BUSY, "token is not responding" },
	{ TS_ERR_P11_TOUCH_TIMEOUT, "touch timed out" },
	{ TS_ERR_P11_PIN_SOURCE, "PIN source cannot be read" },

	{ TS_ERR_POLICY_DENIED, "denied by policy" },
	{ TS_ERR_POLICY_PEER, "peer not allowed" },
	{ TS_ERR_POLICY_RATE, "rate limit exceeded" },
	{ TS_ERR_POLICY_DIGEST, "raw digest signing not allowed" },
	{ TS_ERR_PAYLOAD_INVALID, "not a valid simple-signing payload" },
	{ TS_ERR_AUDIT_WRITE, "cannot write the audit log" },
	{ TS_ERR_AUDIT_CHAIN, "audit log chain is broken" },
	{ TS_ERR_POLICY_BUSY, "too many concurrent requests" },

	{ TS_ERR_TLS, "TLS error" },
	{ TS_ERR_TLS_PEER, "TLS peer certificate refused" },
	{ TS_ERR_IO, "I/O error" },
	{ TS_ERR_CONN_REFUSED, "connection refused" },

	{ TS_ERR_REF_INVALID, "invalid image reference" },
	{ TS_ERR_DIGEST_INVALID, "invalid digest" },
	{ TS_ERR_DIGEST_MISMATCH, "digest mismatch" },
	{ TS_ERR_HTTP, "HTTP transport error" },
	{ TS_ERR_HTTP_STATUS, "unexpected HTTP status" },
	{ TS_ERR_REG_AUTH, "registry authentication failed" },
	{ TS_ERR_REG_NOT_FOUND, "not found in registry" },
	{ TS_ERR_REG_PROTOCOL, "registry protocol error" },
	{ TS_ERR_MANIFEST_INVALID, "invalid manifest" },
	{ TS_ERR_SIG_INVALID, "signature does not verify" },
	{ TS_ERR_SIG_NONE, "no signatures found" },
	{ TS_ERR_SIG_IDENTITY, "signature identity does not match" },
	{ TS_ERR_SIG_ANNOTATION, "required annotation missing or different" },
	{ TS_ERR_BASE64, "invalid base64" },
	{ TS_ERR_KEY_INVALID, "invalid public key" },
	{ TS_ERR_CREDENTIALS, "credential lookup failed" },
	{ TS_ERR_CONCURRENT, "concurrent update could not be merged" },
};

const char *
ts_err(int r)
{
	size_t i;

	for (i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
		if (err_table[i].code == r)
			return err_table[i].msg;
	return "unknown error code";
}

int
ts_err_ossl(const char *what)
{
	unsigned long e;
	char buf[256];
	int n = 0;

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		/* Only the first few: the queue can be long and repetitive. */
		if (n++ < 4)
			ts_log(TS_LOG_ERROR, "%s: openssl: %s", what, buf);
	}
	if (n == 0)
		ts_log(TS_LOG_ERROR, "%s: openssl failed without error", what);
	return TS_ERR_CRYPTO;
}

void
ts_errbuf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}
