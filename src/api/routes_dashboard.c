/* routes_dashboard.c: the static files: the web dashboard's (docs/dashboard.md),
 * the API's OpenAPI document and its reference page (docs/api.md).
 *
 *   GET /                   the dashboard page (web/index.html)
 *   GET /dashboard          the same page
 *   GET /dashboard/{file}   any file under web/ (app.js, style.css, ...)
 *   GET /openapi.json       the contract (api/openapi.json)
 *   GET /docs               the reference page (api/docs.html: Swagger UI)
 *   GET /docs/{file}        its script and styles
 *
 * The files are compiled into the binary (webassets.h), so the server needs
 * no web/ directory at run time. These routes are public: the page holds no
 * data, and it asks for the token itself when the JSON routes answer 401.
 * Every answer carries a strong ETag and "Cache-Control: no-cache" (the
 * browser keeps its copy but asks each time; an unchanged file costs a 304),
 * "X-Content-Type-Options: nosniff", and the page a Content-Security-Policy
 * that allows only this server's own scripts, styles and connections. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_impl.h"
#include "api/webassets.h"

#define PAGE_CSP                                                                                   \
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "         \
    "form-action 'none'; frame-ancestors 'none'"

static const struct {
    const char *ext;
    const char *type;
} media_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof media_types / sizeof media_types[0]; i++)
        if (strcasecmp(dot, media_types[i].ext) == 0) return media_types[i].type;
    return "application/octet-stream";
}

/* Swagger UI sets style attributes and draws its icons from data: URLs. */
#define DOCS_CSP                                                                                   \
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "                 \
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const vd_web_asset *find_in(const vd_web_asset *a, size_t n, const char *name)
{
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(a[i].name, name) == 0) return &a[i];
    return NULL;
}

static const vd_web_asset *find_doc(const char *name)
{
    size_t n = 0;
    const vd_web_asset *a = vd_docs_assets(&n);
    return find_in(a, n, name);
}

static const vd_web_asset *find_asset(const char *name)
{
    size_t n = 0;
    const vd_web_asset *a = vd_web_assets(&n);
    return find_in(a, n, name);
}

/* Returns 1 when an If-None-Match value lists etag (or is "*"); weak tags count (RFC 9110
 * uses the weak comparison for If-None-Match). */
int vd_api_etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match || !etag) return 0;
    size_t elen = strlen(etag);
    const char *p = if_none_match;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) break;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len == 1 && *p == '*') return 1;
        if (len > 2 && p[0] == 'W' && p[1] == '/') p += 2, len -= 2;
        if (len == elen && memcmp(p, etag, len) == 0) return 1;
        p += len;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

static void serve_csp(const vd_web_asset *a, const char *csp, vd_http_req *req, vd_http_resp *resp)
{
    const char *type = type_of(a->name);
    vd_http_add_header(resp, "ETag", a->etag);
    vd_http_add_header(resp, "Cache-Control", "no-cache");
    vd_http_add_header(resp, "X-Content-Type-Options", "nosniff");
    if (strncmp(type, "text/html", 9) == 0)
        vd_http_add_header(resp, "Content-Security-Policy", csp);
    if (vd_api_etag_matches(vd_http_header(req, "If-None-Match"), a->etag)) {
        vd_http_reply_text(resp, 304, NULL, NULL, 0);
        return;
    }
    char *body = malloc(a->len ? a->len : 1);
    if (!body) {
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
        return;
    }
    memcpy(body, a->data, a->len);
    vd_http_reply_text(resp, 200, type, body, a->len);
}

static void serve(const vd_web_asset *a, vd_http_req *req, vd_http_resp *resp)
{
    serve_csp(a, PAGE_CSP, req, resp);
}

static void page(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    const vd_web_asset *a = find_asset("index.html");
    if (!a) {
        vd_http_reply_error(resp, 404, "not_found", "this build has no dashboard page");
        return;
    }
    serve(a, req, resp);
}

static void file(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    const char *name = vd_http_param(req, "file");
    const vd_web_asset *a = find_asset(name);
    if (!a) {
        vd_http_reply_error(resp, 404, "not_found", "the dashboard has no file '%.100s'", name);
        return;
    }
    serve(a, req, resp);
}

static void openapi(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    const vd_web_asset *a = find_doc("openapi.json");
    if (!a) {
        vd_http_reply_error(resp, 404, "not_found", "this build has no OpenAPI document");
        return;
    }
    serve(a, req, resp);
}

static void docs_page(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    const vd_web_asset *a = find_doc("docs.html");
    if (!a) {
        vd_http_reply_error(resp, 404, "not_found",
                            "this build has no reference page (swagger-ui-dist was not found when "
                            "it was built); the contract is at /openapi.json");
        return;
    }
    serve_csp(a, DOCS_CSP, req, resp);
}

static void docs_file(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    const char *name = vd_http_param(req, "file");
    const vd_web_asset *a = strcmp(name, "openapi.json") ? find_doc(name) : NULL;
    if (!a || strcmp(name, "docs.html") == 0) {
        vd_http_reply_error(resp, 404, "not_found", "the reference page has no file '%.100s'",
                            name);
        return;
    }
    serve(a, req, resp);
}

vd_status vd_api_routes_dashboard(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route routes[] = {
        {"GET", "/", page, api, VD_ROUTE_PUBLIC},
        {"GET", "/dashboard", page, api, VD_ROUTE_PUBLIC},
        {"GET", "/dashboard/{file}", file, api, VD_ROUTE_PUBLIC},
        {"GET", "/openapi.json", openapi, api, VD_ROUTE_PUBLIC},
        {"GET", "/docs", docs_page, api, VD_ROUTE_PUBLIC},
        {"GET", "/docs/{file}", docs_file, api, VD_ROUTE_PUBLIC},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        vd_status st = vd_router_add(r, &routes[i], err);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}
