/* test_api_http.c: the HTTP server core (api/http.h) on a real libmicrohttpd
 * daemon on loopback, driven by the real curl binary, with test-only routes:
 * routing errors, auth, body limits, media types, JSON parsing, multipart
 * uploads and the limit on concurrent uploads. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http.h"
#include "core/util.h"
#include "vdtest.h"

/* ---- test routes ---- */

static void h_echo(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    const char *q = vd_http_query(req, "x");
    vd_http_reply_json(resp, 200,
                       json_pack("{s:s, s:s?}", "name", vd_http_param(req, "name"), "x", q));
}

static void h_json(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    vd_http_reply_json(resp, 201, json_pack("{s:O?}", "got", req->json));
}

static void h_upload(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    json_t *arr = json_array();
    for (size_t i = 0; i < req->nparts; i++) {
        const vd_http_part *p = &req->parts[i];
        json_t *o = json_pack("{s:s, s:I}", "name", p->name, "size", (json_int_t)p->size);
        if (p->filename) json_object_set_new(o, "filename", json_string(p->filename));
        if (p->value) json_object_set_new(o, "value", json_string(p->value));
        if (p->path) {
            /* Read the stored file back: its first bytes and that it exists now. */
            FILE *f = fopen(p->path, "rb");
            char head[9] = {0};
            if (f) {
                size_t n = fread(head, 1, 8, f);
                head[n] = '\0';
                fclose(f);
            }
            json_object_set_new(o, "head", json_string(head));
        }
        json_array_append_new(arr, o);
    }
    if (req->json) json_array_append(arr, req->json);
    vd_http_reply_json(resp, 200, json_pack("{s:o}", "parts", arr));
}

static void h_public(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    (void)req;
    vd_http_reply_text(resp, 200, "text/plain", vd_strdup("ok\n"), 3);
}

static void h_silent(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx, (void)req, (void)resp;
}

static void h_slow(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    (void)req;
    vd_sleep_ms(400);
    vd_http_reply_json(resp, 200, json_pack("{s:b}", "slow", 1));
}

static void h_optional(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    vd_http_reply_json(resp, 200, json_pack("{s:b}", "had_body", req->json != NULL));
}

/* ---- fixture ---- */

typedef struct {
    vd_router *router;
    vd_http_metrics *metrics;
    vd_http_server *srv;
    char base[64];
    char dir[512];
    char updir[600];
} fixture;

static int start(fixture *f, const char *token, int max_uploads)
{
    memset(f, 0, sizeof *f);
    f->router = vd_router_new();
    f->metrics = vd_http_metrics_new();
    const vd_route routes[] = {
        {"GET", "/echo/{name}", h_echo, NULL, 0},
        {"POST", "/json", h_json, NULL, VD_ROUTE_BODY_JSON},
        {"POST", "/upload", h_upload, NULL, VD_ROUTE_BODY_UPLOAD},
        {"GET", "/public", h_public, NULL, VD_ROUTE_PUBLIC},
        {"GET", "/silent", h_silent, NULL, 0},
        {"GET", "/slow", h_slow, NULL, 0},
        {"POST", "/optional", h_optional, NULL, VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_OPTIONAL},
    };
    vd_error err;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (vd_router_add(f->router, &routes[i], &err) != VD_OK) return 0;
    snprintf(f->dir, sizeof f->dir, "%s", vd_test_tmpdir());
    snprintf(f->updir, sizeof f->updir, "%s/uploads", f->dir);
    mkdir(f->updir, 0700);
    vd_http_config cfg = {
        .listen = "127.0.0.1:0",
        .token = token,
        .max_body = 1000,
        .max_upload = 4 << 20,
        .max_uploads = max_uploads,
        .threads = 2,
        .upload_dir = f->updir,
        .router = f->router,
        .metrics = f->metrics,
    };
    if (vd_http_start(&cfg, &f->srv, &err) != VD_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return 0;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", vd_http_port(f->srv));
    return 1;
}

static void stop(fixture *f)
{
    vd_http_stop(f->srv);
    vd_router_free(f->router);
    vd_http_metrics_free(f->metrics);
}

/* Runs curl with args (a shell fragment, URL included); returns the HTTP status
 * and leaves the body in body and the response headers in headers. */
static int curl(const fixture *f, const char *args, char *body, size_t nbody, char *headers,
                size_t nheaders)
{
    char cmd[4096], bf[700], hf[700];
    snprintf(bf, sizeof bf, "%s/body", f->dir);
    snprintf(hf, sizeof hf, "%s/headers", f->dir);
    snprintf(cmd, sizeof cmd, "curl -s --max-time 60 -o '%s' -D '%s' -w '%%{http_code}' %s", bf, hf,
             args);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char out[32] = {0};
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    const char *files[2] = {bf, hf};
    char *dst[2] = {body, headers};
    size_t cap[2] = {nbody, nheaders};
    for (int i = 0; i < 2; i++) {
        if (!dst[i]) continue;
        dst[i][0] = '\0';
        FILE *fp = fopen(files[i], "rb");
        if (!fp) continue;
        size_t m = fread(dst[i], 1, cap[i] - 1, fp);
        dst[i][m] = '\0';
        fclose(fp);
    }
    return atoi(out);
}

/* Returns the "code" of an error body, or "" (static buffer). */
static const char *err_code(const char *body)
{
    static char code[64];
    code[0] = '\0';
    json_t *j = json_loads(body, 0, NULL);
    const char *c = NULL;
    if (j && json_unpack(j, "{s:{s:s}}", "error", "code", &c) == 0)
        vd_strlcpy(code, c, sizeof code);
    json_decref(j);
    return code;
}

#define URL(path) "'%s" path "'"

VD_TEST(routes_params_queries_and_route_errors)
{
    fixture f;
    CHECK(start(&f, NULL, 2));
    char cmd[1024], body[8192], hdr[4096];
    snprintf(cmd, sizeof cmd, URL("/echo/bob?x=1%%202"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, hdr, sizeof hdr), 200);
    CHECK_EQ_STR(body, "{\"name\":\"bob\",\"x\":\"1 2\"}");
    CHECK(strcasestr(hdr, "content-type: application/json") != NULL);

    /* %00 is never decoded (a NUL would cut the path short); other escapes are. */
    snprintf(cmd, sizeof cmd, URL("/echo/a%%00b?x=%%00"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, hdr, sizeof hdr), 200);
    CHECK_EQ_STR(body, "{\"name\":\"a%00b\",\"x\":\"%00\"}");
    snprintf(cmd, sizeof cmd, URL("/echo/A%%2Fb"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, hdr, sizeof hdr), 404); /* "/echo/A/b" */
    snprintf(cmd, sizeof cmd, URL("/echo/%%41%%zz"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, hdr, sizeof hdr), 200);
    CHECK_EQ_STR(body, "{\"name\":\"A%zz\",\"x\":null}");

    snprintf(cmd, sizeof cmd, URL("/nowhere"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, hdr, sizeof hdr), 404);
    CHECK_EQ_STR(err_code(body), "not_found");
    CHECK(strstr(body, "GET /nowhere") != NULL);

    snprintf(cmd, sizeof cmd, "-X DELETE " URL("/echo/bob"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, hdr, sizeof hdr), 405);
    CHECK_EQ_STR(err_code(body), "method_not_allowed");
    CHECK(strcasestr(hdr, "allow: GET") != NULL);

    snprintf(cmd, sizeof cmd, URL("/silent"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, hdr, sizeof hdr), 500);
    CHECK_EQ_STR(err_code(body), "internal");

    /* HEAD follows GET and sends no body. */
    snprintf(cmd, sizeof cmd, "-I " URL("/echo/x"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, hdr, sizeof hdr), 200);

    CHECK_EQ_INT(vd_http_metrics_count(f.metrics, "GET", "/echo/{name}", 200), 3);
    CHECK_EQ_INT(vd_http_metrics_count(f.metrics, "HEAD", "/echo/{name}", 200), 1);
    CHECK_EQ_INT(vd_http_metrics_count(f.metrics, "GET", NULL, 404), 2);
    CHECK_EQ_INT(vd_http_metrics_count(f.metrics, "DELETE", NULL, 405), 1);
    stop(&f);
}

VD_TEST(json_bodies_media_types_and_parse_errors)
{
    fixture f;
    CHECK(start(&f, NULL, 2));
    char cmd[1024], body[8192];
    const char *J = "-H 'Content-Type: application/json'";
    snprintf(cmd, sizeof cmd, "%s -d '{\"a\":[1,2]}' " URL("/json"), J, f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 201);
    CHECK_EQ_STR(body, "{\"got\":{\"a\":[1,2]}}");
    /* Content-Type with a charset parameter is fine. */
    snprintf(cmd, sizeof cmd,
             "-H 'Content-Type: Application/JSON; charset=utf-8' -d '{}' " URL("/json"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 201);

    struct {
        const char *args;
        int status;
        const char *code;
    } bad[] = {
        {"-H 'Content-Type: application/json' -d '{\"a\":' ", 400, "invalid_json"},
        {"-H 'Content-Type: application/json' -d '[1,2]' ", 400, "invalid_type"},
        {"-H 'Content-Type: application/json' -d '\"str\"' ", 400, "invalid_type"},
        {"-H 'Content-Type: application/json' -d '{\"a\":1,\"a\":2}' ", 400, "invalid_json"},
        {"-H 'Content-Type: application/json' -X POST ", 400, "empty_body"},
        {"-d '{}' ", 415, "unsupported_media_type"}, /* curl's default form type */
        {"-H 'Content-Type: text/plain' -d '{}' ", 415, "unsupported_media_type"},
        {"-F a=1 ", 415, "unsupported_media_type"}, /* multipart on a JSON-only route */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s" URL("/json"), bad[i].args, f.base);
        int st = curl(&f, cmd, body, sizeof body, NULL, 0);
        if (st != bad[i].status || strcmp(err_code(body), bad[i].code) != 0) {
            vd_test_fail_at(__FILE__, __LINE__, "%s: got %d %s, want %d %s", bad[i].args, st, body,
                            bad[i].status, bad[i].code);
            break;
        }
    }
    /* An optional body may be left out. */
    snprintf(cmd, sizeof cmd, "-X POST " URL("/optional"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 200);
    CHECK_EQ_STR(body, "{\"had_body\":false}");
    stop(&f);
}

VD_TEST(oversized_bodies_get_413_and_the_server_goes_on)
{
    fixture f;
    CHECK(start(&f, NULL, 2));
    char cmd[2048], body[8192], big[700];
    snprintf(big, sizeof big, "%s/big.json", f.dir);
    FILE *fp = fopen(big, "w");
    CHECK(fp);
    fputs("{\"pad\":\"", fp);
    for (int i = 0; i < 200000; i++)
        fputc('x', fp);
    fputs("\"}", fp);
    fclose(fp);
    const char *J = "-H 'Content-Type: application/json'";
    /* Declared length over the limit: refused before the body is read. */
    snprintf(cmd, sizeof cmd, "%s --data-binary @'%s' " URL("/json"), J, big, f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 413);
    CHECK_EQ_STR(err_code(body), "body_too_large");
    CHECK(strstr(body, "1000 bytes") != NULL);
    /* The same without Expect: 100-continue. */
    snprintf(cmd, sizeof cmd, "%s -H 'Expect:' --data-binary @'%s' " URL("/json"), J, big, f.base);
    int st = curl(&f, cmd, body, sizeof body, NULL, 0);
    CHECK(st == 413 || st == 0); /* the peer may see the reset before the answer */
    /* Chunked: counted while streaming. */
    snprintf(cmd, sizeof cmd,
             "%s -H 'Transfer-Encoding: chunked' --data-binary @'%s' " URL("/json"), J, big,
             f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 413);
    CHECK_EQ_STR(err_code(body), "body_too_large");
    /* A chunked body within the limit is fine. */
    snprintf(cmd, sizeof cmd, "%s -H 'Transfer-Encoding: chunked' -d '{\"k\":1}' " URL("/json"), J,
             f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 201);
    /* A body sent to a route that takes none is drained, within the same limit. */
    snprintf(cmd, sizeof cmd, "-X GET --data-binary @'%s' " URL("/echo/a"), big, f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 413);
    snprintf(cmd, sizeof cmd, "-X GET -d 'abc' " URL("/echo/a"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 200);
    stop(&f);
}

VD_TEST(bearer_token_is_required_when_configured)
{
    fixture f;
    CHECK(start(&f, "s3cret-token", 2));
    char cmd[1024], body[8192], hdr[4096];
    snprintf(cmd, sizeof cmd, URL("/echo/a"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, hdr, sizeof hdr), 401);
    CHECK_EQ_STR(err_code(body), "unauthorized");
    CHECK(strcasestr(hdr, "www-authenticate: Bearer") != NULL);
    const char *wrong[] = {"Bearer s3cret-toke", "Bearer s3cret-token2", "Basic s3cret-token",
                           "s3cret-token", "Bearer "};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        snprintf(cmd, sizeof cmd, "-H 'Authorization: %s' " URL("/echo/a"), wrong[i], f.base);
        if (curl(&f, cmd, body, sizeof body, NULL, 0) != 401) {
            vd_test_fail_at(__FILE__, __LINE__, "'%s' was let in", wrong[i]);
            break;
        }
    }
    snprintf(cmd, sizeof cmd, "-H 'Authorization: Bearer s3cret-token' " URL("/echo/a"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 200);
    snprintf(cmd, sizeof cmd, "-H 'Authorization: bearer  s3cret-token ' " URL("/echo/a"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 200);
    /* Unknown routes also need the token (route names are not revealed). */
    snprintf(cmd, sizeof cmd, URL("/nowhere"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 401);
    /* Public routes do not. */
    snprintf(cmd, sizeof cmd, URL("/public"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 200);
    CHECK_EQ_STR(body, "ok\n");
    stop(&f);
}

static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

VD_TEST(multipart_uploads_are_parsed_and_cleaned_up)
{
    fixture f;
    CHECK(start(&f, NULL, 2));
    char cmd[4096], body[16384], file[700], empty[700];
    snprintf(file, sizeof file, "%s/cat.jpg", f.dir);
    snprintf(empty, sizeof empty, "%s/empty.bin", f.dir);
    FILE *fp = fopen(file, "wb");
    CHECK(fp);
    fputs("JFIFDATA", fp);
    for (int i = 0; i < 100000; i++)
        fputc(i & 0xff, fp);
    fclose(fp);
    fp = fopen(empty, "wb");
    CHECK(fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd,
             "-F name=pets -F label=cat -F 'image=@%s;type=image/jpeg' -F 'other=@%s' "
             "-F kind=image " URL("/upload"),
             file, empty, f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 200);
    json_t *j = json_loads(body, 0, NULL);
    CHECK(j);
    json_t *parts = json_object_get(j, "parts");
    CHECK_EQ_INT(json_array_size(parts), 5);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(parts, 0), "value")), "pets");
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(parts, 1), "value")), "cat");
    json_t *img = json_array_get(parts, 2);
    CHECK_EQ_STR(json_string_value(json_object_get(img, "name")), "image");
    CHECK_EQ_STR(json_string_value(json_object_get(img, "filename")), "cat.jpg");
    CHECK_EQ_INT(json_integer_value(json_object_get(img, "size")), 100008);
    CHECK_EQ_STR(json_string_value(json_object_get(img, "head")), "JFIFDATA");
    json_t *emp = json_array_get(parts, 3);
    CHECK_EQ_STR(json_string_value(json_object_get(emp, "filename")), "empty.bin");
    CHECK_EQ_INT(json_integer_value(json_object_get(emp, "size")), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(parts, 4), "value")), "image");
    json_decref(j);
    /* The temporary files are gone once the request has ended. */
    for (int i = 0; i < 100 && dir_entries(f.updir) != 0; i++)
        vd_sleep_ms(50);
    CHECK_EQ_INT(dir_entries(f.updir), 0);
    /* The same route also takes JSON. */
    snprintf(cmd, sizeof cmd, "-H 'Content-Type: application/json' -d '{\"p\":1}' " URL("/upload"),
             f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 200);
    CHECK_EQ_STR(body, "{\"parts\":[{\"p\":1}]}");
    /* A plain field over max_body is refused. */
    char longf[2000];
    memset(longf, 'v', 1500);
    longf[1500] = '\0';
    snprintf(cmd, sizeof cmd, "-F 'big=%s' " URL("/upload"), longf, f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 413);
    CHECK_EQ_STR(err_code(body), "body_too_large");
    /* A multipart header without a boundary. */
    snprintf(cmd, sizeof cmd, "-H 'Content-Type: multipart/form-data' -d 'abc' " URL("/upload"),
             f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 400);
    CHECK_EQ_STR(err_code(body), "invalid_multipart");
    /* Slots are given back when MHD reports the request complete, just after the answer. */
    for (int i = 0; i < 200 && vd_http_active_uploads(f.srv) != 0; i++)
        vd_sleep_ms(50);
    CHECK_EQ_INT(vd_http_active_uploads(f.srv), 0);
    stop(&f);
}

VD_TEST(uploads_over_the_size_limit_get_413)
{
    fixture f;
    CHECK(start(&f, NULL, 2));
    char cmd[2048], body[8192], file[700];
    snprintf(file, sizeof file, "%s/huge.bin", f.dir);
    FILE *fp = fopen(file, "wb");
    CHECK(fp);
    for (int i = 0; i < (5 << 20); i++)
        fputc('z', fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "-F 'f=@%s' " URL("/upload"), file, f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 413);
    CHECK_EQ_STR(err_code(body), "body_too_large");
    snprintf(cmd, sizeof cmd, "-H 'Transfer-Encoding: chunked' -F 'f=@%s' " URL("/upload"), file,
             f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 413);
    for (int i = 0; i < 100 && dir_entries(f.updir) != 0; i++)
        vd_sleep_ms(50);
    CHECK_EQ_INT(dir_entries(f.updir), 0);
    stop(&f);
}

VD_TEST(concurrent_uploads_past_the_limit_get_429)
{
    fixture f;
    CHECK(start(&f, NULL, 1));
    char cmd[2048], body[8192], file[700], url[128];
    snprintf(file, sizeof file, "%s/slow.bin", f.dir);
    FILE *fp = fopen(file, "wb");
    CHECK(fp);
    for (int i = 0; i < (2 << 20); i++)
        fputc('s', fp);
    fclose(fp);
    /* One slow upload holds the only slot... */
    snprintf(url, sizeof url, "%s/upload", f.base);
    char form[800];
    snprintf(form, sizeof form, "f=@%s", file);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("curl", "curl", "-s", "--limit-rate", "20k", "-F", form, url, (char *)NULL);
        _exit(127);
    }
    int seen = 0;
    for (int i = 0; i < 3000 && !seen; i++) { /* up to 30 s on a loaded machine */
        seen = vd_http_active_uploads(f.srv) == 1;
        if (!seen) vd_sleep_ms(50);
    }
    if (!seen) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    CHECK(seen);
    /* ...so a second one is turned away, and other requests still work. */
    snprintf(cmd, sizeof cmd, "-F a=1 " URL("/upload"), f.base);
    int st = curl(&f, cmd, body, sizeof body, NULL, 0);
    char hdr[4096];
    snprintf(cmd, sizeof cmd, URL("/echo/still"), f.base);
    int st2 = curl(&f, cmd, hdr, sizeof hdr, NULL, 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK_EQ_INT(st, 429);
    CHECK_EQ_STR(err_code(body), "too_many_uploads");
    CHECK_EQ_INT(st2, 200);
    /* The slot comes back when the slow client goes away. */
    int freed = 0;
    for (int i = 0; i < 1200 && !freed; i++) {
        freed = vd_http_active_uploads(f.srv) == 0;
        if (!freed) vd_sleep_ms(50);
    }
    CHECK(freed);
    snprintf(cmd, sizeof cmd, "-F a=1 " URL("/upload"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 200);
    stop(&f);
}

VD_TEST(stop_lets_requests_in_progress_finish)
{
    fixture f;
    CHECK(start(&f, NULL, 2));
    char url[128], out[700];
    snprintf(url, sizeof url, "%s/slow", f.base);
    snprintf(out, sizeof out, "%s/slow.out", f.dir);
    /* An idle keep-alive connection must not hold the stop up. */
    char cmd[1024], body[256];
    snprintf(cmd, sizeof cmd, URL("/echo/idle"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 200);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execlp("curl", "curl", "-s", "-o", out, url, (char *)NULL);
        _exit(127);
    }
    int seen = 0;
    for (int i = 0; i < 3000 && !seen; i++) { /* up to 30 s on a loaded machine */
        seen = vd_http_inflight(f.srv) == 1;
        if (!seen) vd_sleep_ms(10);
    }
    /* Stop while the slow request is in its handler: it still gets its answer. */
    vd_http_stop(f.srv);
    int status = 0;
    waitpid(pid, &status, 0);
    vd_router_free(f.router);
    vd_http_metrics_free(f.metrics);
    CHECK(seen);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    FILE *fp = fopen(out, "r");
    CHECK(fp);
    size_t n = fread(body, 1, sizeof body - 1, fp);
    body[n] = '\0';
    fclose(fp);
    CHECK_EQ_STR(body, "{\"slow\":true}");
    /* Nothing listens any more. */
    snprintf(cmd, sizeof cmd, "--max-time 5 " URL("/echo/x"), f.base);
    CHECK_EQ_INT(curl(&f, cmd, body, sizeof body, NULL, 0), 0);
}

VD_TEST(listen_addresses_and_loopback_rule)
{
    struct sockaddr_storage ss;
    int lo;
    vd_error err;
    CHECK_OK(vd_http_parse_listen("127.0.0.1:8080", &ss, &lo, &err));
    CHECK(lo && ss.ss_family == AF_INET);
    CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    CHECK_OK(vd_http_parse_listen("127.5.6.7:0", &ss, &lo, &err));
    CHECK(lo);
    CHECK_OK(vd_http_parse_listen("localhost:1", &ss, &lo, &err));
    CHECK(lo);
    CHECK_OK(vd_http_parse_listen("[::1]:9", &ss, &lo, &err));
    CHECK(lo && ss.ss_family == AF_INET6);
    CHECK_OK(vd_http_parse_listen("0.0.0.0:80", &ss, &lo, &err));
    CHECK(!lo);
    CHECK_OK(vd_http_parse_listen("[::]:80", &ss, &lo, &err));
    CHECK(!lo);
    CHECK_OK(vd_http_parse_listen("10.1.2.3:80", &ss, &lo, &err));
    CHECK(!lo);
    const char *bad[] = {
        "",        "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x", "example.com:80",
        "[::1]80", ":80",       "::1:80x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (vd_http_parse_listen(bad[i], &ss, &lo, &err) != VD_ERR_INVALID) {
            vd_test_fail_at(__FILE__, __LINE__, "'%s' was accepted", bad[i]);
            return;
        }
    /* Beyond loopback without a token: refused before anything is bound. */
    vd_router *r = vd_router_new();
    vd_http_config cfg = {.listen = "0.0.0.0:0", .router = r};
    vd_http_server *s = NULL;
    CHECK_EQ_INT(vd_http_start(&cfg, &s, &err), VD_ERR_INVALID);
    CHECK(s == NULL);
    CHECK(strstr(err.msg, "without a token") != NULL);
    vd_router_free(r);
}

VD_TEST(token_compare)
{
    CHECK(vd_http_token_equal("abc", "abc"));
    CHECK(!vd_http_token_equal("abd", "abc"));
    CHECK(!vd_http_token_equal("ab", "abc"));
    CHECK(!vd_http_token_equal("abcd", "abc"));
    CHECK(!vd_http_token_equal("", "abc"));
    CHECK(!vd_http_token_equal(NULL, "abc"));
}

VD_TEST(metrics_text_format)
{
    vd_http_metrics *m = vd_http_metrics_new();
    vd_http_metrics_observe(m, "GET", "/jobs/{id}", 200, 0.0007, 100);
    vd_http_metrics_observe(m, "GET", "/jobs/{id}", 200, 0.2, 50);
    vd_http_metrics_observe(m, "GET", "/jobs/{id}", 404, 0.0001, 10);
    vd_http_metrics_observe(m, "BREW", NULL, 404, 0.0001, 10);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    vd_error err;
    CHECK_OK(vd_http_metrics_write(m, f, &err));
    fclose(f);
    CHECK(strstr(text, "# TYPE visiond_http_requests_total counter\n"));
    CHECK(strstr(text, "visiond_http_requests_total{method=\"GET\",route=\"/jobs/{id}\",status="
                       "\"200\"} 2\n"));
    CHECK(strstr(text, "visiond_http_requests_total{method=\"other\",route=\"unmatched\",status="
                       "\"404\"} 1\n"));
    CHECK(strstr(text, "visiond_http_request_duration_seconds_bucket{method=\"GET\",route=\"/"
                       "jobs/{id}\",le=\"0.0005\"} 1\n"));
    CHECK(strstr(text, "visiond_http_request_duration_seconds_bucket{method=\"GET\",route=\"/"
                       "jobs/{id}\",le=\"0.001\"} 2\n"));
    CHECK(strstr(text, "visiond_http_request_duration_seconds_bucket{method=\"GET\",route=\"/"
                       "jobs/{id}\",le=\"+Inf\"} 3\n"));
    CHECK(strstr(text, "visiond_http_request_duration_seconds_count{method=\"GET\",route=\"/"
                       "jobs/{id}\"} 3\n"));
    CHECK(strstr(text, "visiond_http_response_bytes_total{method=\"GET\",route=\"/jobs/{id}\"} "
                       "160\n"));
    free(text);
    vd_http_metrics_free(m);
}

int main(void)
{
    return vd_test_run_all();
}
