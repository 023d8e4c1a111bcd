/* fuzz_multipart.c: multipart/form-data bodies into the HTTP core, over loopback TCP, in
 * process: libmicrohttpd's post processor, our part handling (temporary files, in-memory
 * fields, the part and size limits, the "no part: wrong boundary" refusal) and the strict
 * form-field checks of api/form.h.
 *
 * One server (vd_http_start, no token, loopback) with one route, POST /upload, that takes
 * JSON or multipart. The input's first line (up to '\n', at most 100 bytes, '\r' dropped) is
 * the boundary put in Content-Type (quoted when it starts with '"'); the rest is the body,
 * sent with its exact Content-Length and "Connection: close". Checks beyond "no crash, no
 * sanitizer report":
 *   - the handler sees parts that keep what http.h promises: a file part is a regular file
 *     of its size inside a private directory under the upload dir, a field a NUL-terminated
 *     value of at most its size; never zero parts (that is 400 invalid_multipart);
 *   - vd_form_check accepts exactly the bodies whose plain fields are allowed and unique, and
 *     vd_form_bool("crop") exactly the values true, false, 1, 0;
 *   - every answer is HTTP with a status the API documents for a body (200, 400, 413, 422),
 *     never 500, and an error body carries one of the documented codes;
 *   - once the request ends, the upload dir is empty again (no file or directory left). */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/form.h"
#include "api/http.h"
#include "api/router.h"
#include "core/log.h"
#include "core/util.h"

static char g_dir[256], g_updir[300];
static vd_http_server *g_http;
static vd_router *g_router;
static int g_port;

static void check(int cond)
{
    if (!cond) abort();
}

/* What vd_form_check must decide, computed independently. */
static int fields_ok(const vd_http_req *req, const char *const *allowed)
{
    for (size_t i = 0; i < req->nparts; i++) {
        if (req->parts[i].path) continue;
        int known = 0;
        for (size_t k = 0; allowed[k]; k++)
            known |= strcmp(req->parts[i].name, allowed[k]) == 0;
        if (!known) return 0;
        for (size_t j = i + 1; j < req->nparts; j++)
            if (!req->parts[j].path && strcmp(req->parts[i].name, req->parts[j].name) == 0)
                return 0;
    }
    return 1;
}

static void upload(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    if (!req->parts) { /* no body (Content-Length: 0) */
        check(req->json == NULL && req->nparts == 0);
        vd_http_reply_json(resp, 200, json_pack("{s:i}", "parts", 0));
        return;
    }
    check(req->nparts > 0);
    size_t prefix = strlen(g_updir);
    for (size_t i = 0; i < req->nparts; i++) {
        const vd_http_part *p = &req->parts[i];
        check(p->name != NULL);
        if (p->path) {
            check(p->filename != NULL && p->value == NULL);
            check(strncmp(p->path, g_updir, prefix) == 0 && p->path[prefix] == '/');
            check(strstr(p->path + prefix, "/..") == NULL);
            struct stat st;
            check(lstat(p->path, &st) == 0 && S_ISREG(st.st_mode));
            check((size_t)st.st_size == p->size);
        } else {
            check(p->value != NULL && strlen(p->value) <= p->size);
        }
    }
    static const char *const allowed[] = {"name", "kind", "crop", NULL};
    int expect = fields_ok(req, allowed);
    vd_http_resp probe;
    memset(&probe, 0, sizeof probe);
    int got = vd_form_check(req, &probe, allowed);
    check(got == expect);
    check(got ? probe.status == 0 : probe.status == 422 || probe.status == 400);
    free(probe.body);
    if (!got) {
        vd_http_reply_error(resp, 422, "unknown_field", "refused by vd_form_check");
        return;
    }
    int crop = -1;
    memset(&probe, 0, sizeof probe);
    int ok = vd_form_bool(req, &probe, "crop", &crop);
    free(probe.body);
    const char *v = NULL;
    for (size_t i = 0; i < req->nparts; i++)
        if (!req->parts[i].path && strcmp(req->parts[i].name, "crop") == 0) v = req->parts[i].value;
    if (!v)
        check(ok && crop == -1);
    else if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        check(ok && crop == 1);
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        check(ok && crop == 0);
    else
        check(!ok && probe.status == 400);
    if (!ok) {
        vd_http_reply_error(resp, 400, "invalid_type", "refused by vd_form_bool");
        return;
    }
    vd_http_reply_json(resp, 200,
                       json_pack("{s:i,s:i}", "parts", (json_int_t)req->nparts, "files",
                                 (json_int_t)vd_form_files(req)));
}

static void cleanup(void)
{
    if (g_http) vd_http_stop(g_http);
    vd_router_free(g_router);
    rmdir(g_updir);
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    vd_log_init("fuzz", VD_LOG_ERROR, devnull >= 0 ? devnull : 2);
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_multipart.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_dir)) abort();
    snprintf(g_updir, sizeof g_updir, "%s/up", g_dir);
    if (mkdir(g_updir, 0700) != 0) abort();
    atexit(cleanup);
    g_router = vd_router_new();
    vd_error e;
    vd_route r = {"POST", "/upload", upload, NULL,
                  VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_UPLOAD | VD_ROUTE_BODY_OPTIONAL};
    if (!g_router || vd_router_add(g_router, &r, &e) != VD_OK) abort();
    vd_http_config hc = {.listen = "127.0.0.1:0",
                         .max_body = 4 << 10,
                         .max_upload = 128 << 10,
                         .max_uploads = 2,
                         .threads = 1,
                         .upload_dir = g_updir,
                         .router = g_router};
    if (vd_http_start(&hc, &g_http, &e) != VD_OK) {
        fprintf(stderr, "fuzz_multipart: %s\n", e.msg);
        abort();
    }
    g_port = vd_http_port(g_http);
    return 0;
}

/* Sends req, reads the answer until the server closes (Connection: close). */
static size_t exchange(const char *req, size_t n, char *resp, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) break; /* refused early (413): fine */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 10000) <= 0) break;
        ssize_t r = recv(fd, resp + got, cap - 1 - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
        if (got == cap - 1) break;
    }
    resp[got] = 0;
    close(fd);
    return got;
}

static int upload_dir_empty(void)
{
    DIR *d = opendir(g_updir);
    check(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char boundary[104];
    size_t b = 0, i = 0;
    for (; i < size && data[i] != '\n' && i < 100; i++)
        if (data[i] != '\r' && data[i] != 0) boundary[b++] = (char)data[i];
    boundary[b] = 0;
    if (i < size && data[i] == '\n') i++;
    const uint8_t *body = data + i;
    size_t blen = size - i;
    static char req[(128 << 10) + 1024];
    int h = snprintf(req, sizeof req,
                     "POST /upload HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n"
                     "Content-Type: multipart/form-data; boundary=%s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     boundary, blen);
    if (h < 0 || (size_t)h + blen > sizeof req) return 0;
    memcpy(req + h, body, blen);
    static char resp[1 << 16];
    size_t got = exchange(req, (size_t)h + blen, resp, sizeof resp);
    if (getenv("FUZZ_VERBOSE")) {
        const char *bd = strstr(resp, "\r\n\r\n");
        fprintf(stderr, "fuzz_multipart: %.12s %.200s\n", resp, bd ? bd + 4 : "");
    }
    if (got) {
        check(strncmp(resp, "HTTP/1.1 ", 9) == 0);
        int status = atoi(resp + 9);
        check(status == 200 || status == 400 || status == 413 || status == 422 || status == 431);
        const char *bd = strstr(resp, "\r\n\r\n");
        if (status != 200 && status != 431 && bd && strstr(bd, "\"error\"")) /* ours: JSON */
            check(strstr(bd, "\"invalid_multipart\"") || strstr(bd, "\"body_too_large\"") ||
                  strstr(bd, "\"too_many_parts\"") || strstr(bd, "\"unknown_field\"") ||
                  strstr(bd, "\"invalid_type\"") || strstr(bd, "\"unsupported_media_type\"") ||
                  strstr(bd, "\"invalid_request\""));
    }
    /* the request's files and directory go when it completes, just after the answer */
    for (int k = 0; k < 200 && !upload_dir_empty(); k++)
        vd_sleep_ms(5);
    check(upload_dir_empty());
    return 0;
}
