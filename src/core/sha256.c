/* sha256.c: SHA-256 through glib's GChecksum. */
#include "core/sha256.h"

#include "core/paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

struct vd_sha256_ctx {
    GChecksum *gc;
};

vd_sha256_ctx *vd_sha256_new(void)
{
    vd_sha256_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx) return NULL;
    ctx->gc = g_checksum_new(G_CHECKSUM_SHA256);
    if (!ctx->gc) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

void vd_sha256_update(vd_sha256_ctx *ctx, const void *data, size_t len)
{
    const guchar *p = data;
    /* g_checksum_update takes a gssize: feed huge buffers in slices. */
    while (len > 0) {
        size_t n = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
        g_checksum_update(ctx->gc, p, (gssize)n);
        p += n;
        len -= n;
    }
}

void vd_sha256_final(vd_sha256_ctx *ctx, uint8_t out[VD_SHA256_LEN])
{
    gsize n = VD_SHA256_LEN;
    g_checksum_get_digest(ctx->gc, out, &n);
}

void vd_sha256_free(vd_sha256_ctx *ctx)
{
    if (!ctx) return;
    g_checksum_free(ctx->gc);
    free(ctx);
}

void vd_sha256(const void *data, size_t len, uint8_t out[VD_SHA256_LEN])
{
    /* GChecksum allocates; on allocation failure glib aborts, as it does
     * everywhere, so there is no NULL to handle here. */
    GChecksum *gc = g_checksum_new(G_CHECKSUM_SHA256);
    const guchar *p = data;
    while (len > 0) {
        size_t n = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
        g_checksum_update(gc, p, (gssize)n);
        p += n;
        len -= n;
    }
    gsize n = VD_SHA256_LEN;
    g_checksum_get_digest(gc, out, &n);
    g_checksum_free(gc);
}

void vd_sha256_hex(const uint8_t digest[VD_SHA256_LEN], char hex[VD_SHA256_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < VD_SHA256_LEN; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[VD_SHA256_HEX_LEN] = '\0';
}

vd_status vd_sha256_file(const char *path, uint8_t out[VD_SHA256_LEN], vd_error *err)
{
    /* the one open of media files: regular files only, capped, bounded in time */
    return vd_media_sha256(NULL, path, NULL, out, NULL, err);
}
