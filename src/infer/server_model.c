/* server_model.c: one inference thread per model: load once, batch, run,
 * answer, keep statistics, unload when idle. See server_impl.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"
#include "core/util.h"
#include "infer/server_impl.h"

#define SRV_RETRY_LOAD_US 5000000 /* a failed load is retried no sooner than this */

const char *vd_srv_state_name(srv_state st)
{
    static const char *names[] = {"unloaded", "loading", "ready", "failed"};
    return (unsigned)st <= SRV_FAILED ? names[st] : "unknown";
}

/* Waits on m->cv until the monotonic time due_us (m->mu held). */
static void wait_until(srv_model *m, int64_t due_us)
{
    struct timespec ts = {(time_t)(due_us / 1000000), (long)(due_us % 1000000) * 1000};
    pthread_cond_timedwait(&m->cv, &m->mu, &ts);
}

static void record_latency(srv_model *m, int64_t us)
{
    if (us < 0) us = 0;
    if (us > UINT32_MAX) us = UINT32_MAX;
    m->lat_us[m->lat_n % SRV_LAT_RING] = (uint32_t)us;
    m->lat_n++;
}

/* Formats a shape as "1,3,224,224". */
static const char *dims_text(const int64_t *shape, size_t rank, char *g, size_t n)
{
    size_t used = 0;
    g[0] = 0;
    for (size_t k = 0; k < rank && used < n; k++)
        used += (size_t)snprintf(g + used, n - used, "%s%lld", k ? "," : "", (long long)shape[k]);
    return g;
}

/* The graph's input against the metadata: an image model's [N, H, W, C] (or
 * NCHW) float32, a text model's [N, context_length] int32 or int64. */
static vd_status check_graph_input(const vd_model_meta *mt, vd_ort_session *s, size_t in,
                                   const int64_t *shape, size_t rank, vd_error *err)
{
    int64_t want[4];
    size_t wrank = vd_model_meta_input_shape(mt, -1, want, NULL);
    vd_dtype dt = VD_DTYPE_FLOAT32;
    int typed = vd_ort_session_input_dtype(s, in, &dt);
    int text = mt->task == VD_TASK_TEXT_EMBEDDING;
    int ok = rank == wrank && typed && (dt != VD_DTYPE_FLOAT32) == text;
    for (size_t k = 1; ok && k < wrank; k++)
        if (shape[k] >= 0 && shape[k] != want[k]) ok = 0;
    if (ok) return VD_OK;
    char g[128];
    dims_text(shape, rank, g, sizeof g);
    if (text)
        return vd_error_set(err, VD_ERR_MODEL,
                            "the metadata describes a text model of context length %d (int32 or "
                            "int64 token ids [N,%d]) but the graph's input is %s [%s]",
                            mt->context_length, mt->context_length,
                            typed ? vd_dtype_name(dt) : "of another type", g);
    return vd_error_set(err, VD_ERR_MODEL,
                        "the metadata describes a %s float32 input of %lldx%lldx%lld but the "
                        "graph's input is %s [%s]",
                        mt->layout == VD_LAYOUT_NCHW ? "NCHW" : "NHWC", (long long)want[1],
                        (long long)want[2], (long long)want[3],
                        typed ? vd_dtype_name(dt) : "of another type", g);
}

/* Checks the graph against the metadata; fills the output names and batch mode. */
static vd_status check_graph(srv_model *m, vd_ort_session *s, int *dynamic, int *graph_dim,
                             vd_error *err)
{
    const vd_model_meta *mt = &m->meta;
    size_t in = 0, nin = vd_ort_session_ninputs(s);
    if (mt->input_name[0]) {
        for (in = 0; in < nin; in++)
            if (strcmp(vd_ort_session_input_name(s, in), mt->input_name) == 0) break;
        if (in == nin)
            return vd_error_set(err, VD_ERR_MODEL,
                                "metadata input.name '%s' is not an input of the graph (its first "
                                "input is '%s')",
                                mt->input_name, vd_ort_session_input_name(s, 0));
    }
    if (nin != 1)
        return vd_error_set(err, VD_ERR_MODEL, "the graph has %zu inputs; only one is supported",
                            nin);
    int64_t shape[VD_TENSOR_MAX_RANK];
    size_t rank;
    vd_ort_session_input_shape(s, in, shape, &rank);
    vd_status rc = check_graph_input(mt, s, in, shape, rank, err);
    if (rc != VD_OK) return rc;
    if (shape[0] != -1 && shape[0] != 1)
        return vd_error_set(err, VD_ERR_MODEL,
                            "the graph's batch dimension is fixed at %lld; only 1 or dynamic "
                            "batch dimensions are supported",
                            (long long)shape[0]);
    *dynamic = shape[0] == -1;

    size_t ng = vd_ort_session_noutputs(s);
    if (mt->noutputs) {
        m->nout = (size_t)mt->noutputs;
        for (int i = 0; i < mt->noutputs; i++) {
            size_t k;
            for (k = 0; k < ng; k++)
                if (strcmp(vd_ort_session_output_name(s, k), mt->outputs[i]) == 0) break;
            if (k == ng)
                return vd_error_set(err, VD_ERR_MODEL,
                                    "metadata outputs[%d] '%s' is not an output of the graph", i,
                                    mt->outputs[i]);
            m->out_names[i] = mt->outputs[i];
        }
    } else {
        if (ng > VD_MODEL_MAX_OUTPUT)
            return vd_error_set(err, VD_ERR_MODEL,
                                "the graph has %zu outputs; list at most %d in the metadata's "
                                "\"outputs\"",
                                ng, VD_MODEL_MAX_OUTPUT);
        m->nout = ng;
        for (size_t k = 0; k < ng; k++)
            m->out_names[k] = vd_ort_session_output_name(s, k);
    }
    /* the embedding dim: from the first returned output (docs/models.md) */
    for (size_t k = 0; k < ng; k++) {
        if (strcmp(vd_ort_session_output_name(s, k), m->out_names[0]) != 0) continue;
        vd_ort_session_output_shape(s, k, shape, &rank);
        return vd_model_meta_graph_dim(mt, m->meta_path, m->out_names[0], shape, rank, graph_dim,
                                       err);
    }
    *graph_dim = 0;
    return VD_OK;
}

/* Checks a run's embedding output for n items (model thread): a graph that
 * left the dim open gets it from its first run, checked on every run after. */
static vd_status check_output(srv_model *m, const vd_tensor *out, size_t n, vd_error *err)
{
    pthread_mutex_lock(&m->mu);
    int dim = m->graph_dim;
    pthread_mutex_unlock(&m->mu);
    int was = dim;
    vd_status st = vd_model_meta_check_output(&m->meta, m->out_names[0], out, n, &dim, err);
    if (st == VD_OK && dim != was) {
        pthread_mutex_lock(&m->mu);
        m->graph_dim = dim;
        pthread_mutex_unlock(&m->mu);
        VD_INFO("model %s: dim %d, from its first run", m->meta.name, dim);
    }
    return st;
}

static srv_req *pop_locked(srv_model *m)
{
    srv_req *r = m->head;
    m->head = r->next;
    if (!m->head) m->tail = NULL;
    r->next = NULL;
    m->q_reqs--;
    m->q_items -= r->n;
    return r;
}

/* Picks the layout of a freshly loaded model (model thread, without mu): measured
 * when cfg.calibrate_ms > 0, else one run at a time of up to max_batch items.
 * May replace *sess by the single-threaded session the calibration opened. */
static void choose_layout(srv_model *m, vd_ort_session **sess, vd_ort_session **alone, int dynamic)
{
    const vd_server_config *cfg = &m->srv->cfg;
    srv_layout lay = {.runs = 1, .threads = 0, .batch = dynamic ? (size_t)m->meta.max_batch : 1};
    srv_calib_row rows[2];
    size_t nrows = 0;
    int64_t t0 = vd_mono_us(), t1 = 0;
    if (cfg->layout_runs > 0) {
        lay.runs = cfg->layout_runs;
        if (dynamic && (size_t)cfg->layout_batch < lay.batch) lay.batch = (size_t)cfg->layout_batch;
        vd_ort_session *single = NULL;
        vd_error e;
        if (lay.runs > 1) {
            pthread_mutex_lock(&m->srv->load_mu);
            vd_status rc =
                vd_ort_session_open_threads(m->srv->env, m->meta.onnx_path, 1, &single, &e);
            pthread_mutex_unlock(&m->srv->load_mu);
            if (rc != VD_OK) {
                VD_WARN("model %s: one run at a time: %s", m->meta.name, e.msg);
                lay.runs = 1;
            } else {
                *alone = *sess;
                *sess = single;
                lay.threads = 1;
            }
        }
    } else if (cfg->calibrate_ms > 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        int cores = cfg->intra_threads > 0 ? cfg->intra_threads : (nc > 0 ? (int)nc : 1);
        srv_calib_in in = {.env = m->srv->env,
                           .onnx_path = m->meta.onnx_path,
                           .meta = &m->meta,
                           .out_names = m->out_names,
                           .nout = m->nout,
                           .dynamic = dynamic,
                           .cores = cores,
                           .budget_us = cfg->calibrate_ms * 1000};
        vd_ort_session *single = NULL;
        vd_error e;
        /* one calibration at a time, and no session created meanwhile: at preload every
         * model's thread loads at once, and measuring while the others load or measure on
         * the same cores made the parallel layout look 2x slower than it is (issue 17) */
        pthread_mutex_lock(&m->srv->load_mu);
        t0 = vd_mono_us(); /* the calibration's time, not the wait for the lock */
        vd_status crc = vd_srv_calibrate(&in, *sess, rows, &nrows, &single, &e);
        t1 = vd_mono_us();
        pthread_mutex_unlock(&m->srv->load_mu);
        if (crc != VD_OK) {
            VD_WARN("model %s: calibration failed, one run at a time: %s", m->meta.name, e.msg);
            nrows = 0;
        } else {
            lay = vd_srv_layout_choose(rows, nrows, m->meta.max_delay_us);
            if (lay.threads == 1 && single) {
                *alone = *sess;
                *sess = single;
                single = NULL;
            }
        }
        vd_ort_session_close(single);
    }
    pthread_mutex_lock(&m->mu);
    m->layout = lay;
    m->coalesce.useless = m->coalesce.since_probe = 0; /* a fresh start: batches wait */
    m->coalesce.probing = 0;
    m->calibrated = nrows > 0;
    m->calib_ms = (double)((t1 ? t1 : vd_mono_us()) - t0) / 1000.0;
    m->calib_start_ms = (double)(t0 - m->srv->started_us) / 1000.0;
    m->ncalib = nrows;
    memcpy(m->calib, rows, nrows * sizeof rows[0]);
    pthread_mutex_unlock(&m->mu);
    VD_INFO("model %s: layout %d run(s) at once x batch %zu, %s (%s; %.1f images/s measured; "
            "calibration %.0f ms)",
            m->meta.name, lay.runs, lay.batch,
            lay.threads ? "1 thread each" : "the shared thread pool",
            nrows              ? "calibrated"
            : cfg->layout_runs ? "--layout"
                               : "not calibrated",
            lay.ips, m->calib_ms);
}

/* Takes the next batch to run when one is due (mu held) and counts the run;
 * NULL when none is: *due_us then says when to look again (0 = when woken). */
static srv_req *take_batch_locked(srv_model *m, int64_t *due_us, int *alone)
{
    *due_us = 0;
    *alone = 0;
    srv_req *r = m->head;
    if (!r || r->kind != SRV_REQ_INFER || m->state != SRV_READY) return NULL;
    /* coalesce: wait for a batch's worth of items or max_delay_us, whichever first */
    size_t max_batch = m->dynamic_batch && m->layout.batch > 1 ? m->layout.batch : 1;
    int waited_out = 0; /* unless the wait is not paying (server_layout.h) */
    if (max_batch > 1 && m->q_items < max_batch && !m->stop && vd_srv_coalesce_wait(&m->coalesce)) {
        int64_t due = r->received_us + m->meta.max_delay_us;
        if (vd_mono_us() < due) {
            *due_us = due;
            return NULL;
        }
        waited_out = 1;
    }
    srv_req *batch = NULL, **tail = &batch;
    size_t items = 0, reqs = 0;
    while (m->head && m->head->kind == SRV_REQ_INFER &&
           (items == 0 ||
            (items + m->head->n <= max_batch && m->head->input.dtype == batch->input.dtype))) {
        items += m->head->n;
        reqs++;
        *tail = pop_locked(m);
        tail = &(*tail)->next;
    }
    if (max_batch > 1) vd_srv_coalesce_taken(&m->coalesce, reqs, waited_out);
    *alone = m->running == 0 && !m->head; /* nothing else runs or waits */
    m->running++;
    return batch;
}

static void run_batch(srv_model *m, vd_ort_session *sess, srv_req *batch);

/* Runs what take_batch_locked gave (mu held, dropped meanwhile). */
static void run_taken_locked(srv_model *m, srv_req *batch, int alone)
{
    /* a parallel layout's run that starts alone uses the shared pool's threads */
    vd_ort_session *sess = alone && m->sess_alone ? m->sess_alone : m->sess;
    pthread_mutex_unlock(&m->mu);
    run_batch(m, sess, batch);
    pthread_mutex_lock(&m->mu);
    m->running--;
    m->last_used_us = vd_mono_us();
    pthread_cond_broadcast(&m->cv);
}

/* One turn of a thread that runs batches (mu held): run what is ready, else
 * wait until the oldest request is due or something arrives. */
static void serve_step_locked(srv_model *m)
{
    int64_t due;
    int alone;
    srv_req *batch = take_batch_locked(m, &due, &alone);
    if (batch)
        run_taken_locked(m, batch, alone);
    else if (due)
        wait_until(m, due);
    else
        pthread_cond_wait(&m->cv, &m->mu);
}

/* A helper thread: runs batches beside the model thread until told to quit. */
static void *helper_main(void *arg)
{
    srv_model *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->helpers_quit) {
        serve_step_locked(m);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* Starts layout.runs - 1 helpers (mu held). Fewer when threads cannot start: slower, not
 * wrong. */
static void start_helpers_locked(srv_model *m)
{
    m->helpers_quit = 0;
    m->nhelpers = 0;
    for (int k = 1; k < m->layout.runs && k < SRV_LAYOUT_MAX_RUNS; k++) {
        if (pthread_create(&m->helpers[m->nhelpers], NULL, helper_main, m) != 0) {
            VD_WARN("model %s: cannot start a helper thread; %d run(s) at once", m->meta.name,
                    m->nhelpers + 1);
            break;
        }
        m->nhelpers++;
    }
}

/* Stops and joins the helpers (mu held, dropped meanwhile); their runs finish first. */
static void stop_helpers_locked(srv_model *m)
{
    int n = m->nhelpers;
    if (!n) return;
    m->helpers_quit = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    for (int k = 0; k < n; k++)
        pthread_join(m->helpers[k], NULL);
    pthread_mutex_lock(&m->mu);
    m->nhelpers = 0;
    m->helpers_quit = 0;
}

/* Loads the session (model thread, without mu). */
static void model_load(srv_model *m)
{
    pthread_mutex_lock(&m->mu);
    m->state = SRV_LOADING;
    pthread_mutex_unlock(&m->mu);

    int64_t t0 = vd_mono_us();
    vd_error e;
    vd_error_clear(&e);
    vd_ort_session *sess = NULL, *alone = NULL;
    int dynamic = 0, gdim = 0;
    pthread_mutex_lock(&m->srv->load_mu);
    vd_status rc = vd_ort_session_open(m->srv->env, m->meta.onnx_path, &sess, &e);
    pthread_mutex_unlock(&m->srv->load_mu);
    if (rc == VD_OK) rc = check_graph(m, sess, &dynamic, &gdim, &e);
    if (rc != VD_OK) {
        vd_ort_session_close(sess);
        sess = NULL;
    } else {
        choose_layout(m, &sess, &alone, dynamic);
    }
    int64_t t1 = vd_mono_us();

    pthread_mutex_lock(&m->mu);
    if (rc != VD_OK) {
        m->state = SRV_FAILED;
        m->error_code = rc;
        snprintf(m->error, sizeof m->error, "model '%s' failed to load: %.400s", m->meta.name,
                 e.msg);
        m->failed_us = t1;
        m->load_failures++;
    } else {
        m->sess = sess;
        m->sess_alone = alone;
        m->state = SRV_READY;
        m->error[0] = 0;
        m->error_code = VD_OK;
        m->loaded_us = m->last_used_us = t1;
        m->dynamic_batch = dynamic;
        m->graph_dim = gdim;
        m->load_ms = (double)(t1 - t0) / 1000.0;
        m->loads++;
        start_helpers_locked(m);
    }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    vd_srv_alloc_event(m->srv, 1);
    if (rc != VD_OK)
        VD_ERROR("model %s: load failed: %s", m->meta.name, e.msg);
    else
        VD_INFO("model %s: loaded in %.1f ms (%s batch)", m->meta.name, (double)(t1 - t0) / 1000.0,
                dynamic ? "dynamic" : "fixed");
}

/* Unloads (model thread, with mu held; drops it while closing). */
static void model_unload_locked(srv_model *m, const char *why)
{
    stop_helpers_locked(m);
    vd_ort_session *sess = m->sess, *alone = m->sess_alone;
    m->sess = m->sess_alone = NULL;
    m->state = SRV_UNLOADED;
    m->unloads++;
    pthread_mutex_unlock(&m->mu);
    vd_ort_session_close(sess);
    vd_ort_session_close(alone);
    vd_srv_alloc_event(m->srv, 1);
    VD_INFO("model %s: unloaded (%s)", m->meta.name, why);
    pthread_mutex_lock(&m->mu);
}

static void answer_json(srv_model *m, srv_req *r, uint16_t op)
{
    if (r->conn_slot == SRV_NO_CONN) {
        vd_srv_req_free(r);
        return;
    }
    json_t *j = vd_srv_model_json(m);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    vd_buf frame = {0};
    if (!text || vd_proto_frame(&frame, op, r->id, VD_OK, text, strlen(text), NULL) != VD_OK) {
        free(text);
        vd_buf_free(&frame);
        vd_srv_answer_error(m->srv, r, op, VD_ERR_NOMEM, "out of memory", SRV_POST_SEND);
        return;
    }
    free(text);
    vd_srv_post(m->srv, r->conn_slot, r->conn_gen, SRV_POST_SEND, &frame);
    vd_srv_req_free(r);
}

static void count_error(srv_model *m, int timeout)
{
    pthread_mutex_lock(&m->mu);
    if (timeout)
        m->timeouts++;
    else
        m->errors++;
    pthread_mutex_unlock(&m->mu);
}

static void fail_req(srv_model *m, srv_req *r, vd_status st, const char *msg, srv_post_how how)
{
    count_error(m, st == VD_ERR_TIMEOUT);
    vd_srv_answer_error(m->srv, r, VD_OP_INFER, st, msg, how);
}

/* Encodes and posts one request's outputs. */
static void answer_outputs(srv_model *m, srv_req *r, const vd_tensor *outs, int64_t done_us,
                           srv_post_how how)
{
    const vd_tensor *ptrs[VD_MODEL_MAX_OUTPUT];
    for (size_t k = 0; k < m->nout; k++)
        ptrs[k] = &outs[k];
    vd_buf frame = {0};
    vd_error e;
    if (vd_proto_encode_outputs(&frame, r->id, m->nout, m->out_names, ptrs, &e) != VD_OK) {
        vd_buf_free(&frame);
        fail_req(m, r, e.code, e.msg, how);
        return;
    }
    pthread_mutex_lock(&m->mu);
    m->ok++;
    record_latency(m, done_us - r->received_us);
    pthread_mutex_unlock(&m->mu);
    vd_srv_post(m->srv, r->conn_slot, r->conn_gen, how, &frame);
    vd_srv_req_free(r);
}

/* Builds an item-shaped view [k, item...] of t starting at item `first`. */
static vd_tensor view(const vd_tensor *t, size_t first, size_t k)
{
    vd_tensor v = *t;
    size_t per = vd_tensor_bytes(t) / (size_t)(t->shape[0] ? t->shape[0] : 1);
    v.raw = (uint8_t *)t->raw + first * per;
    v.shape[0] = (int64_t)k;
    return v;
}

static void run_dynamic(srv_model *m, vd_ort_session *sess, srv_req *batch, size_t total)
{
    vd_error e;
    vd_tensor in = {0}, outs[VD_MODEL_MAX_OUTPUT];
    memset(outs, 0, sizeof outs);
    int64_t shape[VD_TENSOR_MAX_RANK];
    memcpy(shape, batch->input.shape, sizeof shape);
    shape[0] = (int64_t)total;
    vd_status rc = VD_OK;
    if (batch->next) /* several requests: concatenated along dim 0 */
        rc = vd_tensor_alloc_uninit(&in, batch->input.dtype, shape, batch->input.rank, &e);
    for (srv_req *r = batch; rc == VD_OK && batch->next && r; r = r->next)
        if (r->input.dtype != in.dtype) /* int32 and int64 ids in one batch: the next run */
            rc = vd_error_set(&e, VD_ERR_INTERNAL, "a batch mixes dtypes");
    if (rc == VD_OK && batch->next) {
        size_t off = 0;
        for (srv_req *r = batch; r; r = r->next) {
            size_t c = vd_tensor_bytes(&r->input);
            memcpy((uint8_t *)in.raw + off, r->input.raw, c);
            off += c;
        }
    }
    /* one request (every run when batching does not pay): its own tensor, no copy */
    if (rc == VD_OK)
        rc = vd_ort_session_run(sess, m->meta.input_name, batch->next ? &in : &batch->input,
                                m->out_names, m->nout, outs, &e);
    vd_tensor_free(&in);
    for (size_t k = 0; rc == VD_OK && k < m->nout; k++)
        if (outs[k].rank < 1 || outs[k].shape[0] != (int64_t)total)
            rc = vd_error_set(&e, VD_ERR_MODEL,
                              "output '%s' does not have the batch size %zu as its first dim",
                              m->out_names[k], total);
    if (rc == VD_OK) rc = check_output(m, &outs[0], total, &e);
    int64_t done = vd_mono_us();
    pthread_mutex_lock(&m->mu);
    m->batches++;
    m->batch_items += total;
    pthread_mutex_unlock(&m->mu);
    /* one answer: sent here; several: queued, and the I/O thread woken once to send them
     * while this thread runs the next batch */
    srv_post_how how = batch->next ? SRV_POST_LATER : SRV_POST_SEND;
    size_t first = 0;
    for (srv_req *r = batch, *next; r; r = next) {
        next = r->next;
        if (rc != VD_OK) {
            fail_req(m, r, rc, e.msg, how);
            continue;
        }
        vd_tensor views[VD_MODEL_MAX_OUTPUT];
        for (size_t k = 0; k < m->nout; k++)
            views[k] = view(&outs[k], first, r->n);
        first += r->n;
        answer_outputs(m, r, views, done, how);
    }
    if (how == SRV_POST_LATER) vd_srv_wake(m->srv);
    for (size_t k = 0; k < m->nout; k++)
        vd_tensor_free(&outs[k]);
}

/* Runs one request item by item (a graph whose batch dim is fixed at 1). An output
 * whose first dim is not 1 folds the batch in (det_10g's [N, C]): it gets one, [n, N, C]. */
static void run_items(srv_model *m, vd_ort_session *sess, srv_req *r)
{
    vd_error e;
    vd_tensor res[VD_MODEL_MAX_OUTPUT];
    memset(res, 0, sizeof res);
    int folded[VD_MODEL_MAX_OUTPUT] = {0};
    vd_status rc = VD_OK;
    for (size_t i = 0; i < r->n && rc == VD_OK; i++) {
        vd_tensor one = view(&r->input, i, 1), outs[VD_MODEL_MAX_OUTPUT];
        rc = vd_ort_session_run(sess, m->meta.input_name, &one, m->out_names, m->nout, outs, &e);
        for (size_t k = 0; rc == VD_OK && k < m->nout; k++) {
            if (i == 0) {
                int64_t shape[VD_TENSOR_MAX_RANK];
                size_t rank = outs[k].rank;
                folded[k] = rank >= 1 && outs[k].shape[0] != 1;
                if (rank < 1 || (folded[k] && rank == VD_TENSOR_MAX_RANK)) {
                    rc = vd_error_set(&e, VD_ERR_MODEL,
                                      "output '%s' does not have the batch size 1 as its first dim",
                                      m->out_names[k]);
                    break;
                }
                memcpy(shape + folded[k], outs[k].shape, sizeof(int64_t) * rank);
                rank += (size_t)folded[k];
                shape[0] = (int64_t)r->n;
                rc = vd_tensor_alloc_uninit(&res[k], VD_DTYPE_FLOAT32, shape, rank, &e);
                if (rc != VD_OK) break;
            }
            size_t per = vd_tensor_count(&res[k]) / r->n;
            int same =
                outs[k].rank + (size_t)folded[k] == res[k].rank && vd_tensor_count(&outs[k]) == per;
            if (!same) {
                rc = vd_error_set(&e, VD_ERR_MODEL, "output '%s' changed shape between items",
                                  m->out_names[k]);
                break;
            }
            memcpy(res[k].data + i * per, outs[k].data, per * sizeof(float));
        }
        for (size_t k = 0; k < m->nout; k++)
            vd_tensor_free(&outs[k]);
    }
    if (rc == VD_OK) rc = check_output(m, &res[0], r->n, &e);
    pthread_mutex_lock(&m->mu);
    m->batches += r->n;
    m->batch_items += r->n;
    pthread_mutex_unlock(&m->mu);
    if (rc != VD_OK)
        fail_req(m, r, rc, e.msg, SRV_POST_SEND);
    else
        answer_outputs(m, r, res, vd_mono_us(), SRV_POST_SEND);
    for (size_t k = 0; k < m->nout; k++)
        vd_tensor_free(&res[k]);
}

static void run_batch(srv_model *m, vd_ort_session *sess, srv_req *batch)
{
    /* requests whose deadline has passed are answered, not computed */
    int64_t now = vd_mono_us();
    srv_req *live = NULL, **tail = &live;
    size_t total = 0;
    for (srv_req *r = batch, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        if (r->deadline_us && now > r->deadline_us) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "deadline passed before the request could run (it waited %lld ms)",
                     (long long)((now - r->received_us) / 1000));
            fail_req(m, r, VD_ERR_TIMEOUT, msg, SRV_POST_QUEUE);
            continue;
        }
        *tail = r;
        tail = &r->next;
        total += r->n;
    }
    if (!live) return;
    vd_srv_alloc_event(m->srv, 0); /* counted before any answer goes out and wakes the I/O thread */
    int dynamic;
    pthread_mutex_lock(&m->mu);
    dynamic = m->dynamic_batch;
    pthread_mutex_unlock(&m->mu);
    if (dynamic) {
        run_dynamic(m, sess, live, total);
    } else {
        for (srv_req *r = live, *next; r; r = next) {
            next = r->next;
            r->next = NULL;
            run_items(m, sess, r);
        }
    }
}

static void *model_main(void *arg)
{
    srv_model *m = arg;
    const vd_server_config *cfg = &m->srv->cfg;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        if (m->abort) {
            while (m->head)
                vd_srv_req_free(pop_locked(m));
            break;
        }
        if (!m->head) {
            if (m->stop) break;
            if (m->state == SRV_READY && !m->pinned && cfg->idle_ttl_s > 0 && !m->running) {
                int64_t due = m->last_used_us + cfg->idle_ttl_s * 1000000;
                if (vd_mono_us() >= due) {
                    model_unload_locked(m, "idle");
                    continue;
                }
                wait_until(m, due);
            } else {
                pthread_cond_wait(&m->cv, &m->mu);
            }
            continue;
        }
        srv_req *r = m->head;
        if (r->kind != SRV_REQ_INFER) {
            pop_locked(m);
            if (r->kind == SRV_REQ_LOAD && m->state != SRV_READY) {
                pthread_mutex_unlock(&m->mu);
                model_load(m);
                pthread_mutex_lock(&m->mu);
            } else if (r->kind == SRV_REQ_UNLOAD && m->state == SRV_READY) {
                model_unload_locked(m, "asked");
            }
            int failed = r->kind == SRV_REQ_LOAD && m->state == SRV_FAILED;
            char msg[VD_ERROR_MSG_MAX];
            vd_status code = m->error_code;
            memcpy(msg, m->error, sizeof msg);
            pthread_mutex_unlock(&m->mu);
            if (failed)
                vd_srv_answer_error(m->srv, r, VD_OP_LOAD, code, msg, SRV_POST_SEND);
            else
                answer_json(m, r, r->kind == SRV_REQ_LOAD ? VD_OP_LOAD : VD_OP_UNLOAD);
            pthread_mutex_lock(&m->mu);
            continue;
        }
        int64_t now = vd_mono_us();
        if (m->state != SRV_READY) {
            if (m->state == SRV_FAILED && now - m->failed_us < SRV_RETRY_LOAD_US) {
                /* answer queued inference requests with the load error */
                srv_req *list = NULL, **tail = &list;
                while (m->head && m->head->kind == SRV_REQ_INFER) {
                    *tail = pop_locked(m);
                    tail = &(*tail)->next;
                }
                char msg[VD_ERROR_MSG_MAX];
                vd_status code = m->error_code;
                memcpy(msg, m->error, sizeof msg);
                pthread_mutex_unlock(&m->mu);
                for (srv_req *x = list, *next; x; x = next) {
                    next = x->next;
                    fail_req(m, x, code, msg, SRV_POST_QUEUE);
                }
                pthread_mutex_lock(&m->mu);
                continue;
            }
            pthread_mutex_unlock(&m->mu);
            model_load(m); /* exactly once for everything queued meanwhile */
            pthread_mutex_lock(&m->mu);
            continue;
        }
        serve_step_locked(m);
    }
    if (m->sess) model_unload_locked(m, "server stopping");
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

vd_status vd_srv_model_start(vd_server *s, srv_model *m, vd_error *err)
{
    m->srv = s;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&m->thread, NULL, model_main, m);
    if (e)
        return vd_error_set(err, VD_ERR_INTERNAL, "cannot start a model thread: %s", strerror(e));
    m->thread_started = 1;
    return VD_OK;
}

vd_status vd_srv_model_enqueue(srv_model *m, srv_req *r, vd_error *err)
{
    size_t cap = m->srv->cfg.queue_max_items;
    pthread_mutex_lock(&m->mu);
    if (r->kind == SRV_REQ_INFER) {
        if (r->n > cap) {
            m->busy_rejects++;
            pthread_mutex_unlock(&m->mu);
            return vd_error_set(err, VD_ERR_LIMIT,
                                "a request of %zu items exceeds model '%s''s queue of %zu items",
                                r->n, m->meta.name, cap);
        }
        if (m->q_items + r->n > cap) {
            m->busy_rejects++;
            pthread_mutex_unlock(&m->mu);
            return vd_error_set(err, VD_ERR_BUSY,
                                "model '%s' is busy: %zu items queued (limit %zu); retry later",
                                m->meta.name, m->q_items, cap);
        }
        m->requests++;
        m->items += r->n;
    }
    r->next = NULL;
    if (m->tail)
        m->tail->next = r;
    else
        m->head = r;
    m->tail = r;
    m->q_reqs++;
    m->q_items += r->n;
    /* an inference request on a loaded model: one runner (the model thread or a helper,
     * whichever waits) takes it; waking them all cost every request a futile wake-up per
     * idle runner, on the cores the run needs. Anything else: the model thread must see it */
    if (r->kind == SRV_REQ_INFER && m->state == SRV_READY)
        pthread_cond_signal(&m->cv);
    else
        pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return VD_OK;
}

int vd_srv_model_idle(srv_model *m)
{
    pthread_mutex_lock(&m->mu);
    int idle = !m->head && !m->running && m->state != SRV_LOADING;
    pthread_mutex_unlock(&m->mu);
    return idle;
}

void vd_srv_model_stop(srv_model *m, int abort)
{
    if (!m->thread_started) return;
    pthread_mutex_lock(&m->mu);
    m->stop = 1;
    if (abort) m->abort = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    m->thread_started = 0;
}

void vd_srv_model_free(srv_model *m)
{
    if (!m) return;
    vd_srv_model_stop(m, 1);
    if (m->srv) {
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->cv);
    }
    vd_ort_session_close(m->sess);
    vd_ort_session_close(m->sess_alone);
    free(m);
}
