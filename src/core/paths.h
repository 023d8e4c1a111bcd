/* paths.h: confinement of user-given file paths to the configured media roots,
 * and the one function through which media files are opened and read.
 *
 * Layer: core (below every other module), so that the API, the pipeline's
 * jobs run by workers, the job-payload validator and the CLI all use it.
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
#ifndef VD_CORE_PATHS_H
#define VD_CORE_PATHS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/sha256.h"

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
    VD_PATH_NOT_FILE,       /* a regular file was wanted (FIFO, device, socket, directory) */
    VD_PATH_NOT_DIR,        /* a directory was wanted */
    VD_PATH_TOO_LARGE,      /* vd_media_read: the file is over the byte cap */
    VD_PATH_READ_TIMEOUT,   /* vd_media_read: reading passed its deadline */
    VD_PATH_IO,             /* vd_media_open/read: another open or read error */
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

/* The checks on the path alone, without roots (the first four rules above:
 * non-empty, shorter than PATH_MAX, absolute, no ".." component).
 * VD_ERR_INVALID with *problem set (when non-NULL) otherwise. For callers
 * that must check a path's shape where no roots are known (the CLI). */
vd_status vd_path_check_shape(const char *path, vd_path_problem *problem, vd_error *err);

/* Returns a static snake_case name for a problem ("outside_media_roots"),
 * usable as an API error code. */
const char *vd_path_problem_name(vd_path_problem p);

/* ---- Opening and reading a media file (paths_open.c) ----------------------
 *
 * Every image file the service reads (API routes, the embed and
 * train_session jobs in work-horses, the CLI) is opened by vd_media_open.
 *
 * With roots (non-NULL; zero roots refuse everything with VD_PATH_NO_ROOTS):
 *   1. the path is checked as vd_media_roots_check does (absolute, no "..",
 *      realpath under a root; a path outside the roots by name is refused
 *      "outside" whether or not it exists: no existence oracle). Symlinks
 *      that stay inside the roots are followed here, by realpath;
 *   2. the resolved path is opened relative to a descriptor of the root it
 *      lies under, so that whatever is swapped in between (a directory or the
 *      file replaced by a symlink to /etc/shadow, /dev/zero, another root) the
 *      object opened is beneath that root:
 *        - openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS where the
 *          kernel has it (Linux >= 5.6): a symlink met after step 1 is
 *          followed only while it stays beneath the root (an absolute one,
 *          a "..", a /proc magic link: refused, VD_PATH_SYMLINK_ESCAPE);
 *        - otherwise (ENOSYS, or forced by vd_media_force_fallback) a walk
 *          of the resolved components with openat(O_NOFOLLOW) from the root's
 *          descriptor: no symlink at all is followed after step 1 (one that
 *          appeared is VD_PATH_SYMLINK_ESCAPE), ".." never occurs.
 *      Both cross mount points inside a root (bind mounts are the operator's).
 * Without roots (NULL: the CLI given none, a worker started without
 * --media-root) the path is opened as given (relative allowed).
 * In both cases the open is O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC (a
 * FIFO does not block the open, a terminal is never acquired), then the
 * descriptor is fstat'ed and anything but a regular file (FIFO, character or
 * block device such as /dev/zero, socket, directory) is refused with
 * VD_PATH_NOT_FILE, naming the kind. Nothing is read before that.
 *
 * Status codes: VD_ERR_INVALID (refused: outside, escape, not a file, bad
 * path), VD_ERR_NOT_FOUND (no such file, inside a root), VD_ERR_IO,
 * VD_ERR_LIMIT (too large), VD_ERR_TIMEOUT (read deadline), VD_ERR_NOMEM.
 * Messages quote the path as given (at most 200 bytes), never file contents.
 * Thread-safe; no state besides the fallback switch. */

#define VD_MEDIA_MAX_BYTES ((size_t)64 << 20) /* default byte cap of vd_media_read: 64 MiB */
#define VD_MEDIA_READ_MS   30000              /* default wall-clock bound on reading one file */
#define VD_MEDIA_READ_CHUNK                                                                        \
    ((size_t)1 << 20) /* bytes per read(2); the deadline is checked between */

/* Opens path as above; *fd_out is a read-only descriptor of a regular file,
 * owned by the caller (close it). problem may be NULL. */
vd_status vd_media_open(const vd_media_roots *roots, const char *path, int *fd_out,
                        vd_path_problem *problem, vd_error *err);

/* The second step alone: opens rel (relative, as realpath would leave it
 * below root) beneath the directory root with openat2 or the O_NOFOLLOW walk,
 * then checks it is a regular file as above. vd_media_open calls it with the
 * resolved path; tests call it to play "a symlink appeared after the path was
 * resolved". */
vd_status vd_media_open_beneath(const char *root, const char *rel, int *fd_out,
                                vd_path_problem *problem, vd_error *err);

typedef struct {
    size_t max_bytes; /* 0 = VD_MEDIA_MAX_BYTES */
    int64_t
        deadline_ms; /* vd_mono_ms() value after which reading stops; 0 = now + VD_MEDIA_READ_MS */
} vd_media_limits;

/* Opens path with vd_media_open and reads it whole into *data (malloc'd,
 * owned by the caller) and *len. The cap is checked on the descriptor's size
 * before anything is read ("file too large: N > M bytes", VD_ERR_LIMIT), and
 * no more than that size is read even if the file grows. The file is read in
 * VD_MEDIA_READ_CHUNK pieces and the deadline checked after each one
 * (VD_ERR_TIMEOUT); a single read(2) that blocks in the kernel (a hung
 * network or FUSE file system) is not interrupted: in a work-horse the job's
 * timeout (worker/registry.h) bounds it. lim may be NULL for defaults. */
vd_status vd_media_read(const vd_media_roots *roots, const char *path, const vd_media_limits *lim,
                        uint8_t **data, size_t *len, vd_path_problem *problem, vd_error *err);

/* The SHA-256 of the file's bytes, read as vd_media_read reads them (same
 * open, cap and deadline) in chunks, without holding the whole file. The
 * embedding cache's key (pipeline/embed.h) is computed here, so hashing a file
 * is no way around the checks either. */
vd_status vd_media_sha256(const vd_media_roots *roots, const char *path, const vd_media_limits *lim,
                          uint8_t out[VD_SHA256_LEN], vd_path_problem *problem, vd_error *err);

/* Tests: on != 0 makes vd_media_open use the O_NOFOLLOW walk even where
 * openat2 exists (process-wide). Returns the previous setting. */
int vd_media_force_fallback(int on);

/* Returns 1 when vd_media_open resolves with openat2 in this process (the
 * kernel has it and the fallback is not forced), 0 otherwise. */
int vd_media_uses_openat2(void);

#endif
