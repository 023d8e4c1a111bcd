/* bench_infer.c: raw ONNX Runtime in-process against the model server, same run.
 *
 * For each model named on the command line (NAME.json in --models DIR):
 *   in-process  images/s of vd_ort_session_run at batch 1, 8 and 32 (a model
 *               whose batch dim is fixed at 1 runs the batch item by item)
 *   server      `visiond model-server` with every model preloaded; 1, 4 and 16
 *               concurrent clients (threads, one connection each) sending
 *               single-image requests: images/s, client-side p50/p99 latency,
 *               and the ratio to in-process batch 1 (the peer)
 * Then the server's RSS with all models loaded and exercised (after preload,
 * the largest sample while the clients ran, right after the runs, and --settle
 * seconds after the last request), and the RSS of a
 * client process (this binary re-executed as a bare client that makes a few
 * requests: what a work-horse pays to use a model).
 *
 * Build and run (bench/infer/run.sh does both):
 *   cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc -I/opt/visiond/deps/onnxruntime/include \
 *      bench/infer/bench_infer.c build/libvisiond.a $(pkg-config --libs jansson vips sqlite3 \
 *      libmicrohttpd hiredis) -L/opt/visiond/deps/onnxruntime/lib -lonnxruntime \
 *      -Wl,-rpath,/opt/visiond/deps/onnxruntime/lib -lpthread -lm -o build/bench_infer
 *   build/bench_infer --visiond build/visiond --models data/models [--seconds 3] \
 *      [--threads 0] faceres mobilenet_v2 blazeface_back
 *
 * Options for A/B rounds: --inprocess-only or --server-only; --batch N and
 * --clients N (repeatable) replace the default points 1,8,32 and 1,4,16;
 * --server-arg ARG (repeatable) passes ARG to `visiond model-server`;
 * --settle S (default 3) is how long the server is left alone before its last
 * RSS reading. Every line also prints minor page faults per image: this
 * process's (getrusage) in-process, the server's (/proc/PID/stat) through it.
 *
 * --pairs N: after a model's points, N rounds of issue 17's two comparisons measured back to
 * back: in-process batch 1 then the server with 1 client, the best in-process layout then the
 * server with 16 clients. The single points above are up to a minute apart, long enough on a
 * shared machine for the in-process peer alone to move by a third; paired, each ratio's two
 * sides see the same minute. The target lines then give the median and range of the pairs. */
#include <dirent.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/util.h"
#include "infer/client.h"
#include "infer/model_meta.h"
#include "infer/ort_session.h"

#define MAX_MODELS 8

static double seconds = 3.0;

#define MAX_POINTS      8
#define MAX_PAIRS       16
#define MAX_SERVER_ARGS 16

/* Minor page faults of this process so far (getrusage). */
static long self_minflt(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* Minor page faults of process pid so far (/proc/PID/stat field 10), or -1. */
static long proc_minflt(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    long v = -1;
    /* after ") ": state ppid pgrp session tty_nr tpgid flags minflt */
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %ld", &v) != 1) v = -1;
    return v;
}

/* A process's CPU time (utime + stime, all threads) in ms, or -1. */
static double proc_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* after ") ": state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
     * utime stime */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

/* A process's context switches (voluntary + not), summed over its threads, or -1. */
static long proc_ctxsw(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sp[128], line[256];
        snprintf(sp, sizeof sp, "/proc/%d/task/%s/status", (int)pid, e->d_name);
        FILE *f = fopen(sp, "r");
        if (!f) continue;
        long v;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
                sum += v;
        fclose(f);
    }
    closedir(d);
    return sum;
}

/* This process's CPU time in ms and context switches (all its threads: the clients). */
static void self_cost(double *cpu_ms, long *ctxsw)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
    *ctxsw = ru.ru_nvcsw + ru.ru_nivcsw;
}

/* The 1-minute load average (/proc/loadavg), or -1: printed with every result. */
static double loadavg1(void)
{
    double v = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &v) != 1) v = -1;
    if (f) fclose(f);
    return v;
}

static void fill_random(vd_tensor *t, unsigned seed)
{
    for (size_t i = 0; i < vd_tensor_count(t); i++) {
        seed = seed * 1103515245u + 12345u;
        t->data[i] = (float)((seed >> 8) & 0xff); /* pixel-like values */
    }
}

static void item_shape(const vd_model_meta *m, int64_t n, int64_t shape[4])
{
    shape[0] = n, shape[1] = m->height, shape[2] = m->width, shape[3] = m->channels;
    if (m->layout == VD_LAYOUT_NCHW)
        shape[1] = m->channels, shape[2] = m->height, shape[3] = m->width;
}

static vd_status item_tensor(const vd_model_meta *m, int64_t n, vd_tensor *t, vd_error *err)
{
    int64_t shape[4];
    item_shape(m, n, shape);
    vd_status rc = vd_tensor_alloc(t, shape, 4, err);
    if (!rc) fill_random(t, 7u + (unsigned)n);
    return rc;
}

/* The same as a client of the server has it: in the input the client lends (its shared
 * region), filled once, as item_tensor's is for the in-process runs. */
static vd_status client_tensor(vd_infer_client *c, const vd_model_meta *m, vd_tensor *t,
                               vd_error *err)
{
    int64_t shape[4];
    item_shape(m, 1, shape);
    vd_status rc = vd_infer_client_input(c, shape, 4, t, err);
    if (!rc) fill_random(t, 8u);
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
static double inprocess(vd_ort_session *s, const vd_model_meta *m, int dynamic, int b,
                        double *faults_per_image)
{
    long f0 = 0;
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
    for (int it = -3;; it++) { /* it < 0: warm-up (the heap settles), not timed */
        if (it == 0) {
            t0 = vd_mono_us();
            f0 = self_minflt();
        }
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
    *faults_per_image = (double)(self_minflt() - f0) / (double)images;
    vd_tensor_free(&t);
    return (double)images / el;
}

typedef struct {
    vd_ort_session *s;
    const vd_model_meta *m;
    int64_t until_us;
    long images;
    int failed;
} par_arg;

static void *par_main(void *p)
{
    par_arg *a = p;
    vd_error err;
    vd_tensor t, res[VD_MODEL_MAX_OUTPUT];
    const char *outs[VD_MODEL_MAX_OUTPUT];
    for (int i = 0; i < a->m->noutputs; i++)
        outs[i] = a->m->outputs[i];
    size_t nout = a->m->noutputs ? (size_t)a->m->noutputs : vd_ort_session_noutputs(a->s);
    if (item_tensor(a->m, 1, &t, &err)) {
        a->failed = 1;
        return NULL;
    }
    while (vd_mono_us() < a->until_us) {
        if (vd_ort_session_run(a->s, a->m->input_name, &t, a->m->noutputs ? outs : NULL,
                               (size_t)a->m->noutputs, res, &err)) {
            fprintf(stderr, "bench: %s: %s\n", a->m->name, err.msg);
            a->failed = 1;
            break;
        }
        for (size_t o = 0; o < nout; o++)
            vd_tensor_free(&res[o]);
        a->images++;
    }
    vd_tensor_free(&t);
    return NULL;
}

/* images/s of `runs` threads running single images at once on one session with one
 * intra-op thread (the model server's parallel layout, in-process). */
static double inprocess_parallel(vd_ort_env *env, const vd_model_meta *m, int runs,
                                 double *faults_per_image)
{
    vd_ort_session *s;
    vd_error err;
    if (runs > 16) runs = 16;
    if (vd_ort_session_open_threads(env, m->onnx_path, 1, &s, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 0;
    }
    par_arg a[16];
    pthread_t th[16];
    /* warm-up, not timed */
    for (int k = 0; k < runs; k++) {
        a[k] = (par_arg){.s = s, .m = m, .until_us = vd_mono_us() + 300000};
        pthread_create(&th[k], NULL, par_main, &a[k]);
    }
    for (int k = 0; k < runs; k++)
        pthread_join(th[k], NULL);
    long f0 = self_minflt();
    int64_t t0 = vd_mono_us(), until = t0 + (int64_t)(seconds * 1e6);
    for (int k = 0; k < runs; k++) {
        a[k] = (par_arg){.s = s, .m = m, .until_us = until};
        pthread_create(&th[k], NULL, par_main, &a[k]);
    }
    long images = 0;
    int failed = 0;
    for (int k = 0; k < runs; k++) {
        pthread_join(th[k], NULL);
        images += a[k].images;
        failed |= a[k].failed;
    }
    double el = (double)(vd_mono_us() - t0) / 1e6;
    *faults_per_image = images ? (double)(self_minflt() - f0) / (double)images : 0;
    vd_ort_session_close(s);
    return failed ? 0 : (double)images / el;
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
    if (vd_infer_client_new(a->addr, &c, &err) || client_tensor(c, a->meta, &t, &err)) {
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
static double server_stat_real(const char *addr, const char *model, const char *key);
static long long server_stat(const char *addr, const char *model, const char *key)
{
    return (long long)server_stat_real(addr, model, key);
}

static double server_stat_real(const char *addr, const char *model, const char *key)
{
    vd_infer_client *c;
    vd_error err;
    char *text = NULL;
    double v = -1;
    if (vd_infer_client_new(addr, &c, &err)) return -1;
    if (!vd_infer_client_models(c, 10000, &text, &err)) {
        json_t *root = json_loads(text, 0, NULL), *m;
        size_t i;
        json_array_foreach(json_object_get(root, "models"), i, m)
        {
            if (strcmp(json_string_value(json_object_get(m, "name")), model) == 0)
                v = json_number_value(json_object_get(json_object_get(m, "stats"), key));
        }
        json_decref(root);
        free(text);
    }
    vd_infer_client_free(c);
    return v;
}

/* Prints the layout the server chose for model (its MODELS answer). */
static void print_layout(const char *addr, const char *model)
{
    vd_infer_client *c;
    vd_error err;
    char *text = NULL;
    if (vd_infer_client_new(addr, &c, &err)) return;
    if (!vd_infer_client_models(c, 10000, &text, &err)) {
        json_t *root = json_loads(text, 0, NULL), *m;
        size_t i;
        json_array_foreach(json_object_get(root, "models"), i, m)
        {
            json_t *l = json_object_get(m, "run_layout");
            if (strcmp(json_string_value(json_object_get(m, "name")), model) != 0 || !l) continue;
            printf("server      %-16s layout: %lld run(s) at once x batch %lld, %s, "
                   "calibrated %s (%.0f ms, %.1f images/s measured)\n",
                   model, (long long)json_integer_value(json_object_get(l, "runs")),
                   (long long)json_integer_value(json_object_get(l, "batch")),
                   json_integer_value(json_object_get(l, "threads_per_run")) ? "1 thread each"
                                                                             : "shared pool",
                   json_is_true(json_object_get(l, "calibrated")) ? "yes" : "no",
                   json_number_value(json_object_get(l, "calibration_ms")),
                   json_number_value(json_object_get(l, "images_per_s")));
        }
        json_decref(root);
        free(text);
    }
    vd_infer_client_free(c);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Runs nc concurrent single-image clients; returns images/s, fills p50/p99 (ms). */
static double through_server(const char *addr, const vd_model_meta *m, int nc, pid_t srv,
                             long *busy_rss_kb, double *p50, double *p99, int *errors)
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
    /* the server's RSS while busy: the largest of samples every 50 ms */
    while (vd_mono_us() < until - 50000) {
        usleep(50000);
        long r = rss_kb(srv, "VmRSS");
        if (r > *busy_rss_kb) *busy_rss_kb = r;
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

/* One --pairs round: in-process batch 1, then the server with 1 client; the best in-process
 * layout (batch `best`, or 0: `cores` runs of batch 1 at once), then 16 clients. */
static void pair_round(vd_ort_env *env, vd_ort_session *s, const vd_model_meta *m, int dynamic,
                       int best, int cores, const char *addr, pid_t srv, long *rss_busy,
                       double *one, double *sixteen, double *tail)
{
    double fpi, p50, p99;
    int errors;
    double in1 = inprocess(s, m, dynamic, 1, &fpi);
    double sv1 = through_server(addr, m, 1, srv, rss_busy, &p50, &p99, &errors);
    double inb =
        best > 0 ? inprocess(s, m, dynamic, best, &fpi) : inprocess_parallel(env, m, cores, &fpi);
    double sv16 = through_server(addr, m, 16, srv, rss_busy, &p50, &p99, &errors);
    *one = in1 > 0 ? sv1 / in1 : 0;
    *sixteen = inb > 0 ? sv16 / inb : 0;
    *tail = p50 > 0 ? p99 / p50 : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (n >= 1), its lowest and highest. */
static double median_range(const double *v, int n, double *lo, double *hi)
{
    double t[MAX_PAIRS];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    *lo = t[0];
    *hi = t[n - 1];
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
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
                          const char *preload, int threads, const char *const *extra, int nextra)
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
        const char *av[16 + MAX_SERVER_ARGS] = {
            bin,           "model-server", "--models",  models_dir, "--socket",   sock,
            "--preload",   preload,        "--threads", th,         "--idle-ttl", "0",
            "--queue-max", "4096"};
        int ac = 14;
        for (int i = 0; i < nextra; i++)
            av[ac++] = extra[i];
        av[ac] = NULL;
        execv(bin, (char *const *)av);
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

static int usage(void)
{
    fprintf(stderr,
            "usage: bench_infer [--visiond BIN] [--models DIR] [--seconds S] [--threads N]\n"
            "                   [--inprocess-only | --server-only] [--batch N]...\n"
            "                   [--clients N]... [--server-arg ARG]... [--settle S] "
            "[--pairs N] MODEL...\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *bin = getenv("VISIOND"), *models_dir = "data/models";
    int threads = 0, do_inproc = 1, do_server = 1, pairs = 0;
    double settle = 3.0;
    if (argc >= 5 && strcmp(argv[1], "--client-rss") == 0)
        return client_rss_mode(argv[2], argv[3], argv[4]);
    const char *names[MAX_MODELS];
    int nm = 0;
    int batches[MAX_POINTS] = {1, 8, 32}, nb = 0, clients[MAX_POINTS] = {1, 4, 16}, nc = 0;
    const char *extra[MAX_SERVER_ARGS];
    int nextra = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--visiond") == 0 && i + 1 < argc)
            bin = argv[++i];
        else if (strcmp(argv[i], "--models") == 0 && i + 1 < argc)
            models_dir = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--inprocess-only") == 0)
            do_server = 0;
        else if (strcmp(argv[i], "--server-only") == 0)
            do_inproc = 0;
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc && nb < MAX_POINTS &&
                 atoi(argv[i + 1]) > 0)
            batches[nb++] = atoi(argv[++i]);
        else if (strcmp(argv[i], "--clients") == 0 && i + 1 < argc && nc < MAX_POINTS &&
                 atoi(argv[i + 1]) > 0 && atoi(argv[i + 1]) <= 16)
            clients[nc++] = atoi(argv[++i]);
        else if (strcmp(argv[i], "--server-arg") == 0 && i + 1 < argc && nextra < MAX_SERVER_ARGS)
            extra[nextra++] = argv[++i];
        else if (strcmp(argv[i], "--settle") == 0 && i + 1 < argc)
            settle = atof(argv[++i]);
        else if (strcmp(argv[i], "--pairs") == 0 && i + 1 < argc && atoi(argv[i + 1]) >= 0 &&
                 atoi(argv[i + 1]) <= MAX_PAIRS)
            pairs = atoi(argv[++i]);
        else if (argv[i][0] != '-' && nm < MAX_MODELS)
            names[nm++] = argv[i];
        else
            return usage();
    }
    if (!nb) nb = 3;
    if (!nc) nc = 3;
    if ((do_server && !bin) || !nm || (!do_inproc && !do_server)) {
        fprintf(stderr, "bench: give --visiond BIN (or $VISIOND) and at least one model name\n");
        return usage();
    }
    signal(SIGPIPE, SIG_IGN);
    vd_model_meta metas[MAX_MODELS];
    int dynamic[MAX_MODELS];
    double inproc[MAX_MODELS][MAX_POINTS], inproc_best[MAX_MODELS];
    char best_what[MAX_MODELS][64];
    /* issue 17's three target ratios per model (0 = not measured) */
    double one_ratio[MAX_MODELS] = {0}, sixteen_ratio[MAX_MODELS] = {0},
           sixteen_tail[MAX_MODELS] = {0};
    /* the same per --pairs round */
    static double pair_one[MAX_MODELS][MAX_PAIRS], pair_sixteen[MAX_MODELS][MAX_PAIRS],
        pair_tail[MAX_MODELS][MAX_PAIRS];
    int best_batch[MAX_MODELS]; /* index into batches of the best in-process point; -1: runs */
    memset(inproc, 0, sizeof inproc);
    memset(inproc_best, 0, sizeof inproc_best);
    int cores = threads > 0 ? threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    /* the peers of the ratio: batch 1 and the largest batch measured */
    int b1 = -1, bmax = 0;
    for (int b = 0; b < nb; b++) {
        if (batches[b] == 1 && b1 < 0) b1 = b;
        if (batches[b] > batches[bmax]) bmax = b;
    }
    vd_error err;
    vd_ort_env *env = NULL;
    if (do_inproc && vd_ort_env_new(threads, &env, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    printf("bench_infer: ONNX Runtime %s, intra-op threads %d (0 = all cores), %.1f s per point, "
           "%ld cores online, load %.2f\n",
           vd_ort_version(), threads, seconds, sysconf(_SC_NPROCESSORS_ONLN), loadavg1());
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
    pid_t srv = -1;
    long rss_loaded = 0, rss_busy = 0;
    if (do_server) {
        srv = start_server(bin, models_dir, sock, preload, threads, extra, nextra);
        if (srv < 0) {
            fprintf(stderr, "bench: the model server did not start\n");
            return 1;
        }
        rss_loaded = rss_kb(srv, "VmRSS");
    }
    for (int i = 0; i < nm; i++) {
        vd_ort_session *s = NULL;
        best_batch[i] = -1;
        if (do_inproc) {
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
            for (int b = 0; b < nb; b++) {
                double fpi = 0;
                inproc[i][b] = inprocess(s, &metas[i], dynamic[i], batches[b], &fpi);
                printf("in-process  %-16s batch %2d%s: %8.1f images/s  minflt/image %8.1f  "
                       "load %.2f\n",
                       names[i], batches[b], dynamic[i] ? "" : " (item by item, fixed batch dim)",
                       inproc[i][b], fpi, loadavg1());
                fflush(stdout);
                if (inproc[i][b] > inproc_best[i]) {
                    inproc_best[i] = inproc[i][b];
                    best_batch[i] = b;
                    snprintf(best_what[i], sizeof best_what[i], "batch %d", batches[b]);
                }
            }
            if (cores > 1) {
                double fpi = 0, ips = inprocess_parallel(env, &metas[i], cores, &fpi);
                printf("in-process  %-16s %d runs x 1 thread, batch 1: %8.1f images/s  "
                       "minflt/image %8.1f  load %.2f\n",
                       names[i], cores, ips, fpi, loadavg1());
                fflush(stdout);
                if (ips > inproc_best[i]) {
                    inproc_best[i] = ips;
                    best_batch[i] = -1;
                    snprintf(best_what[i], sizeof best_what[i], "%d runs x batch 1", cores);
                }
            }
        }
        if (do_server) print_layout(addr, names[i]);
        if (do_server && do_inproc && b1 >= 0)
            for (int r = 0; r < pairs; r++) {
                pair_round(env, s, &metas[i], dynamic[i],
                           best_batch[i] >= 0 ? batches[best_batch[i]] : 0, cores, addr, srv,
                           &rss_busy, &pair_one[i][r], &pair_sixteen[i][r], &pair_tail[i][r]);
                printf("pair %d/%d    %-16s 1 client / in-process batch 1 %.2f, 16 clients / %s "
                       "%.2f (p99/p50 %.2f)  load %.2f\n",
                       r + 1, pairs, names[i], pair_one[i][r], best_what[i], pair_sixteen[i][r],
                       pair_tail[i][r], loadavg1());
                fflush(stdout);
            }
        if (s) vd_ort_session_close(s);
        for (int k = 0; do_server && k < nc; k++) {
            double p50, p99;
            int errors;
            long long b0 = server_stat(addr, names[i], "batches"),
                      i0 = server_stat(addr, names[i], "items");
            long f0 = proc_minflt(srv), x0 = proc_ctxsw(srv), cx0, cx1;
            double c0 = proc_cpu_ms(srv), cc0, cc1;
            self_cost(&cc0, &cx0);
            double ips =
                through_server(addr, &metas[i], clients[k], srv, &rss_busy, &p50, &p99, &errors);
            long f1 = proc_minflt(srv), x1 = proc_ctxsw(srv);
            double c1 = proc_cpu_ms(srv);
            self_cost(&cc1, &cx1);
            long long b1n = server_stat(addr, names[i], "batches"),
                      i1 = server_stat(addr, names[i], "items");
            double peer1 = b1 >= 0 ? inproc[i][b1] : 0, peerm = inproc[i][bmax];
            printf("server      %-16s %2d client%s: %8.1f images/s  p50 %7.2f ms  p99 %7.2f ms  "
                   "(p99/p50 %.2f)  mean batch %5.2f  ratio to in-process batch 1: %.2f, to "
                   "batch %d: %.2f, to the best in-process (%s): %.2f%s  server minflt/image "
                   "%8.1f\n",
                   names[i], clients[k], clients[k] == 1 ? " " : "s", ips, p50, p99,
                   p50 > 0 ? p99 / p50 : 0, b1n > b0 ? (double)(i1 - i0) / (double)(b1n - b0) : 0.0,
                   peer1 > 0 ? ips / peer1 : 0, batches[bmax], peerm > 0 ? ips / peerm : 0,
                   inproc_best[i] > 0 ? best_what[i] : "-",
                   inproc_best[i] > 0 ? ips / inproc_best[i] : 0, errors ? "  (errors!)" : "",
                   i1 > i0 ? (double)(f1 - f0) / (double)(i1 - i0) : 0.0);
            printf("server      %-16s %2d client%s: load %.2f  server-side p50 %.2f ms (queue + "
                   "run, last 2048 requests)\n",
                   names[i], clients[k], clients[k] == 1 ? " " : "s", loadavg1(),
                   server_stat_real(addr, names[i], "latency_ms_p50"));
            /* where the CPU goes, per image: less noisy than images/s on a shared machine */
            double nimg = i1 > i0 ? (double)(i1 - i0) : 0;
            if (nimg > 0)
                printf(
                    "server      %-16s %2d client%s: per image: server CPU %.2f ms, %.1f context "
                    "switches; clients CPU %.2f ms, %.1f context switches\n",
                    names[i], clients[k], clients[k] == 1 ? " " : "s", (c1 - c0) / nimg,
                    (double)(x1 - x0) / nimg, (cc1 - cc0) / nimg, (double)(cx1 - cx0) / nimg);
            fflush(stdout);
            if (clients[k] == 1 && peer1 > 0) one_ratio[i] = ips / peer1;
            if (clients[k] == 16 && inproc_best[i] > 0) {
                sixteen_ratio[i] = ips / inproc_best[i];
                sixteen_tail[i] = p50 > 0 ? p99 / p50 : 0;
            }
        }
    }
    vd_ort_env_free(env);
    if (do_server && do_inproc) {
        printf("targets (issue 17), load %.2f: 16 clients / best in-process >= 0.95, "
               "16 clients p99/p50 <= 3, 1 client / in-process batch 1 >= 0.90\n",
               loadavg1());
        for (int i = 0; i < nm; i++)
            printf("target      %-16s 16 clients / best in-process %.2f%s  p99/p50 %.2f%s  "
                   "1 client / in-process batch 1 %.2f%s\n",
                   names[i], sixteen_ratio[i], sixteen_ratio[i] >= 0.95 ? " (met)" : " (not met)",
                   sixteen_tail[i],
                   sixteen_tail[i] > 0 && sixteen_tail[i] <= 3 ? " (met)" : " (not met)",
                   one_ratio[i], one_ratio[i] >= 0.9 ? " (met)" : " (not met)");
        for (int i = 0; i < nm && pairs > 0; i++) {
            double lo[3], hi[3],
                med[3] = {median_range(pair_sixteen[i], pairs, &lo[0], &hi[0]),
                          median_range(pair_tail[i], pairs, &lo[1], &hi[1]),
                          median_range(pair_one[i], pairs, &lo[2], &hi[2])};
            printf("target      %-16s paired, median (range) of %d: 16 clients / best in-process "
                   "%.2f (%.2f-%.2f)%s  p99/p50 %.2f (%.2f-%.2f)%s  1 client / in-process batch 1 "
                   "%.2f (%.2f-%.2f)%s\n",
                   names[i], pairs, med[0], lo[0], hi[0], med[0] >= 0.95 ? " (met)" : " (not met)",
                   med[1], lo[1], hi[1], med[1] > 0 && med[1] <= 3 ? " (met)" : " (not met)",
                   med[2], lo[2], hi[2], med[2] >= 0.9 ? " (met)" : " (not met)");
        }
        fflush(stdout);
    }
    if (!do_server) return 0;
    long rss_after = rss_kb(srv, "VmRSS"), hwm = rss_kb(srv, "VmHWM");
    /* the server left alone for a while after the last request */
    usleep((useconds_t)(settle * 1e6));
    long rss_settled = rss_kb(srv, "VmRSS");
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
    printf("server RSS while busy (largest 50 ms sample): %.1f MiB; %.1f s after the last "
           "request: %.1f MiB\n",
           rss_busy / 1024.0, settle, rss_settled / 1024.0);
    printf("client process RSS (5 requests to %s): %.1f MiB (peak %.1f MiB)\n", names[0],
           crss / 1024.0, chwm / 1024.0);
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    return 0;
}
