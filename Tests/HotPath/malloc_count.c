/*
 * malloc_count.so: counts heap allocations of the process it is preloaded into.
 *
 *   cc -shared -fPIC -O2 -o malloc_count.so malloc_count.c
 *   MALLOC_COUNT_FILE=/tmp/count LD_PRELOAD=./malloc_count.so zend ...
 *
 * Every call of malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign,
 * valloc and pvalloc, in every thread, adds one; free is not counted. When the process
 * exits normally (exit or a return from main), the count is written to the file named by
 * MALLOC_COUNT_FILE as a decimal number and a newline. The real allocator is glibc's
 * (__libc_malloc and friends), so no dlsym is needed, and dlsym's own calloc cannot recurse.
 * Used by Tests/ZendEndToEndTests/HotPathTests.swift and Benchmarks/instructions.py.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static unsigned long long allocations;

static inline void count(void) { __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED); }

void *malloc(size_t size) { count(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { count(); return __libc_realloc(p, size); }
void *memalign(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { count(); return __libc_memalign(alignment, size); }
void *valloc(size_t size) { count(); return __libc_valloc(size); }
void *pvalloc(size_t size) { count(); return __libc_pvalloc(size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    count();
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *p = __libc_memalign(alignment, size);
    if (!p && size) return ENOMEM;
    *out = p;
    return 0;
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (!path) return;
    char line[32];
    int len = snprintf(line, sizeof line, "%llu\n", __atomic_load_n(&allocations, __ATOMIC_RELAXED));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t ignored = write(fd, line, (size_t)len);
    (void)ignored;
    close(fd);
}
