/*
 * secmem.c - secret memory.  Each secret gets its own anonymous mapping so
 * MADV_DONTDUMP and mlock apply to exactly its pages; secrets are few and
 * small (PINs), so the page granularity costs nothing that matters.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "common/log.h"
#include "common/secmem.h"

#define SECMEM_MAX 4096

void *
secmem_alloc(size_t len)
{
	void *p;

	if (len == 0 || len > SECMEM_MAX)
		return NULL;
	p = mmap(NULL, SECMEM_MAX, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (madvise(p, SECMEM_MAX, MADV_DONTDUMP) != 0)
		debug_f("madvise(MADV_DONTDUMP) failed");
	if (mlock(p, SECMEM_MAX) != 0)
		debug_f("mlock failed; secret may be swapped");
	return p;
}

void
secmem_free(void *p, size_t len)
{
	(void)len;
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, SECMEM_MAX);
	munlock(p, SECMEM_MAX);
	munmap(p, SECMEM_MAX);
}

void
freezero(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

int
secmem_eq_ct(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0 ? 0 : -1;
}

int
secmem_harden_process(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		return TS_ERR_SYSTEM;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return TS_ERR_SYSTEM;
	return 0;
}

void
secmem_sanitise_stdfd(void)
{
	int fd, nullfd;

	if ((nullfd = open("/dev/null", O_RDWR)) == -1)
		fatal_f("open /dev/null failed");
	for (fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFL) == -1 && dup2(nullfd, fd) == -1)
			fatal_f("dup2 failed");
	if (nullfd > 2)
		close(nullfd);
}
