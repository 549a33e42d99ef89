/*
 * xmalloc.h - fatal-on-OOM allocation for program-level code only
 * (main.c files, CLI plumbing).  Parsers and common/ modules return
 * TS_ERR_ALLOC instead (style.md section 3).
 */
#ifndef TS_COMMON_XMALLOC_H
#define TS_COMMON_XMALLOC_H

#include <stddef.h>

/* Each returns memory the caller frees; never NULL. */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* Returns a malloc'd formatted string; never NULL. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* TS_COMMON_XMALLOC_H */
