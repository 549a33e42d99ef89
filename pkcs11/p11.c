/*
 * p11.c - placeholder translation unit until the token layer lands
 * (issue 2); keeps the static library non-empty.
 */
#include "common/err.h"

int p11_layer_present(void);

int
p11_layer_present(void)
{
	return 0;
}
