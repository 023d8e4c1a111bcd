/* sha256.h: SHA-256 digests (FIPS 180-4), used as content keys (the
 * embedding cache is keyed by the SHA-256 of an image file's bytes).
 *
 * Backed by OpenSSL's libcrypto (EVP, with the CPU's SHA instructions where
 * present), so there is no hand-written hash to trust. One-shot and
 * streaming forms. Cost: ~0.65 ms per MB on the 2-core test VM. */
#ifndef VD_SHA256_H
#define VD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define VD_SHA256_LEN     32 /* digest bytes */
#define VD_SHA256_HEX_LEN 64 /* hex characters, without the NUL */

typedef struct vd_sha256_ctx vd_sha256_ctx;

/* Returns a fresh streaming context, or NULL when out of memory. */
vd_sha256_ctx *vd_sha256_new(void);

/* Feeds len bytes (len 0 is fine). */
void vd_sha256_update(vd_sha256_ctx *ctx, const void *data, size_t len);

/* Writes the digest of everything fed so far into out. The context may not be
 * updated afterwards (free it). */
void vd_sha256_final(vd_sha256_ctx *ctx, uint8_t out[VD_SHA256_LEN]);

/* Frees a context; NULL is fine. */
void vd_sha256_free(vd_sha256_ctx *ctx);

/* One shot: digest of data[0..len). */
void vd_sha256(const void *data, size_t len, uint8_t out[VD_SHA256_LEN]);

/* Does libcrypto's one-time start now: at its first digest a process reads
 * openssl.cnf and loads the default provider (~0.8 ms of CPU on the 2-core
 * VM, 2026-12-06). For a process about to fork children that hash (the
 * worker's horses): they inherit it done. Starts no thread. */
void vd_sha256_prepare(void);

/* HMAC-SHA-256 (RFC 2104, FIPS 198-1) of msg[0..len) under key[0..keylen)
 * (a key longer than the 64-byte block is hashed first, as the RFC says).
 * Used by the model-server handshake (infer/auth.h). */
void vd_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                    uint8_t out[VD_SHA256_LEN]);

/* Compares n bytes in time that does not depend on where they differ.
 * Returns 1 when equal. For secrets and proofs (never memcmp those). */
int vd_consttime_equal(const void *a, const void *b, size_t n);

/* Writes the lower-case hex form of a digest plus NUL into hex. */
void vd_sha256_hex(const uint8_t digest[VD_SHA256_LEN], char hex[VD_SHA256_HEX_LEN + 1]);

/* Digest of a whole file, read in blocks: vd_media_sha256 (core/paths.h)
 * without media roots, so a FIFO, a device or a directory is refused
 * (VD_ERR_INVALID) before a byte is read and a file over 64 MiB is
 * VD_ERR_LIMIT. VD_ERR_NOT_FOUND / VD_ERR_IO with the path and errno text. */
vd_status vd_sha256_file(const char *path, uint8_t out[VD_SHA256_LEN], vd_error *err);

#endif
