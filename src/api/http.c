/* http.c: the HTTP server core on libmicrohttpd (see http.h). */
#include "api/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define DEFAULT_MAX_BODY    (1u << 20)
#define DEFAULT_MAX_UPLOAD  (64u << 20)
#define DEFAULT_MAX_UPLOADS 4
#define DEFAULT_THREADS     4
#define DEFAULT_DRAIN_MS    5000
#define MAX_PARTS           1000
#define POST_BUFFER         (32 * 1024)
#define CONN_MEMORY         (16 * 1024) /* per connection: headers + buffers; MHD zeroes it per request */
#define DRAIN_MIN           (16u << 20) /* excess body read to answer 413 */
#define IDLE_TIMEOUT_S      60          /* a connection silent this long is closed */
/* A request body must keep coming: silent for BODY_IDLE_S, or behind a
 * minimum average rate (BODY_GRACE_MS plus 1 s per BODY_MIN_RATE bytes
 * received, counted from the headers), it is refused 408 body_too_slow and
 * its connection (and upload slot) freed. One byte every 2 s is out after
 * ~10 s; 64 MiB may take up to 18 hours at exactly 1 KiB/s. */
#define BODY_IDLE_S   20
#define BODY_GRACE_MS 10000
#define BODY_MIN_RATE 1024 /* bytes per second */

struct vd_http_server {
    struct MHD_Daemon *d;
    vd_http_config cfg;
    char *token;      /* owned copy, NULL = no auth */
    char *upload_dir; /* owned copy */
    int port;
    atomic_int uploads;
    atomic_int inflight; /* requests between their headers and their completion */
};

typedef enum { BODY_NONE = 0, BODY_DRAIN, BODY_JSON, BODY_MULTIPART } body_mode;

/* The state of one request, from its headers to its completion. */
typedef struct {
    vd_http_server *srv;
    int64_t t0_us;
    char method[16];
    char path[256];
    vd_route_match match;
    const vd_route *route;
    int answered; /* a response was queued */
    int status;
    size_t bytes;
    body_mode mode;
    size_t limit;
    size_t received;
    int too_big;
    char *body;
    size_t len, cap;
    struct MHD_PostProcessor *pp;
    vd_http_part *parts;
    size_t nparts, capparts;
    int fd; /* the open file of the current file part, or -1 */
    int upload_slot;
    int counted;    /* in srv->inflight */
    char *updir;    /* created on the first file part */
    int err_status; /* a deferred error, answered when the body has been read */
    char err_code[40];
    char err_msg[320];
} req_ctx;

/* ---- small helpers ------------------------------------------------------ */

static struct MHD_Connection *conn_of(const vd_http_req *req)
{
    return (struct MHD_Connection *)req->conn_;
}

const char *vd_http_param(const vd_http_req *req, const char *name)
{
    return vd_route_param(req->match, name);
}

const char *vd_http_query(const vd_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(conn_of(req), MHD_GET_ARGUMENT_KIND, name);
}

const char *vd_http_header(const vd_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(conn_of(req), MHD_HEADER_KIND, name);
}

void vd_http_add_header(vd_http_resp *resp, const char *name, const char *value)
{
    if (resp->nheaders >= VD_HTTP_MAX_HEADERS) return;
    vd_strlcpy(resp->header_name[resp->nheaders], name, sizeof resp->header_name[0]);
    vd_strlcpy(resp->header_value[resp->nheaders], value, sizeof resp->header_value[0]);
    resp->nheaders++;
}

static void set_body(vd_http_resp *resp, int status, const char *ctype, char *body, size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->content_type = ctype;
    resp->body = body;
    resp->len = len;
}

void vd_http_reply_text(vd_http_resp *resp, int status, const char *ctype, char *body, size_t len)
{
    set_body(resp, status, ctype, body, len);
}

void vd_http_reply_json(vd_http_resp *resp, int status, json_t *json)
{
    char *s = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(json);
    if (!s) {
        set_body(resp, 500, "application/json", NULL, 0);
        static const char oom[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"could not encode the response\"}}";
        resp->body = vd_strdup(oom);
        resp->len = resp->body ? strlen(resp->body) : 0;
        return;
    }
    size_t n = strlen(s);
    set_body(resp, status, "application/json", s, n);
}

static void reply_error_v(vd_http_resp *resp, int status, const char *code, const char *fmt,
                          va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_t *e = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg);
    if (!e) /* the message was not UTF-8 */
        e = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", "(unprintable)");
    vd_http_reply_json(resp, status, e);
}

void vd_http_reply_error(vd_http_resp *resp, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(resp, status, code, fmt, ap);
    va_end(ap);
}

int vd_http_status_for(vd_status st)
{
    switch (st) {
    case VD_OK:
        return 200;
    case VD_ERR_INVALID:
        return 422;
    case VD_ERR_NOT_FOUND:
        return 404;
    case VD_ERR_STATE:
        return 409;
    case VD_ERR_BUSY:
        return 429;
    case VD_ERR_LIMIT:
        return 413;
    case VD_ERR_CONN:
    case VD_ERR_DB:
    case VD_ERR_TIMEOUT:
        return 503;
    case VD_ERR_AUTH:
        return 401;
    case VD_ERR_UNSUPPORTED:
        return 415;
    case VD_ERR_IMAGE:
        return 422;
    case VD_ERR_NOSPACE:
        return 507;
    default:
        return 500;
    }
}

void vd_http_reply_status(vd_http_resp *resp, vd_status st, const char *code, const vd_error *err)
{
    int status = vd_http_status_for(st);
    if (status == 503) vd_http_add_header(resp, "Retry-After", "1");
    vd_http_reply_error(resp, status, code ? code : vd_status_name(st), "%s",
                        err && err->code == st ? vd_error_text(err) : vd_strerror(st));
}

/* ---- request lifecycle -------------------------------------------------- */

static void defer_error(req_ctx *x, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void defer_error(req_ctx *x, int status, const char *code, const char *fmt, ...)
{
    if (x->err_status) return; /* the first error wins */
    x->err_status = status;
    vd_strlcpy(x->err_code, code, sizeof x->err_code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err_msg, sizeof x->err_msg, fmt, ap);
    va_end(ap);
}

static enum MHD_Result send_resp(req_ctx *x, struct MHD_Connection *c, vd_http_resp *resp)
{
    struct MHD_Response *r;
    size_t len = resp->body ? resp->len : 0;
    if (resp->body && resp->len)
        r = MHD_create_response_from_buffer(resp->len, resp->body, MHD_RESPMEM_MUST_FREE);
    else {
        free(resp->body);
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    resp->body = NULL;
    if (!r) return MHD_NO;
    if (resp->content_type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
    for (size_t i = 0; i < resp->nheaders; i++)
        MHD_add_response_header(r, resp->header_name[i], resp->header_value[i]);
    x->answered = 1;
    x->status = resp->status;
    x->bytes = len;
    /* Counted before the response leaves, so a client that has seen it sees it counted. */
    vd_http_metrics_observe(x->srv->cfg.metrics, x->method, x->route ? x->route->pattern : NULL,
                            x->status, (double)(vd_mono_us() - x->t0_us) / 1e6, len);
    enum MHD_Result q = MHD_queue_response(c, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return q;
}

static enum MHD_Result send_error(req_ctx *x, struct MHD_Connection *c, int status,
                                  const char *code, const char *extra_name, const char *extra_val,
                                  const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static enum MHD_Result send_error(req_ctx *x, struct MHD_Connection *c, int status,
                                  const char *code, const char *extra_name, const char *extra_val,
                                  const char *fmt, ...)
{
    vd_http_resp resp;
    memset(&resp, 0, sizeof resp);
    va_list ap;
    va_start(ap, fmt);
    reply_error_v(&resp, status, code, fmt, ap);
    va_end(ap);
    if (extra_name) vd_http_add_header(&resp, extra_name, extra_val);
    return send_resp(x, c, &resp);
}

/* Returns the media type of a Content-Type value, lowercased, without parameters. */
static void media_type(const char *ct, char *out, size_t n)
{
    size_t o = 0;
    if (ct)
        for (; *ct == ' '; ct++)
            ;
    for (; ct && *ct && *ct != ';' && *ct != ' ' && o + 1 < n; ct++)
        out[o++] = (char)(*ct >= 'A' && *ct <= 'Z' ? *ct + 32 : *ct);
    out[o] = '\0';
}

static int authorized(vd_http_server *s, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h) return 0;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) != 0) return 0;
    h += 7;
    while (*h == ' ')
        h++;
    /* Ignore trailing whitespace without copying the secret around. */
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    char buf[512];
    if (n >= sizeof buf) return 0;
    memcpy(buf, h, n);
    buf[n] = '\0';
    int ok = vd_http_token_equal(buf, s->token);
    memset(buf, 0, sizeof buf);
    return ok;
}

static vd_http_part *current_part(req_ctx *x)
{
    return x->nparts ? &x->parts[x->nparts - 1] : NULL;
}

static void close_part_file(req_ctx *x)
{
    if (x->fd >= 0) close(x->fd);
    x->fd = -1;
}

static int same_str(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *ctype, const char *enc,
                               const char *data, uint64_t off, size_t size)
{
    (void)kind;
    (void)enc;
    req_ctx *x = cls;
    if (x->err_status) return MHD_NO;
    vd_http_part *p = current_part(x);
    int is_file = filename != NULL;
    /* MHD calls once or more per part, with off counting up from 0; an empty
     * part may come as one call of size 0. */
    int new_part = off == 0 && (!p || p->size > 0 || !same_str(p->name, key ? key : "") ||
                                !same_str(p->filename, filename));
    if (new_part) {
        close_part_file(x);
        if (x->nparts >= MAX_PARTS) {
            defer_error(x, 413, "too_many_parts", "a multipart body may have at most %d parts",
                        MAX_PARTS);
            return MHD_NO;
        }
        if (x->nparts == x->capparts) {
            size_t cap = x->capparts ? x->capparts * 2 : 8;
            vd_http_part *np = realloc(x->parts, cap * sizeof *np);
            if (!np) goto oom;
            x->parts = np;
            x->capparts = cap;
        }
        p = &x->parts[x->nparts++];
        memset(p, 0, sizeof *p);
        p->name = vd_strdup(key ? key : "");
        p->content_type = ctype ? vd_strdup(ctype) : NULL;
        if (!p->name) goto oom;
        if (is_file) {
            p->filename = vd_strdup(filename);
            if (!p->filename) goto oom;
            if (!x->updir) {
                char tmpl[PATH_MAX];
                snprintf(tmpl, sizeof tmpl, "%s/upload-XXXXXX", x->srv->upload_dir);
                if (!mkdtemp(tmpl)) {
                    defer_error(x, 500, "io", "cannot create an upload directory: %s",
                                strerror(errno));
                    return MHD_NO;
                }
                x->updir = vd_strdup(tmpl);
                if (!x->updir) goto oom;
            }
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%zu", x->updir, x->nparts - 1);
            p->path = vd_strdup(path);
            if (!p->path) goto oom;
            x->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (x->fd < 0) {
                defer_error(x, 500, "io", "cannot store an uploaded file: %s", strerror(errno));
                return MHD_NO;
            }
        } else {
            p->value = calloc(1, 1);
            if (!p->value) goto oom;
        }
    }
    if (size == 0) return MHD_YES;
    if (p->path) {
        const char *d = data;
        size_t left = size;
        while (left) {
            ssize_t w = write(x->fd, d, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                defer_error(x, 500, "io", "cannot store an uploaded file: %s", strerror(errno));
                return MHD_NO;
            }
            d += w;
            left -= (size_t)w;
        }
    } else {
        if (p->size + size > x->srv->cfg.max_body) {
            defer_error(x, 413, "body_too_large",
                        "form field '%s' is larger than the limit of %zu bytes", p->name,
                        x->srv->cfg.max_body);
            return MHD_NO;
        }
        char *nv = realloc(p->value, p->size + size + 1);
        if (!nv) goto oom;
        p->value = nv;
        memcpy(p->value + p->size, data, size);
        p->value[p->size + size] = '\0';
    }
    p->size += size;
    return MHD_YES;
oom:
    defer_error(x, 500, "nomem", "out of memory");
    return MHD_NO;
}

/* The framing headers of a request, counted (MHD keeps every header line). */
typedef struct {
    int ncl, nte, cl_differ;
    const char *cl, *te;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (f->ncl++ && !same_str(f->cl, value)) f->cl_differ = 1;
        if (!f->cl) f->cl = value;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->nte++;
        f->te = value;
    }
    return MHD_YES;
}

/* Refuses ambiguous framing, which a proxy in front may read differently
 * from libmicrohttpd (request smuggling): Content-Length headers that differ,
 * Content-Length together with Transfer-Encoding, more than one
 * Transfer-Encoding, or one other than "chunked". Returns 1 when the framing is
 * sound, else 0 with a message in msg. */
static int framing_ok(struct MHD_Connection *c, char *msg, size_t n)
{
    framing f = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (f.cl_differ)
        snprintf(msg, n, "conflicting Content-Length headers");
    else if (f.ncl && f.nte)
        snprintf(msg, n, "Content-Length together with Transfer-Encoding");
    else if (f.nte > 1 || (f.nte && strcasecmp(f.te, "chunked") != 0))
        snprintf(msg, n, "Transfer-Encoding must be exactly \"chunked\"");
    else
        return 1;
    return 0;
}

/* First call for a request: route, auth, limits, media type. */
static enum MHD_Result begin(req_ctx *x, struct MHD_Connection *c, const char *url,
                             const char *method)
{
    vd_http_server *s = x->srv;
    char why[96];
    if (!framing_ok(c, why, sizeof why)) /* before anything reads the body */
        return send_error(x, c, 400, "invalid_request", "Connection", "close", "%s", why);
    vd_route_result rr = vd_router_match(s->cfg.router, method, url, &x->match);
    x->route = x->match.route;
    int public = x->route && (x->route->flags & VD_ROUTE_PUBLIC);
    if (s->token && !public && !authorized(s, c))
        return send_error(x, c, 401, "unauthorized", "WWW-Authenticate", "Bearer",
                          "missing or wrong bearer token (send 'Authorization: Bearer TOKEN')");
    if (rr == VD_ROUTE_NOT_FOUND)
        return send_error(x, c, 404, "not_found", NULL, NULL, "no route for %s %s", method,
                          x->path);
    if (rr == VD_ROUTE_BAD_METHOD)
        return send_error(x, c, 405, "method_not_allowed", "Allow", x->match.allow,
                          "%s is not allowed on %s (allowed: %s)", method, x->path, x->match.allow);

    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
    int has_body = clen > 0 || (te && strcasestr(te, "chunked"));
    char mt[64];
    media_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE), mt,
               sizeof mt);
    unsigned flags = x->route->flags;
    if (has_body) /* a body must keep coming (restored once it is complete) */
        MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)BODY_IDLE_S);
    if (!has_body) {
        x->mode = BODY_NONE;
    } else if ((flags & VD_ROUTE_BODY_UPLOAD) && strcmp(mt, "multipart/form-data") == 0) {
        x->mode = BODY_MULTIPART;
    } else if (flags & (VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_UPLOAD)) {
        if (strcmp(mt, "application/json") != 0)
            return send_error(x, c, 415, "unsupported_media_type", NULL, NULL,
                              "%s %s takes application/json%s, not '%s'", method, x->route->pattern,
                              flags & VD_ROUTE_BODY_UPLOAD ? " or multipart/form-data" : "",
                              mt[0] ? mt : "(none)");
        x->mode = BODY_JSON;
    } else {
        x->mode = BODY_DRAIN;
    }
    x->limit = x->mode == BODY_MULTIPART ? s->cfg.max_upload : s->cfg.max_body;
    if (clen > x->limit)
        return send_error(x, c, 413, "body_too_large", NULL, NULL,
                          "request body of %llu bytes exceeds the limit of %zu bytes", clen,
                          x->limit);
    if (x->mode == BODY_MULTIPART) {
        if (!s->upload_dir)
            return send_error(x, c, 415, "unsupported_media_type", NULL, NULL,
                              "uploads are not enabled on this server");
        int now = atomic_fetch_add(&s->uploads, 1) + 1;
        x->upload_slot = 1;
        if (now > s->cfg.max_uploads)
            return send_error(x, c, 429, "too_many_uploads", "Retry-After", "1",
                              "too many uploads in progress (limit %d); try again later",
                              s->cfg.max_uploads);
        x->pp = MHD_create_post_processor(c, POST_BUFFER, on_part, x);
        if (!x->pp)
            return send_error(x, c, 400, "invalid_multipart", NULL, NULL,
                              "malformed multipart/form-data header (no boundary?)");
    }
    return MHD_YES;
}

/* Whether the body arrives too slowly to be worth its connection (see BODY_MIN_RATE). */
static int body_too_slow(const req_ctx *x)
{
    int64_t elapsed_ms = (vd_mono_us() - x->t0_us) / 1000;
    return elapsed_ms > BODY_GRACE_MS + (int64_t)(x->received / BODY_MIN_RATE) * 1000;
}

/* A chunk of body. Returns MHD_NO to drop the connection. */
static enum MHD_Result consume(req_ctx *x, struct MHD_Connection *c, const char *data, size_t size)
{
    x->received += size;
    if (body_too_slow(x)) {
        if (x->upload_slot) { /* free the slot now, whatever MHD does with the connection */
            atomic_fetch_sub(&x->srv->uploads, 1);
            x->upload_slot = 0;
        }
        return send_error(x, c, 408, "body_too_slow", "Connection", "close",
                          "the request body came at less than %d bytes/s after %d s", BODY_MIN_RATE,
                          BODY_GRACE_MS / 1000);
    }
    if (x->too_big) /* discard, but not forever */
        return x->received - x->limit > (x->limit > DRAIN_MIN / 4 ? 4 * x->limit : DRAIN_MIN)
                   ? MHD_NO
                   : MHD_YES;
    if (x->received > x->limit) {
        x->too_big = 1;
        free(x->body);
        x->body = NULL;
        x->len = x->cap = 0;
        x->err_status = 0; /* the size is the error to report */
        defer_error(x, 413, "body_too_large", "request body exceeds the limit of %zu bytes",
                    x->limit);
        return MHD_YES;
    }
    switch (x->mode) {
    case BODY_JSON:
        if (x->len + size + 1 > x->cap) {
            size_t cap = x->cap ? x->cap : 4096;
            while (cap < x->len + size + 1)
                cap *= 2;
            char *nb = realloc(x->body, cap);
            if (!nb) {
                defer_error(x, 500, "nomem", "out of memory");
                return MHD_YES;
            }
            x->body = nb;
            x->cap = cap;
        }
        memcpy(x->body + x->len, data, size);
        x->len += size;
        break;
    case BODY_MULTIPART:
        if (!x->err_status && MHD_post_process(x->pp, data, size) != MHD_YES)
            defer_error(x, 400, "invalid_multipart", "malformed multipart/form-data body");
        break;
    default:
        break;
    }
    return MHD_YES;
}

/* Last call: the body is complete; run the handler. */
static enum MHD_Result finish(req_ctx *x, struct MHD_Connection *c, const char *method)
{
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S);
    if (x->mode == BODY_MULTIPART && x->pp && !x->err_status) {
        enum MHD_Result done = MHD_destroy_post_processor(x->pp);
        x->pp = NULL;
        close_part_file(x);
        if (done != MHD_YES && !x->err_status)
            defer_error(x, 400, "invalid_multipart", "multipart/form-data body ends early");
        /* MHD's parser skips what does not start with the boundary: a body
         * sent with another boundary than its Content-Type names has no part. */
        if (x->nparts == 0 && !x->err_status)
            defer_error(x, 400, "invalid_multipart",
                        "no part found: the body does not use the boundary named in Content-Type");
    }
    if (x->err_status)
        return send_error(x, c, x->err_status, x->err_code, NULL, NULL, "%s", x->err_msg);

    unsigned flags = x->route->flags;
    json_t *json = NULL;
    if (x->mode == BODY_JSON) {
        json_error_t je;
        json = json_loadb(x->body ? x->body : "", x->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                          &je);
        if (!json)
            return send_error(x, c, 400, "invalid_json", NULL, NULL,
                              "request body is not valid JSON: %s (line %d, column %d)", je.text,
                              je.line, je.column);
        if (!json_is_object(json) && !((flags & VD_ROUTE_BODY_ARRAY) && json_is_array(json))) {
            json_decref(json);
            return send_error(x, c, 400, "invalid_type", NULL, NULL,
                              "request body must be a JSON object");
        }
    } else if (x->mode == BODY_NONE && (flags & VD_ROUTE_BODY_JSON) &&
               !(flags & VD_ROUTE_BODY_OPTIONAL)) {
        return send_error(x, c, 400, "empty_body", NULL, NULL, "%s %s needs a JSON object body",
                          method, x->route->pattern);
    }

    vd_http_req req = {
        .method = method,
        .path = x->path,
        .match = &x->match,
        .json = json,
        .parts = x->parts,
        .nparts = x->nparts,
        .conn_ = c,
    };
    vd_http_resp resp;
    memset(&resp, 0, sizeof resp);
    x->route->fn(x->route->ctx, &req, &resp);
    json_decref(json);
    if (!resp.status)
        vd_http_reply_error(&resp, 500, "internal", "the handler for %s %s gave no response",
                            method, x->route->pattern);
    return send_resp(x, c, &resp);
}

static int hex_digit(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* libmicrohttpd's unescape step (the path and query values), in place:
 * decodes %XX except %00, which stays literally "%00", so that a NUL can
 * never cut a path or a value short ("/jobs/%00" is job "%00", not "/jobs/").
 * Returns the new length. */
static size_t unescape_keep_nul(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    char *w = s;
    const char *r = s;
    while (*r) {
        int hi = r[0] == '%' ? hex_digit(r[1]) : -1, lo = hi >= 0 ? hex_digit(r[2]) : -1;
        if (lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    (void)version;
    req_ctx *x = *con_cls;
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x) return MHD_NO;
        *con_cls = x;
        x->srv = cls;
        x->t0_us = vd_mono_us();
        x->fd = -1;
        vd_strlcpy(x->method, method, sizeof x->method);
        vd_strlcpy(x->path, url, sizeof x->path);
        atomic_fetch_add(&x->srv->inflight, 1);
        x->counted = 1;
        return begin(x, c, url, method);
    }
    if (x->answered) {
        *size = 0;
        return MHD_YES;
    }
    if (*size) {
        enum MHD_Result r = consume(x, c, data, *size);
        *size = 0;
        return r;
    }
    return finish(x, c, method);
}

static void remove_uploads(req_ctx *x)
{
    close_part_file(x);
    for (size_t i = 0; i < x->nparts; i++) {
        vd_http_part *p = &x->parts[i];
        if (p->path) unlink(p->path); /* ENOENT when a handler took it: fine */
        free(p->name);
        free(p->filename);
        free(p->content_type);
        free(p->path);
        free(p->value);
    }
    free(x->parts);
    if (x->updir) rmdir(x->updir);
    free(x->updir);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    vd_http_server *s = cls;
    req_ctx *x = *con_cls;
    if (!x) return;
    *con_cls = NULL;
    double secs = (double)(vd_mono_us() - x->t0_us) / 1e6;
    int status = x->answered ? x->status : 0;
    const char *route = x->route ? x->route->pattern : NULL;
    if (!x->answered) /* never answered (the client went away): counted as status 0 */
        vd_http_metrics_observe(s->cfg.metrics, x->method, route, 0, secs, 0);
    char st[16], bytes[32], ms[32], why[16];
    snprintf(st, sizeof st, "%d", status);
    snprintf(bytes, sizeof bytes, "%zu", x->bytes);
    snprintf(ms, sizeof ms, "%.3f", secs * 1e3);
    snprintf(why, sizeof why, "%d", (int)toe);
    int ok = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    const char *kv[] = {"method",
                        x->method,
                        "path",
                        x->path,
                        "status",
                        st,
                        "bytes",
                        bytes,
                        "ms",
                        ms,
                        "route",
                        route ? route : "",
                        ok ? NULL : "ended_early",
                        why,
                        NULL};
    if (ok)
        vd_log_kv(VD_LOG_INFO, kv, "%s %s %d %zuB %.3fms", x->method, x->path, status, x->bytes,
                  secs * 1e3);
    else
        vd_log_kv(VD_LOG_INFO, kv, "%s %s %d %zuB %.3fms (connection ended early: %d)", x->method,
                  x->path, status, x->bytes, secs * 1e3, (int)toe);
    if (x->pp) MHD_destroy_post_processor(x->pp);
    remove_uploads(x);
    if (x->upload_slot) atomic_fetch_sub(&s->uploads, 1);
    if (x->counted) atomic_fetch_sub(&s->inflight, 1);
    free(x->body);
    free(x);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    VD_WARN("http: %s", msg);
}

vd_status vd_http_start(const vd_http_config *cfg, vd_http_server **out, vd_error *err)
{
    *out = NULL;
    if (!cfg || !cfg->router) return vd_error_set(err, VD_ERR_INVALID, "no router given");
    int has_token = cfg->token && *cfg->token;
    vd_status st = vd_http_check_listen(cfg->listen, has_token, err);
    if (st != VD_OK) return st;
    if (has_token && strlen(cfg->token) >= 512)
        return vd_error_set(err, VD_ERR_INVALID, "the token is too long (at most 511 bytes)");
    struct sockaddr_storage ss;
    int loopback = 0;
    if ((st = vd_http_parse_listen(cfg->listen, &ss, &loopback, err)) != VD_OK) return st;

    vd_http_server *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    s->cfg = *cfg;
    if (!s->cfg.max_body) s->cfg.max_body = DEFAULT_MAX_BODY;
    if (!s->cfg.max_upload) s->cfg.max_upload = DEFAULT_MAX_UPLOAD;
    if (s->cfg.max_uploads <= 0) s->cfg.max_uploads = DEFAULT_MAX_UPLOADS;
    if (s->cfg.threads <= 0) s->cfg.threads = DEFAULT_THREADS;
    s->token = has_token ? vd_strdup(cfg->token) : NULL;
    s->upload_dir = cfg->upload_dir ? vd_strdup(cfg->upload_dir) : NULL;
    s->cfg.token = NULL;
    s->cfg.upload_dir = NULL;
    s->cfg.listen = NULL;
    atomic_init(&s->uploads, 0);
    atomic_init(&s->inflight, 0);
    if (s->cfg.drain_ms <= 0) s->cfg.drain_ms = DEFAULT_DRAIN_MS;

    int lfd = -1;
    if ((st = vd_http_bind(cfg->listen, &lfd, err)) != VD_OK) {
        free(s->token);
        free(s->upload_dir);
        free(s);
        return st;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_TURBO | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)lfd, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)s->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)1024, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_keep_nul, s, MHD_OPTION_END);
    if (!s->d) {
        close(lfd);
        free(s->token);
        free(s->upload_dir);
        free(s);
        return vd_error_set(err, VD_ERR_IO, "cannot start the HTTP server on %s", cfg->listen);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *out = s;
    return VD_OK;
}

int vd_http_port(const vd_http_server *s)
{
    return s ? s->port : 0;
}

int vd_http_active_uploads(vd_http_server *s)
{
    return atomic_load(&s->uploads);
}

int vd_http_inflight(vd_http_server *s)
{
    return atomic_load(&s->inflight);
}

void vd_http_stop(vd_http_server *s)
{
    if (!s) return;
    /* Stop accepting, give requests in progress up to drain_ms to finish
     * (idle keep-alive connections do not count), then close everything. */
    MHD_socket lfd = MHD_quiesce_daemon(s->d);
    int64_t deadline = vd_mono_ms() + s->cfg.drain_ms;
    while (atomic_load(&s->inflight) > 0 && vd_mono_ms() < deadline)
        vd_sleep_ms(10);
    if (atomic_load(&s->inflight) > 0)
        VD_WARN("http: stopping with %d requests still in progress", atomic_load(&s->inflight));
    MHD_stop_daemon(s->d);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    if (s->token) memset(s->token, 0, strlen(s->token));
    free(s->token);
    free(s->upload_dir);
    free(s);
}
