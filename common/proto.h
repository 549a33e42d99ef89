/*
 * proto.h - the tokensign agent protocol: version, limits, message types
 * and flags shared by the agent and its clients (style.md section 6).
 * The byte layout of every message is specified in docs/PROTOCOL.md.
 *
 * A frame is a u32 big-endian length n (1 <= n <= TS_PROTO_MAX_FRAME),
 * then n bytes: a u8 message type and the body.  Fields are u8, u32, u64
 * (big-endian) and strings (u32 length then bytes), as in ssh-agent.
 *
 * Type numbers: ssh-agent (RFC 9987) uses 1..30 and may grow below 100,
 * so ours live in 100..159 and never collide; one dispatch table on one
 * socket can serve both protocols (issue 7).
 *   100..119  requests (client -> agent)
 *   120..139  replies (agent -> client)
 *   140..149  notices (agent -> client, before the reply)
 */
#ifndef TS_COMMON_PROTO_H
#define TS_COMMON_PROTO_H

#define TS_PROTO_VERSION     1
#define TS_PROTO_MAX_FRAME   (256 * 1024) /* bytes after the length */
#define TS_PROTO_LEN_SIZE    4
#define TS_PROTO_MAX_BATCH   1024 /* items in one SIGN_BATCH */
#define TS_PROTO_MAX_KEYREF  8192 /* key id, label or PKCS#11 URI */
#define TS_PROTO_MAX_PASS    1024 /* LOCK/UNLOCK passphrase */
#define TS_PROTO_MAX_MESSAGE 1024 /* FAILURE message text */
#define TS_PROTO_MAX_NAME    256 /* HELLO peer name */
#define TS_PROTO_KEY_ID_LEN  16 /* hex chars of a key id */

/* The first and last type number of ours (for dispatch range checks). */
#define TS_MSG_FIRST 100
#define TS_MSG_LAST  159

/* Requests. */
#define TS_MSG_HELLO	    100
#define TS_MSG_LIST_KEYS    101
#define TS_MSG_SIGN_PAYLOAD 102
#define TS_MSG_SIGN_DIGEST  103
#define TS_MSG_SIGN_BATCH   104
#define TS_MSG_LOCK	    105
#define TS_MSG_UNLOCK	    106
#define TS_MSG_STATUS	    107

/* Replies. */
#define TS_MSG_HELLO_REPLY  120
#define TS_MSG_SUCCESS	    121
#define TS_MSG_FAILURE	    122
#define TS_MSG_KEYS	    123
#define TS_MSG_SIGNATURE    124
#define TS_MSG_BATCH_REPLY  125
#define TS_MSG_STATUS_REPLY 126

/* Notices (reserved: issue 6 sends PROGRESS "touch your token"). */
#define TS_MSG_PROGRESS 140
/* PROGRESS kinds (u32 after the type byte, then a string message). */
#define TS_PROGRESS_TOUCH 1 /* the token is waiting: touch / PIN pad */

/* SIGN_DIGEST / batch hash algorithms (same numbers as enum p11_hash). */
#define TS_HASH_SHA256 1
#define TS_HASH_SHA384 2
#define TS_HASH_SHA512 3

/* SIGN_BATCH item kinds. */
#define TS_BATCH_PAYLOAD 1
#define TS_BATCH_DIGEST	 2

/* Request flags (u32); unknown bits are refused. */
#define TS_SIGN_FLAGS_KNOWN 0x00000000u

/* KEYS entry flags (u32). */
#define TS_KEY_PRESENT	   0x01 /* token holding the key is present */
#define TS_KEY_CONFIRM	   0x02 /* each use needs confirmation */
#define TS_KEY_ALWAYS_AUTH 0x04 /* CKA_ALWAYS_AUTHENTICATE */

/* STATUS flags (u32). */
#define TS_STATUS_LOCKED       0x01 /* locked with LOCK */
#define TS_STATUS_NEEDS_UNLOCK 0x02 /* PIN timed out, no PIN source */

/* Environment variables. */
#define TS_ENV_AUTH_SOCK "TOKENSIGN_AUTH_SOCK"
#define TS_ENV_AGENT_PID "TOKENSIGN_AGENT_PID"
#define TS_ENV_ASKPASS	 "TOKENSIGN_ASKPASS"

#endif /* TS_COMMON_PROTO_H */
