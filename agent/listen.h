/*
 * listen.h - listeners: sockets the agent accepts connections on.
 *
 * A listener owns one listening fd on the loop.  On accept it
 * authenticates the peer at once (Unix: SO_PEERCRED against the policy;
 * TLS, issue 5: the client certificate), audits a refusal, and hands the
 * connection to the connection manager with the right transport ops.
 */
#ifndef TS_AGENT_LISTEN_H
#define TS_AGENT_LISTEN_H

struct loop;
struct connmgr;
struct dispatch_ctx;
struct listener;

/*
 * Creates a Unix socket: at path, or (path NULL) in a fresh 0700
 * directory under $XDG_RUNTIME_DIR or /tmp.  The socket is mode 0600
 * (umask 0177 around bind).  Returns 0 with the listening fd in *fdp and
 * the path in *pathp (malloc'd), or TS_ERR_SYSTEM / TS_ERR_EXISTS.
 */
int listen_unix_create(const char *path, int *fdp, char **pathp)
    __attribute__((warn_unused_result));

/*
 * Returns a listener accepting on fd.  unlink_path (copied; may be NULL
 * for an inherited socket) is removed with its directory when
 * remove_dir is set, by listener_free().  NULL on OOM.
 */
struct listener *listener_unix_new(struct loop *l, struct connmgr *m,
    struct dispatch_ctx *ctx, int fd, const char *unlink_path, int remove_dir);
/* Stops accepting (keeps the socket file). */
void listener_stop(struct listener *ls);
/* Stops, closes, removes the socket file (and dir); NULL is fine. */
void listener_free(struct listener *ls);

/*
 * systemd socket activation: checks LISTEN_PID == getpid() and LISTEN_FDS
 * (1..16), and that each fd from 3 is a listening AF_UNIX stream socket.
 * Returns the number of fds (0 when not activated) with the first in
 * *fdp, or TS_ERR_CONFIG when the variables are malformed.  Unsets the
 * variables so children do not see them.
 */
int listen_systemd_fds(int *fdp) __attribute__((warn_unused_result));
/* Sends READY=1 (or text) to $NOTIFY_SOCKET if set; best effort. */
void listen_sd_notify(const char *text);

#endif /* TS_AGENT_LISTEN_H */
