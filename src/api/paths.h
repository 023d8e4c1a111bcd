/* paths.h: confinement of user-given file paths to the configured media roots.
 *
 * The API accepts file and folder paths from clients ("examples": [{"path":
 * "/photos/cat1.jpg"}], "folder": "/photos/pets"). Such a path is only used
 * when it lies under one of the media roots the server was started with
 * (--media-root DIR, repeatable). A path is accepted when:
 *   - it is non-empty, shorter than PATH_MAX and absolute;
 *   - none of its components is "..";
 *   - it exists, and realpath(3) of it (every symlink followed) is a root or
 *     lies under a root, compared component-wise ("/media/a" does not admit
 *     "/media/ab/x"): so a symlink inside a root that points outside every
 *     root is refused;
 *   - it is of the wanted kind (a regular file, a directory, or either).
 * Every refusal has its own vd_path_problem and message, so a client sees why.
 *
 * The resolved path (no symlinks, no "." or "..") is what callers must open.
 * Residual race: a directory swapped for a symlink between this check and the
 * open is not caught here; roots should not be writable by untrusted users.
 *
 * A vd_media_roots is immutable after vd_media_roots_new and may be shared by
 * threads without locking. */
#ifndef VD_API_PATHS_H
#define VD_API_PATHS_H

#include <stddef.h>

#include "core/err.h"

typedef struct vd_media_roots vd_media_roots;

typedef enum {
    VD_PATH_OK = 0,
    VD_PATH_EMPTY,          /* "" or NULL */
    VD_PATH_TOO_LONG,       /* PATH_MAX or longer */
    VD_PATH_NOT_ABSOLUTE,   /* does not start with '/' */
    VD_PATH_DOTDOT,         /* has a ".." component */
    VD_PATH_NO_ROOTS,       /* the server has no media roots configured */
    VD_PATH_NOT_FOUND,      /* does not exist (or a component is not a directory) */
    VD_PATH_ACCESS,         /* permission denied while resolving */
    VD_PATH_OUTSIDE,        /* resolves outside every media root */
    VD_PATH_SYMLINK_ESCAPE, /* lies under a root by name, but a symlink leads outside */
    VD_PATH_NOT_FILE,       /* a regular file was wanted */
    VD_PATH_NOT_DIR,        /* a directory was wanted */
    VD_PATH__COUNT
} vd_path_problem;

/* What kind of object a path must name. */
typedef enum { VD_PATH_WANT_ANY = 0, VD_PATH_WANT_FILE, VD_PATH_WANT_DIR } vd_path_want;

/* Builds the root set from n directory names. Each must exist and be a
 * directory; it is kept both as given (normalised) and as resolved by
 * realpath. n may be 0 (every path is then refused with VD_PATH_NO_ROOTS).
 * *out is owned by the caller and freed with vd_media_roots_free. Fails with
 * VD_ERR_INVALID naming the bad root. */
vd_status vd_media_roots_new(const char *const *dirs, size_t n, vd_media_roots **out,
                             vd_error *err);
void vd_media_roots_free(vd_media_roots *roots);

/* Returns the number of roots. */
size_t vd_media_roots_count(const vd_media_roots *roots);

/* Returns the resolved (realpath) form of root i (borrowed), or NULL when i is out of range. */
const char *vd_media_roots_get(const vd_media_roots *roots, size_t i);

/* Checks user_path against the roots as described above. On success returns
 * VD_OK and, when resolved_out is non-NULL, sets *resolved_out to a malloc'd
 * resolved path (owned by the caller). On refusal returns VD_ERR_INVALID
 * (malformed or outside the roots, wrong kind) or VD_ERR_NOT_FOUND (does not
 * exist), fills err with a message naming the path and, when problem is
 * non-NULL, sets *problem to the reason (VD_PATH_OK on success). */
vd_status vd_media_roots_check(const vd_media_roots *roots, const char *user_path,
                               vd_path_want want, char **resolved_out, vd_path_problem *problem,
                               vd_error *err);

/* Returns a static snake_case name for a problem ("outside_media_roots"),
 * usable as an API error code. */
const char *vd_path_problem_name(vd_path_problem p);

#endif
