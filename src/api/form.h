/* form.h: the plain fields of a multipart/form-data upload, checked as
 * strictly as the same fields in a JSON body (docs/api.md, Uploads).
 *
 * A route that takes an upload calls vd_form_check first: every plain field
 * (a part without a file name) must be one the route knows (422
 * unknown_field, as vd_api_only_fields answers for JSON) and appear once (400
 * invalid_multipart, as a duplicate JSON key is 400 invalid_json). File parts
 * are not looked at: their field names are the route's business (a label, or
 * anything). Then vd_form_bool reads a boolean field: "true"/"1" or
 * "false"/"0", anything else 400 invalid_type like a JSON field of the wrong
 * type. Each function answers resp itself and returns 0 on a refusal, 1 when
 * the request may go on. */
#ifndef VD_API_FORM_H
#define VD_API_FORM_H

#include "api/http.h"

/* Checks the plain fields of req against allowed (NULL-terminated). */
int vd_form_check(const vd_http_req *req, vd_http_resp *resp, const char *const *allowed);

/* Sets *out from the boolean field name when present (else leaves it). */
int vd_form_bool(const vd_http_req *req, vd_http_resp *resp, const char *name, int *out);

/* Returns how many file parts req has. */
size_t vd_form_files(const vd_http_req *req);

#endif
