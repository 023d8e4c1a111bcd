/* fuzz_jobs.c: the job-payload check shared by POST /jobs and `visiond jobs
 * enqueue` (jobspec/jobspec.h: vd_job_check), and the confined open the
 * worker then does on what it accepted (core/paths.h: vd_media_open).
 *
 * A fixed tree in a private temporary directory:
 *   ROOT/r1/{a.jpg, sub/b.jpg, link_in -> sub, link_out -> ../outside/secret.jpg,
 *            dir_out -> ../outside, zero -> /dev/zero, fifo (a FIFO)}
 *   ROOT/outside/secret.jpg   (holds SECRET, a marker)
 * The input's first byte picks the type (embed, train_session, count, an
 * unknown "x.y"), whether test types are on, "any_type", and whether the
 * roots {ROOT/r1} apply or none are known; the rest is the payload text, in
 * which "@R" stands for ROOT. Invariants:
 *   - a test type without the flag, an unknown type without any_type: refused;
 *   - a refusal has a code, a message, VD_ERR_INVALID or VD_ERR_NOT_FOUND
 *     (only for a path inside the roots that does not exist);
 *   - an accepted embed parses again; with roots, every path resolves under
 *     ROOT/r1 and vd_media_open of it gives a regular file under ROOT/r1 or a
 *     refusal (never blocks: the FIFO has no writer); without roots, every
 *     path is absolute with no ".." component;
 *   - no message holds the outside file's contents (unless the input spelled
 *     them: messages quote the path as given). */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/paths.h"
#include "jobspec/jobspec.h"

/* What the outside file holds: no message may quote it (unless the input itself did). */
#define SECRET "SECRET-9f3b71"

static char g_root[256];
static char g_r1[PATH_MAX];
static vd_media_roots *g_roots;

static void check(int cond)
{
    if (!cond) abort();
}

static void at(char *out, const char *rel)
{
    snprintf(out, PATH_MAX, "%s/%s", g_root, rel);
}

static void put(const char *rel, const char *text)
{
    char p[PATH_MAX];
    at(p, rel);
    FILE *f = fopen(p, "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
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
    static const char *const files[] = {"r1/a.jpg",    "r1/sub/b.jpg",      "r1/link_in",
                                        "r1/link_out", "r1/dir_out",        "r1/zero",
                                        "r1/fifo",     "outside/secret.jpg"};
    static const char *const dirs[] = {"r1/sub", "r1", "outside"};
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
    snprintf(tmpl, sizeof tmpl, "%s/fuzz_jobs.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpl)) abort();
    if (!realpath(tmpl, g_root)) abort();
    char p[PATH_MAX];
    at(p, "r1");
    if (mkdir(p, 0755) != 0) abort();
    at(p, "r1/sub");
    if (mkdir(p, 0755) != 0) abort();
    at(p, "outside");
    if (mkdir(p, 0755) != 0) abort();
    put("r1/a.jpg", "a");
    put("r1/sub/b.jpg", "b");
    put("outside/secret.jpg", SECRET);
    ln("sub", "r1/link_in");
    ln("../outside/secret.jpg", "r1/link_out");
    ln("../outside", "r1/dir_out");
    ln("/dev/zero", "r1/zero");
    at(p, "r1/fifo");
    if (mkfifo(p, 0600) != 0) abort();
    at(g_r1, "r1");
    const char *dirs[] = {g_r1};
    vd_error e;
    if (vd_media_roots_new(dirs, 1, &g_roots, &e) != VD_OK) abort();
    atexit(cleanup);
    return 0;
}

static int under(const char *path, const char *root)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* The worker's side: whatever was accepted opens under the root, or is refused. */
static void open_accepted(const char *path)
{
    int fd = -1;
    vd_path_problem prob;
    vd_error e;
    vd_status st = vd_media_open(g_roots, path, &fd, &prob, &e);
    if (st != VD_OK) {
        check(fd < 0 && (strstr(path, SECRET) || strstr(e.msg, SECRET) == NULL));
        return;
    }
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    check(n > 0);
    real[n] = 0;
    check(under(real, g_r1));
    struct stat st2;
    check(fstat(fd, &st2) == 0 && S_ISREG(st2.st_mode));
    close(fd);
}

/* Writes data with every "@R" replaced by the root into out (NUL-terminated, bounded). */
static void expand(const uint8_t *data, size_t n, char *out, size_t cap)
{
    size_t o = 0, rl = strlen(g_root);
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        if (data[i] == '@' && i + 1 < n && data[i + 1] == 'R' && o + rl + 1 < cap) {
            memcpy(out + o, g_root, rl);
            o += rl;
            i++;
        } else if (data[i]) {
            out[o++] = (char)data[i];
        }
    }
    out[o] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    static const char *const types[] = {"embed", "train_session", "count", "x.y"};
    const char *type = types[data[0] & 3];
    vd_job_check_opts o = {.roots = (data[0] & 16) ? NULL : g_roots,
                           .test_jobs = (data[0] >> 2) & 1,
                           .any_type = (data[0] >> 3) & 1};
    static char payload[65536 + 4096];
    expand(data + 1, size - 1, payload, sizeof payload);
    vd_job_refusal why;
    vd_error e;
    vd_error_clear(&e);
    vd_status rc = vd_job_check(type, payload, &o, &why, &e);
    check(strstr(payload, SECRET) || strstr(e.msg, SECRET) == NULL);
    if (rc != VD_OK) {
        check(why.code && *why.code && e.msg[0]);
        check(rc == VD_ERR_INVALID || rc == VD_ERR_NOT_FOUND);
        if (rc == VD_ERR_NOT_FOUND) check(why.problem == VD_PATH_NOT_FOUND && o.roots);
        return 0;
    }
    check(why.code == NULL);
    const vd_job_spec *spec = vd_job_spec_find(type);
    check(spec || o.any_type);
    if (spec) check(!spec->test_only || o.test_jobs);
    if (strcmp(type, "embed") != 0) return 0;
    json_t *j = json_loads(payload, JSON_DECODE_ANY, NULL);
    vd_embed_payload ep;
    check(j && vd_embed_payload_parse(j, &ep, &e) == VD_OK);
    for (size_t i = 0; i < ep.npaths; i++) {
        const char *p = json_string_value(json_array_get(ep.paths, i));
        check(p && p[0] == '/' && strstr(p, "/../") == NULL);
        if (o.roots) {
            char *resolved = NULL;
            check(vd_media_roots_check(g_roots, p, VD_PATH_WANT_FILE, &resolved, NULL, &e) ==
                  VD_OK);
            check(under(resolved, g_r1));
            free(resolved);
            open_accepted(p);
        }
    }
    json_decref(j);
    return 0;
}
