/* procstat.h: this process's resource use, for /metrics and health answers.
 *
 * vd_procstat_read fills a snapshot from /proc/self (resident memory, open
 * file descriptors, threads, CPU time), glibc's allocator (bytes handed out
 * by malloc and bytes it holds from the kernel: their difference is free
 * memory kept in its arenas) and SQLite's allocator (bytes in use by every
 * connection of the process, page caches included). A field that cannot be
 * read is -1. Telling these apart is what turns "RSS rises" into "a cache
 * fills" or "the allocator fragments" or "something leaks". */
#ifndef VD_PROCSTAT_H
#define VD_PROCSTAT_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    int64_t rss_bytes;     /* VmRSS */
    int64_t open_fds;      /* entries in /proc/self/fd */
    int64_t threads;       /* Threads */
    double cpu_seconds;    /* user + system */
    int64_t malloc_in_use; /* mallinfo2 uordblks + hblkhd: bytes handed out */
    int64_t malloc_held;   /* mallinfo2 arena + hblkhd: bytes taken from the kernel */
    int64_t sqlite_in_use; /* sqlite3_memory_used() */
} vd_procstat;

/* Fills *out (never fails: unreadable fields are -1). */
void vd_procstat_read(vd_procstat *out);

/* Writes *p as Prometheus gauges (process_resident_memory_bytes,
 * process_open_fds, process_threads, process_cpu_seconds_total,
 * visiond_malloc_in_use_bytes, visiond_malloc_held_bytes,
 * visiond_sqlite_memory_bytes), with HELP and TYPE lines; fields of -1 are
 * left out. */
void vd_procstat_write_prometheus(const vd_procstat *p, FILE *out);

#endif
