/* test_api_router.c: the routing table (api/router.h). */
#include <string.h>

#include "api/router.h"
#include "vdtest.h"

/* Handlers are only compared by address here. */
static void h_list(void *c, struct vd_http_req *q, struct vd_http_resp *s)
{
    (void)c, (void)q, (void)s;
}
static void h_get(void *c, struct vd_http_req *q, struct vd_http_resp *s)
{
    (void)c, (void)q, (void)s;
}
static void h_del(void *c, struct vd_http_req *q, struct vd_http_resp *s)
{
    (void)c, (void)q, (void)s;
}
static void h_requeue(void *c, struct vd_http_req *q, struct vd_http_resp *s)
{
    (void)c, (void)q, (void)s;
}
static void h_stats(void *c, struct vd_http_req *q, struct vd_http_resp *s)
{
    (void)c, (void)q, (void)s;
}
static void h_pair(void *c, struct vd_http_req *q, struct vd_http_resp *s)
{
    (void)c, (void)q, (void)s;
}
static void h_root(void *c, struct vd_http_req *q, struct vd_http_resp *s)
{
    (void)c, (void)q, (void)s;
}

static vd_router *make(void)
{
    vd_router *r = vd_router_new();
    vd_error err;
    const vd_route routes[] = {
        {"GET", "/jobs", h_list, NULL, 0},
        {"POST", "/jobs", h_list, NULL, VD_ROUTE_BODY_JSON},
        {"GET", "/jobs/{id}", h_get, NULL, 0},
        {"DELETE", "/jobs/{id}", h_del, NULL, 0},
        {"POST", "/jobs/{id}/requeue", h_requeue, NULL, 0},
        {"GET", "/jobs/stats", h_stats, NULL, 0},
        {"GET", "/a/{x}/b/{y}", h_pair, NULL, 0},
        {"GET", "/", h_root, NULL, VD_ROUTE_PUBLIC},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (vd_router_add(r, &routes[i], &err) != VD_OK) {
            fprintf(stderr, "add: %s\n", err.msg);
            vd_router_free(r);
            return NULL;
        }
    return r;
}

VD_TEST(matches_literals_and_parameters)
{
    vd_router *r = make();
    CHECK(r);
    CHECK_EQ_INT(vd_router_count(r), 8);
    vd_route_match m;
    CHECK_EQ_INT(vd_router_match(r, "GET", "/jobs", &m), VD_ROUTE_FOUND);
    CHECK(m.route->fn == h_list);
    CHECK_EQ_INT(m.nparams, 0);
    CHECK_EQ_INT(vd_router_match(r, "GET", "/jobs/abc123", &m), VD_ROUTE_FOUND);
    CHECK(m.route->fn == h_get);
    CHECK_EQ_STR(m.route->pattern, "/jobs/{id}");
    CHECK_EQ_STR(vd_route_param(&m, "id"), "abc123");
    CHECK(vd_route_param(&m, "nope") == NULL);
    CHECK_EQ_INT(vd_router_match(r, "DELETE", "/jobs/abc123", &m), VD_ROUTE_FOUND);
    CHECK(m.route->fn == h_del);
    CHECK_EQ_INT(vd_router_match(r, "POST", "/jobs/x/requeue", &m), VD_ROUTE_FOUND);
    CHECK(m.route->fn == h_requeue);
    CHECK_EQ_STR(vd_route_param(&m, "id"), "x");
    CHECK_EQ_INT(vd_router_match(r, "GET", "/a/1/b/22", &m), VD_ROUTE_FOUND);
    CHECK(m.route->fn == h_pair);
    CHECK_EQ_STR(vd_route_param(&m, "x"), "1");
    CHECK_EQ_STR(vd_route_param(&m, "y"), "22");
    CHECK_EQ_INT(vd_router_match(r, "GET", "/", &m), VD_ROUTE_FOUND);
    CHECK(m.route->fn == h_root);
    CHECK(m.route->flags & VD_ROUTE_PUBLIC);
    vd_router_free(r);
}

VD_TEST(literal_beats_parameter_whatever_the_order)
{
    vd_router *r = make();
    CHECK(r);
    vd_route_match m;
    CHECK_EQ_INT(vd_router_match(r, "GET", "/jobs/stats", &m), VD_ROUTE_FOUND);
    CHECK(m.route->fn == h_stats);
    /* DELETE has no literal /jobs/stats route, so the parameter route takes it. */
    CHECK_EQ_INT(vd_router_match(r, "DELETE", "/jobs/stats", &m), VD_ROUTE_FOUND);
    CHECK(m.route->fn == h_del);
    vd_router_free(r);
}

VD_TEST(unknown_paths_are_not_found)
{
    vd_router *r = make();
    CHECK(r);
    vd_route_match m;
    const char *bad[] = {"/job", "/jobs//",   "/jobs/x//", "/jobs//requeue", "//jobs",
                         "//",   "/jobs/x/y", "/a/1/b",    "/a//b/2",        "",
                         "jobs", "/jobsx",    "/jobsx/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (vd_router_match(r, "GET", bad[i], &m) != VD_ROUTE_NOT_FOUND) {
            vd_test_fail_at(__FILE__, __LINE__, "'%s' matched", bad[i]);
            break;
        }
    }
    CHECK(m.route == NULL);
    vd_router_free(r);
}

VD_TEST(one_trailing_slash_is_the_same_path)
{
    vd_router *r = make();
    CHECK(r);
    vd_route_match m;
    CHECK_EQ_INT(vd_router_match(r, "GET", "/jobs/", &m), VD_ROUTE_FOUND);
    CHECK(m.route && m.route->fn == h_list);
    CHECK_EQ_INT(vd_router_match(r, "GET", "/jobs/abc/", &m), VD_ROUTE_FOUND);
    CHECK(m.route && m.route->fn == h_get);
    CHECK_EQ_STR(vd_route_param(&m, "id"), "abc");
    CHECK_EQ_INT(vd_router_match(r, "POST", "/jobs/abc/requeue/", &m), VD_ROUTE_FOUND);
    CHECK(m.route && m.route->fn == h_requeue);
    CHECK_EQ_INT(vd_router_match(r, "GET", "/", &m), VD_ROUTE_FOUND);
    CHECK(m.route && m.route->fn == h_root);
    CHECK_EQ_INT(vd_router_match(r, "PUT", "/jobs/", &m), VD_ROUTE_BAD_METHOD);
    vd_router_free(r);
}

VD_TEST(wrong_method_lists_the_allowed_ones)
{
    vd_router *r = make();
    CHECK(r);
    vd_route_match m;
    CHECK_EQ_INT(vd_router_match(r, "PUT", "/jobs/abc", &m), VD_ROUTE_BAD_METHOD);
    CHECK(m.route == NULL);
    CHECK_EQ_STR(m.allow, "GET, DELETE");
    CHECK_EQ_INT(vd_router_match(r, "GET", "/jobs/abc/requeue", &m), VD_ROUTE_BAD_METHOD);
    CHECK_EQ_STR(m.allow, "POST");
    CHECK_EQ_INT(vd_router_match(r, "PATCH", "/jobs", &m), VD_ROUTE_BAD_METHOD);
    CHECK_EQ_STR(m.allow, "GET, POST");
    /* HEAD goes wherever GET goes. */
    CHECK_EQ_INT(vd_router_match(r, "HEAD", "/jobs/abc", &m), VD_ROUTE_FOUND);
    CHECK(m.route->fn == h_get);
    vd_router_free(r);
}

VD_TEST(long_parameter_values_do_not_match)
{
    vd_router *r = make();
    CHECK(r);
    char path[VD_ROUTE_PARAM_BUF + 32];
    strcpy(path, "/jobs/");
    memset(path + 6, 'x', VD_ROUTE_PARAM_BUF);
    path[6 + VD_ROUTE_PARAM_BUF] = '\0';
    vd_route_match m;
    CHECK_EQ_INT(vd_router_match(r, "GET", path, &m), VD_ROUTE_NOT_FOUND);
    path[6 + VD_ROUTE_PARAM_BUF - 2] = '\0';
    CHECK_EQ_INT(vd_router_match(r, "GET", path, &m), VD_ROUTE_FOUND);
    CHECK_EQ_INT(strlen(vd_route_param(&m, "id")), VD_ROUTE_PARAM_BUF - 2);
    vd_router_free(r);
}

VD_TEST(bad_patterns_and_duplicates_are_refused)
{
    vd_router *r = make();
    CHECK(r);
    vd_error err;
    const char *bad[] = {"jobs",      "/jobs/",      "/jobs//x",    "/jobs/{}",
                         "/jobs/{id", "/jobs/{a-b}", "/jobs/x{id}", "/{a}/{b}/{c}/{d}/{e}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vd_route rt = {"GET", bad[i], h_get, NULL, 0};
        if (vd_router_add(r, &rt, &err) != VD_ERR_INVALID) {
            vd_test_fail_at(__FILE__, __LINE__, "pattern '%s' was accepted", bad[i]);
            break;
        }
    }
    /* Same method and shape, different parameter name: a duplicate. */
    vd_route dup = {"GET", "/jobs/{job}", h_get, NULL, 0};
    CHECK_EQ_INT(vd_router_add(r, &dup, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "duplicates") != NULL);
    vd_route nofn = {"GET", "/x", NULL, NULL, 0};
    CHECK_EQ_INT(vd_router_add(r, &nofn, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_router_count(r), 8);
    vd_router_free(r);
}

int main(void)
{
    return vd_test_run_all();
}
