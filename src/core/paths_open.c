/* paths_open.c: the confined open and the bounded read of media files
 * (paths.h, "Opening and reading a media file"). */
#include "core/paths.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/sha256.h"
#include "core/util.h"

#define OPEN_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

static atomic_int g_force_fallback;
static atomic_int g_openat2; /* 0 not probed yet, 1 the kernel has it, -1 ENOSYS */

int vd_media_force_fallback(int on)
{
    return atomic_exchange(&g_force_fallback, on ? 1 : 0);
}

int vd_media_uses_openat2(void)
{
#ifdef SYS_openat2
    if (atomic_load(&g_force_fallback)) return 0;
    int known = atomic_load(&g_openat2);
    if (known) return known > 0;
    /* Probe once: an invalid resolve flag is EINVAL where openat2 exists. */
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = ~(uint64_t)0};
    long r = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how);
    if (r >= 0) close((int)r);
    known = r < 0 && errno == ENOSYS ? -1 : 1;
    atomic_store(&g_openat2, known);
    return known > 0;
#else
    return 0;
#endif
}

static int shown_len(const char *path)
{
    size_t n = strlen(path);
    return (int)(n > 200 ? 200 : n);
}

static vd_status refuse(vd_path_problem *problem, vd_path_problem p, vd_error *err, vd_status code,
                        const char *what, const char *path)
{
    if (problem) *problem = p;
    return vd_error_set(err, code, "%s: '%.*s'", what, shown_len(path), path);
}

static const char *kind_name(mode_t m)
{
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISLNK(m)) return "a symbolic link";
    return "not a regular file";
}

/* Turns a failed open's errno into a refusal. */
static vd_status open_error(int e, const char *path, vd_path_problem *problem, vd_error *err)
{
    switch (e) {
    case ENOENT:
        return refuse(problem, VD_PATH_NOT_FOUND, err, VD_ERR_NOT_FOUND, "no such file", path);
    case ENOTDIR:
        return refuse(problem, VD_PATH_NOT_FOUND, err, VD_ERR_NOT_FOUND,
                      "no such file (a component is not a directory)", path);
    case EACCES:
    case EPERM:
        return refuse(problem, VD_PATH_ACCESS, err, VD_ERR_INVALID, "permission denied", path);
    case ENXIO: /* open(2) of a socket, or of a device with no driver */
    case ENODEV:
        return refuse(problem, VD_PATH_NOT_FILE, err, VD_ERR_INVALID,
                      "not a regular file (a socket or a device)", path);
    case EXDEV:
    case ELOOP:
        return refuse(problem, VD_PATH_SYMLINK_ESCAPE, err, VD_ERR_INVALID,
                      "path leads outside the media roots through a symbolic link (changed "
                      "after it was checked)",
                      path);
    default:
        if (problem) *problem = VD_PATH_IO;
        return vd_error_set(err, VD_ERR_IO, "cannot open '%.*s': %s", shown_len(path), path,
                            strerror(e));
    }
}

/* The fallback: walks rel (no "..", no ".", no empty component: a realpath
 * remainder) from dirfd with O_NOFOLLOW at every step. Returns the final
 * descriptor or -1 with errno (ELOOP/ENOTDIR when a symlink is met). */
static int walk_nofollow(int dirfd, const char *rel)
{
    char buf[PATH_MAX];
    if (strlen(rel) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    vd_strlcpy(buf, rel, sizeof buf);
    int dfd = dirfd;
    char *save = NULL;
    char *comp = strtok_r(buf, "/", &save);
    while (comp) {
        char *next = strtok_r(NULL, "/", &save);
        if (strcmp(comp, "..") == 0 || strcmp(comp, ".") == 0) {
            if (dfd != dirfd) close(dfd);
            errno = EXDEV;
            return -1;
        }
        int fd;
        if (next) {
            fd = openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            struct stat st;
            if (fd < 0 && errno == ENOTDIR && fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(st.st_mode))
                errno = ELOOP; /* a symlink where a directory was: not followed */
            if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode))) {
                close(fd);
                fd = -1;
                errno = ELOOP; /* a symlink opened as itself */
            }
        } else {
            fd = openat(dfd, comp, OPEN_FLAGS | O_NOFOLLOW);
        }
        int e = errno;
        if (dfd != dirfd) close(dfd);
        if (fd < 0) {
            errno = e;
            return -1;
        }
        dfd = fd;
        comp = next;
    }
    if (dfd == dirfd) { /* rel was empty: the root itself, a directory */
        return openat(dirfd, ".", OPEN_FLAGS);
    }
    return dfd;
}

/* Opens rel beneath the directory root (a resolved root). -1 with errno. */
static int open_beneath(const char *root, const char *rel)
{
    int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0) return -1;
    int fd = -1;
#ifdef SYS_openat2
    if (vd_media_uses_openat2()) {
        struct open_how how = {.flags = OPEN_FLAGS,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        do {
            fd = (int)syscall(SYS_openat2, rfd, *rel ? rel : ".", &how, sizeof how);
        } while (fd < 0 && (errno == EAGAIN || errno == EINTR));
        if (fd < 0 && errno == ENOSYS) { /* seccomp may refuse it later than the probe */
            atomic_store(&g_openat2, -1);
            fd = walk_nofollow(rfd, rel);
        }
    } else {
        fd = walk_nofollow(rfd, rel);
    }
#else
    fd = walk_nofollow(rfd, rel);
#endif
    int e = errno;
    close(rfd);
    errno = e;
    return fd;
}

/* Finds the root real lies under and returns the remainder (no leading '/'). */
static const char *under_root(const vd_media_roots *roots, const char *real, const char **root)
{
    for (size_t i = 0; i < vd_media_roots_count(roots); i++) {
        const char *r = vd_media_roots_get(roots, i);
        size_t len = strlen(r);
        if (len == 1 && r[0] == '/') {
            *root = r;
            return real + 1;
        }
        if (strncmp(real, r, len) == 0 && (real[len] == '\0' || real[len] == '/')) {
            *root = r;
            return real[len] ? real + len + 1 : real + len;
        }
    }
    return NULL;
}

/* Checks that fd is a regular file; closes it and refuses otherwise. */
static vd_status want_regular(int fd, const char *path, vd_path_problem *problem, vd_error *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return open_error(e, path, problem, err);
    }
    if (S_ISREG(sb.st_mode)) return VD_OK;
    close(fd);
    if (problem) *problem = VD_PATH_NOT_FILE;
    return vd_error_set(err, VD_ERR_INVALID, "not a regular file (%s): '%.*s'",
                        kind_name(sb.st_mode), shown_len(path), path);
}

vd_status vd_media_open_beneath(const char *root, const char *rel, int *fd_out,
                                vd_path_problem *problem, vd_error *err)
{
    *fd_out = -1;
    if (problem) *problem = VD_PATH_OK;
    int fd = open_beneath(root, rel);
    if (fd < 0) return open_error(errno, rel, problem, err);
    vd_status st = want_regular(fd, rel, problem, err);
    if (st == VD_OK) *fd_out = fd;
    return st;
}

vd_status vd_media_open(const vd_media_roots *roots, const char *path, int *fd_out,
                        vd_path_problem *problem, vd_error *err)
{
    *fd_out = -1;
    if (problem) *problem = VD_PATH_OK;
    int fd;
    if (!roots) {
        if (!path || !*path)
            return refuse(problem, VD_PATH_EMPTY, err, VD_ERR_INVALID, "path is empty", "");
        fd = open(path, OPEN_FLAGS);
        if (fd < 0) return open_error(errno, path, problem, err);
    } else {
        char *real = NULL;
        vd_status st = vd_media_roots_check(roots, path, VD_PATH_WANT_ANY, &real, problem, err);
        if (st != VD_OK) return st;
        const char *root = NULL;
        const char *rel = under_root(roots, real, &root);
        if (!rel) { /* cannot happen: the check found it under a root */
            free(real);
            return refuse(problem, VD_PATH_OUTSIDE, err, VD_ERR_INVALID,
                          "path is outside the media roots", path);
        }
        fd = open_beneath(root, rel);
        int e = errno;
        free(real);
        if (fd < 0) return open_error(e, path, problem, err);
    }
    vd_status st = want_regular(fd, path, problem, err);
    if (st == VD_OK) *fd_out = fd;
    return st;
}

/* Where vd_media_read's and vd_media_sha256's bytes go. */
typedef struct {
    uint8_t *buf;        /* read into buf (size bytes), or: */
    vd_sha256_ctx *hash; /* feed a chunk buffer to hash */
    uint8_t *chunk;
} sink;

/* Opens path, checks the cap on its size, then reads at most that size in
 * VD_MEDIA_READ_CHUNK pieces into sk, checking the deadline after each. */
static vd_status read_bounded(const vd_media_roots *roots, const char *path,
                              const vd_media_limits *lim, sink *sk, size_t *got_out,
                              vd_path_problem *problem, vd_error *err)
{
    size_t max = lim && lim->max_bytes ? lim->max_bytes : VD_MEDIA_MAX_BYTES;
    int64_t deadline = lim && lim->deadline_ms ? lim->deadline_ms : vd_mono_ms() + VD_MEDIA_READ_MS;
    int fd;
    *got_out = 0;
    vd_status st = vd_media_open(roots, path, &fd, problem, err);
    if (st != VD_OK) return st;
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return open_error(e, path, problem, err);
    }
    if ((uint64_t)sb.st_size > max) {
        close(fd);
        if (problem) *problem = VD_PATH_TOO_LARGE;
        return vd_error_set(err, VD_ERR_LIMIT, "file too large: %lld > %zu bytes",
                            (long long)sb.st_size, max);
    }
    size_t size = (size_t)sb.st_size, got = 0;
    if (sk->hash) {
        sk->chunk = malloc(VD_MEDIA_READ_CHUNK);
    } else {
        sk->buf = malloc(size ? size : 1);
    }
    if (sk->hash ? !sk->chunk : !sk->buf) {
        close(fd);
        return vd_error_set(err, VD_ERR_NOMEM, "no memory for %zu bytes", size);
    }
    while (got < size) {
        size_t want = size - got < VD_MEDIA_READ_CHUNK ? size - got : VD_MEDIA_READ_CHUNK;
        ssize_t n = read(fd, sk->hash ? sk->chunk : sk->buf + got, want);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            n = 0;
        } else if (n < 0) {
            if (problem) *problem = VD_PATH_IO;
            st = vd_error_set(err, VD_ERR_IO, "cannot read '%.*s': %s", shown_len(path), path,
                              strerror(errno));
            break;
        } else if (n == 0) {
            break; /* shrank while we read: take what is there */
        }
        if (sk->hash) vd_sha256_update(sk->hash, sk->chunk, (size_t)n);
        got += (size_t)n;
        if (vd_mono_ms() > deadline) {
            if (problem) *problem = VD_PATH_READ_TIMEOUT;
            st = vd_error_set(err, VD_ERR_TIMEOUT,
                              "reading '%.*s' passed its deadline (%zu of %zu bytes read)",
                              shown_len(path), path, got, size);
            break;
        }
    }
    close(fd);
    *got_out = got;
    return st;
}

vd_status vd_media_read(const vd_media_roots *roots, const char *path, const vd_media_limits *lim,
                        uint8_t **data, size_t *len, vd_path_problem *problem, vd_error *err)
{
    *data = NULL;
    *len = 0;
    sink sk = {0};
    vd_status st = read_bounded(roots, path, lim, &sk, len, problem, err);
    if (st != VD_OK) {
        free(sk.buf);
        *len = 0;
        return st;
    }
    *data = sk.buf;
    return VD_OK;
}

vd_status vd_media_sha256(const vd_media_roots *roots, const char *path, const vd_media_limits *lim,
                          uint8_t out[VD_SHA256_LEN], vd_path_problem *problem, vd_error *err)
{
    sink sk = {.hash = vd_sha256_new()};
    if (!sk.hash) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    size_t got;
    vd_status st = read_bounded(roots, path, lim, &sk, &got, problem, err);
    if (st == VD_OK) vd_sha256_final(sk.hash, out);
    vd_sha256_free(sk.hash);
    free(sk.chunk);
    return st;
}
