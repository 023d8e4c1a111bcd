/* test_model_server.c: the real `visiond model-server` process ($VISIOND),
 * driven through the client library and through raw sockets.
 *
 * Models: the two BlazeFace ONNX files (fixed batch 1) and "tiny", a small
 * dynamic-batch graph written here (Flatten -> MatMul -> Tanh over an 8x8x3
 * input, 16 outputs) so that batching along dim 0 is exercised without the
 * converted models. References are computed in-process with ONNX Runtime. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "convert/onnx_writer.h"
#include "core/err.h"
#include "core/util.h"
#include "infer/client.h"
#include "infer/model_meta.h"
#include "infer/ort_session.h"
#include "infer/proto.h"
#include "srvtest.h"
#include "vdtest.h"

/* ---- fixtures (the rest are in tests/lib/srvtest.h) ---- */

/* Asks MODELS and returns the model's object (a new reference), or NULL. */
static json_t *model_info(vd_infer_client *c, const char *name)
{
    char *text = NULL;
    vd_error err;
    if (vd_infer_client_models(c, 10000, &text, &err)) return NULL;
    json_t *root = json_loads(text, 0, NULL), *found = NULL;
    free(text);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(root, "models"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), name) == 0) {
            found = json_incref(m);
        }
    }
    json_decref(root);
    return found;
}

static long long stat_of(vd_infer_client *c, const char *model, const char *key)
{
    json_t *m = model_info(c, model);
    long long v = m ? json_integer_value(json_object_get(json_object_get(m, "stats"), key)) : -1;
    json_decref(m);
    return v;
}

static int state_is(vd_infer_client *c, const char *model, const char *state)
{
    json_t *m = model_info(c, model);
    int yes = m && strcmp(json_string_value(json_object_get(m, "state")), state) == 0;
    json_decref(m);
    return yes;
}

/* ---- references, in-process ---- */

#define POOL 12
static float tiny_in[POOL][TINY_IN], tiny_ref[POOL][TINY_OUT];
static float bf_in[POOL][BF_IN], bf_ref[POOL][512];
static int refs_ready;

static int make_refs(const char *models_dir)
{
    if (refs_ready) return 1;
    vd_error err;
    vd_ort_env *env;
    vd_ort_session *tiny, *bf;
    char p[1024];
    snprintf(p, sizeof p, "%s/tiny.onnx", models_dir);
    if (vd_ort_env_new(1, &env, &err)) return 0;
    if (vd_ort_session_open(env, p, &tiny, &err) || vd_ort_session_open(env, BF_FRONT, &bf, &err)) {
        printf("    %s\n", err.msg);
        return 0;
    }
    for (int i = 0; i < POOL; i++) {
        fill_item(tiny_in[i], TINY_IN, 100u + (unsigned)i);
        fill_item(bf_in[i], BF_IN, 900u + (unsigned)i);
        vd_tensor t = {.data = tiny_in[i], .shape = {1, 8, 8, 3}, .rank = 4}, out[1];
        if (vd_ort_session_run(tiny, NULL, &t, NULL, 0, out, &err)) return 0;
        memcpy(tiny_ref[i], out[0].data, sizeof tiny_ref[i]);
        vd_tensor_free(&out[0]);
        vd_tensor b = {.data = bf_in[i], .shape = {1, 128, 128, 3}, .rank = 4};
        const char *name[1] = {"Identity:0"};
        if (vd_ort_session_run(bf, NULL, &b, name, 1, out, &err)) return 0;
        memcpy(bf_ref[i], out[0].data, sizeof bf_ref[i]);
        vd_tensor_free(&out[0]);
    }
    vd_ort_session_close(tiny);
    vd_ort_session_close(bf);
    vd_ort_env_free(env);
    refs_ready = 1;
    return 1;
}

/* Infers n pool items [first, first+n) on tiny or blazeface_front through c
 * and checks every item against its single-call reference. Returns 1 when all
 * match; fills *st with the call's status. */
static int infer_and_check(vd_infer_client *c, int bf, int first, int n, int64_t timeout_ms,
                           vd_status *st, vd_error *err)
{
    size_t per = bf ? BF_IN : TINY_IN;
    vd_tensor t;
    int64_t shape[4] = {n, bf ? 128 : 8, bf ? 128 : 8, 3};
    if (vd_tensor_alloc(&t, shape, 4, err)) return 0;
    for (int i = 0; i < n; i++)
        memcpy(t.data + (size_t)i * per,
               bf ? bf_in[(first + i) % POOL] : tiny_in[(first + i) % POOL], per * sizeof(float));
    vd_infer_result r;
    *st = vd_infer_client_infer(c, bf ? "blazeface_front" : "tiny", &t, timeout_ms, &r, err);
    vd_tensor_free(&t);
    if (*st) return 0;
    int ok = r.outputs[0].shape[0] == n;
    size_t outn = bf ? 512 : TINY_OUT;
    for (int i = 0; ok && i < n; i++)
        ok = close_enough(r.outputs[0].data + (size_t)i * outn,
                          bf ? bf_ref[(first + i) % POOL] : tiny_ref[(first + i) % POOL], outn);
    if (bf) ok = ok && r.noutputs == 2 && strcmp(r.names[1], "Identity_2:0") == 0;
    vd_infer_result_free(&r);
    return ok;
}

/* ---- tests ---- */

static const char *setup(void)
{
    const char *dir = srv_test_dir();
    if (!dir) return NULL;
    char md[600];
    snprintf(md, sizeof md, "%s/models", dir);
    if (!make_refs(md)) {
        vd_test_fail_at(__FILE__, __LINE__, "cannot compute in-process references");
        return NULL;
    }
    return dir;
}

typedef struct {
    const char *addr;
    int thread;
    int rounds;
    int bad;
    int failed_calls;
    char last_error[256];
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    vd_infer_client *c;
    vd_error err;
    if (vd_infer_client_new(a->addr, &c, &err)) {
        a->failed_calls++;
        return NULL;
    }
    for (int j = 0; j < a->rounds; j++) {
        int bf = (a->thread + j) % 4 == 0;
        int n = bf ? 1 + j % 2 : 1 + (a->thread + j) % 3;
        vd_status st;
        if (!infer_and_check(c, bf, a->thread * 7 + j, n, 60000, &st, &err)) {
            if (st) {
                a->failed_calls++;
                vd_strlcpy(a->last_error, err.msg, sizeof a->last_error);
            } else {
                a->bad++;
            }
        }
    }
    vd_infer_client_free(c);
    return NULL;
}

/* 16 clients against a server started with args; every model's layout must be
 * `runs` runs at once (0: whatever the calibration chose). */
static void sixteen_clients(const char *const *srv_args, int runs)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    CHECK(server_start(&s, dir, srv_args));
    enum { NT = 16 };
    pthread_t th[NT];
    worker_arg args[NT];
    for (int i = 0; i < NT; i++) {
        args[i] = (worker_arg){.addr = s.addr, .thread = i, .rounds = 8};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    int bad = 0, failed = 0;
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        bad += args[i].bad;
        failed += args[i].failed_calls;
        if (args[i].failed_calls) printf("    thread %d: %s\n", i, args[i].last_error);
    }
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(s.addr, &c, &err));
    json_t *m = model_info(c, "tiny");
    CHECK(m != NULL);
    json_t *st = json_object_get(m, "stats");
    printf("    tiny: %lld requests, %lld items, %lld batches, mean batch %.2f, p50 %.2f ms, p99 "
           "%.2f ms\n",
           json_integer_value(json_object_get(st, "requests")),
           json_integer_value(json_object_get(st, "items")),
           json_integer_value(json_object_get(st, "batches")),
           json_real_value(json_object_get(st, "mean_batch")),
           json_real_value(json_object_get(st, "latency_ms_p50")),
           json_real_value(json_object_get(st, "latency_ms_p99")));
    CHECK_EQ_INT(json_integer_value(json_object_get(st, "ok")),
                 json_integer_value(json_object_get(st, "requests")));
    CHECK(json_is_true(json_object_get(m, "dynamic_batch")));
    /* the layout, in MODELS and in HEALTH */
    json_t *lay = json_object_get(m, "run_layout");
    long long lruns = json_integer_value(json_object_get(lay, "runs")),
              lbatch = json_integer_value(json_object_get(lay, "batch"));
    printf("    tiny: layout %lld run(s) x batch %lld, calibrated %d\n", lruns, lbatch,
           json_is_true(json_object_get(lay, "calibrated")));
    CHECK(lruns >= 1 && lbatch >= 1 && lbatch <= 8);
    if (runs) CHECK_EQ_INT(lruns, runs);
    CHECK(json_is_true(json_object_get(lay, "calibrated")) == (runs == 0));
    json_decref(m);
    m = model_info(c, "blazeface_front");
    lay = json_object_get(m, "run_layout");
    CHECK_EQ_INT(json_integer_value(json_object_get(lay, "batch")), 1); /* fixed batch dim */
    if (runs) CHECK_EQ_INT(json_integer_value(json_object_get(lay, "runs")), runs);
    json_decref(m);
    char *text = NULL;
    CHECK_OK(vd_infer_client_health(c, 10000, &text, &err));
    json_t *h = json_loads(text ? text : "", 0, NULL);
    free(text);
    json_t *hl = json_object_get(json_object_get(h, "layouts"), "tiny");
    CHECK_EQ_INT(json_integer_value(json_object_get(hl, "runs")), lruns);
    CHECK_EQ_INT(json_integer_value(json_object_get(hl, "batch")), lbatch);
    json_decref(h);
    CHECK_EQ_INT(stat_of(c, "blazeface_front", "loads"), 1);
    vd_infer_client_free(c);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

VD_TEST(sixteen_concurrent_clients_match_single_calls)
{
    sixteen_clients(NULL, 0); /* the calibrated layout (one thread: one run at a time) */
}

VD_TEST(sixteen_clients_on_three_parallel_runs_match_single_calls)
{
    /* three runs at once, each of up to 2 items (blazeface_front: 1, its batch dim is fixed) */
    const char *const args[] = {"--threads", "2", "--layout", "3,2", NULL};
    sixteen_clients(args, 3);
}

typedef struct {
    const char *addr;
    const char *model;
    int n;
    vd_status st;
    char msg[256];
} one_call;

static void *call_once(void *p)
{
    one_call *a = p;
    vd_infer_client *c;
    vd_error err;
    if (vd_infer_client_new(a->addr, &c, &err)) {
        a->st = err.code;
        return NULL;
    }
    vd_tensor t;
    int64_t shape[4] = {a->n, 8, 8, 3};
    if (strncmp(a->model, "blazeface", 9) == 0) shape[1] = shape[2] = 128;
    vd_tensor_alloc(&t, shape, 4, &err);
    vd_infer_result r;
    a->st = vd_infer_client_infer(c, a->model, &t, 60000, &r, &err);
    if (a->st) vd_strlcpy(a->msg, err.msg, sizeof a->msg);
    vd_infer_result_free(&r);
    vd_tensor_free(&t);
    vd_infer_client_free(c);
    return NULL;
}

VD_TEST(requests_from_many_clients_are_coalesced_into_one_batch)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    const char *const args[] = {"--layout", "1,4", NULL}; /* the batching, not the calibration */
    CHECK(server_start(&s, dir, args));
    /* tiny_slow: max_batch 4, max_delay 1.5 s: four single-item requests from
     * four clients make exactly one batch of 4, however fast they arrive */
    pthread_t th[4];
    one_call a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (one_call){.addr = s.addr, .model = "tiny_slow", .n = 1};
        pthread_create(&th[i], NULL, call_once, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(a[i].st, VD_OK);
    }
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(s.addr, &c, &err));
    long long batches = stat_of(c, "tiny_slow", "batches");
    printf("    4 clients -> %lld batch(es)\n", batches);
    /* a batch ends at 4 items or 1.5 s; only a client slower than 1.5 s to send could split it */
    CHECK(batches >= 1 && batches <= 2);
    CHECK_EQ_INT(stat_of(c, "tiny_slow", "items"), 4);
    vd_infer_client_free(c);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

VD_TEST(one_client_in_a_row_stops_paying_the_coalescing_delay)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    const char *const args[] = {"--layout", "1,4", NULL};
    CHECK(server_start(&s, dir, args));
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(s.addr, &c, &err));
    vd_tensor t;
    int64_t one[4] = {1, 8, 8, 3};
    CHECK_OK(vd_tensor_alloc(&t, one, 4, &err));
    /* tiny: batch 4, max_delay 3 ms. One client, one request at a time: each
     * of the first SRV_COALESCE_USELESS runs waits out the delay alone; then
     * runs start at once, but every SRV_COALESCE_PROBE-th waits again */
    enum { N = 4 + 2 * 16 + 4 };
    for (int i = 0; i < N; i++) {
        vd_infer_result r;
        CHECK_OK(vd_infer_client_infer(c, "tiny", &t, 30000, &r, &err));
        vd_infer_result_free(&r);
    }
    long long skipped = stat_of(c, "tiny", "coalesce_skipped");
    printf("    %d requests in a row: %lld started without the wait\n", N, skipped);
    CHECK_EQ_INT(skipped, N - 4 - 2);
    CHECK_EQ_INT(stat_of(c, "tiny", "batches"), N);
    vd_tensor_free(&t);
    vd_infer_client_free(c);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

VD_TEST(preloaded_models_calibrate_one_at_a_time)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    /* both load at once (one thread each); each calibrates (the default) */
    const char *const args[] = {"--preload", "tiny,tiny_slow", "--threads", "2", NULL};
    CHECK(server_start(&s, dir, args));
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(s.addr, &c, &err));
    double start[2] = {0, 0}, end[2] = {0, 0};
    const char *names[2] = {"tiny", "tiny_slow"};
    for (int i = 0; i < 2; i++) {
        json_t *m = model_info(c, names[i]);
        json_t *lay = json_object_get(m, "run_layout");
        CHECK(json_is_true(json_object_get(lay, "calibrated")));
        start[i] = json_number_value(json_object_get(lay, "calibration_start_ms"));
        end[i] = start[i] + json_number_value(json_object_get(lay, "calibration_ms"));
        printf("    %s: calibrated from %.1f to %.1f ms\n", names[i], start[i], end[i]);
        json_decref(m);
    }
    /* measured while the other model measured (or loaded), a calibration is wrong:
     * the intervals must not overlap, in either order */
    CHECK(start[0] > 0 && start[1] > 0);
    CHECK(end[0] <= start[1] || end[1] <= start[0]);
    vd_infer_client_free(c);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

VD_TEST(load_happens_once_when_many_clients_ask_at_once)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    CHECK(server_start(&s, dir, NULL));
    enum { NT = 16 };
    pthread_t th[NT];
    one_call a[NT];
    for (int i = 0; i < NT; i++) {
        a[i] = (one_call){.addr = s.addr, .model = i % 2 ? "blazeface_front" : "tiny", .n = 1};
        pthread_create(&th[i], NULL, call_once, &a[i]);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(a[i].st, VD_OK);
    }
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(s.addr, &c, &err));
    CHECK_EQ_INT(stat_of(c, "blazeface_front", "loads"), 1);
    CHECK_EQ_INT(stat_of(c, "tiny", "loads"), 1);
    CHECK_EQ_INT(stat_of(c, "tiny", "requests"), NT / 2);
    vd_infer_client_free(c);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

/* A large request's payload is read into a buffer placed for its tensor to keep (no copy)
 * when its first bytes are there as its header is read, else copied out as before: sent
 * whole, with a pause after the header, and with a pause inside the tensor's shape, the
 * same 100-image request gets the same answer. */
VD_TEST(a_large_request_gets_one_answer_however_its_bytes_arrive)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    CHECK(server_start(&s, dir, NULL));
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(s.addr, &c, &err));
    vd_tensor t;
    int64_t shape[4] = {100, 8, 8, 3}; /* 76,800 bytes: over the placing threshold */
    CHECK_OK(vd_tensor_alloc(&t, shape, 4, &err));
    for (size_t i = 0; i < vd_tensor_count(&t); i++)
        t.data[i] = (float)((i * 7919) % 255) / 255.0f;
    vd_infer_result want;
    CHECK_OK(vd_infer_client_infer(c, "tiny", &t, 30000, &want, &err));
    CHECK_EQ_INT(want.outputs[0].shape[0], 100);
    vd_buf b = {0};
    CHECK_OK(vd_proto_encode_infer(&b, 5, 0, "tiny", &t, &err));
    size_t cuts[3] = {b.len, VD_PROTO_HEADER_LEN, VD_PROTO_HEADER_LEN + 1 + 4 + 3};
    for (int k = 0; k < 3; k++) {
        int fd = raw_connect(s.sock);
        CHECK(fd >= 0);
        CHECK(write(fd, b.data, cuts[k]) == (ssize_t)cuts[k]);
        if (cuts[k] < b.len) {
            usleep(200000); /* the server reads the header and sizes the buffer meanwhile */
            CHECK(write(fd, b.data + cuts[k], b.len - cuts[k]) == (ssize_t)(b.len - cuts[k]));
        }
        vd_infer_result got;
        CHECK_EQ_INT(raw_outputs(fd, &got), VD_OK);
        CHECK_EQ_INT(got.noutputs, want.noutputs);
        CHECK(vd_tensor_bytes(&got.outputs[0]) == vd_tensor_bytes(&want.outputs[0]));
        CHECK(memcmp(got.outputs[0].data, want.outputs[0].data,
                     vd_tensor_bytes(&want.outputs[0])) == 0);
        vd_infer_result_free(&got);
        close(fd);
    }
    vd_buf_free(&b);
    vd_infer_result_free(&want);
    vd_tensor_free(&t);
    vd_infer_client_free(c);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

VD_TEST(bad_input_gets_clear_errors_and_others_keep_being_served)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    const char *args[] = {"--max-frame", "1048576", NULL};
    CHECK(server_start(&s, dir, args));
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(s.addr, &c, &err));
    vd_infer_result r;
    vd_tensor t;
    int64_t good[4] = {1, 8, 8, 3}, wrong[4] = {1, 8, 8, 4}, rank3[3] = {8, 8, 3};

    /* unknown model */
    CHECK_OK(vd_tensor_alloc(&t, good, 4, &err));
    CHECK_EQ_INT(vd_infer_client_infer(c, "nope", &t, 10000, &r, &err), VD_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "nope") != NULL);
    vd_tensor_free(&t);
    /* wrong shape, wrong rank */
    CHECK_OK(vd_tensor_alloc(&t, wrong, 4, &err));
    CHECK_EQ_INT(vd_infer_client_infer(c, "tiny", &t, 10000, &r, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "[1,8,8,4]") && strstr(err.msg, "[n,8,8,3]"));
    vd_tensor_free(&t);
    CHECK_OK(vd_tensor_alloc(&t, rank3, 3, &err));
    CHECK_EQ_INT(vd_infer_client_infer(c, "tiny", &t, 10000, &r, &err), VD_ERR_INVALID);
    vd_tensor_free(&t);
    /* a corrupt .onnx: a model error, twice, and nothing else is harmed */
    int64_t bfs[4] = {1, 128, 128, 3};
    CHECK_OK(vd_tensor_alloc(&t, bfs, 4, &err));
    CHECK_EQ_INT(vd_infer_client_infer(c, "corrupt", &t, 10000, &r, &err), VD_ERR_MODEL);
    printf("    corrupt: %s\n", err.msg);
    CHECK(strstr(err.msg, "corrupt") != NULL);
    CHECK_EQ_INT(vd_infer_client_infer(c, "corrupt", &t, 10000, &r, &err), VD_ERR_MODEL);
    CHECK_EQ_INT(vd_infer_client_load(c, "corrupt", 10000, NULL, &err), VD_ERR_MODEL);
    vd_tensor_free(&t);
    /* the invalid metadata file is listed with the bad key */
    char *text = NULL;
    CHECK_OK(vd_infer_client_models(c, 10000, &text, &err));
    CHECK(strstr(text, "typo.json") && strstr(text, "max_bach"));
    free(text);

    /* raw frames */
    int fd = raw_connect(s.sock);
    CHECK(fd >= 0);
    char msg[600];
    vd_buf b = {0};
    /* a tensor whose shape needs more data than the frame holds */
    CHECK_OK(vd_tensor_alloc(&t, good, 4, &err));
    CHECK_OK(vd_proto_encode_infer(&b, 1, 0, "tiny", &t, &err));
    uint8_t *p = b.data + VD_PROTO_HEADER_LEN;
    p[1 + 4 + 4 + 4] = 9; /* dim 0 = 9 items, data for 1 */
    CHECK(write(fd, b.data, b.len) == (ssize_t)b.len);
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_PROTOCOL);
    CHECK(strstr(msg, "truncated") != NULL);
    /* float64 data */
    p[1 + 4 + 4 + 4] = 1;
    p[1 + 4] = 2;
    CHECK(write(fd, b.data, b.len) == (ssize_t)b.len);
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_UNSUPPORTED);
    CHECK(strstr(msg, "dtype") != NULL);
    /* an unknown op */
    vd_buf_free(&b);
    CHECK_OK(vd_proto_frame(&b, 99, 2, 0, NULL, 0, &err));
    CHECK(write(fd, b.data, b.len) == (ssize_t)b.len);
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_UNSUPPORTED);
    /* the same connection still works */
    vd_buf_free(&b);
    CHECK_OK(vd_proto_encode_infer(&b, 3, 0, "tiny", &t, &err));
    CHECK(write(fd, b.data, b.len) == (ssize_t)b.len);
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_OK);
    /* an oversized frame: answered, then the connection is closed */
    vd_proto_header big = {VD_PROTO_VERSION, VD_OP_INFER, 2000000, 0, 4};
    uint8_t hb[VD_PROTO_HEADER_LEN];
    vd_proto_header_encode(&big, hb);
    CHECK(write(fd, hb, sizeof hb) == (ssize_t)sizeof hb);
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_LIMIT);
    CHECK(strstr(msg, "2000000") != NULL);
    CHECK(peer_closed(fd));
    close(fd);
    /* bad magic: an HTTP client */
    fd = raw_connect(s.sock);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(write(fd, http, strlen(http)) == (ssize_t)strlen(http));
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_PROTOCOL);
    CHECK(peer_closed(fd));
    close(fd);
    /* a truncated frame, then the client goes away */
    fd = raw_connect(s.sock);
    CHECK(write(fd, b.data, b.len / 2) == (ssize_t)(b.len / 2));
    close(fd);
    /* a whole request, and the client goes away before the answer */
    for (int i = 0; i < 5; i++) {
        fd = raw_connect(s.sock);
        CHECK(write(fd, b.data, b.len) == (ssize_t)b.len);
        close(fd);
    }
    vd_buf_free(&b);
    vd_tensor_free(&t);

    /* everyone else is still served, with the right numbers */
    vd_status st;
    CHECK(infer_and_check(c, 0, 3, 2, 10000, &st, &err));
    CHECK(infer_and_check(c, 1, 4, 1, 10000, &st, &err));
    CHECK_OK(vd_infer_client_health(c, 10000, &text, &err));
    CHECK(strstr(text, "\"ok\"") != NULL);
    free(text);
    vd_infer_client_free(c);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0); /* under ASan: no leak either */
}

VD_TEST(full_queue_answers_busy_and_late_requests_are_not_computed)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    const char *args[] = {"--queue-max", "3", "--layout", "1,4", NULL}; /* batches wait */
    CHECK(server_start(&s, dir, args));
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(s.addr, &c, &err));
    CHECK_OK(vd_infer_client_load(c, "tiny_slow", 30000, NULL, &err));
    /* 3 items wait (max_batch 4, 1.5 s delay) */
    pthread_t th;
    one_call a = {.addr = s.addr, .model = "tiny_slow", .n = 3};
    pthread_create(&th, NULL, call_once, &a);
    for (int i = 0; i < 600 && stat_of(c, "tiny_slow", "queue_depth") < 3; i++)
        vd_sleep_ms(5);
    vd_tensor t;
    int64_t one[4] = {1, 8, 8, 3}, four[4] = {4, 8, 8, 3};
    vd_infer_result r;
    CHECK_OK(vd_tensor_alloc(&t, one, 4, &err));
    vd_status st = vd_infer_client_infer(c, "tiny_slow", &t, 30000, &r, &err);
    int busy_ok = st == VD_ERR_BUSY;
    if (!busy_ok) printf("    expected busy, got %s: %s\n", vd_status_name(st), err.msg);
    vd_tensor_free(&t);
    CHECK_OK(vd_tensor_alloc(&t, four, 4, &err));
    CHECK_EQ_INT(vd_infer_client_infer(c, "tiny_slow", &t, 30000, &r, &err), VD_ERR_LIMIT);
    vd_tensor_free(&t);
    pthread_join(th, NULL);
    CHECK_EQ_INT(a.st, VD_OK);
    CHECK(busy_ok);
    CHECK(stat_of(c, "tiny_slow", "busy") >= 1);

    /* a request with a 50 ms deadline waits 1.5 s for its batch: answered
     * "timeout" by the server, and never computed */
    long long batches = stat_of(c, "tiny_slow", "batches");
    int fd = raw_connect(s.sock);
    vd_buf b = {0};
    CHECK_OK(vd_tensor_alloc(&t, one, 4, &err));
    CHECK_OK(vd_proto_encode_infer(&b, 7, 50, "tiny_slow", &t, &err));
    CHECK(write(fd, b.data, b.len) == (ssize_t)b.len);
    char msg[600];
    CHECK_EQ_INT(raw_response(fd, msg, sizeof msg), VD_ERR_TIMEOUT);
    printf("    late request: %s\n", msg);
    close(fd);
    vd_buf_free(&b);
    vd_tensor_free(&t);
    CHECK_EQ_INT(stat_of(c, "tiny_slow", "batches"), batches);
    CHECK_EQ_INT(stat_of(c, "tiny_slow", "timeouts"), 1);
    vd_infer_client_free(c);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

VD_TEST(idle_models_unload_preloaded_ones_stay_and_ops_work)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    const char *args[] = {"--idle-ttl", "1",           "--preload", "blazeface_front",
                          "--tcp",      "127.0.0.1:0", NULL};
    CHECK(server_start(&s, dir, args));
    CHECK(s.tcp_port > 0);
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%d", s.tcp_port);
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(addr, &c, &err)); /* over TCP this time */
    CHECK(state_is(c, "blazeface_front", "ready"));
    CHECK(state_is(c, "tiny", "unloaded"));
    vd_status st;
    CHECK(infer_and_check(c, 0, 0, 3, 10000, &st, &err));
    CHECK(state_is(c, "tiny", "ready") || state_is(c, "tiny", "unloaded"));
    int unloaded = 0;
    for (int i = 0; i < 300 && !unloaded; i++) {
        unloaded = state_is(c, "tiny", "unloaded");
        if (!unloaded) vd_sleep_ms(50);
    }
    CHECK(unloaded);
    CHECK(state_is(c, "blazeface_front", "ready"));       /* preloaded: never unloaded */
    CHECK(infer_and_check(c, 0, 5, 1, 10000, &st, &err)); /* loads again */
    CHECK_EQ_INT(stat_of(c, "tiny", "loads"), 2);
    /* explicit unload and load */
    char *json = NULL;
    CHECK_OK(vd_infer_client_unload(c, "tiny", 10000, &json, &err));
    CHECK(strstr(json, "\"unloaded\"") != NULL);
    free(json);
    CHECK_OK(vd_infer_client_load(c, "tiny", 10000, &json, &err));
    CHECK(strstr(json, "\"ready\"") != NULL);
    free(json);
    CHECK_EQ_INT(vd_infer_client_load(c, "nope", 10000, NULL, &err), VD_ERR_NOT_FOUND);
    vd_infer_client_free(c);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

typedef struct {
    const char *addr;
    int thread;
    atomic_int *restarts;
    atomic_int *done_calls;
    int bad, failed;
    uint64_t resends;
    char last_error[256];
} restart_arg;

static void *restart_worker(void *p)
{
    restart_arg *a = p;
    vd_infer_client *c;
    vd_error err;
    if (vd_infer_client_new(a->addr, &c, &err)) {
        a->failed++;
        return NULL;
    }
    /* keep calling until two restarts happened, then a few more */
    int after = 0;
    for (int j = 0; after < 3 && j < 100000; j++) {
        if (atomic_load(a->restarts) >= 2) after++;
        vd_status st;
        if (!infer_and_check(c, 0, a->thread + j, 1 + j % 3, 60000, &st, &err)) {
            if (st) {
                a->failed++;
                vd_strlcpy(a->last_error, err.msg, sizeof a->last_error);
            } else {
                a->bad++;
            }
        }
        atomic_fetch_add(a->done_calls, 1);
    }
    a->resends = vd_infer_client_resends(c);
    vd_infer_client_free(c);
    return NULL;
}

VD_TEST(restarting_the_server_loses_no_request)
{
    const char *dir = setup();
    if (!dir) return;
    server s;
    CHECK(server_start(&s, dir, NULL));
    enum { NT = 8 };
    atomic_int restarts = 0, done = 0;
    pthread_t th[NT];
    restart_arg a[NT];
    for (int i = 0; i < NT; i++) {
        a[i] =
            (restart_arg){.addr = s.addr, .thread = i, .restarts = &restarts, .done_calls = &done};
        pthread_create(&th[i], NULL, restart_worker, &a[i]);
    }
    /* a hard kill, then a clean stop, each while the clients are busy */
    int sigs[2] = {SIGKILL, SIGTERM};
    for (int k = 0; k < 2; k++) {
        int target = atomic_load(&done) + 20;
        while (atomic_load(&done) < target)
            vd_sleep_ms(5);
        int rc = server_stop(&s, sigs[k]);
        if (sigs[k] == SIGTERM) CHECK_EQ_INT(rc, 0);
        vd_sleep_ms(100); /* clients see the server gone */
        CHECK(server_start(&s, dir, NULL));
        atomic_fetch_add(&restarts, 1);
    }
    int bad = 0, failed = 0;
    uint64_t resends = 0;
    for (int i = 0; i < NT; i++) {
        pthread_join(th[i], NULL);
        bad += a[i].bad;
        failed += a[i].failed;
        resends += a[i].resends;
        if (a[i].failed) printf("    thread %d: %s\n", i, a[i].last_error);
    }
    printf("    %d calls across 2 restarts, %llu resent after reconnecting\n", atomic_load(&done),
           (unsigned long long)resends);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(bad, 0);
    CHECK(resends >= NT); /* every client's connection broke at least once */
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

typedef struct {
    const char *addr, *model;
    const vd_tensor *item;
    vd_infer_result res;
    vd_status st;
} real_call;

static void *real_call_main(void *p)
{
    real_call *a = p;
    vd_infer_client *c;
    vd_error err;
    a->st = vd_infer_client_new(a->addr, &c, &err);
    if (!a->st) a->st = vd_infer_client_infer(c, a->model, a->item, 120000, &a->res, &err);
    vd_infer_client_free(c);
    return NULL;
}

/* The converted models (scripts/models.sh -> data/models) have a dynamic batch
 * dim: batched through the server (8 clients at once, and one request of 8)
 * must give what single in-process runs give. */
VD_TEST(converted_models_batched_match_single_runs)
{
    const char *models = VISIOND_SOURCE_DIR "/data/models";
    const char *names[2] = {"faceres", "mobilenet_v2"};
    char path[1024];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s.json", models, names[i]);
        if (access(path, R_OK) != 0 || !getenv("VISIOND")) {
            vd_test_skip("converted models missing (run scripts/models.sh)");
            return;
        }
    }
    const char *dir = vd_test_tmpdir();
    server s;
    const char *args[] = {"--models", models, "--preload", "faceres,mobilenet_v2", NULL};
    CHECK(server_start(&s, dir, args));
    vd_error err;
    vd_ort_env *env;
    CHECK_OK(vd_ort_env_new(1, &env, &err));
    enum { N = 8 };
    for (int mi = 0; mi < 2; mi++) {
        vd_model_meta meta;
        snprintf(path, sizeof path, "%s/%s.json", models, names[mi]);
        CHECK_OK(vd_model_meta_load(path, &meta, &err));
        vd_ort_session *sess;
        CHECK_OK(vd_ort_session_open(env, meta.onnx_path, &sess, &err));
        int64_t one[4] = {1, meta.height, meta.width, meta.channels};
        int64_t all[4] = {N, meta.height, meta.width, meta.channels};
        size_t per = vd_model_meta_input_len(&meta);
        vd_tensor items[N], batch, ref[N];
        CHECK_OK(vd_tensor_alloc(&batch, all, 4, &err));
        const char *outname[1] = {meta.outputs[0]};
        for (int i = 0; i < N; i++) {
            CHECK_OK(vd_tensor_alloc(&items[i], one, 4, &err));
            fill_item(items[i].data, per, 31u * (unsigned)i + 5u);
            for (size_t k = 0; k < per; k++) /* pixel 0..255, then the model's scaling */
                items[i].data[k] = (items[i].data[k] + 1.0f) * 127.5f * meta.scale;
            memcpy(batch.data + (size_t)i * per, items[i].data, per * sizeof(float));
            CHECK_OK(
                vd_ort_session_run(sess, meta.input_name, &items[i], outname, 1, &ref[i], &err));
        }
        size_t dim = vd_tensor_count(&ref[0]);
        pthread_t th[N];
        real_call calls[N];
        for (int i = 0; i < N; i++) {
            calls[i] = (real_call){.addr = s.addr, .model = names[mi], .item = &items[i]};
            pthread_create(&th[i], NULL, real_call_main, &calls[i]);
        }
        float worst = 0;
        int ok = 1;
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            if (calls[i].st) {
                ok = 0;
                continue;
            }
            const float *got = calls[i].res.outputs[0].data;
            for (size_t k = 0; k < dim; k++)
                worst = fmaxf(worst,
                              fabsf(got[k] - ref[i].data[k]) / fmaxf(1.0f, fabsf(ref[i].data[k])));
            vd_infer_result_free(&calls[i].res);
        }
        vd_infer_client *c;
        vd_infer_result r;
        CHECK_OK(vd_infer_client_new(s.addr, &c, &err));
        CHECK_OK(vd_infer_client_infer(c, names[mi], &batch, 120000, &r, &err));
        CHECK_EQ_INT(r.outputs[0].shape[0], N);
        for (int i = 0; i < N; i++)
            for (size_t k = 0; k < dim; k++)
                worst = fmaxf(worst, fabsf(r.outputs[0].data[i * dim + k] - ref[i].data[k]) /
                                         fmaxf(1.0f, fabsf(ref[i].data[k])));
        vd_infer_result_free(&r);
        json_t *m = model_info(c, names[mi]);
        printf("    %s: %zu-d, worst difference batched vs single %.2g, mean batch %.2f\n",
               names[mi], dim, worst,
               json_real_value(json_object_get(json_object_get(m, "stats"), "mean_batch")));
        json_decref(m);
        vd_infer_client_free(c);
        for (int i = 0; i < N; i++) {
            vd_tensor_free(&items[i]);
            vd_tensor_free(&ref[i]);
        }
        vd_tensor_free(&batch);
        vd_ort_session_close(sess);
        CHECK(ok);
        CHECK(worst <= 1e-5f);
    }
    vd_ort_env_free(env);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
}

/* Returns 1 when this machine can bind a TCP socket on ::1. */
static int have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

VD_TEST(tcp_listener_and_client_work_over_ipv6)
{
    const char *dir = setup();
    if (!dir) return;
    if (!have_ipv6_loopback()) {
        vd_test_skip("no IPv6 loopback (::1) on this machine");
        return;
    }
    server s;
    const char *args[] = {"--no-socket", "--tcp", "[::1]:0", NULL};
    CHECK(server_start(&s, dir, args));
    CHECK(s.tcp_port > 0);
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:[::1]:%d", s.tcp_port);
    vd_infer_client *c;
    vd_error err;
    CHECK_OK(vd_infer_client_new(addr, &c, &err));
    vd_status st;
    CHECK(infer_and_check(c, 0, 0, 3, 30000, &st, &err));
    vd_infer_client_free(c);
    CHECK_EQ_INT(server_stop(&s, SIGTERM), 0);
    /* [::] is not loopback: refused without --allow-remote, like 0.0.0.0 */
    const char *any[] = {"--no-socket", "--tcp", "[::]:0", NULL};
    CHECK(!server_start(&s, dir, any));
}

VD_TEST(client_reports_unreachable_server_by_deadline)
{
    vd_infer_client *c;
    vd_error err;
    char addr[600];
    snprintf(addr, sizeof addr, "unix:%s/none.sock", vd_test_tmpdir());
    CHECK_OK(vd_infer_client_new(addr, &c, &err));
    char *json = NULL;
    int64_t t0 = vd_mono_ms();
    CHECK_EQ_INT(vd_infer_client_health(c, 300, &json, &err), VD_ERR_CONN);
    printf("    gave up after %lld ms: %s\n", (long long)(vd_mono_ms() - t0), err.msg);
    vd_infer_client_free(c);
    CHECK_OK(vd_infer_client_new("tcp:127.0.0.1:1", &c, &err)); /* nobody listens on port 1 */
    CHECK_EQ_INT(vd_infer_client_health(c, 200, &json, &err), VD_ERR_CONN);
    vd_infer_client_free(c);
    CHECK_EQ_INT(vd_infer_client_new("nonsense", &c, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_infer_client_new("host:port", &c, &err), VD_ERR_INVALID);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    atexit(kill_live_servers);
    return vd_test_run_all();
}
