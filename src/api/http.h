/* http.h: the HTTP server core (libmicrohttpd) under every API route.
 *
 * What the core does for every request, before a handler runs:
 *   0. refuses ambiguous framing, before any body is read: Content-Length
 *      headers that differ, Content-Length with Transfer-Encoding, a
 *      Transfer-Encoding other than "chunked" -> 400 invalid_request with
 *      Connection: close (libmicrohttpd answers some malformed requests
 *      itself, with its own HTML body: docs/security.md lists them);
 *   1. matches method + path in the router: no route -> 404 not_found, a
 *      route for another method -> 405 method_not_allowed (with Allow);
 *   2. checks the bearer token when one is configured, unless the route is
 *      VD_ROUTE_PUBLIC: "Authorization: Bearer <token>", compared in constant
 *      time -> 401 unauthorized (with WWW-Authenticate: Bearer);
 *   3. limits the body: a Content-Length over the limit is refused at once
 *      (413 body_too_large, the body is never read); a chunked body is counted
 *      while it streams, the excess is discarded and 413 is sent once it ends
 *      (a body that goes on for 4x the limit, at least 16 MiB, more has its
 *      connection dropped);
 *   4. checks the media type: a JSON route takes application/json (415
 *      unsupported_media_type otherwise); an upload route also takes
 *      multipart/form-data, parsed by MHD's post processor as it streams:
 *      file parts go to temporary files under upload_dir (removed when the
 *      request ends), plain fields stay in memory; at most max_uploads
 *      multipart requests run at once (429 too_many_uploads, Retry-After);
 *   5. parses a JSON body: malformed -> 400 invalid_json, not an object (nor
 *      an array, for a VD_ROUTE_BODY_ARRAY route) -> 400 invalid_type,
 *      missing when required -> 400 empty_body.
 * Routes without a body flag ignore (and drain) a body within max_body.
 * Every body must keep coming: silent for 20 s, or under 1 KiB/s on average
 * after its first 10 s, it is refused 408 body_too_slow, its upload slot freed
 * and its connection closed. A multipart body with no part (another boundary
 * than Content-Type names) is 400 invalid_multipart.
 *
 * Responses are JSON; errors are {"error": {"code": "...", "message": "..."}}.
 * One log line per request (INFO): method, path, status, response bytes and
 * duration; never headers, so never the token. Every request is recorded in
 * the metrics registry when one is given.
 *
 * Threads: MHD's internal thread pool (cfg.threads threads, epoll), each
 * serving many connections; handlers run on those threads and may block
 * briefly (a SQLite query), which delays only that thread's connections.
 * Handlers must be thread-safe: shared state goes through their ctx with its
 * own locking (see core/pool.h: the API's handles are pooled). */
#ifndef VD_API_HTTP_H
#define VD_API_HTTP_H

#include <jansson.h>
#include <stddef.h>

#include "api/metrics.h"
#include "api/router.h"
#include "core/err.h"

typedef struct vd_http_server vd_http_server;

typedef struct {
    const char *listen; /* "HOST:PORT": numeric IPv4, "[IPv6]", or "localhost"; port 0 = any */
    const char *token;  /* bearer token; NULL or "" = none, allowed only on loopback */
    size_t max_body;    /* largest JSON/other body in bytes; 0 = 1 MiB */
    size_t max_upload;  /* largest multipart body in bytes; 0 = 64 MiB */
    int max_uploads;    /* multipart requests at once; 0 = 4 */
    int threads;        /* worker threads; 0 = 4 */
    const char
        *upload_dir; /* existing directory for uploaded files; NULL = none (415 for uploads) */
    const vd_router *router;  /* borrowed; must outlive the server */
    vd_http_metrics *metrics; /* borrowed, optional */
    int drain_ms;             /* on stop, time allowed for requests in progress; 0 = 5000 */
} vd_http_config;

/* One part of a multipart/form-data body. */
typedef struct {
    char *name;         /* owned: the form field's name ("" when none was given) */
    char *filename;     /* owned: the client's file name, NULL for a plain field */
    char *content_type; /* owned, may be NULL */
    char *path;         /* owned: temporary file holding a file part's bytes, else NULL */
    char *value;        /* owned: a plain field's value (NUL-terminated), else NULL */
    size_t size;        /* bytes in the part */
} vd_http_part;

/* What a handler sees. All pointers are valid until the handler returns
 * (uploaded files until the request ends; a handler that keeps one must
 * rename it away). */
typedef struct vd_http_req {
    const char *method;
    const char *path; /* decoded path, without the query string */
    const vd_route_match *match;
    json_t *json; /* borrowed: the parsed body of a JSON request (an object; an array too
                     on a VD_ROUTE_BODY_ARRAY route), else NULL */
    const vd_http_part *parts; /* multipart parts in order, else NULL */
    size_t nparts;
    void *conn_; /* private: the MHD connection */
} vd_http_req;

#define VD_HTTP_MAX_HEADERS 4

/* What a handler fills. */
typedef struct vd_http_resp {
    int status;
    char *body; /* owned */
    size_t len;
    const char *content_type; /* static string */
    size_t nheaders;
    char header_name[VD_HTTP_MAX_HEADERS][32];
    char header_value[VD_HTTP_MAX_HEADERS][256];
} vd_http_resp;

/* Starts listening and serving. Fails with VD_ERR_INVALID for a malformed
 * listen address or a non-loopback address without a token (nothing is
 * bound then), VD_ERR_IO when the address cannot be bound. *out is owned by
 * the caller and stopped with vd_http_stop. */
vd_status vd_http_start(const vd_http_config *cfg, vd_http_server **out, vd_error *err);

/* Returns the port actually bound (useful with port 0). */
int vd_http_port(const vd_http_server *s);

/* Returns how many multipart uploads are in progress. */
int vd_http_active_uploads(vd_http_server *s);

/* Returns how many requests are in progress (headers received, not yet completed). */
int vd_http_inflight(vd_http_server *s);

/* Stops accepting new connections, waits up to drain_ms for the requests in
 * progress to complete (idle keep-alive connections are not waited for),
 * then closes every connection and frees s. */
void vd_http_stop(vd_http_server *s);

/* Parses "HOST:PORT" (core/hostport.h; port 0 allowed) into *ss (numeric
 * addresses and "localhost" only) and reports whether it is a loopback
 * address (127.0.0.0/8, ::1). */
vd_status vd_http_parse_listen(const char *listen, void *sockaddr_storage_out, int *is_loopback,
                               vd_error *err);

/* Checks a listen address as vd_http_start does before binding anything:
 * well-formed (vd_http_parse_listen) and, without a token (has_token 0), a
 * loopback address. VD_ERR_INVALID otherwise, with the reason. `visiond up`
 * checks its api's address with it before starting any child. */
vd_status vd_http_check_listen(const char *listen, int has_token, vd_error *err);

/* Binds and listens on listen: SO_REUSEADDR (a restart binds while old
 * connections are in TIME_WAIT), never SO_REUSEPORT, so an address in use
 * fails (VD_ERR_IO "cannot listen on ADDR: Address already in use") instead of
 * sharing the port with another server. *fd is the caller's (non-blocking,
 * close-on-exec). */
vd_status vd_http_bind(const char *listen, int *fd, vd_error *err);

/* Returns 1 when a and b are equal, in time that depends only on the length of b. */
int vd_http_token_equal(const char *a, const char *b);

/* Path parameter, query argument and request header of req (borrowed), or NULL. */
const char *vd_http_param(const vd_http_req *req, const char *name);
const char *vd_http_query(const vd_http_req *req, const char *name);
const char *vd_http_header(const vd_http_req *req, const char *name);

/* Sets resp to status with body serialised from json (the reference is stolen). */
void vd_http_reply_json(vd_http_resp *resp, int status, json_t *json);

/* Sets resp to status with a malloc'd text body (ownership taken). */
void vd_http_reply_text(vd_http_resp *resp, int status, const char *content_type, char *body,
                        size_t len);

/* Sets resp to status with {"error": {"code": code, "message": <formatted>}}. */
void vd_http_reply_error(vd_http_resp *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Answers a failed library call: maps the status to HTTP (invalid 422,
 * not_found 404, state 409, busy/limit 429/413, conn/db 503, auth 401,
 * unsupported 415, others 500) with code = vd_status_name(st) unless code is
 * given, and the error's message. */
void vd_http_reply_status(vd_http_resp *resp, vd_status st, const char *code, const vd_error *err);

/* Returns the HTTP status for a vd_status as above. */
int vd_http_status_for(vd_status st);

/* Adds a response header (ignored past VD_HTTP_MAX_HEADERS). */
void vd_http_add_header(vd_http_resp *resp, const char *name, const char *value);

#endif
