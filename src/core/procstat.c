/* procstat.c: this process's resource use (see procstat.h). */
#include "core/procstat.h"

#include <dirent.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Returns the value in kB of "key:" in /proc/self/status, or -1. */
static int64_t status_field(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    if (!p) return -1;
    return strtoll(p + strlen(key), NULL, 10);
}

static int64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static double cpu_seconds(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* fields after the command name (which may hold spaces) in parentheses */
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (double)(ut + st) / (double)hz : -1;
}

void vd_procstat_read(vd_procstat *out)
{
    memset(out, 0, sizeof *out);
    out->rss_bytes = out->threads = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char text[4096];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = '\0';
        int64_t kb = status_field(text, "\nVmRSS:");
        out->rss_bytes = kb >= 0 ? kb * 1024 : -1;
        out->threads = status_field(text, "\nThreads:");
    }
    out->open_fds = count_fds();
    out->cpu_seconds = cpu_seconds();
    struct mallinfo2 mi = mallinfo2();
    out->malloc_in_use = (int64_t)(mi.uordblks + mi.hblkhd);
    out->malloc_held = (int64_t)(mi.arena + mi.hblkhd);
    out->sqlite_in_use = (int64_t)sqlite3_memory_used();
}

static void gauge(FILE *out, const char *name, const char *type, const char *help, double v)
{
    if (v < 0) return;
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

void vd_procstat_write_prometheus(const vd_procstat *p, FILE *out)
{
    gauge(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
          (double)p->rss_bytes);
    gauge(out, "process_open_fds", "gauge", "Number of open file descriptors.",
          (double)p->open_fds);
    gauge(out, "process_threads", "gauge", "Number of threads.", (double)p->threads);
    gauge(out, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.",
          p->cpu_seconds);
    gauge(out, "visiond_malloc_in_use_bytes", "gauge",
          "Bytes handed out by malloc (glibc mallinfo2).", (double)p->malloc_in_use);
    gauge(out, "visiond_malloc_held_bytes", "gauge",
          "Bytes malloc holds from the kernel, in use or free in its arenas.",
          (double)p->malloc_held);
    gauge(out, "visiond_sqlite_memory_bytes", "gauge",
          "Bytes SQLite has allocated (all connections, page caches included).",
          (double)p->sqlite_in_use);
}
