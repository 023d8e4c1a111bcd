/* form.c: strict plain fields of multipart uploads (see form.h). */
#include "api/form.h"

#include <string.h>

static int allowed_name(const char *name, const char *const *allowed)
{
    for (size_t i = 0; allowed[i]; i++)
        if (strcmp(name, allowed[i]) == 0) return 1;
    return 0;
}

int vd_form_check(const vd_http_req *req, vd_http_resp *resp, const char *const *allowed)
{
    for (size_t i = 0; i < req->nparts; i++) {
        const vd_http_part *p = &req->parts[i];
        if (p->path) continue; /* a file part */
        if (!allowed_name(p->name, allowed)) {
            vd_http_reply_error(resp, 422, "unknown_field", "unknown field '%.100s'", p->name);
            return 0;
        }
        for (size_t j = 0; j < i; j++)
            if (!req->parts[j].path && strcmp(req->parts[j].name, p->name) == 0) {
                vd_http_reply_error(resp, 400, "invalid_multipart",
                                    "field '%.100s' is given more than once", p->name);
                return 0;
            }
    }
    return 1;
}

int vd_form_bool(const vd_http_req *req, vd_http_resp *resp, const char *name, int *out)
{
    for (size_t i = 0; i < req->nparts; i++) {
        const vd_http_part *p = &req->parts[i];
        if (p->path || strcmp(p->name, name) != 0) continue;
        const char *v = p->value ? p->value : "";
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
            *out = 1;
        } else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
            *out = 0;
        } else {
            vd_http_reply_error(resp, 400, "invalid_type",
                                "field '%s' must be true or false (or 1, 0), not '%.40s'", name, v);
            return 0;
        }
        return 1;
    }
    return 1;
}

size_t vd_form_files(const vd_http_req *req)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nparts; i++)
        n += req->parts[i].path != NULL;
    return n;
}
