/* router.c: the routing table (see router.h). */
#include "api/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define MAX_SEGMENTS 16

typedef struct {
    const char *text; /* into pattern copy; for a parameter, its name */
    size_t len;
    int is_param;
} segment;

typedef struct {
    vd_route route;    /* method and pattern point at owned copies */
    char *pattern_buf; /* the pattern with each parameter name NUL-terminated */
    segment seg[MAX_SEGMENTS];
    size_t nseg;
    size_t nliteral;
} entry;

struct vd_router {
    entry *e;
    size_t n, cap;
};

vd_router *vd_router_new(void)
{
    return calloc(1, sizeof(vd_router));
}

static void entry_free(entry *e)
{
    free((char *)e->route.method);
    free((char *)e->route.pattern);
    free(e->pattern_buf);
}

void vd_router_free(vd_router *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        entry_free(&r->e[i]);
    free(r->e);
    free(r);
}

size_t vd_router_count(const vd_router *r)
{
    return r ? r->n : 0;
}

const vd_route *vd_router_get(const vd_router *r, size_t i)
{
    return r && i < r->n ? &r->e[i].route : NULL;
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Splits a pattern copy into segments, NUL-terminating parameter names in place. */
static vd_status parse_pattern(entry *e, vd_error *err)
{
    char *p = e->pattern_buf;
    const char *pat = e->route.pattern;
    if (p[0] != '/') return vd_error_set(err, VD_ERR_INVALID, "pattern '%s' is not absolute", pat);
    size_t nparams = 0;
    p++;
    if (!*p) return VD_OK; /* "/" has no segments */
    for (;;) {
        char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0)
            return vd_error_set(err, VD_ERR_INVALID, "pattern '%s' has an empty segment", pat);
        if (e->nseg == MAX_SEGMENTS)
            return vd_error_set(err, VD_ERR_INVALID, "pattern '%s' has too many segments", pat);
        segment *s = &e->seg[e->nseg++];
        if (p[0] == '{') {
            if (len < 3 || p[len - 1] != '}')
                return vd_error_set(err, VD_ERR_INVALID, "pattern '%s': malformed parameter", pat);
            for (size_t i = 1; i + 1 < len; i++)
                if (!name_char(p[i]))
                    return vd_error_set(err, VD_ERR_INVALID,
                                        "pattern '%s': parameter names are [A-Za-z0-9_]", pat);
            if (++nparams > VD_ROUTE_MAX_PARAMS)
                return vd_error_set(err, VD_ERR_INVALID, "pattern '%s': more than %d parameters",
                                    pat, VD_ROUTE_MAX_PARAMS);
            s->is_param = 1;
            s->text = p + 1;
            s->len = len - 2;
            p[len - 1] = '\0';
        } else {
            if (memchr(p, '{', len) || memchr(p, '}', len))
                return vd_error_set(err, VD_ERR_INVALID, "pattern '%s': stray brace", pat);
            s->is_param = 0;
            s->text = p;
            s->len = len;
            e->nliteral++;
        }
        if (!slash) break;
        p = slash + 1;
        if (!*p) return vd_error_set(err, VD_ERR_INVALID, "pattern '%s' ends with '/'", pat);
    }
    return VD_OK;
}

/* Returns 1 when a and b have the same shape (literals equal, parameters anywhere alike). */
static int same_shape(const entry *a, const entry *b)
{
    if (a->nseg != b->nseg) return 0;
    for (size_t i = 0; i < a->nseg; i++) {
        const segment *x = &a->seg[i], *y = &b->seg[i];
        if (x->is_param != y->is_param) return 0;
        if (!x->is_param && (x->len != y->len || memcmp(x->text, y->text, x->len) != 0)) return 0;
    }
    return 1;
}

vd_status vd_router_add(vd_router *r, const vd_route *route, vd_error *err)
{
    if (!r || !route || !route->method || !*route->method || !route->pattern || !route->fn)
        return vd_error_set(err, VD_ERR_INVALID, "a route needs a method, a pattern and a handler");
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        entry *ne = realloc(r->e, cap * sizeof *ne);
        if (!ne) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        r->e = ne;
        r->cap = cap;
    }
    entry e;
    memset(&e, 0, sizeof e);
    e.route = *route;
    e.route.method = vd_strdup(route->method);
    e.route.pattern = vd_strdup(route->pattern);
    e.pattern_buf = vd_strdup(route->pattern);
    if (!e.route.method || !e.route.pattern || !e.pattern_buf) {
        entry_free(&e);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    vd_status st = parse_pattern(&e, err);
    if (st != VD_OK) {
        entry_free(&e);
        return st;
    }
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->e[i].route.method, e.route.method) == 0 && same_shape(&r->e[i], &e)) {
            vd_error_set(err, VD_ERR_INVALID, "route %s %s duplicates %s", e.route.method,
                         e.route.pattern, r->e[i].route.pattern);
            entry_free(&e);
            return VD_ERR_INVALID;
        }
    r->e[r->n++] = e;
    return VD_OK;
}

/* Matches path against e; on success (1) fills m's params when fill is set. */
static int match_entry(const entry *e, const char *path, vd_route_match *m, int fill)
{
    if (path[0] != '/') return 0;
    const char *p = path + 1;
    size_t used = 0, np = 0;
    if (e->nseg == 0) return *p == '\0';
    for (size_t i = 0; i < e->nseg; i++) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        int last = i + 1 == e->nseg;
        if (last ? slash != NULL : slash == NULL) return 0;
        if (len == 0) return 0;
        const segment *s = &e->seg[i];
        if (s->is_param) {
            if (fill) {
                if (used + len + 1 > sizeof m->buf) return 0;
                memcpy(m->buf + used, p, len);
                m->buf[used + len] = '\0';
                m->names[np] = s->text;
                m->values[np] = m->buf + used;
                used += len + 1;
            }
            np++;
        } else if (len != s->len || memcmp(p, s->text, len) != 0) {
            return 0;
        }
        p += len + (slash ? 1 : 0);
    }
    if (fill) m->nparams = np;
    return 1;
}

static int method_is(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0) return 1;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

vd_route_result vd_router_match(const vd_router *r, const char *method, const char *path,
                                vd_route_match *m)
{
    m->route = NULL;
    m->nparams = 0;
    m->allow[0] = '\0';
    if (!r || !method || !path) return VD_ROUTE_NOT_FOUND;
    /* One trailing slash names the same resource ("/jobs/" is "/jobs"). */
    char trimmed[1024];
    size_t plen = strlen(path);
    if (plen > 1 && path[plen - 1] == '/' && path[plen - 2] != '/' && plen < sizeof trimmed) {
        memcpy(trimmed, path, plen - 1);
        trimmed[plen - 1] = '\0';
        path = trimmed;
    }
    const entry *best = NULL;
    int any_path = 0;
    for (size_t i = 0; i < r->n; i++) {
        const entry *e = &r->e[i];
        if (!match_entry(e, path, m, 0)) continue;
        any_path = 1;
        if (method_is(e->route.method, method)) {
            if (!best || e->nliteral > best->nliteral) best = e;
        } else if (!strstr(m->allow, e->route.method)) {
            size_t used = strlen(m->allow);
            snprintf(m->allow + used, sizeof m->allow - used, "%s%s", used ? ", " : "",
                     e->route.method);
        }
    }
    if (best) {
        m->allow[0] = '\0';
        if (!match_entry(best, path, m, 1)) {
            m->nparams = 0;
            return VD_ROUTE_NOT_FOUND; /* parameter values too long */
        }
        m->route = &best->route;
        return VD_ROUTE_FOUND;
    }
    return any_path ? VD_ROUTE_BAD_METHOD : VD_ROUTE_NOT_FOUND;
}

const char *vd_route_param(const vd_route_match *m, const char *name)
{
    for (size_t i = 0; m && name && i < m->nparams; i++)
        if (strcmp(m->names[i], name) == 0) return m->values[i];
    return NULL;
}
