/*
 * err.h - the one error space of tokensign (style.md section 3).
 *
 * Every fallible function returns 0 on success or a negative TS_ERR_* code.
 * Codes are grouped in ranges by subsystem.  Never renumber or reuse a code:
 * retire it with an "unused" comment instead.  ts_err() maps a code to a
 * message a user understands.  Process exit codes are separate (see
 * client/main.c).
 */
#ifndef TS_COMMON_ERR_H
#define TS_COMMON_ERR_H

#include <stddef.h>

#define TS_OK 0

/* generic: -1 .. -29 */
#define TS_ERR_INTERNAL	   -1 /* broken invariant */
#define TS_ERR_ALLOC	   -2
#define TS_ERR_INVALID_ARG -3
#define TS_ERR_SYSTEM	   -4 /* see errno */
#define TS_ERR_NOT_FOUND   -5
#define TS_ERR_AMBIGUOUS   -6
#define TS_ERR_TOO_LARGE   -7
#define TS_ERR_TIMEOUT	   -8
#define TS_ERR_EXISTS	   -9
#define TS_ERR_UNSUPPORTED -10
#define TS_ERR_PARSE	   -11 /* malformed text input */
#define TS_ERR_CONFIG	   -12
#define TS_ERR_CRYPTO	   -13 /* OpenSSL failure; queue logged */
#define TS_ERR_INTERRUPTED -14
#define TS_ERR_PERMISSION  -15

/* wire (agent protocol, wbuf): -30 .. -59 */
#define TS_ERR_WIRE_TRUNCATED	  -30
#define TS_ERR_WIRE_TOO_LONG	  -31 /* frame or field over its maximum */
#define TS_ERR_WIRE_TRAILING	  -32 /* bytes left after a message */
#define TS_ERR_WIRE_BAD_TYPE	  -33 /* unknown message type */
#define TS_ERR_WIRE_BAD_STRING	  -34 /* embedded NUL or bad UTF-8 */
#define TS_ERR_WIRE_VERSION	  -35 /* incompatible peer */
#define TS_ERR_WIRE_BUF_FULL	  -36 /* buffer would exceed its max size */
#define TS_ERR_WIRE_BAD_FIELD	  -37 /* field value out of range */
#define TS_ERR_AGENT_FAILURE	  -38 /* peer answered FAILURE */
#define TS_ERR_AGENT_CONNECT	  -39 /* cannot reach the agent */
#define TS_ERR_AGENT_LOCKED	  -40
#define TS_ERR_AGENT_BAD_PASS	  -41
#define TS_ERR_AGENT_CLOSED	  -42 /* peer closed the connection */
#define TS_ERR_AGENT_CONFIRM	  -43 /* user declined confirmation */
#define TS_ERR_AGENT_NEEDS_UNLOCK -44 /* PIN timed out, no PIN source */

/* token (PKCS#11): -60 .. -99 */
#define TS_ERR_P11_MODULE	   -60 /* module cannot be loaded */
#define TS_ERR_P11_MODULE_DENIED   -61 /* module not on the allow-list */
#define TS_ERR_P11_URI		   -62 /* malformed PKCS#11 URI */
#define TS_ERR_P11_TOKEN_NOT_FOUND -63
#define TS_ERR_P11_KEY_NOT_FOUND   -64
#define TS_ERR_P11_KEY_AMBIGUOUS   -65
#define TS_ERR_P11_PIN_INCORRECT   -66
#define TS_ERR_P11_PIN_LOCKED	   -67
#define TS_ERR_P11_PIN_FINAL_TRY   -68 /* refused to spend the last try */
#define TS_ERR_P11_PIN_REQUIRED	   -69 /* no PIN source available */
#define TS_ERR_P11_TOKEN_REMOVED   -70 /* device removed / not present */
#define TS_ERR_P11_SESSION	   -71 /* session closed or invalid */
#define TS_ERR_P11_NOT_LOGGED_IN   -72
#define TS_ERR_P11_MECHANISM	   -73 /* mechanism unsupported by token */
#define TS_ERR_P11_KEY_TYPE	   -74 /* key type or size unsupported */
#define TS_ERR_P11_BAD_ATTRIBUTE   -75 /* token returned a bad value */
#define TS_ERR_P11_DEVICE	   -76 /* device error / memory / general */
#define TS_ERR_P11_FUNCTION	   -77 /* other CKR_* failure */
#define TS_ERR_P11_TOKEN_BUSY	   -78 /* unresponsive / deadline passed */
#define TS_ERR_P11_TOUCH_TIMEOUT   -79
#define TS_ERR_P11_PIN_SOURCE	   -80 /* PIN file/env unreadable */

/* policy and audit: -100 .. -129 */
#define TS_ERR_POLICY_DENIED   -100
#define TS_ERR_POLICY_PEER     -101 /* peer uid/gid/identity refused */
#define TS_ERR_POLICY_RATE     -102 /* rate limit exceeded */
#define TS_ERR_POLICY_DIGEST   -103 /* raw digest signing not allowed */
#define TS_ERR_PAYLOAD_INVALID -104 /* not a simple-signing payload */
#define TS_ERR_AUDIT_WRITE     -105
#define TS_ERR_AUDIT_CHAIN     -106 /* audit chain broken */
#define TS_ERR_POLICY_BUSY     -107 /* too many concurrent requests */

/* TLS and I/O: -130 .. -159 */
#define TS_ERR_TLS	    -130
#define TS_ERR_TLS_PEER	    -131 /* peer certificate refused */
#define TS_ERR_IO	    -132
#define TS_ERR_CONN_REFUSED -133

/* registry and signatures: -160 .. -199 */
#define TS_ERR_REF_INVALID	-160 /* bad image reference */
#define TS_ERR_DIGEST_INVALID	-161
#define TS_ERR_DIGEST_MISMATCH	-162
#define TS_ERR_HTTP		-163 /* transport failure */
#define TS_ERR_HTTP_STATUS	-164 /* unexpected status */
#define TS_ERR_REG_AUTH		-165 /* 401/403 */
#define TS_ERR_REG_NOT_FOUND	-166 /* manifest/blob/repo unknown */
#define TS_ERR_REG_PROTOCOL	-167 /* registry broke the protocol */
#define TS_ERR_MANIFEST_INVALID -168
#define TS_ERR_SIG_INVALID	-169 /* signature does not verify */
#define TS_ERR_SIG_NONE		-170 /* no signatures exist */
#define TS_ERR_SIG_IDENTITY	-171 /* docker-reference mismatch */
#define TS_ERR_SIG_ANNOTATION	-172 /* required annotation missing */
#define TS_ERR_BASE64		-173
#define TS_ERR_KEY_INVALID	-174 /* public key unreadable */
#define TS_ERR_CREDENTIALS	-175 /* credential store/helper failure */
#define TS_ERR_CONCURRENT	-176 /* lost update could not be merged */

/* Returns a static message for code r; never NULL. */
const char *ts_err(int r);

/*
 * Logs and clears the OpenSSL error queue at the failing call, tagged with
 * what; returns TS_ERR_CRYPTO so it can be used as "r = ts_err_ossl(...)".
 */
int ts_err_ossl(const char *what);

/*
 * Formats a message into the caller's buffer (buf may be NULL or len 0:
 * then nothing is written).  Parsers use it to say which field was wrong.
 */
void ts_errbuf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* TS_COMMON_ERR_H */
