/* mem.c — see mem.h. The fault hook is a countdown checked on every allocation. */
#include "mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long g_fail_at = -1; /* allocation index that fails; -1: never */
static atomic_long g_count = 0;
static atomic_bool g_sticky = false;

void mem_fail_after(long n, bool sticky) {
    atomic_store(&g_count, 0);
    atomic_store(&g_sticky, sticky);
    atomic_store(&g_fail_at, n);
}

long mem_alloc_count(void) { return atomic_load(&g_count); }

static bool should_fail(void) {
    long at = atomic_load(&g_fail_at);
    long i = atomic_fetch_add(&g_count, 1);
    if (at < 0) return false;
    return atomic_load(&g_sticky) ? i >= at : i == at;
}

void *mem_alloc(size_t n) {
    if (should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *mem_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    if (should_fail()) return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *mem_realloc(void *p, size_t n) {
    if (should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void mem_free(void *p) { free(p); }

void *mem_alloc_aligned(size_t n) {
    if (should_fail()) return NULL;
    size_t rounded = (n + 63) / 64 * 64;
    if (rounded < n) return NULL;
    return aligned_alloc(64, rounded ? rounded : 64);
}

void mem_free_aligned(void *p) { free(p); }

char *mem_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = mem_alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
