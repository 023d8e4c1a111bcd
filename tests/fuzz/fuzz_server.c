/* fuzz_server.c: raw bytes into the model server (infer/server.h) over its
 * Unix socket, in process: the connection state machine that assembles
 * frames from partial reads, the header checks, the per-op payload decoders
 * and the replies, with ONNX Runtime behind them.
 *
 * The server runs for the whole session in a thread, on a models directory
 * with blazeface_front (the repo's metadata, when its ONNX file is installed:
 * LOAD/UNLOAD/INFER reach ONNX Runtime), "ghost" (a model whose ONNX file
 * does not exist: loading fails) and "ghost_text" (the same as a text model:
 * token ids [n,7], int32 or int64, protocol version 2), a 1 MiB frame limit
 * and a small queue. Each
 * input is sent on a fresh connection, the write side is shut, and every
 * byte of the answer is read until the server closes. The answer must be a
 * sequence of whole frames with the magic, as many as complete request frames
 * at most (plus one error frame for a bad header).
 *
 * Every input is also sent to a second server that has a shared secret
 * (infer/auth.h): there the bytes meet the handshake (HELLO, AUTH, requests
 * before it). Nothing may be served before authentication: every answer is
 * the HELLO challenge, or an error (auth, protocol, too_large, unsupported);
 * never a successful answer to another op, nor a successful AUTH (the
 * fuzzer cannot forge the proof of a random nonce).
 *
 * In the libFuzzer binary (VD_LIBFUZZER) blazeface_front is left out: ONNX
 * Runtime's prebuilt library crashed now and then inside CreateSession (a
 * SEGV in its own code, on the model thread, whatever the input) when linked
 * into clang's -fsanitize=fuzzer,address build, which would fail CI at
 * random. LOAD and INFER then reach the load-failure path only; the replay
 * builds (gcc, normal and ASan) keep blazeface_front and drive ONNX Runtime
 * with every corpus input. */
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "infer/proto.h"
#include "infer/server.h"

#define FUZZ_MAX_FRAME (1u << 20)

static char g_dir[200], g_sock[300], g_sock2[300];
static vd_server *g_srv, *g_srv2;
static pthread_t g_thread, g_thread2;

static void check(int cond)
{
    if (!cond) abort();
}

static void *serve(void *arg)
{
    vd_error e;
    if (vd_server_run(arg, &e) != VD_OK) fprintf(stderr, "fuzz_server: %s\n", e.msg);
    return NULL;
}

/* Stops both servers and joins every thread of theirs, then removes the files.
 * Once: from vd_fuzz_replay_done (the replay binary) or at exit. It must run
 * before the exit handlers that ONNX Runtime registers when it first builds a
 * session (C++ statics, registered after our atexit): a model thread still
 * loading blazeface_front used them after they were destroyed (ASan,
 * heap-use-after-free in CreateSession, CI of 2026-12-06). */
static void cleanup(void)
{
    static int done;
    if (done) return;
    done = 1;
    vd_server_stop(g_srv);
    vd_server_stop(g_srv2);
    pthread_join(g_thread, NULL);
    pthread_join(g_thread2, NULL);
    vd_server_free(g_srv);
    vd_server_free(g_srv2);
    char p[400];
    snprintf(p, sizeof p, "%s/models/blazeface_front.json", g_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/models/ghost.json", g_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/models", g_dir);
    rmdir(p);
    rmdir(g_dir);
}

__attribute__((unused)) static void copy_file(const char *from, const char *to)
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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* the server logs every refused frame/request: keep the fuzzer's output readable */
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    vd_log_init("fuzz", VD_LOG_ERROR, devnull >= 0 ? devnull : 2);
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_server.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_dir)) abort();
    char models[300], p[400];
    snprintf(models, sizeof models, "%s/models", g_dir);
    if (mkdir(models, 0755) != 0) abort();
#ifndef VD_LIBFUZZER
    snprintf(p, sizeof p, "%s/models/blazeface_front.json", g_dir);
    copy_file(VISIOND_SOURCE_DIR "/models/blazeface_front.json", p);
#endif
    snprintf(p, sizeof p, "%s/models/ghost.json", g_dir);
    FILE *f = fopen(p, "w");
    if (!f) abort();
    fputs(
        "{\"name\": \"ghost\", \"onnx\": \"/nonexistent/ghost.onnx\", \"task\": \"classification\","
        " \"input\": {\"name\": \"x\", \"layout\": \"NHWC\", \"height\": 2, \"width\": 2,"
        " \"channels\": 3, \"color\": \"RGB\", \"resize\": \"stretch\", \"scale\": 1,"
        " \"mean\": [0, 0, 0], \"std\": [1, 1, 1]}, \"outputs\": [\"y\"], \"max_batch\": 4}",
        f);
    fclose(f);
    snprintf(p, sizeof p, "%s/models/ghost_text.json", g_dir);
    if (!(f = fopen(p, "w"))) abort();
    fputs("{\"task\": \"text_embedding\", \"onnx\": \"/nonexistent/t.onnx\", \"input\": "
          "{\"name\": \"text\", \"context_length\": 7, \"tokenizer\": \"/nonexistent/t.json\"}}",
          f);
    fclose(f);
    snprintf(g_sock, sizeof g_sock, "%s/m.sock", g_dir);
    if (strlen(g_sock) >= sizeof((struct sockaddr_un *)0)->sun_path) abort();
    vd_server_config cfg = {.models_dir = models,
                            .socket_path = g_sock,
                            .intra_threads = 1,
                            .queue_max_items = 8,
                            .max_frame = FUZZ_MAX_FRAME,
                            .max_conns = 16,
                            .stop_fd = -1,
                            .drain_ms = 1000};
    vd_error e;
    if (vd_server_new(&cfg, &g_srv, &e) != VD_OK) {
        fprintf(stderr, "fuzz_server: %s\n", e.msg);
        abort();
    }
    static vd_auth_secret secret = {.key = "fuzz_server's shared secret", .len = 27};
    snprintf(g_sock2, sizeof g_sock2, "%s/s.sock", g_dir);
    cfg.socket_path = g_sock2;
    cfg.secret = &secret;
    if (vd_server_new(&cfg, &g_srv2, &e) != VD_OK) {
        fprintf(stderr, "fuzz_server: %s\n", e.msg);
        abort();
    }
    if (pthread_create(&g_thread, NULL, serve, g_srv) != 0) abort();
    if (pthread_create(&g_thread2, NULL, serve, g_srv2) != 0) abort();
    atexit(cleanup);
    return 0;
}

void vd_fuzz_replay_done(void);
void vd_fuzz_replay_done(void)
{
    cleanup();
}

/* Counts the complete request frames in data as the server walks them. */
static size_t count_frames(const uint8_t *data, size_t size, int *bad_header)
{
    size_t off = 0, n = 0;
    *bad_header = 0;
    while (size - off >= VD_PROTO_HEADER_LEN) {
        vd_proto_header h;
        if (vd_proto_header_decode(data + off, FUZZ_MAX_FRAME, &h, NULL) != VD_OK) {
            *bad_header = 1;
            break;
        }
        off += VD_PROTO_HEADER_LEN;
        if (h.length > size - off) break;
        off += h.length;
        n++;
    }
    return n;
}

/* Sends data to the server at sock and reads its answers into resp (until it
 * closes). Returns the bytes read; 0 or sizeof resp mean "nothing to check". */
static size_t exchange(const char *sock, const uint8_t *data, size_t size, uint8_t *resp,
                       size_t cap)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    check(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sock, strlen(sock) + 1); /* checked to fit at start */
    check(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    size_t got = 0, off = 0;
    /* write and read together: the server may answer (and stop reading) early */
    while (off < size) {
        struct pollfd pfd = {fd, POLLIN | POLLOUT, 0};
        if (poll(&pfd, 1, 10000) <= 0) break;
        if (pfd.revents & POLLIN) {
            ssize_t r = recv(fd, resp + got, cap - got, 0);
            if (r <= 0) break;
            got += (size_t)r;
        } else if (pfd.revents & POLLOUT) {
            ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (w <= 0) break;
            off += (size_t)w;
        } else {
            break;
        }
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 10000) <= 0) break; /* 10 s: a model may be loading */
        if (got == cap) got = 0;              /* only frames up to 1 MiB are checked */
        ssize_t r = recv(fd, resp + got, cap - got, 0);
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    return got;
}

/* Walks the answers; with authed == 0 (the secret server) checks that none
 * was served. Returns how many. */
static size_t check_answers(const uint8_t *resp, size_t got, int authed)
{
    size_t answers = 0, roff = 0;
    while (got - roff >= VD_PROTO_HEADER_LEN) {
        vd_proto_header h;
        check(vd_proto_header_decode(resp + roff, UINT32_MAX, &h, NULL) == VD_OK);
        roff += VD_PROTO_HEADER_LEN;
        /* the server may drop a connection that half-closed with answers pending */
        if (h.length > got - roff) break;
        if (!authed)
            check(h.aux != VD_OK
                      ? h.aux == VD_ERR_AUTH || h.aux == VD_ERR_PROTOCOL || h.aux == VD_ERR_LIMIT ||
                            h.aux == VD_ERR_UNSUPPORTED || h.aux == VD_ERR_NOMEM
                      : h.op == VD_OP_HELLO && h.length == 64);
        roff += h.length;
        answers++;
    }
    return answers;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t resp[1 << 20];
    int bad = 0;
    size_t requests = count_frames(data, size, &bad);
    size_t got = exchange(g_sock, data, size, resp, sizeof resp);
    if (got != 0 && got != sizeof resp)
        check(check_answers(resp, got, 1) <= requests + (size_t)bad);
    got = exchange(g_sock2, data, size, resp, sizeof resp);
    if (got != 0 && got != sizeof resp)
        check(check_answers(resp, got, 0) <= requests + (size_t)bad);
    return 0;
}
