/* fuzz_api.c: raw HTTP requests into the API, over loopback TCP, in process.
 *
 * Two servers run in this process for the whole session, both with a bearer
 * token:
 *   0  the real API (vd_api_start): every route of src/api with a SQLite queue
 *      and a media root in a private temporary directory: routing, the token
 *      check, body limits, media types, JSON bodies of the routes, query
 *      arguments, path parameters;
 *   1  the HTTP core (vd_http_start) with one upload route, POST /upload
 *      (JSON or multipart/form-data): MHD's post processor feeding our part
 *      handling (temporary files, fields, limits); its handler checks each
 *      part against what the header promises (file parts are files of their
 *      size inside the upload directory, fields are NUL-terminated values).
 * The media root holds cats/a.png, dogs/b.png and esc -> ../outside (with
 * outside/secret.png); the models are the repo's metadata (models/), the model
 * server is absent. The first input byte picks the server; the rest, with each
 * "@M" replaced by the media root's path, goes on a fresh connection as is, the write side is then
 * shut and the response read until it ends or goes quiet. Any response must be HTTP; a 2xx to a
 * request that does not carry the token is only allowed for the public routes (is_public, after
 * percent-decoding). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/http.h"
#include "api/router.h"
#include "core/log.h"

#define TOKEN "fuzz-token-0123456789"

static char g_dir[256], g_updir[300], g_media[300];
static vd_api *g_api;
static vd_http_server *g_http;
static vd_router *g_router;
static int g_ports[2];

static void check(int cond)
{
    if (!cond) abort();
}

static void upload(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx;
    size_t prefix = strlen(g_updir);
    for (size_t i = 0; i < req->nparts; i++) {
        const vd_http_part *p = &req->parts[i];
        check(p->name != NULL);
        if (p->path) {
            check(p->filename != NULL && p->value == NULL);
            check(strncmp(p->path, g_updir, prefix) == 0 && p->path[prefix] == '/');
            struct stat st;
            check(stat(p->path, &st) == 0 && S_ISREG(st.st_mode));
            check((size_t)st.st_size == p->size);
        } else {
            check(p->value != NULL && strlen(p->value) <= p->size);
        }
    }
    vd_http_reply_json(
        resp, 200,
        json_pack("{s:i,s:b}", "parts", (json_int_t)req->nparts, "json", req->json != NULL));
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) abort();
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) abort();
    fclose(in);
    fclose(out);
}

/* Copies in to out, replacing each "@M" with the media root's path; a
 * "Content-Length: N" header grows by what the replacements add to the body
 * (after the first blank line), so that seeds can be written with "@M".
 * Returns out's length. */
static size_t expand(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
    size_t mlen = strlen(g_media), extra = 0;
    const uint8_t *body = memmem(in, n, "\r\n\r\n", 4);
    if (body)
        for (const uint8_t *q = body; (q = memmem(q, n - (size_t)(q - in), "@M", 2)); q += 2)
            extra += mlen - 2;
    const uint8_t *cl = memmem(in, body ? (size_t)(body - in) : n, "Content-Length: ", 16);
    size_t o = 0;
    for (size_t i = 0; i < n && o < cap; i++) {
        if (cl && in + i == cl + 16 && in[i] >= '0' && in[i] <= '9') {
            unsigned long long v = 0;
            while (i < n && in[i] >= '0' && in[i] <= '9' && v < 1000000000000ull)
                v = v * 10 + (unsigned)(in[i++] - '0');
            i--;
            char num[32];
            int k = snprintf(num, sizeof num, "%llu", v + extra);
            if (o + (size_t)k > cap) break;
            memcpy(out + o, num, (size_t)k);
            o += (size_t)k;
        } else if (in[i] == '@' && i + 1 < n && in[i + 1] == 'M' && o + mlen <= cap) {
            memcpy(out + o, g_media, mlen);
            o += mlen;
            i++;
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

static void cleanup(void)
{
    if (g_http) vd_http_stop(g_http);
    if (g_api) vd_api_stop(g_api);
    vd_router_free(g_router);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz_api: could not remove %s\n", g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* the server logs every refused frame/request: keep the fuzzer's output readable */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    vd_log_init("fuzz", VD_LOG_ERROR, devnull >= 0 ? devnull : 2);
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_api.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_dir)) abort();
    char media[300], queue[320], data[300];
    snprintf(media, sizeof media, "%s/media", g_dir);
    snprintf(data, sizeof data, "%s/data", g_dir);
    snprintf(queue, sizeof queue, "sqlite:%s/queue.db", g_dir);
    snprintf(g_updir, sizeof g_updir, "%s/up", g_dir);
    if (mkdir(media, 0755) || mkdir(data, 0755) || mkdir(g_updir, 0755)) abort();
    snprintf(g_media, sizeof g_media, "%s", media);
    /* media/{cats/a.png, dogs/b.png, esc -> ../outside}, outside/secret.png */
    static const char *const dirs[] = {"media/cats", "media/dogs", "outside"};
    static const char *const pngs[] = {"media/cats/a.png", "media/dogs/b.png",
                                       "outside/secret.png"};
    char p[400];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, dirs[i]);
        if (mkdir(p, 0755) != 0) abort();
        snprintf(p, sizeof p, "%s/%s", g_dir, pngs[i]);
        copy_file(VISIOND_SOURCE_DIR "/tests/fuzz/corpus/image/seed_s_png", p);
    }
    snprintf(p, sizeof p, "%s/media/esc", g_dir);
    if (symlink("../outside", p) != 0) abort();
    atexit(cleanup);
    const char *roots[] = {media};
    vd_api_config ac = {.listen = "127.0.0.1:0",
                        .queue_url = queue,
                        .data_dir = data,
                        .token = TOKEN,
                        .media_roots = roots,
                        .nmedia_roots = 1,
                        .max_body = 64 << 10,
                        .max_upload = 256 << 10,
                        .max_uploads = 2,
                        .threads = 2,
                        .models_path = VISIOND_SOURCE_DIR "/models"};
    vd_error e;
    if (vd_api_start(&ac, &g_api, &e) != VD_OK) {
        fprintf(stderr, "fuzz_api: %s\n", e.msg);
        abort();
    }
    g_ports[0] = vd_api_port(g_api);
    g_router = vd_router_new();
    vd_route r = {"POST", "/upload", upload, NULL,
                  VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_UPLOAD | VD_ROUTE_BODY_OPTIONAL};
    if (!g_router || vd_router_add(g_router, &r, &e) != VD_OK) abort();
    vd_http_config hc = {.listen = "127.0.0.1:0",
                         .token = TOKEN,
                         .max_body = 16 << 10,
                         .max_upload = 256 << 10,
                         .max_uploads = 2,
                         .threads = 2,
                         .upload_dir = g_updir,
                         .router = g_router};
    if (vd_http_start(&hc, &g_http, &e) != VD_OK) {
        fprintf(stderr, "fuzz_api: %s\n", e.msg);
        abort();
    }
    g_ports[1] = vd_http_port(g_http);
    return 0;
}

/* Sends req on a new connection, shuts the write side, reads the answer into
 * resp (NUL-terminated, truncated to cap - 1). Returns the bytes read. */
static size_t exchange(int port, const uint8_t *req, size_t n, char *resp, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (w <= 0) break; /* the server may close early (413, 401): fine */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    /* MHD waits (up to its connection timeout) for the rest of an incomplete
     * request even after the client's half-close, so stop reading after a
     * quiet spell: 1 s for the first byte, 100 ms once the answer flows. */
    size_t got = 0;
    char sink[4096];
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, got ? 100 : 1000) <= 0) break;
        char *dst = got < cap - 1 ? resp + got : sink;
        size_t room = got < cap - 1 ? cap - 1 - got : sizeof sink;
        ssize_t r = recv(fd, dst, room, 0);
        if (r <= 0) break;
        if (dst != sink) got += (size_t)r;
    }
    resp[got] = 0;
    close(fd);
    return got;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The path of the request line, percent-decoded, into out. */
static void request_path(const uint8_t *req, size_t n, char *out, size_t cap)
{
    size_t i = 0, o = 0;
    while (i < n && req[i] != ' ' && req[i] != '\n')
        i++;
    while (i < n && req[i] == ' ')
        i++;
    while (i < n && req[i] != ' ' && req[i] != '?' && req[i] != '\r' && req[i] != '\n' &&
           o < cap - 1) {
        if (req[i] == '%' && i + 2 < n && hexval(req[i + 1]) >= 0 && hexval(req[i + 2]) >= 0) {
            out[o++] = (char)(hexval(req[i + 1]) * 16 + hexval(req[i + 2]));
            i += 3;
        } else {
            out[o++] = (char)req[i++];
        }
    }
    out[o] = 0;
}

/* The routes served without the token (VD_ROUTE_PUBLIC): /healthz and the
 * static pages (the dashboard, the API reference and its document), which
 * hold no data: the data they show comes from token-checked routes. */
static int is_public(const char *path)
{
    static const char *const exact[] = {"/healthz", "/", "/dashboard", "/openapi.json", "/docs"};
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (strcmp(path, exact[i]) == 0) return 1;
    return strncmp(path, "/dashboard/", 11) == 0 || strncmp(path, "/docs/", 6) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int which = data[0] & 1;
    static uint8_t req[1 << 18];
    size_t n = expand(data + 1, size - 1, req, sizeof req);
    static char resp[1 << 16];
    size_t got = exchange(g_ports[which], req, n, resp, sizeof resp);
    if (getenv("FUZZ_API_VERBOSE")) { /* for writing seeds: what each input got */
        const char *b = strstr(resp, "\r\n\r\n");
        fprintf(stderr, "fuzz_api: %.12s %.200s\n", resp, b ? b + 4 : "");
    }
    if (got == 0) return 0; /* MHD may close on garbage without answering */
    check(strncmp(resp, "HTTP/1.", 7) == 0);
    int status = atoi(resp + 9);
    check(status >= 100 && status <= 599);
    if (status >= 200 && status < 300 && !memmem(req, n, TOKEN, strlen(TOKEN))) {
        char path[256];
        request_path(req, n, path, sizeof path);
        check(is_public(path));
    }
    return 0;
}
