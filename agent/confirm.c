/*
 * confirm.c - run the askpass program and wait for its verdict.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/confirm.h"
#include "agent/loop.h"
#include "common/err.h"
#include "common/log.h"

int
confirm_ask(const char *askpass, const char *prompt)
{
	posix_spawn_file_actions_t fa;
	char *argv[3], *envp[4];
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	uint64_t deadline;
	pid_t pid, w;
	int status = 0, r;

	if (askpass == NULL || askpass[0] == '\0') {
		error_f("confirmation required but no askpass program set "
			"(TOKENSIGN_ASKPASS)");
		return TS_ERR_AGENT_CONFIRM;
	}
	argv[0] = (char *)(uintptr_t)askpass;
	argv[1] = (char *)(uintptr_t)prompt;
	argv[2] = NULL;
	/* A minimal environment: the agent's may hold a PIN variable. */
	envp[0] = (char *)(uintptr_t) "SSH_ASKPASS_PROMPT=confirm";
	envp[1] = (char *)(uintptr_t) "PATH=/usr/bin:/bin";
	envp[2] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	r = posix_spawn(&pid, askpass, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0) {
		error_f("askpass %.200s: %s", askpass, strerror(r));
		return TS_ERR_AGENT_CONFIRM;
	}
	deadline = loop_now_ms() + CONFIRM_TIMEOUT_S * 1000;
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			error_f("waitpid: %s", strerror(errno));
			return TS_ERR_AGENT_CONFIRM;
		}
		if (loop_now_ms() > deadline) {
			kill(pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			error_f("askpass timed out");
			return TS_ERR_AGENT_CONFIRM;
		}
		nanosleep(&ts, NULL);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	verbose_f("askpass declined");
	return TS_ERR_AGENT_CONFIRM;
}
