/* sha256.h: SHA-256 (FIPS 180-4), for content keys of the caches.
 *
 * The embedding and face caches (store/vectors.h) key images by the
 * lowercase hex SHA-256 of the file's bytes. */
#ifndef VD_SHA256_H
#define VD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct {
    uint32_t h[8];
    uint64_t nbytes;
    unsigned char buf[64];
    size_t nbuf;
} vd_sha256_ctx;

/* Starts a digest. */
void vd_sha256_init(vd_sha256_ctx *c);
/* Adds len bytes. */
void vd_sha256_update(vd_sha256_ctx *c, const void *data, size_t len);
/* Ends the digest: 32 bytes into out. */
void vd_sha256_final(vd_sha256_ctx *c, unsigned char out[32]);

/* Writes the lowercase hex digest of data[0..len) (64 chars + NUL) into hex. */
void vd_sha256_hex(const void *data, size_t len, char hex[65]);

/* Hashes the file at path; writes its hex digest into hex. VD_ERR_IO with
 * the path and errno text when it cannot be read. */
vd_status vd_sha256_file(const char *path, char hex[65], vd_error *err);

#endif
