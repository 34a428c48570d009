/* mem.h — the allocator every module uses, with a fault hook for allocation-failure tests.
 *
 * mem_alloc/mem_calloc/mem_realloc behave like malloc/calloc/realloc and return NULL on
 * failure (also on size overflow in mem_calloc). mem_free(NULL) is a no-op.
 * mem_fail_after(n): the n+1-th allocation from now fails (and every later one while
 * `sticky`); mem_fail_after(-1) turns the hook off. Tests use it to sweep every allocation of
 * a parser (SQLite's oom loop). The counter is global and atomic; only tests set it. */
#ifndef HIRED_MEM_H
#define HIRED_MEM_H

#include <stdbool.h>
#include <stddef.h>

void *mem_alloc(size_t n);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *p, size_t n);
void mem_free(void *p);
/* 64-byte aligned allocation for tensor data; free with mem_free_aligned. */
void *mem_alloc_aligned(size_t n);
void mem_free_aligned(void *p);
/* Copy of s (NUL-terminated) or NULL. Caller owns the result (mem_free). */
char *mem_strdup(const char *s);

void mem_fail_after(long n, bool sticky);
/* How many allocations have been made since the last mem_fail_after(). */
long mem_alloc_count(void);

#endif
