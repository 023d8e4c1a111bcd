/* fuzz_paths.c: media-root confinement (core/paths.h) against arbitrary paths.
 *
 * A fixed tree in a private temporary directory holds two roots and what a
 * hostile client aims at:
 *   ROOT/r1/{a.jpg, sub/b.jpg, link_in -> sub, link_out -> ../outside/secret.jpg,
 *            dir_out -> ../outside, loop -> loop, abs_out -> /etc/passwd}
 *   ROOT/r1b/x.jpg             (a sibling whose name starts with r1's)
 *   ROOT/r2link -> real2       (a root given through a symlink)
 *   ROOT/outside/secret.jpg
 * The input's first byte picks a prefix (none, ROOT/r1, ROOT/r2link, ROOT) and
 * the kind wanted; the rest, up to a NUL (the API hands C strings on), is the
 * path. Whatever is accepted must resolve (no symlink, no "..") to a root or
 * below one, component-wise, and be of the kind asked; every refusal must
 * carry a problem code and the status the header promises. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/paths.h"

static char g_root[256];
static char g_real_roots[2][PATH_MAX];
static vd_media_roots *g_roots;

static void check(int cond)
{
    if (!cond) abort();
}

static void at(char *out, const char *rel)
{
    snprintf(out, PATH_MAX, "%s/%s", g_root, rel);
}

static void mk(const char *rel, int dir)
{
    char p[PATH_MAX];
    at(p, rel);
    if (dir) {
        if (mkdir(p, 0755) != 0) abort();
    } else {
        FILE *f = fopen(p, "w");
        if (!f) abort();
        fputs("x", f);
        fclose(f);
    }
}

static void ln(const char *target, const char *rel)
{
    char p[PATH_MAX];
    at(p, rel);
    if (symlink(target, p) != 0) abort();
}

static void cleanup(void)
{
    vd_media_roots_free(g_roots);
    static const char *const files[] = {
        "r1/a.jpg",   "r1/sub/b.jpg", "r1/link_in",  "r1/link_out", "r1/dir_out",        "r1/loop",
        "r1/abs_out", "r1b/x.jpg",    "real2/c.jpg", "r2link",      "outside/secret.jpg"};
    static const char *const dirs[] = {"r1/sub", "r1", "r1b", "real2", "outside"};
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        at(p, files[i]);
        unlink(p);
    }
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        at(p, dirs[i]);
        rmdir(p);
    }
    rmdir(g_root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = getenv("TMPDIR");
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "%s/fuzz_paths.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpl)) abort();
    /* the real name, so that prefixes the fuzzer builds on compare as realpath does */
    if (!realpath(tmpl, g_root)) abort();
    mk("r1", 1);
    mk("r1/sub", 1);
    mk("r1/a.jpg", 0);
    mk("r1/sub/b.jpg", 0);
    ln("sub", "r1/link_in");
    ln("../outside/secret.jpg", "r1/link_out");
    ln("../outside", "r1/dir_out");
    ln("loop", "r1/loop");
    ln("/etc/passwd", "r1/abs_out");
    mk("r1b", 1);
    mk("r1b/x.jpg", 0);
    mk("real2", 1);
    mk("real2/c.jpg", 0);
    ln("real2", "r2link");
    mk("outside", 1);
    mk("outside/secret.jpg", 0);
    char r1[PATH_MAX], r2[PATH_MAX];
    at(r1, "r1");
    at(r2, "r2link");
    const char *dirs[] = {r1, r2};
    vd_error e;
    if (vd_media_roots_new(dirs, 2, &g_roots, &e) != VD_OK) abort();
    for (int i = 0; i < 2; i++)
        snprintf(g_real_roots[i], PATH_MAX, "%s", vd_media_roots_get(g_roots, (size_t)i));
    atexit(cleanup);
    return 0;
}

static int under(const char *path, const char *root)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 && (path[n] == 0 || path[n] == '/');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const char *const prefixes[] = {"", "/r1", "/r2link", ""};
    int pick = data[0] & 3;
    vd_path_want want = (vd_path_want)((data[0] >> 2) % 3);
    char path[PATH_MAX + 64];
    size_t used = 0;
    if (pick) used = (size_t)snprintf(path, sizeof path, "%s%s", g_root, prefixes[pick]);
    size_t n = size - 1;
    const uint8_t *nul = memchr(data + 1, 0, n);
    if (nul) n = (size_t)(nul - (data + 1));
    if (n > sizeof path - used - 1) n = sizeof path - used - 1;
    memcpy(path + used, data + 1, n);
    path[used + n] = 0;

    char *resolved = NULL;
    vd_path_problem problem = VD_PATH__COUNT;
    vd_error e;
    vd_status rc = vd_media_roots_check(g_roots, path, want, &resolved, &problem, &e);
    if (rc == VD_OK) {
        check(problem == VD_PATH_OK && resolved != NULL);
        check(path[0] == '/' && strstr(resolved, "/..") == NULL && strstr(resolved, "//") == NULL);
        check(under(resolved, g_real_roots[0]) || under(resolved, g_real_roots[1]));
        char again[PATH_MAX];
        check(realpath(resolved, again) != NULL && strcmp(again, resolved) == 0);
        struct stat st;
        check(stat(resolved, &st) == 0);
        if (want == VD_PATH_WANT_FILE) check(S_ISREG(st.st_mode));
        if (want == VD_PATH_WANT_DIR) check(S_ISDIR(st.st_mode));
        /* never the things outside */
        check(strstr(resolved, "/outside") == NULL && strcmp(resolved, "/etc/passwd") != 0);
        free(resolved);
    } else {
        check(resolved == NULL);
        check(problem > VD_PATH_OK && problem < VD_PATH__COUNT);
        check(rc == (problem == VD_PATH_NOT_FOUND ? VD_ERR_NOT_FOUND : VD_ERR_INVALID));
        check(e.msg[0] != 0);
        check(strcmp(vd_path_problem_name(problem), "") != 0);
    }
    return 0;
}
