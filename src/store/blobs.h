/* blobs.h: files kept in the store itself, so that every host that opens the
 * store reads them: the uploaded examples of training sessions (docs/api.md).
 *
 * A blob is the bytes of one file, keyed by their SHA-256 (lower-case hex):
 * the same bytes uploaded twice are kept once. A blob is at most
 * VD_BLOB_MAX_BYTES. An example refers to one through its path, a blob
 * reference "blob:SHA256/NAME" (NAME: the uploaded file's name, for people;
 * the reference is what the session's errors and examples show), and through
 * its sha256 column, which is filled when the example is stored.
 *
 * Garbage collection: vd_store_blobs_gc deletes the blobs that no example
 * and no live asset of the library (store/library.h) refers to (an example
 * or asset whose path is a blob reference, by its sha256: a media file with
 * the same bytes does not keep an upload) and that nobody
 * put for grace_ms: a blob put for a
 * session that is being created is safe for that long before its examples
 * are stored. Putting bytes that are already kept refreshes that time.
 *
 * Both backends of the store keep blobs (store_db.h): SQLite in the store's
 * file, PostgreSQL as BYTEA. */
#ifndef VD_STORE_BLOBS_H
#define VD_STORE_BLOBS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/paths.h"
#include "core/sha256.h"
#include "store/store.h"

#define VD_BLOB_MAX_BYTES   VD_MEDIA_MAX_BYTES /* largest blob: what a media file may be */
#define VD_BLOB_REF_PREFIX  "blob:"
#define VD_BLOB_NAME_MAX    100                   /* bytes of NAME kept in a reference */
#define VD_BLOB_GC_GRACE_MS ((int64_t)600 * 1000) /* 10 min: the grace of vd_svc's GC */

/* Returns 1 when path is a blob reference ("blob:" then 64 lower-case hex,
 * then nothing or "/NAME") and writes its SHA-256 into sha (65 bytes); 0
 * otherwise (sha untouched). */
int vd_blob_ref_parse(const char *path, char sha[VD_SHA256_HEX_LEN + 1]);

/* Returns a malloc'd reference "blob:SHA/NAME" (NULL: no memory). name may be
 * NULL or empty ("blob:SHA"); it is cut to VD_BLOB_NAME_MAX bytes, and '/' and
 * control characters in it become '_'. */
char *vd_blob_ref_new(const char *sha, const char *name);

/* Keeps len bytes of data (at most VD_BLOB_MAX_BYTES: VD_ERR_LIMIT) and
 * writes their SHA-256 into sha. *added (may be NULL) is 1 when they were
 * not kept yet, 0 when the same bytes were (then only their put time is
 * refreshed). Atomic; safe against another process putting the same bytes. */
vd_status vd_store_blob_put(vd_store *s, const void *data, size_t len,
                            char sha[VD_SHA256_HEX_LEN + 1], int *added, vd_error *err);

/* Reads the blob sha into *data (malloc'd, owned by the caller) and *len.
 * VD_ERR_NOT_FOUND when the store has no such blob ("... was deleted or
 * never uploaded"), VD_ERR_LIMIT when it is over max_bytes (0 =
 * VD_BLOB_MAX_BYTES), VD_ERR_DB when the bytes read do not hash to sha. */
vd_status vd_store_blob_get(vd_store *s, const char *sha, size_t max_bytes, uint8_t **data,
                            size_t *len, vd_error *err);

/* Deletes every blob that no example or live asset refers to and that was not put in the
 * last grace_ms. *removed (may be NULL) counts them. */
vd_status vd_store_blobs_gc(vd_store *s, int64_t grace_ms, size_t *removed, vd_error *err);

/* How many blobs the store keeps and their bytes (either may be NULL). */
vd_status vd_store_blobs_count(vd_store *s, int64_t *n, int64_t *bytes, vd_error *err);

#endif
