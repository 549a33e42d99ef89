/*
 * confirm.h - ask the user before a signature (ssh-add -c style): runs the
 * program named by $TOKENSIGN_ASKPASS (or the agent's configured one)
 * with the prompt as its only argument and SSH_ASKPASS_PROMPT=confirm in
 * its environment; exit status 0 means approved.  The child is spawned
 * with posix_spawn (exec only: safe after C_Initialize).
 */
#ifndef TS_AGENT_CONFIRM_H
#define TS_AGENT_CONFIRM_H

#define CONFIRM_TIMEOUT_S 60 /* an unanswered prompt is a "no" */

/*
 * Returns 0 when the user approved, TS_ERR_AGENT_CONFIRM when declined,
 * timed out or no askpass program is configured (the reason is logged).
 */
int confirm_ask(const char *askpass, const char *prompt);

#endif /* TS_AGENT_CONFIRM_H */
