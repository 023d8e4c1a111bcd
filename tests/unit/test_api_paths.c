/* test_api_paths.c: confinement of user paths to the media roots (core/paths.h),
 * on a real directory tree with real symlinks. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/paths.h"
#include "vdtest.h"

/* Layout under a private tmp dir D:
 *   D/root/a.jpg              a file inside the root
 *   D/root/sub/b.jpg          a nested file
 *   D/root/in_link -> sub     a symlink that stays inside
 *   D/root/out_link -> ../outside     a directory symlink that escapes
 *   D/root/out_file -> ../outside/secret.txt
 *   D/root2/c.jpg             a second root
 *   D/rootx/d.jpg             a sibling whose name starts like "root"
 *   D/outside/secret.txt      outside every root */
static char D[1024];

static void touch(const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", D, rel);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("x", f);
        fclose(f);
    }
}

static void mkd(const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", D, rel);
    mkdir(p, 0755);
}

static void lnk(const char *target, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", D, rel);
    if (symlink(target, p) != 0) perror("symlink");
}

static const char *P(const char *rel)
{
    static char buf[4][PATH_MAX];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, PATH_MAX, "%s/%s", D, rel);
    return b;
}

static vd_media_roots *setup(void)
{
    char *real = realpath(vd_test_tmpdir(), NULL);
    snprintf(D, sizeof D, "%s", real);
    free(real);
    mkd("root");
    mkd("root/sub");
    mkd("root2");
    mkd("rootx");
    mkd("outside");
    touch("root/a.jpg");
    touch("root/sub/b.jpg");
    touch("root2/c.jpg");
    touch("rootx/d.jpg");
    touch("outside/secret.txt");
    lnk("sub", "root/in_link");
    lnk("../outside", "root/out_link");
    lnk("../outside/secret.txt", "root/out_file");
    const char *dirs[2] = {P("root"), P("root2")};
    vd_media_roots *r = NULL;
    vd_error err;
    if (vd_media_roots_new(dirs, 2, &r, &err) != VD_OK) {
        fprintf(stderr, "roots: %s\n", err.msg);
        return NULL;
    }
    return r;
}

/* Checks path and returns the problem; *resolved (when asked) is malloc'd. */
static vd_path_problem check(vd_media_roots *r, const char *path, vd_path_want want,
                             char **resolved, vd_error *err)
{
    vd_path_problem p = VD_PATH__COUNT;
    vd_media_roots_check(r, path, want, resolved, &p, err);
    return p;
}

VD_TEST(accepts_files_inside_roots_and_returns_real_path)
{
    vd_media_roots *r = setup();
    CHECK(r);
    vd_error err;
    char *res = NULL;
    CHECK_EQ_INT(check(r, P("root/a.jpg"), VD_PATH_WANT_FILE, &res, &err), VD_PATH_OK);
    CHECK_EQ_STR(res, P("root/a.jpg"));
    free(res);
    /* "//" and "." components are fine; the resolved form is clean. */
    char messy[PATH_MAX];
    snprintf(messy, sizeof messy, "%s//root/./sub//b.jpg", D);
    CHECK_EQ_INT(check(r, messy, VD_PATH_WANT_FILE, &res, &err), VD_PATH_OK);
    CHECK_EQ_STR(res, P("root/sub/b.jpg"));
    free(res);
    /* A symlink that stays inside the root resolves to its target. */
    CHECK_EQ_INT(check(r, P("root/in_link/b.jpg"), VD_PATH_WANT_ANY, &res, &err), VD_PATH_OK);
    CHECK_EQ_STR(res, P("root/sub/b.jpg"));
    free(res);
    /* The second root works too. */
    CHECK_EQ_INT(check(r, P("root2/c.jpg"), VD_PATH_WANT_FILE, NULL, &err), VD_PATH_OK);
    vd_media_roots_free(r);
}

VD_TEST(root_itself_is_a_directory_inside)
{
    vd_media_roots *r = setup();
    CHECK(r);
    vd_error err;
    CHECK_EQ_INT(check(r, P("root"), VD_PATH_WANT_DIR, NULL, &err), VD_PATH_OK);
    char slash[PATH_MAX];
    snprintf(slash, sizeof slash, "%s/root/", D);
    CHECK_EQ_INT(check(r, slash, VD_PATH_WANT_ANY, NULL, &err), VD_PATH_OK);
    /* ...but it is not a file. */
    CHECK_EQ_INT(check(r, P("root"), VD_PATH_WANT_FILE, NULL, &err), VD_PATH_NOT_FILE);
    CHECK(strstr(err.msg, "not a regular file") != NULL);
    CHECK_EQ_INT(check(r, P("root/a.jpg"), VD_PATH_WANT_DIR, NULL, &err), VD_PATH_NOT_DIR);
    vd_media_roots_free(r);
}

VD_TEST(dotdot_components_are_refused_even_when_they_stay_inside)
{
    vd_media_roots *r = setup();
    CHECK(r);
    vd_error err;
    CHECK_EQ_INT(check(r, P("root/sub/../a.jpg"), VD_PATH_WANT_ANY, NULL, &err), VD_PATH_DOTDOT);
    CHECK(strstr(err.msg, "'..'") != NULL);
    CHECK_EQ_INT(check(r, P("root/../outside/secret.txt"), VD_PATH_WANT_ANY, NULL, &err),
                 VD_PATH_DOTDOT);
    CHECK_EQ_INT(check(r, P("root/.."), VD_PATH_WANT_ANY, NULL, &err), VD_PATH_DOTDOT);
    /* A name that merely contains dots is fine when it exists. */
    touch("root/..hidden");
    touch("root/a..b");
    CHECK_EQ_INT(check(r, P("root/..hidden"), VD_PATH_WANT_FILE, NULL, &err), VD_PATH_OK);
    CHECK_EQ_INT(check(r, P("root/a..b"), VD_PATH_WANT_FILE, NULL, &err), VD_PATH_OK);
    vd_media_roots_free(r);
}

VD_TEST(symlinks_escaping_a_root_are_refused)
{
    vd_media_roots *r = setup();
    CHECK(r);
    vd_error err;
    char *res = (char *)"untouched";
    CHECK_EQ_INT(check(r, P("root/out_link/secret.txt"), VD_PATH_WANT_ANY, &res, &err),
                 VD_PATH_SYMLINK_ESCAPE);
    CHECK(res == NULL);
    CHECK(strstr(err.msg, "symbolic link") != NULL);
    CHECK_EQ_INT(check(r, P("root/out_file"), VD_PATH_WANT_FILE, NULL, &err),
                 VD_PATH_SYMLINK_ESCAPE);
    CHECK_EQ_INT(check(r, P("root/out_link"), VD_PATH_WANT_DIR, NULL, &err),
                 VD_PATH_SYMLINK_ESCAPE);
    vd_media_roots_free(r);
}

VD_TEST(absolute_paths_outside_the_roots_are_refused)
{
    vd_media_roots *r = setup();
    CHECK(r);
    vd_error err;
    vd_status st =
        vd_media_roots_check(r, P("outside/secret.txt"), VD_PATH_WANT_ANY, NULL, NULL, &err);
    CHECK_EQ_INT(st, VD_ERR_INVALID);
    CHECK(strstr(err.msg, "outside the media roots") != NULL);
    CHECK_EQ_INT(check(r, "/etc/passwd", VD_PATH_WANT_ANY, NULL, &err), VD_PATH_OUTSIDE);
    CHECK_EQ_INT(check(r, "/", VD_PATH_WANT_ANY, NULL, &err), VD_PATH_OUTSIDE);
    CHECK_EQ_INT(check(r, D, VD_PATH_WANT_ANY, NULL, &err), VD_PATH_OUTSIDE);
    /* A sibling whose name has a root as prefix is not inside it. */
    CHECK_EQ_INT(check(r, P("rootx/d.jpg"), VD_PATH_WANT_ANY, NULL, &err), VD_PATH_OUTSIDE);
    /* Outside and nonexistent: still "outside" (nothing is revealed about it). */
    CHECK_EQ_INT(check(r, "/no/such/place.jpg", VD_PATH_WANT_ANY, NULL, &err), VD_PATH_OUTSIDE);
    vd_media_roots_free(r);
}

VD_TEST(nonexistent_files_inside_a_root_are_not_found)
{
    vd_media_roots *r = setup();
    CHECK(r);
    vd_error err;
    vd_path_problem p;
    vd_status st =
        vd_media_roots_check(r, P("root/missing.jpg"), VD_PATH_WANT_FILE, NULL, &p, &err);
    CHECK_EQ_INT(st, VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(p, VD_PATH_NOT_FOUND);
    CHECK(strstr(err.msg, "no such file") != NULL);
    /* A file used as a directory. */
    CHECK_EQ_INT(check(r, P("root/a.jpg/x"), VD_PATH_WANT_ANY, NULL, &err), VD_PATH_NOT_FOUND);
    /* A dangling symlink inside a root. */
    lnk("nowhere", "root/dangling");
    CHECK_EQ_INT(check(r, P("root/dangling"), VD_PATH_WANT_ANY, NULL, &err), VD_PATH_NOT_FOUND);
    vd_media_roots_free(r);
}

VD_TEST(malformed_paths_have_their_own_problems)
{
    vd_media_roots *r = setup();
    CHECK(r);
    vd_error err;
    CHECK_EQ_INT(check(r, "", VD_PATH_WANT_ANY, NULL, &err), VD_PATH_EMPTY);
    CHECK_EQ_INT(check(r, NULL, VD_PATH_WANT_ANY, NULL, &err), VD_PATH_EMPTY);
    CHECK_EQ_INT(check(r, "root/a.jpg", VD_PATH_WANT_ANY, NULL, &err), VD_PATH_NOT_ABSOLUTE);
    CHECK(strstr(err.msg, "absolute") != NULL);
    char *longp = malloc(PATH_MAX + 10);
    CHECK(longp);
    longp[0] = '/';
    memset(longp + 1, 'a', PATH_MAX + 5);
    longp[PATH_MAX + 6] = '\0';
    vd_path_problem p = check(r, longp, VD_PATH_WANT_ANY, NULL, &err);
    free(longp);
    CHECK_EQ_INT(p, VD_PATH_TOO_LONG);
    CHECK(strlen(err.msg) < 300);
    CHECK_EQ_STR(vd_path_problem_name(VD_PATH_SYMLINK_ESCAPE), "path_symlink_escape");
    CHECK_EQ_STR(vd_path_problem_name(VD_PATH_OUTSIDE), "path_outside_media_roots");
    vd_media_roots_free(r);
}

VD_TEST(no_roots_refuses_everything)
{
    vd_media_roots *r = NULL;
    vd_error err;
    CHECK_OK(vd_media_roots_new(NULL, 0, &r, &err));
    CHECK_EQ_INT(vd_media_roots_count(r), 0);
    CHECK_EQ_INT(check(r, "/etc/passwd", VD_PATH_WANT_ANY, NULL, &err), VD_PATH_NO_ROOTS);
    CHECK(strstr(err.msg, "--media-root") != NULL);
    vd_media_roots_free(r);
}

VD_TEST(bad_roots_are_refused_at_setup)
{
    vd_media_roots *r = setup();
    CHECK(r);
    vd_media_roots_free(r);
    vd_error err;
    const char *missing[1] = {P("no_such_root")};
    CHECK_EQ_INT(vd_media_roots_new(missing, 1, &r, &err), VD_ERR_INVALID);
    CHECK(r == NULL);
    CHECK(strstr(err.msg, "no_such_root") != NULL);
    const char *file[1] = {P("root/a.jpg")};
    CHECK_EQ_INT(vd_media_roots_new(file, 1, &r, &err), VD_ERR_INVALID);
    const char *dd[1] = {P("root/../root2")};
    CHECK_EQ_INT(vd_media_roots_new(dd, 1, &r, &err), VD_ERR_INVALID);
}

VD_TEST(a_root_given_through_a_symlink_admits_both_spellings)
{
    vd_media_roots *r = setup();
    CHECK(r);
    vd_media_roots_free(r);
    lnk("root", "alias");
    const char *dirs[1] = {P("alias")};
    vd_error err;
    CHECK_OK(vd_media_roots_new(dirs, 1, &r, &err));
    CHECK_EQ_STR(vd_media_roots_get(r, 0), P("root"));
    char *res = NULL;
    CHECK_EQ_INT(check(r, P("alias/a.jpg"), VD_PATH_WANT_FILE, &res, &err), VD_PATH_OK);
    CHECK_EQ_STR(res, P("root/a.jpg"));
    free(res);
    CHECK_EQ_INT(check(r, P("root/a.jpg"), VD_PATH_WANT_FILE, NULL, &err), VD_PATH_OK);
    CHECK_EQ_INT(check(r, P("alias/out_link/secret.txt"), VD_PATH_WANT_ANY, NULL, &err),
                 VD_PATH_SYMLINK_ESCAPE);
    vd_media_roots_free(r);
}

int main(void)
{
    return vd_test_run_all();
}
