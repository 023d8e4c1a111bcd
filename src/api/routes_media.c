/* routes_media.c: GET /media?path=FILE, the bytes of an image under a media root.
 *
 * The dashboard draws detected faces over the image they were found in; a
 * browser cannot read the server's files, so this route hands them out, with
 * the same confinement as every route that takes a path (paths.h: absolute,
 * no "..", resolved under a --media-root, a regular file). Only images are
 * served: the type is sniffed from the file's first bytes (JPEG, PNG, GIF,
 * WebP, BMP, TIFF, AVIF, HEIF), anything else is 422 not_an_image, so the
 * route cannot be used to read other files under a root; files over
 * MEDIA_MAX_BYTES are 413 media_too_large. Needs the token like any data
 * route. The answer has an ETag (inode, size and modification time) and
 * "Cache-Control: private, no-cache". */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_impl.h"

#define MEDIA_MAX_BYTES (64 << 20)

/* Returns the image media type of the file's first n bytes, or NULL. */
const char *vd_api_sniff_image(const unsigned char *b, size_t n)
{
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return "image/jpeg";
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return "image/png";
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) return "image/gif";
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) return "image/webp";
    if (n >= 14 && b[0] == 'B' && b[1] == 'M') return "image/bmp";
    if (n >= 4 && (memcmp(b, "II*\0", 4) == 0 || memcmp(b, "MM\0*", 4) == 0)) return "image/tiff";
    if (n >= 12 && memcmp(b + 4, "ftyp", 4) == 0) {
        const unsigned char *brand = b + 8;
        if (memcmp(brand, "avif", 4) == 0 || memcmp(brand, "avis", 4) == 0) return "image/avif";
        if (memcmp(brand, "heic", 4) == 0 || memcmp(brand, "heix", 4) == 0 ||
            memcmp(brand, "mif1", 4) == 0 || memcmp(brand, "msf1", 4) == 0)
            return "image/heif";
    }
    return NULL;
}

static void media(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    const char *user = vd_http_query(req, "path");
    if (!user || !*user) {
        vd_http_reply_error(resp, 400, "invalid_parameter",
                            "query parameter 'path' (an absolute file path) is required");
        return;
    }
    char *path = vd_api_check_path(api, resp, user, VD_PATH_WANT_FILE);
    if (!path) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char *body = NULL;
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int e = errno;
        vd_http_reply_error(resp, e == EACCES ? 422 : 404,
                            e == EACCES ? "path_access_denied" : "path_not_found",
                            "cannot open %.300s: %s", user, strerror(e));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        vd_http_reply_error(resp, 422, "path_not_file", "%.300s is not a regular file", user);
        goto out;
    }
    if (sb.st_size > MEDIA_MAX_BYTES) {
        vd_http_reply_error(resp, 413, "media_too_large",
                            "%.300s has %lld bytes; this route serves at most %d", user,
                            (long long)sb.st_size, MEDIA_MAX_BYTES);
        goto out;
    }
    size_t size = (size_t)sb.st_size, got = 0;
    body = malloc(size ? size : 1);
    if (!body) {
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
        goto out;
    }
    while (got < size) {
        ssize_t r = read(fd, body + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got != size) {
        vd_http_reply_error(resp, 500, "io", "cannot read %.300s: %s", user,
                            got < size ? "the file shrank while it was read" : strerror(errno));
        goto out;
    }
    const char *type = vd_api_sniff_image((const unsigned char *)body, size);
    if (!type) {
        vd_http_reply_error(resp, 422, "not_an_image",
                            "%.300s is not an image this route serves (JPEG, PNG, GIF, WebP, BMP, "
                            "TIFF, AVIF, HEIF)",
                            user);
        goto out;
    }
    char etag[96];
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx.%lx\"", (unsigned long long)sb.st_ino,
             (unsigned long long)sb.st_size, (unsigned long long)sb.st_mtim.tv_sec,
             (unsigned long)sb.st_mtim.tv_nsec);
    vd_http_add_header(resp, "ETag", etag);
    vd_http_add_header(resp, "Cache-Control", "private, no-cache");
    vd_http_add_header(resp, "X-Content-Type-Options", "nosniff");
    vd_http_add_header(resp, "Content-Security-Policy", "default-src 'none'; sandbox");
    if (vd_api_etag_matches(vd_http_header(req, "If-None-Match"), etag)) {
        vd_http_reply_text(resp, 304, NULL, NULL, 0);
        goto out;
    }
    vd_http_reply_text(resp, 200, type, body, size);
    body = NULL;
out:
    if (fd >= 0) close(fd);
    free(body);
    free(path);
}

vd_status vd_api_routes_media(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route route = {"GET", "/media", media, api, 0};
    return vd_router_add(r, &route, err);
}
