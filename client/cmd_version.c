#include <stdio.h>

#include "client/commands.h"

int
cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("tokensign %s\n", TOKENSIGN_VERSION);
	return TS_EXIT_OK;
}
