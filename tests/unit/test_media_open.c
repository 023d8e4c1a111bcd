/* test_media_open.c: the one open of media files (core/paths.h: vd_media_open,
 * vd_media_read, vd_media_open_beneath), in both resolution modes: openat2
 * (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) and the forced O_NOFOLLOW walk.
 * Symlinks out of a root, "..", /dev/zero, a FIFO (the open must not block),
 * a directory, a socket, a file over the byte cap, a read past its deadline,
 * and a path swapped after it was checked. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/paths.h"
#include "image/decode.h"
#include "vdtest.h"

/* CHECK returns from a void test; these helpers return values, so they note and go on. */
#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) vd_test_fail_at(__FILE__, __LINE__, "expected %s", #cond);                    \
    } while (0)

static char D[1024];
static char pbuf[8][PATH_MAX];
static int pnext;

static const char *P(const char *rel)
{
    char *b = pbuf[pnext++ % 8];
    if ((size_t)snprintf(b, PATH_MAX, "%s/%s", D, rel) >= PATH_MAX) abort();
    return b;
}

static void put(const char *rel, const char *text)
{
    FILE *f = fopen(P(rel), "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* ROOT/{a.jpg, sub/b.jpg, in_link -> sub, out_link -> ../outside,
 *       out_file -> ../outside/secret.txt, abs_in -> D/root/a.jpg,
 *       zero -> /dev/zero, fifo, dir/, sock}, outside/secret.txt */
static vd_media_roots *setup(void)
{
    char *real = realpath(vd_test_tmpdir(), NULL);
    snprintf(D, sizeof D, "%s", real);
    free(real);
    mkdir(P("root"), 0755);
    mkdir(P("root/sub"), 0755);
    mkdir(P("root/dir"), 0755);
    mkdir(P("outside"), 0755);
    put("root/a.jpg", "inside-a");
    put("root/sub/b.jpg", "inside-b");
    put("outside/secret.txt", "SECRET-CONTENTS");
    EXPECT(symlink("sub", P("root/in_link")) == 0);
    EXPECT(symlink("../outside", P("root/out_link")) == 0);
    EXPECT(symlink("../outside/secret.txt", P("root/out_file")) == 0);
    EXPECT(symlink(P("root/a.jpg"), P("root/abs_in")) == 0);
    EXPECT(symlink("/dev/zero", P("root/zero")) == 0);
    EXPECT(mkfifo(P("root/fifo"), 0600) == 0);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", P("root/sock"));
    if (s >= 0 && strlen(P("root/sock")) < sizeof sa.sun_path)
        EXPECT(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0);
    if (s >= 0) close(s);
    const char *dirs[1] = {P("root")};
    vd_media_roots *r = NULL;
    vd_error err;
    EXPECT(vd_media_roots_new(dirs, 1, &r, &err) == VD_OK);
    return r;
}

/* Reads path under r (NULL: no roots); returns the problem, fills err. */
static vd_path_problem rd(const vd_media_roots *r, const char *path, const vd_media_limits *lim,
                          vd_status *st, vd_error *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    vd_path_problem p = VD_PATH__COUNT;
    *st = vd_media_read(r, path, lim, &data, &len, &p, err);
    if (*st == VD_OK) EXPECT(data != NULL);
    if (*st != VD_OK) EXPECT(data == NULL);
    /* no refusal ever quotes what is outside */
    EXPECT(strstr(err->msg, "SECRET") == NULL);
    free(data);
    return p;
}

/* Every case of vd_media_open under roots, in the current mode. */
static void cases_under_roots(vd_media_roots *r)
{
    vd_error err;
    vd_status st;
    CHECK_EQ_INT(rd(r, P("root/a.jpg"), NULL, &st, &err), VD_PATH_OK);
    CHECK_EQ_INT(rd(r, P("root/in_link/b.jpg"), NULL, &st, &err), VD_PATH_OK);
    CHECK_EQ_INT(rd(r, P("root/abs_in"), NULL, &st, &err), VD_PATH_OK);
    CHECK_EQ_INT(rd(r, P("root/out_file"), NULL, &st, &err), VD_PATH_SYMLINK_ESCAPE);
    CHECK_EQ_INT(st, VD_ERR_INVALID);
    CHECK_EQ_INT(rd(r, P("root/out_link/secret.txt"), NULL, &st, &err), VD_PATH_SYMLINK_ESCAPE);
    CHECK_EQ_INT(rd(r, P("root/../outside/secret.txt"), NULL, &st, &err), VD_PATH_DOTDOT);
    CHECK_EQ_INT(rd(r, P("root/sub/../a.jpg"), NULL, &st, &err), VD_PATH_DOTDOT);
    /* outside by name: the same refusal whether it exists or not */
    CHECK_EQ_INT(rd(r, P("outside/secret.txt"), NULL, &st, &err), VD_PATH_OUTSIDE);
    CHECK_EQ_INT(rd(r, P("outside/missing.txt"), NULL, &st, &err), VD_PATH_OUTSIDE);
    CHECK_EQ_INT(rd(r, "/etc/shadow", NULL, &st, &err), VD_PATH_OUTSIDE);
    CHECK_EQ_INT(rd(r, "/etc/nonexistent", NULL, &st, &err), VD_PATH_OUTSIDE);
    CHECK_EQ_INT(rd(r, P("root/zero"), NULL, &st, &err), VD_PATH_SYMLINK_ESCAPE);
    CHECK_EQ_INT(rd(r, P("root/fifo"), NULL, &st, &err), VD_PATH_NOT_FILE);
    CHECK(strstr(err.msg, "a FIFO") != NULL);
    CHECK_EQ_INT(rd(r, P("root/dir"), NULL, &st, &err), VD_PATH_NOT_FILE);
    CHECK(strstr(err.msg, "a directory") != NULL);
    CHECK_EQ_INT(rd(r, P("root"), NULL, &st, &err), VD_PATH_NOT_FILE);
    if (access(P("root/sock"), F_OK) == 0)
        CHECK_EQ_INT(rd(r, P("root/sock"), NULL, &st, &err), VD_PATH_NOT_FILE);
    CHECK_EQ_INT(rd(r, P("root/missing.jpg"), NULL, &st, &err), VD_PATH_NOT_FOUND);
    CHECK_EQ_INT(st, VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(rd(r, "root/a.jpg", NULL, &st, &err), VD_PATH_NOT_ABSOLUTE);
}

VD_TEST(openat2_is_used_where_the_kernel_has_it)
{
    int was = vd_media_force_fallback(0);
    int has = vd_media_uses_openat2();
    printf("    openat2: %s\n",
           has ? "yes (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)" : "no (ENOSYS)");
    vd_media_force_fallback(1);
    CHECK_EQ_INT(vd_media_uses_openat2(), 0);
    vd_media_force_fallback(was);
}

VD_TEST(confined_open_with_openat2)
{
    vd_media_force_fallback(0);
    if (!vd_media_uses_openat2()) {
        vd_test_skip("the kernel has no openat2");
        return;
    }
    vd_media_roots *r = setup();
    cases_under_roots(r);
    vd_media_roots_free(r);
}

VD_TEST(confined_open_with_the_nofollow_walk)
{
    int was = vd_media_force_fallback(1);
    vd_media_roots *r = setup();
    cases_under_roots(r);
    vd_media_roots_free(r);
    vd_media_force_fallback(was);
}

/* A symlink that appears after the path was resolved (the race between the
 * realpath and the open): openat2 follows it only while it stays beneath the
 * root; the walk follows none. */
VD_TEST(symlinks_met_after_resolution)
{
    vd_media_roots *r = setup();
    struct {
        const char *rel;
        vd_path_problem openat2, walk;
    } cases[] = {
        {"a.jpg", VD_PATH_OK, VD_PATH_OK},
        {"sub/b.jpg", VD_PATH_OK, VD_PATH_OK},
        {"in_link/b.jpg", VD_PATH_OK, VD_PATH_SYMLINK_ESCAPE},
        {"out_file", VD_PATH_SYMLINK_ESCAPE, VD_PATH_SYMLINK_ESCAPE},
        {"out_link/secret.txt", VD_PATH_SYMLINK_ESCAPE, VD_PATH_SYMLINK_ESCAPE},
        {"abs_in", VD_PATH_SYMLINK_ESCAPE, VD_PATH_SYMLINK_ESCAPE},
        {"zero", VD_PATH_SYMLINK_ESCAPE, VD_PATH_SYMLINK_ESCAPE},
        {"fifo", VD_PATH_NOT_FILE, VD_PATH_NOT_FILE},
        {"dir", VD_PATH_NOT_FILE, VD_PATH_NOT_FILE},
        {"", VD_PATH_NOT_FILE, VD_PATH_NOT_FILE},
    };
    for (int mode = 0; mode < 2; mode++) {
        int was = vd_media_force_fallback(mode);
        if (mode == 0 && !vd_media_uses_openat2()) continue;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int fd = -1;
            vd_path_problem p = VD_PATH__COUNT;
            vd_error err;
            vd_media_open_beneath(P("root"), cases[i].rel, &fd, &p, &err);
            vd_path_problem want = mode ? cases[i].walk : cases[i].openat2;
            if (p != want)
                vd_test_fail_at(__FILE__, __LINE__, "%s '%s': problem %s, want %s (%s)",
                                mode ? "walk" : "openat2", cases[i].rel, vd_path_problem_name(p),
                                vd_path_problem_name(want), err.msg);
            CHECK((fd >= 0) == (want == VD_PATH_OK));
            if (fd >= 0) close(fd);
        }
        vd_media_force_fallback(was);
    }
    /* a /proc magic link is never followed */
    int fd = -1;
    vd_path_problem p;
    vd_error err;
    vd_media_force_fallback(0);
    CHECK(vd_media_open_beneath("/proc/self", "root/etc/passwd", &fd, &p, &err) != VD_OK);
    CHECK(fd < 0);
    vd_media_roots_free(r);
}

/* Checked, then swapped: what a worker meets when a file changed while its
 * job waited in the queue. Both modes refuse every swap. */
VD_TEST(a_file_swapped_after_the_check_is_refused_at_open)
{
    for (int mode = 0; mode < 2; mode++) {
        int was = vd_media_force_fallback(mode);
        vd_media_roots *r = setup();
        vd_error err;
        vd_status st;
        CHECK_OK(vd_media_roots_check(r, P("root/a.jpg"), VD_PATH_WANT_FILE, NULL, NULL, &err));
        unlink(P("root/a.jpg"));
        CHECK(symlink(P("outside/secret.txt"), P("root/a.jpg")) == 0);
        CHECK_EQ_INT(rd(r, P("root/a.jpg"), NULL, &st, &err), VD_PATH_SYMLINK_ESCAPE);
        unlink(P("root/a.jpg"));
        CHECK(symlink("/dev/zero", P("root/a.jpg")) == 0);
        CHECK_EQ_INT(rd(r, P("root/a.jpg"), NULL, &st, &err), VD_PATH_SYMLINK_ESCAPE);
        unlink(P("root/a.jpg"));
        CHECK(mkfifo(P("root/a.jpg"), 0600) == 0);
        CHECK_EQ_INT(rd(r, P("root/a.jpg"), NULL, &st, &err), VD_PATH_NOT_FILE);
        /* a directory on the way swapped for a link out */
        CHECK(rename(P("root/sub"), P("root/sub_old")) == 0);
        CHECK(symlink("../outside", P("root/sub")) == 0);
        put("outside/b.jpg", "SECRET-b");
        CHECK_EQ_INT(rd(r, P("root/sub/b.jpg"), NULL, &st, &err), VD_PATH_SYMLINK_ESCAPE);
        vd_media_roots_free(r);
        vd_media_force_fallback(was);
    }
}

VD_TEST(without_roots_only_regular_files_and_the_open_never_blocks)
{
    vd_media_roots *r = setup();
    vd_media_roots_free(r);
    vd_error err;
    vd_status st;
    CHECK_EQ_INT(rd(NULL, "/dev/zero", NULL, &st, &err), VD_PATH_NOT_FILE);
    CHECK(strstr(err.msg, "a character device") != NULL);
    CHECK_EQ_INT(rd(NULL, P("root/fifo"), NULL, &st, &err), VD_PATH_NOT_FILE); /* no writer */
    CHECK_EQ_INT(rd(NULL, P("root/dir"), NULL, &st, &err), VD_PATH_NOT_FILE);
    CHECK_EQ_INT(rd(NULL, P("root/zero"), NULL, &st, &err), VD_PATH_NOT_FILE);
    CHECK_EQ_INT(rd(NULL, P("root/a.jpg"), NULL, &st, &err), VD_PATH_OK);
    CHECK_EQ_INT(rd(NULL, P("root/nope"), NULL, &st, &err), VD_PATH_NOT_FOUND);
    CHECK_EQ_INT(rd(NULL, "", NULL, &st, &err), VD_PATH_EMPTY);
    /* and the image reader goes through the same open */
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_EQ_INT(vd_image_read_file(P("root/fifo"), 0, &data, &len, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_image_read_file("/dev/zero", 0, &data, &len, &err), VD_ERR_INVALID);
    CHECK(data == NULL);
    /* under roots, /dev itself as a root: a device is still no file */
    const char *dev[1] = {"/dev"};
    CHECK_OK(vd_media_roots_new(dev, 1, &r, &err));
    CHECK_EQ_INT(rd(r, "/dev/zero", NULL, &st, &err), VD_PATH_NOT_FILE);
    CHECK_EQ_INT(rd(r, "/dev/null", NULL, &st, &err), VD_PATH_NOT_FILE);
    vd_media_roots_free(r);
}

VD_TEST(bytes_are_capped_and_reading_is_bounded_in_time)
{
    vd_media_roots *r = setup();
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    put("root/big.jpg", big);
    vd_error err;
    vd_status st;
    vd_media_limits lim = {.max_bytes = 1000};
    CHECK_EQ_INT(rd(r, P("root/big.jpg"), &lim, &st, &err), VD_PATH_TOO_LARGE);
    CHECK_EQ_INT(st, VD_ERR_LIMIT);
    CHECK_EQ_STR(err.msg, "file too large: 2999 > 1000 bytes");
    CHECK_EQ_INT(rd(NULL, P("root/big.jpg"), &lim, &st, &err), VD_PATH_TOO_LARGE);
    lim.max_bytes = 2999;
    uint8_t *data = NULL;
    size_t len = 0;
    CHECK_OK(vd_media_read(r, P("root/big.jpg"), &lim, &data, &len, NULL, &err));
    CHECK_EQ_INT(len, 2999);
    free(data);
    /* a deadline already passed: stopped after the first chunk, whatever the clock */
    lim = (vd_media_limits){.deadline_ms = 1};
    CHECK_EQ_INT(rd(r, P("root/big.jpg"), &lim, &st, &err), VD_PATH_READ_TIMEOUT);
    CHECK_EQ_INT(st, VD_ERR_TIMEOUT);
    vd_media_roots_free(r);
}

int main(void)
{
    return vd_test_run_all();
}
