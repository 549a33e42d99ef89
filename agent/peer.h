/*
 * peer.h - who is on the other end of a connection.  Filled by the
 * listener right after accept (SO_PEERCRED / SO_PEERGROUPS on the Unix
 * socket; certificate identity for TLS, issue 5) and read by policy,
 * dispatch and audit.  A plain value struct: no ownership.
 */
#ifndef TS_AGENT_PEER_H
#define TS_AGENT_PEER_H

#include <stdint.h>
#include <sys/types.h>

#define PEER_MAX_GROUPS	  64
#define PEER_EXE_MAX	  256
#define PEER_IDENTITY_MAX 256

enum peer_transport {
	PEER_UNIX = 1,
	PEER_TLS = 2,
	PEER_TEST = 3 /* unit tests and the fuzzer */
};

struct agent_peer {
	enum peer_transport transport;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int ngroups; /* supplementary groups, -1 when unknown */
	gid_t groups[PEER_MAX_GROUPS];
	char exe[PEER_EXE_MAX]; /* "" when unknown; printable ASCII only */
	char identity[PEER_IDENTITY_MAX]; /* TLS CN/SAN; "" on Unix */
	int hello_done; /* HELLO exchanged on this connection */
	uint32_t version; /* protocol version agreed */
};

/*
 * Fills p from the Unix socket fd (SO_PEERCRED, SO_PEERGROUPS,
 * /proc/PID/exe).  Returns 0 or TS_ERR_SYSTEM (no credentials: refuse).
 */
int peer_from_unix_socket(int fd, struct agent_peer *p)
    __attribute__((warn_unused_result));

#endif /* TS_AGENT_PEER_H */
