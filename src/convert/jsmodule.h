/* jsmodule.h: pulls the payload out of the JavaScript modules some TFJS
 * models ship as (nsfwjs's model.min.js exports the model JSON as an object
 * literal; each group1-shard*.min.js exports the weight bytes as a base64
 * string), without running any JavaScript.
 *
 * The payload is the value assigned by the first `exports=` (spaces allowed
 * around `=`) that is followed by an object literal or a string literal. An
 * object literal is translated to JSON: unquoted keys are quoted, single-
 * quoted strings become double-quoted, `.5` becomes `0.5`, `!0`/`!1` become
 * true/false, trailing commas are dropped. Anything else (a function call, a
 * variable) is VD_ERR_UNSUPPORTED with the offset where it stopped. */
#ifndef VD_JSMODULE_H
#define VD_JSMODULE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Returns 1 when the path ends in ".js" (so it is a JS module, not JSON or a .bin). */
int vd_jsmodule_is_js(const char *path);

/* Finds the exported object literal in src (n bytes) and returns it as JSON
 * text in *json_out (owned, NUL-terminated). */
vd_status vd_jsmodule_object_json(const char *src, size_t n, char **json_out, vd_error *err);

/* Finds the exported string literal in src and returns its base64-decoded
 * bytes in *data_out (owned) and their count in *len_out. */
vd_status vd_jsmodule_base64_bytes(const char *src, size_t n, uint8_t **data_out, size_t *len_out,
                                   vd_error *err);

/* Decodes base64 text (standard alphabet, '=' padding, whitespace ignored)
 * into *data_out (owned). VD_ERR_INVALID on any other character. */
vd_status vd_base64_decode(const char *text, size_t n, uint8_t **data_out, size_t *len_out,
                           vd_error *err);

#endif
