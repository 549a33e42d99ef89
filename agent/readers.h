/*
 * readers.h - PC/SC reader watcher (issue 6): one thread blocks in
 * SCardGetStatusChange on every reader plus the "\\?PnP?\Notification"
 * pseudo-reader (readers plugged in and out) and reports each card
 * insertion and removal.  The only agent file that sees PC/SC types.
 *
 * Without pcscd the thread keeps trying to reach it every 2 s, quietly.
 */
#ifndef TS_AGENT_READERS_H
#define TS_AGENT_READERS_H

struct readers;

/*
 * Called from the watcher thread: a card went into (present 1) or out of
 * (0) the reader named reader (also for every reader when the watcher
 * first sees it, and present 0 when a reader is unplugged).
 */
typedef void (*readers_cb)(void *arg, const char *reader, int present);

/* Starts the watcher.  Returns 0 and *rp, TS_ERR_ALLOC or TS_ERR_SYSTEM. */
int readers_start(readers_cb cb, void *arg, struct readers **rp)
    __attribute__((warn_unused_result));
/* Stops and joins the thread (within about 0.5 s); NULL is fine. */
void readers_stop(struct readers *r);

#endif /* TS_AGENT_READERS_H */
