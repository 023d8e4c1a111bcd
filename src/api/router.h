/* router.h: the API's routing table: method + path pattern -> handler.
 *
 * A pattern is an absolute path whose segments are either literal ("jobs")
 * or a parameter in braces ("{id}"), e.g. "/jobs/{id}/requeue". A parameter
 * matches exactly one non-empty segment (no '/'). Matching is exact (no
 * prefix matches) except that one trailing slash is ignored: "/jobs/" is
 * "/jobs", "/jobs//" matches nothing. HEAD matches the GET
 * routes. When a path matches some pattern but not for this method, the
 * result is VD_ROUTE_BAD_METHOD with the allowed methods listed (for a 405
 * with an Allow header); when it matches none, VD_ROUTE_NOT_FOUND.
 *
 * Routes are added once at start-up (from each routes_*.c file) and the
 * router is read-only afterwards, so many threads may match concurrently.
 * Pure: knows nothing of HTTP servers; handlers are opaque function pointers
 * whose signature http.h defines. */
#ifndef VD_API_ROUTER_H
#define VD_API_ROUTER_H

#include <stddef.h>

#include "core/err.h"

/* What a route accepts and requires (bit flags). */
enum {
    VD_ROUTE_BODY_JSON = 1 << 0,     /* takes a JSON object body (Content-Type: application/json) */
    VD_ROUTE_BODY_UPLOAD = 1 << 1,   /* also takes multipart/form-data uploads */
    VD_ROUTE_BODY_OPTIONAL = 1 << 2, /* an empty body is fine (default: a body route needs one) */
    VD_ROUTE_PUBLIC = 1 << 3,        /* no bearer token needed (health checks) */
    VD_ROUTE_BODY_ARRAY = 1 << 4,    /* a JSON body may also be an array (POST /jobs, a batch) */
};

struct vd_http_req;
struct vd_http_resp;

/* A handler: fills resp from req. ctx is the pointer given with the route. */
typedef void (*vd_route_fn)(void *ctx, struct vd_http_req *req, struct vd_http_resp *resp);

typedef struct {
    const char *method;  /* "GET", "POST", "DELETE", ... (copied) */
    const char *pattern; /* "/jobs/{id}" (copied) */
    vd_route_fn fn;
    void *ctx;      /* borrowed; passed to fn */
    unsigned flags; /* VD_ROUTE_* */
} vd_route;

#define VD_ROUTE_MAX_PARAMS 4
#define VD_ROUTE_PARAM_BUF  512 /* total bytes of parameter values in one match */

typedef enum { VD_ROUTE_FOUND = 0, VD_ROUTE_NOT_FOUND, VD_ROUTE_BAD_METHOD } vd_route_result;

/* The outcome of one match; lives on the caller's stack. */
typedef struct {
    const vd_route *route; /* the matched route (VD_ROUTE_FOUND), else NULL */
    size_t nparams;
    const char *names[VD_ROUTE_MAX_PARAMS];  /* point into the route's pattern copy */
    const char *values[VD_ROUTE_MAX_PARAMS]; /* point into buf */
    char buf[VD_ROUTE_PARAM_BUF];
    char allow[64]; /* VD_ROUTE_BAD_METHOD: "GET, DELETE" */
} vd_route_match;

typedef struct vd_router vd_router;

/* Returns a new empty router (NULL when out of memory); freed with vd_router_free. */
vd_router *vd_router_new(void);
void vd_router_free(vd_router *r);

/* Adds a route (method and pattern are copied). VD_ERR_INVALID for a pattern
 * that is not absolute, has an empty or malformed segment or parameter name,
 * more than VD_ROUTE_MAX_PARAMS parameters, or that duplicates an existing
 * method + pattern (parameter names aside). */
vd_status vd_router_add(vd_router *r, const vd_route *route, vd_error *err);

/* Returns the number of routes added. */
size_t vd_router_count(const vd_router *r);

/* Returns route i (borrowed), or NULL when out of range. */
const vd_route *vd_router_get(const vd_router *r, size_t i);

/* Matches method + path (no query string). Fills *m and returns the result.
 * A literal segment beats a parameter: with "/jobs/{id}" and "/jobs/stats",
 * "/jobs/stats" goes to the latter whatever the order of adding. A path whose
 * parameter values do not fit in VD_ROUTE_PARAM_BUF does not match. */
vd_route_result vd_router_match(const vd_router *r, const char *method, const char *path,
                                vd_route_match *m);

/* Returns the value of parameter `name` in m, or NULL. */
const char *vd_route_param(const vd_route_match *m, const char *name);

#endif
