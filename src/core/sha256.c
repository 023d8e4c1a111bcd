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

/* Adds len bytes to gc, in pieces GChecksum's gssize can hold. */
static void feed(GChecksum *gc, const void *data, size_t len)
{
    const guchar *p = data;
    while (len > 0) {
        size_t n = len > ((size_t)1 << 30) ? ((size_t)1 << 30) : len;
        g_checksum_update(gc, p, (gssize)n);
        p += n;
        len -= n;
    }
}

void vd_sha256(const void *data, size_t len, uint8_t out[VD_SHA256_LEN])
{
    /* GChecksum allocates; on allocation failure glib aborts, as it does
     * everywhere, so there is no NULL to handle here. */
    GChecksum *gc = g_checksum_new(G_CHECKSUM_SHA256);
    feed(gc, data, len);
    gsize n = VD_SHA256_LEN;
    g_checksum_get_digest(gc, out, &n);
    g_checksum_free(gc);
}

void vd_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                    uint8_t out[VD_SHA256_LEN])
{
    enum { BLOCK = 64 };
    uint8_t k[BLOCK] = {0}, pad[BLOCK], inner[VD_SHA256_LEN];
    if (keylen > BLOCK)
        vd_sha256(key, keylen, k);
    else if (keylen)
        memcpy(k, key, keylen);
    GChecksum *gc = g_checksum_new(G_CHECKSUM_SHA256);
    for (int i = 0; i < BLOCK; i++)
        pad[i] = k[i] ^ 0x36;
    g_checksum_update(gc, pad, BLOCK);
    feed(gc, msg, len);
    gsize n = VD_SHA256_LEN;
    g_checksum_get_digest(gc, inner, &n);
    g_checksum_reset(gc);
    for (int i = 0; i < BLOCK; i++)
        pad[i] = k[i] ^ 0x5c;
    g_checksum_update(gc, pad, BLOCK);
    g_checksum_update(gc, inner, VD_SHA256_LEN);
    n = VD_SHA256_LEN;
    g_checksum_get_digest(gc, out, &n);
    g_checksum_free(gc);
    memset(k, 0, sizeof k);
    memset(pad, 0, sizeof pad);
}

int vd_consttime_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (uint8_t)(x[i] ^ y[i]);
    return d == 0;
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
