/* bench_infer.c: raw ONNX Runtime in-process against the model server, same run.
 *
 * For each model named on the command line (NAME.json in --models DIR):
 *   in-process  images/s of vd_ort_session_run at batch 1, 8 and 32 (a model
 *               whose batch dim is fixed at 1 runs the batch item by item)
 *   server      `visiond model-server` with every model preloaded; 1, 4 and 16
 *               concurrent clients (threads, one connection each) sending
 *               single-image requests: images/s, client-side p50/p99 latency,
 *               and the ratio to in-process batch 1 (the peer)
 * Then the server's RSS with all models loaded and exercised, and the RSS of a
 * client process (this binary re-executed as a bare client that makes a few
 * requests: what a work-horse pays to use a model).
 *
 * Build and run (bench/infer/run.sh does both):
 *   cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc -I/opt/visiond/deps/onnxruntime/include \
 *      bench/infer/bench_infer.c build/libvisiond.a $(pkg-config --libs jansson vips sqlite3 \
 *      libmicrohttpd hiredis) -llinear -L/opt/visiond/deps/onnxruntime/lib -lonnxruntime \
 *      -Wl,-rpath,/opt/visiond/deps/onnxruntime/lib -lpthread -lm -o build/bench_infer
 *   build/bench_infer --visiond build/visiond --models data/models [--seconds 3] \
 *      [--threads 0] faceres mobilenet_v2 blazeface_back */
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/util.h"
#include "infer/client.h"
#include "infer/model_meta.h"
#include "infer/ort_session.h"

#define MAX_MODELS 8

static double seconds = 3.0;

static void fill_random(vd_tensor *t, unsigned seed)
{
    for (size_t i = 0; i < vd_tensor_count(t); i++) {
        seed = seed * 1103515245u + 12345u;
        t->data[i] = (float)((seed >> 8) & 0xff); /* pixel-like values */
    }
}

static vd_status item_tensor(const vd_model_meta *m, int64_t n, vd_tensor *t, vd_error *err)
{
    int64_t shape[4] = {n, m->height, m->width, m->channels};
    if (m->layout == VD_LAYOUT_NCHW) {
        shape[1] = m->channels;
        shape[2] = m->height;
        shape[3] = m->width;
    }
    vd_status rc = vd_tensor_alloc(t, shape, 4, err);
    if (!rc) fill_random(t, 7u + (unsigned)n);
    return rc;
}

static long rss_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0) kb = atol(line + kl + 1);
    if (f) fclose(f);
    return kb;
}

/* images/s of the in-process session at batch b (b single runs when the
 * graph's batch is fixed). */
static double inprocess(vd_ort_session *s, const vd_model_meta *m, int dynamic, int b)
{
    vd_error err;
    vd_tensor t;
    if (item_tensor(m, dynamic ? b : 1, &t, &err)) return 0;
    const char *const *names = NULL;
    const char *outs[VD_MODEL_MAX_OUTPUT];
    for (int i = 0; i < m->noutputs; i++)
        outs[i] = m->outputs[i];
    if (m->noutputs) names = outs;
    size_t nout = m->noutputs ? (size_t)m->noutputs : vd_ort_session_noutputs(s);
    vd_tensor res[VD_MODEL_MAX_OUTPUT];
    long images = 0;
    int64_t t0 = 0;
    for (int it = -1;; it++) { /* it -1: warm-up, not timed */
        if (it == 0) t0 = vd_mono_us();
        for (int k = 0; k < (dynamic ? 1 : b); k++) {
            if (vd_ort_session_run(s, m->input_name, &t, names, m->noutputs, res, &err)) {
                fprintf(stderr, "bench: %s: %s\n", m->name, err.msg);
                vd_tensor_free(&t);
                return 0;
            }
            for (size_t o = 0; o < nout; o++)
                vd_tensor_free(&res[o]);
        }
        if (it >= 0) images += b;
        if (it >= 2 && vd_mono_us() - t0 > (int64_t)(seconds * 1e6)) break;
    }
    double el = (double)(vd_mono_us() - t0) / 1e6;
    vd_tensor_free(&t);
    return (double)images / el;
}

typedef struct {
    const char *addr;
    const vd_model_meta *meta;
    int64_t until_us;
    uint32_t *lat; /* microseconds */
    size_t nlat, cap;
    int errors;
} client_arg;

static void *client_main(void *p)
{
    client_arg *a = p;
    vd_error err;
    vd_infer_client *c;
    vd_tensor t;
    if (vd_infer_client_new(a->addr, &c, &err) || item_tensor(a->meta, 1, &t, &err)) {
        a->errors++;
        return NULL;
    }
    while (vd_mono_us() < a->until_us) {
        vd_infer_result r;
        int64_t t0 = vd_mono_us();
        if (vd_infer_client_infer(c, a->meta->name, &t, 30000, &r, &err)) {
            a->errors++;
            if (a->errors == 1) fprintf(stderr, "bench: %s: %s\n", a->meta->name, err.msg);
            continue;
        }
        vd_infer_result_free(&r);
        if (a->nlat == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 1024;
            a->lat = realloc(a->lat, a->cap * sizeof *a->lat);
        }
        a->lat[a->nlat++] = (uint32_t)(vd_mono_us() - t0);
    }
    vd_tensor_free(&t);
    vd_infer_client_free(c);
    return NULL;
}

/* One number from the server's MODELS statistics (-1 when unavailable). */
static long long server_stat(const char *addr, const char *model, const char *key)
{
    vd_infer_client *c;
    vd_error err;
    char *text = NULL;
    long long v = -1;
    if (vd_infer_client_new(addr, &c, &err)) return -1;
    if (!vd_infer_client_models(c, 10000, &text, &err)) {
        json_t *root = json_loads(text, 0, NULL), *m;
        size_t i;
        json_array_foreach(json_object_get(root, "models"), i, m)
        {
            if (strcmp(json_string_value(json_object_get(m, "name")), model) == 0)
                v = json_integer_value(json_object_get(json_object_get(m, "stats"), key));
        }
        json_decref(root);
        free(text);
    }
    vd_infer_client_free(c);
    return v;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Runs nc concurrent single-image clients; returns images/s, fills p50/p99 (ms). */
static double through_server(const char *addr, const vd_model_meta *m, int nc, double *p50,
                             double *p99, int *errors)
{
    client_arg a[16];
    pthread_t th[16];
    /* warm-up: one request per client connection happens inside the timed loop;
     * a first untimed request warms the server's session */
    vd_error err;
    vd_infer_client *c;
    vd_tensor t;
    vd_infer_result r;
    if (!vd_infer_client_new(addr, &c, &err) && !item_tensor(m, 1, &t, &err)) {
        if (!vd_infer_client_infer(c, m->name, &t, 60000, &r, &err)) vd_infer_result_free(&r);
        vd_tensor_free(&t);
    }
    vd_infer_client_free(c);
    int64_t t0 = vd_mono_us(), until = t0 + (int64_t)(seconds * 1e6);
    for (int i = 0; i < nc; i++) {
        a[i] = (client_arg){.addr = addr, .meta = m, .until_us = until};
        pthread_create(&th[i], NULL, client_main, &a[i]);
    }
    size_t total = 0;
    *errors = 0;
    for (int i = 0; i < nc; i++) {
        pthread_join(th[i], NULL);
        total += a[i].nlat;
        *errors += a[i].errors;
    }
    double el = (double)(vd_mono_us() - t0) / 1e6;
    uint32_t *all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < nc; i++) {
        memcpy(all + k, a[i].lat, a[i].nlat * sizeof *all);
        k += a[i].nlat;
        free(a[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_u32);
    *p50 = total ? all[(total - 1) / 2] / 1000.0 : 0;
    *p99 = total ? all[(total - 1) * 99 / 100] / 1000.0 : 0;
    free(all);
    return (double)total / el;
}

/* The bare-client mode: a few requests, then print our own RSS. */
static int client_rss_mode(const char *addr, const char *models_dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", models_dir, name);
    vd_model_meta m;
    vd_error err;
    vd_infer_client *c;
    vd_tensor t;
    if (vd_model_meta_load(path, &m, &err) || vd_infer_client_new(addr, &c, &err) ||
        item_tensor(&m, 1, &t, &err)) {
        fprintf(stderr, "bench client: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < 5; i++) {
        vd_infer_result r;
        if (vd_infer_client_infer(c, m.name, &t, 30000, &r, &err)) {
            fprintf(stderr, "bench client: %s\n", err.msg);
            return 1;
        }
        vd_infer_result_free(&r);
    }
    printf("%ld %ld\n", rss_kb(getpid(), "VmRSS"), rss_kb(getpid(), "VmHWM"));
    vd_tensor_free(&t);
    vd_infer_client_free(c);
    return 0;
}

static pid_t start_server(const char *bin, const char *models_dir, const char *sock,
                          const char *preload, int threads)
{
    int pfd[2];
    if (pipe(pfd) < 0) return -1;
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        setenv("VISIOND_LOG_LEVEL", "warn", 1);
        execl(bin, bin, "model-server", "--models", models_dir, "--socket", sock, "--preload",
              preload, "--threads", th, "--idle-ttl", "0", "--queue-max", "4096", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char line[512] = "";
    size_t got = 0;
    while (got < sizeof line - 1 && !strchr(line, '\n')) {
        struct pollfd pf = {pfd[0], POLLIN, 0};
        if (poll(&pf, 1, 300000) <= 0) break;
        ssize_t r = read(pfd[0], line + got, sizeof line - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
        line[got] = 0;
    }
    close(pfd[0]);
    if (!strstr(line, "\"ready\"")) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    return pid;
}

int main(int argc, char **argv)
{
    const char *bin = getenv("VISIOND"), *models_dir = "data/models";
    int threads = 0;
    if (argc >= 5 && strcmp(argv[1], "--client-rss") == 0)
        return client_rss_mode(argv[2], argv[3], argv[4]);
    const char *names[MAX_MODELS];
    int nm = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--visiond") == 0 && i + 1 < argc)
            bin = argv[++i];
        else if (strcmp(argv[i], "--models") == 0 && i + 1 < argc)
            models_dir = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (argv[i][0] != '-' && nm < MAX_MODELS)
            names[nm++] = argv[i];
        else {
            fprintf(stderr, "usage: bench_infer [--visiond BIN] [--models DIR] [--seconds S] "
                            "[--threads N] MODEL...\n");
            return 2;
        }
    }
    if (!bin || !nm) {
        fprintf(stderr, "bench: give --visiond BIN (or $VISIOND) and at least one model name\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    vd_model_meta metas[MAX_MODELS];
    int dynamic[MAX_MODELS];
    double inproc[MAX_MODELS][3];
    const int batches[3] = {1, 8, 32};
    vd_error err;
    vd_ort_env *env;
    if (vd_ort_env_new(threads, &env, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    printf("bench_infer: ONNX Runtime %s, intra-op threads %d (0 = all cores), %.1f s per point, "
           "%ld cores online\n",
           vd_ort_version(), threads, seconds, sysconf(_SC_NPROCESSORS_ONLN));
    char preload[1024] = "";
    for (int i = 0; i < nm; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.json", models_dir, names[i]);
        if (vd_model_meta_load(path, &metas[i], &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
        snprintf(preload + strlen(preload), sizeof preload - strlen(preload), "%s%s", i ? "," : "",
                 names[i]);
    }
    /* the server first (idle while the in-process peer runs), so that each
     * model's two sides are measured back to back on a shared machine */
    char sock[256];
    snprintf(sock, sizeof sock, "/tmp/bench_infer.%d.sock", (int)getpid());
    char addr[300];
    snprintf(addr, sizeof addr, "unix:%s", sock);
    pid_t srv = start_server(bin, models_dir, sock, preload, threads);
    if (srv < 0) {
        fprintf(stderr, "bench: the model server did not start\n");
        return 1;
    }
    long rss_loaded = rss_kb(srv, "VmRSS");
    const int clients[3] = {1, 4, 16};
    for (int i = 0; i < nm; i++) {
        vd_ort_session *s;
        if (vd_ort_session_open(env, metas[i].onnx_path, &s, &err)) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
        int64_t shape[8];
        size_t rank;
        size_t in = 0;
        for (size_t k = 0; k < vd_ort_session_ninputs(s); k++)
            if (metas[i].input_name[0] &&
                !strcmp(vd_ort_session_input_name(s, k), metas[i].input_name))
                in = k;
        vd_ort_session_input_shape(s, in, shape, &rank);
        dynamic[i] = rank > 0 && shape[0] == -1;
        for (int b = 0; b < 3; b++) {
            inproc[i][b] = inprocess(s, &metas[i], dynamic[i], batches[b]);
            printf("in-process  %-16s batch %2d%s: %8.1f images/s\n", names[i], batches[b],
                   dynamic[i] ? "" : " (item by item, fixed batch dim)", inproc[i][b]);
            fflush(stdout);
        }
        vd_ort_session_close(s);
        for (int k = 0; k < 3; k++) {
            double p50, p99;
            int errors;
            long long b0 = server_stat(addr, names[i], "batches"),
                      i0 = server_stat(addr, names[i], "items");
            double ips = through_server(addr, &metas[i], clients[k], &p50, &p99, &errors);
            long long b1 = server_stat(addr, names[i], "batches"),
                      i1 = server_stat(addr, names[i], "items");
            printf("server      %-16s %2d client%s: %8.1f images/s  p50 %7.2f ms  p99 %7.2f ms  "
                   "mean batch %5.2f  ratio to in-process batch 1: %.2f, to batch 32: %.2f%s\n",
                   names[i], clients[k], clients[k] == 1 ? " " : "s", ips, p50, p99,
                   b1 > b0 ? (double)(i1 - i0) / (double)(b1 - b0) : 0.0,
                   inproc[i][0] > 0 ? ips / inproc[i][0] : 0,
                   inproc[i][2] > 0 ? ips / inproc[i][2] : 0, errors ? "  (errors!)" : "");
            fflush(stdout);
        }
    }
    vd_ort_env_free(env);
    long rss_after = rss_kb(srv, "VmRSS"), hwm = rss_kb(srv, "VmHWM");
    /* a bare client process */
    long crss = -1, chwm = -1;
    int pfd[2];
    if (pipe(pfd) == 0) {
        pid_t c = fork();
        if (c == 0) {
            dup2(pfd[1], 1);
            close(pfd[0]);
            execl("/proc/self/exe", argv[0], "--client-rss", addr, models_dir, names[0],
                  (char *)NULL);
            _exit(127);
        }
        close(pfd[1]);
        char buf[128] = "";
        ssize_t r = read(pfd[0], buf, sizeof buf - 1);
        if (r > 0) {
            buf[r] = 0;
            sscanf(buf, "%ld %ld", &crss, &chwm);
        }
        close(pfd[0]);
        waitpid(c, NULL, 0);
    }
    printf("server RSS with %s loaded: %.1f MiB after preload, %.1f MiB after the runs (peak %.1f "
           "MiB)\n",
           preload, rss_loaded / 1024.0, rss_after / 1024.0, hwm / 1024.0);
    printf("client process RSS (5 requests to %s): %.1f MiB (peak %.1f MiB)\n", names[0],
           crss / 1024.0, chwm / 1024.0);
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    return 0;
}
