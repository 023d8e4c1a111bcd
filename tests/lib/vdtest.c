/* vdtest.c: registration, running and reporting for vdtest.h. */
#include "vdtest.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct {
    const char *name;
    vd_test_fn fn;
} tests[MAX_TESTS];
static int ntests, cur_failed, cur_skipped;
static char tmp_root[256];

void vd_test_register(const char *name, vd_test_fn fn)
{
    if (ntests < MAX_TESTS) {
        tests[ntests].name = name;
        tests[ntests++].fn = fn;
    }
}

void vd_test_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "    %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    cur_failed = 1;
}

void vd_test_skip(const char *why)
{
    fprintf(stdout, "    skipped: %s\n", why);
    cur_skipped = 1;
}

int vd_test_failed(void)
{
    return cur_failed;
}

const char *vd_test_tmpdir(void)
{
    static char dir[320];
    static int n;
    if (!tmp_root[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_root, sizeof tmp_root, "%s/vdtest.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp_root)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    snprintf(dir, sizeof dir, "%s/t%d", tmp_root, ++n);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) exit(1);
    return dir;
}

static void cleanup_tmp(void)
{
    if (tmp_root[0] && !getenv("VDTEST_KEEP")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
    }
}

int vd_test_run_all(void)
{
    const char *filter = getenv("VDTEST_FILTER");
    int passed = 0, failed = 0, skipped = 0;
    atexit(cleanup_tmp);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < ntests; i++) {
        if (filter && !strstr(tests[i].name, filter)) continue;
        cur_failed = cur_skipped = 0;
        fprintf(stdout, "--- %s\n", tests[i].name);
        tests[i].fn();
        if (cur_failed) {
            failed++;
            fprintf(stdout, "FAIL %s\n", tests[i].name);
        } else if (cur_skipped) {
            skipped++;
            fprintf(stdout, "SKIP %s\n", tests[i].name);
        } else {
            passed++;
            fprintf(stdout, "ok   %s\n", tests[i].name);
        }
    }
    fprintf(stdout, "%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : (passed == 0 && skipped > 0 ? 77 : 0);
}
