/* webassets.h: the dashboard's static files, embedded in the binary.
 *
 * The build (cmake/embed_web.cmake, run by CMakeLists.txt) turns every file
 * directly under web/ (and, in a second table, the files of /openapi.json and
 * /docs) into one entry of a constant table in a generated
 * source under the build directory, so `visiond serve` serves the dashboard
 * from any working directory without reading web/ at run time. The table is
 * sorted by name, immutable and shared by every thread.
 *
 * Each entry's data is followed by a NUL byte (not counted in len), so text
 * files may be used as C strings. etag is a strong HTTP entity tag, quotes
 * included ("\"0123456789abcdef\"": the first 16 hex digits of the file's
 * SHA-256), which changes whenever the file's bytes change. */
#ifndef VD_API_WEBASSETS_H
#define VD_API_WEBASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;          /* file name under web/, e.g. "app.js" */
    const unsigned char *data; /* len bytes, then a NUL */
    size_t len;
    const char *etag; /* quoted, for the ETag header */
} vd_web_asset;

/* Returns the table (borrowed, static) and sets *n to its length. */
const vd_web_asset *vd_web_assets(size_t *n);

/* The same for the API's contract and reference page: "openapi.json" (api/openapi.json),
 * and, when the build found swagger-ui-dist, "docs.html", "docs-init.js",
 * "swagger-ui-bundle.js" and "swagger-ui.css". */
const vd_web_asset *vd_docs_assets(size_t *n);

#endif
