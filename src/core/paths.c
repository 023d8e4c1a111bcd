/* paths.c: confinement of user-given paths to the media roots (see paths.h). */
#include "core/paths.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

struct vd_media_roots {
    size_t n;
    char **given; /* absolute and lexically normalised, as configured */
    char **real;  /* realpath of each */
};

static const char *problem_names[VD_PATH__COUNT] = {
    "ok",
    "path_empty",
    "path_too_long",
    "path_not_absolute",
    "path_dotdot",
    "no_media_roots",
    "path_not_found",
    "path_access_denied",
    "path_outside_media_roots",
    "path_symlink_escape",
    "path_not_file",
    "path_not_dir",
    "file_too_large",
    "read_timeout",
    "path_io_error",
};

const char *vd_path_problem_name(vd_path_problem p)
{
    return (unsigned)p < VD_PATH__COUNT ? problem_names[p] : "unknown";
}

/* Writes an absolute path's lexical normal form into out (collapses "//",
 * drops "." components and a trailing slash). The input has no ".." here. */
static void normalise(const char *in, char *out, size_t n)
{
    size_t o = 0;
    const char *p = in;
    while (*p && o + 2 < n) {
        while (*p == '/')
            p++;
        if (!*p) break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (!(len == 1 && p[0] == '.')) {
            if (o + 1 + len + 1 > n) break;
            out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    if (o == 0) out[o++] = '/';
    out[o] = '\0';
}

/* Returns 1 when path equals root or lies below it, component-wise. */
static int is_under(const char *path, const char *root)
{
    size_t len = strlen(root);
    if (len == 1 && root[0] == '/') return 1;
    return strncmp(path, root, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

static int has_dotdot(const char *p)
{
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return 1;
        p += len;
    }
    return 0;
}

void vd_media_roots_free(vd_media_roots *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->given[i]);
        free(r->real[i]);
    }
    free(r->given);
    free(r->real);
    free(r);
}

vd_status vd_media_roots_new(const char *const *dirs, size_t n, vd_media_roots **out, vd_error *err)
{
    *out = NULL;
    vd_media_roots *r = calloc(1, sizeof *r);
    if (!r) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (n) {
        r->given = calloc(n, sizeof *r->given);
        r->real = calloc(n, sizeof *r->real);
        if (!r->given || !r->real) {
            vd_media_roots_free(r);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *d = dirs[i];
        char abs[PATH_MAX], norm[PATH_MAX];
        if (!d || !*d) {
            vd_media_roots_free(r);
            return vd_error_set(err, VD_ERR_INVALID, "media root %zu is empty", i + 1);
        }
        if (has_dotdot(d)) {
            vd_media_roots_free(r);
            return vd_error_set(err, VD_ERR_INVALID, "media root '%s' has a '..' component", d);
        }
        if (d[0] == '/') {
            vd_strlcpy(abs, d, sizeof abs);
        } else {
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof cwd) ||
                (size_t)snprintf(abs, sizeof abs, "%s/%s", cwd, d) >= sizeof abs) {
                vd_media_roots_free(r);
                return vd_error_set(err, VD_ERR_INVALID, "media root '%s' is too long", d);
            }
        }
        normalise(abs, norm, sizeof norm);
        char *real = realpath(d, NULL);
        struct stat st;
        if (!real || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
            int e = errno;
            free(real);
            vd_media_roots_free(r);
            return vd_error_set(err, VD_ERR_INVALID, "media root '%s' is not a directory%s%s", d,
                                real ? "" : ": ", real ? "" : strerror(e));
        }
        r->given[i] = vd_strdup(norm);
        r->real[i] = real;
        r->n = i + 1;
        if (!r->given[i]) {
            vd_media_roots_free(r);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
    }
    *out = r;
    return VD_OK;
}

size_t vd_media_roots_count(const vd_media_roots *r)
{
    return r ? r->n : 0;
}

const char *vd_media_roots_get(const vd_media_roots *r, size_t i)
{
    return r && i < r->n ? r->real[i] : NULL;
}

static vd_status refuse(vd_path_problem *problem, vd_path_problem p, vd_error *err, vd_status code,
                        const char *fmt, const char *path)
{
    if (problem) *problem = p;
    /* Keep the message bounded even for very long paths. */
    return vd_error_set(err, code, fmt, (int)(strlen(path) > 200 ? 200 : strlen(path)), path);
}

vd_status vd_path_check_shape(const char *path, vd_path_problem *problem, vd_error *err)
{
    if (problem) *problem = VD_PATH_OK;
    if (!path || !*path)
        return refuse(problem, VD_PATH_EMPTY, err, VD_ERR_INVALID, "path is empty%.*s", "");
    if (strlen(path) >= PATH_MAX)
        return refuse(problem, VD_PATH_TOO_LONG, err, VD_ERR_INVALID, "path is too long: '%.*s...'",
                      path);
    if (path[0] != '/')
        return refuse(problem, VD_PATH_NOT_ABSOLUTE, err, VD_ERR_INVALID,
                      "path must be absolute: '%.*s'", path);
    if (has_dotdot(path))
        return refuse(problem, VD_PATH_DOTDOT, err, VD_ERR_INVALID,
                      "path may not contain '..' components: '%.*s'", path);
    return VD_OK;
}

vd_status vd_media_roots_check(const vd_media_roots *r, const char *path, vd_path_want want,
                               char **resolved_out, vd_path_problem *problem, vd_error *err)
{
    if (resolved_out) *resolved_out = NULL;
    vd_status shape = vd_path_check_shape(path, problem, err);
    if (shape != VD_OK) return shape;
    if (!r || r->n == 0)
        return refuse(problem, VD_PATH_NO_ROOTS, err, VD_ERR_INVALID,
                      "no media roots are configured (start the server with --media-root DIR); "
                      "refusing '%.*s'",
                      path);

    char norm[PATH_MAX];
    normalise(path, norm, sizeof norm);
    int lexically_inside = 0;
    for (size_t i = 0; i < r->n && !lexically_inside; i++)
        lexically_inside = is_under(norm, r->given[i]) || is_under(norm, r->real[i]);

    char *real = realpath(path, NULL);
    if (!real) {
        int e = errno;
        /* Do not reveal what exists outside the roots: a path that is not
         * under a root by name is "outside" whether or not it exists. */
        if (!lexically_inside)
            return refuse(problem, VD_PATH_OUTSIDE, err, VD_ERR_INVALID,
                          "path is outside the media roots: '%.*s'", path);
        if (e == EACCES)
            return refuse(problem, VD_PATH_ACCESS, err, VD_ERR_INVALID, "permission denied: '%.*s'",
                          path);
        if (e == ENOENT || e == ENOTDIR || e == ELOOP)
            return refuse(problem, VD_PATH_NOT_FOUND, err, VD_ERR_NOT_FOUND,
                          "no such file or directory: '%.*s'", path);
        if (problem) *problem = VD_PATH_NOT_FOUND;
        return vd_error_set(err, VD_ERR_NOT_FOUND, "cannot resolve '%.*s': %s",
                            (int)(strlen(path) > 200 ? 200 : strlen(path)), path, strerror(e));
    }
    int inside = 0;
    for (size_t i = 0; i < r->n && !inside; i++)
        inside = is_under(real, r->real[i]);
    if (!inside) {
        free(real);
        if (lexically_inside)
            return refuse(problem, VD_PATH_SYMLINK_ESCAPE, err, VD_ERR_INVALID,
                          "path leads outside the media roots through a symbolic link: '%.*s'",
                          path);
        return refuse(problem, VD_PATH_OUTSIDE, err, VD_ERR_INVALID,
                      "path is outside the media roots: '%.*s'", path);
    }
    struct stat st;
    if (stat(real, &st) != 0) {
        free(real);
        return refuse(problem, VD_PATH_NOT_FOUND, err, VD_ERR_NOT_FOUND,
                      "no such file or directory: '%.*s'", path);
    }
    if (want == VD_PATH_WANT_FILE && !S_ISREG(st.st_mode)) {
        free(real);
        return refuse(problem, VD_PATH_NOT_FILE, err, VD_ERR_INVALID, "not a regular file: '%.*s'",
                      path);
    }
    if (want == VD_PATH_WANT_DIR && !S_ISDIR(st.st_mode)) {
        free(real);
        return refuse(problem, VD_PATH_NOT_DIR, err, VD_ERR_INVALID, "not a directory: '%.*s'",
                      path);
    }
    if (resolved_out)
        *resolved_out = real;
    else
        free(real);
    return VD_OK;
}
