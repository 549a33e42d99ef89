/*
 * commands.h - the client's subcommands.  Each lives in client/cmd_<name>.c
 * and has one row in the table in client/main.c.  A command returns a
 * process exit status (below).
 */
#ifndef TS_CLIENT_COMMANDS_H
#define TS_CLIENT_COMMANDS_H

/* Exit statuses, stable for scripts (documented in docs/exit-codes.md). */
#define TS_EXIT_OK	      0
#define TS_EXIT_FAILURE	      1 /* any other failure */
#define TS_EXIT_USAGE	      2 /* bad arguments */
#define TS_EXIT_NO_SIGNATURES 10 /* verify: no signatures exist */
#define TS_EXIT_INVALID	      11 /* verify: none of them valid */
#define TS_EXIT_REGISTRY      12 /* registry or auth error */
#define TS_EXIT_AGENT	      13 /* agent unreachable or refused */
#define TS_EXIT_TOKEN	      14 /* token, PIN or key error */

int cmd_version(int argc, char **argv);
int cmd_sign_image(int argc, char **argv); /* "sign" */
int cmd_verify(int argc, char **argv);
int cmd_attach(int argc, char **argv); /* "attach signature" */
int cmd_triangulate(int argc, char **argv);
int cmd_tree(int argc, char **argv);
int cmd_agent_keys(int argc, char **argv);
int cmd_public_key(int argc, char **argv);
int cmd_ssh_keys(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_pkcs11(int argc, char **argv);

#endif /* TS_CLIENT_COMMANDS_H */
