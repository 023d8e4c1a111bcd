/* server_layout.c: the model server's layout choice and its calibration at
 * load. See server_layout.h. */
#include "infer/server_layout.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define CALIB_REPS                                                                                 \
    2 /* runs in a row per thread in a round: concurrent runs drift apart as                       \
         they would under load, instead of meeting at a barrier after each */

/* Batch 1 always; a bigger batch when its round costs at most max_delay_us more
 * than a round of batch 1 in the same row (measured; unmeasured: not eligible). */
static int eligible(const srv_calib_row *row, size_t i, int64_t max_delay_us)
{
    if (row->round_us[i] <= 0 || row->runs < 1) return 0;
    if (row->batch[i] <= 1) return 1;
    for (size_t k = 0; k < row->nsizes; k++)
        if (row->batch[k] == 1 && row->round_us[k] > 0)
            return row->round_us[i] - row->round_us[k] <= max_delay_us;
    return 0;
}

srv_layout vd_srv_layout_choose(const srv_calib_row *rows, size_t nrows, int64_t max_delay_us)
{
    srv_layout best = {.runs = 1, .threads = 0, .batch = 1, .ips = 0, .run_us = 0};
    double best_ips = 0;
    /* the best throughput among eligible points */
    for (size_t r = 0; r < nrows; r++)
        for (size_t i = 0; i < rows[r].nsizes; i++) {
            const srv_calib_row *row = &rows[r];
            if (!eligible(row, i, max_delay_us)) continue;
            double ips = (double)row->runs * (double)row->batch[i] * 1e6 / (double)row->round_us[i];
            if (ips > best_ips) best_ips = ips;
        }
    if (best_ips <= 0) return best;
    /* the cheapest point within the margin: smallest batch, then fewest runs, then row order */
    const srv_calib_row *pick = NULL;
    size_t pick_i = 0;
    for (size_t r = 0; r < nrows; r++)
        for (size_t i = 0; i < rows[r].nsizes; i++) {
            const srv_calib_row *row = &rows[r];
            if (!eligible(row, i, max_delay_us)) continue;
            double ips = (double)row->runs * (double)row->batch[i] * 1e6 / (double)row->round_us[i];
            if (ips < best_ips * (1.0 - SRV_LAYOUT_MARGIN)) continue;
            int better = !pick || row->batch[i] < pick->batch[pick_i] ||
                         (row->batch[i] == pick->batch[pick_i] && row->runs < pick->runs);
            if (better) {
                pick = row;
                pick_i = i;
            }
        }
    best.runs = pick->runs;
    best.threads = pick->threads;
    best.batch = pick->batch[pick_i];
    best.run_us = pick->round_us[pick_i];
    best.ips = (double)best.runs * (double)best.batch * 1e6 / (double)best.run_us;
    return best;
}

int vd_srv_coalesce_wait(srv_coalesce *c)
{
    if (c->useless < SRV_COALESCE_USELESS || c->probing) return 1;
    if (++c->since_probe >= SRV_COALESCE_PROBE) {
        c->since_probe = 0;
        c->probing = 1;
        return 1;
    }
    c->skipped++;
    return 0;
}

void vd_srv_coalesce_taken(srv_coalesce *c, size_t reqs, int waited_out)
{
    c->probing = 0;
    if (reqs > 1)
        c->useless = 0;
    else if (waited_out && c->useless < SRV_COALESCE_USELESS)
        c->useless++;
}

typedef struct {
    vd_ort_session *sess;
    const srv_calib_in *in;
    const vd_tensor *input;
    vd_status rc;
    vd_error err;
} calib_job;

static void *calib_run(void *p)
{
    calib_job *j = p;
    for (int rep = 0; rep < CALIB_REPS && j->rc == VD_OK; rep++) {
        vd_tensor outs[VD_MODEL_MAX_OUTPUT];
        j->rc = vd_ort_session_run(j->sess, j->in->meta->input_name, j->input, j->in->out_names,
                                   j->in->nout, outs, &j->err);
        for (size_t k = 0; j->rc == VD_OK && k < j->in->nout; k++)
            vd_tensor_free(&outs[k]);
    }
    return NULL;
}

/* One round: `runs` threads (the caller and runs - 1 started ones) each run input
 * CALIB_REPS times in a row. Returns the wall time per repetition in microseconds
 * (what `runs` runs at once cost), or -1 (err filled). */
static int64_t round_once(const srv_calib_in *in, vd_ort_session *sess, int runs,
                          const vd_tensor *input, vd_error *err)
{
    calib_job jobs[SRV_LAYOUT_MAX_RUNS];
    pthread_t th[SRV_LAYOUT_MAX_RUNS];
    int started[SRV_LAYOUT_MAX_RUNS] = {0};
    int64_t t0 = vd_mono_us();
    for (int k = 0; k < runs; k++) {
        jobs[k] = (calib_job){.sess = sess, .in = in, .input = input, .rc = VD_OK};
        if (k > 0) started[k] = pthread_create(&th[k], NULL, calib_run, &jobs[k]) == 0;
    }
    calib_run(&jobs[0]);
    for (int k = 1; k < runs; k++)
        if (started[k])
            pthread_join(th[k], NULL);
        else
            jobs[k].rc = vd_error_set(&jobs[k].err, VD_ERR_INTERNAL, "cannot start a thread");
    int64_t el = (vd_mono_us() - t0) / CALIB_REPS; /* per round of one run each */
    for (int k = 0; k < runs; k++)
        if (jobs[k].rc != VD_OK) {
            *err = jobs[k].err;
            return -1;
        }
    return el > 0 ? el : 1;
}

/* A [b, item...] input of pixel-like values, or of token ids below 256 (a
 * byte-level BPE's vocabulary always holds the 256 byte symbols). */
static vd_status calib_input(const vd_model_meta *m, size_t b, vd_tensor *t, vd_error *err)
{
    int64_t shape[4];
    vd_dtype dt;
    size_t rank = vd_model_meta_input_shape(m, (int64_t)b, shape, &dt);
    vd_status rc = vd_tensor_alloc_dtype(t, dt, shape, rank, err);
    unsigned seed = 7;
    for (size_t i = 0; rc == VD_OK && i < vd_tensor_count(t); i++) {
        seed = seed * 1103515245u + 12345u;
        if (dt == VD_DTYPE_FLOAT32)
            t->data[i] = (float)((seed >> 8) & 0xff) / 255.0f;
        else
            t->i32[i] = (int32_t)((seed >> 8) & 0xff);
    }
    return rc;
}

/* A row being measured: whether it still tries bigger batches. */
typedef struct {
    srv_calib_row *row;
    int open;        /* still measuring bigger batches */
    double prev_ips; /* throughput at the previous size */
} calib_cand;

/* Records one measured point; closes the row at a stop rule. */
static void calib_point(calib_cand *c, size_t b, int64_t best, int64_t max_delay_us)
{
    srv_calib_row *row = c->row;
    row->batch[row->nsizes] = b;
    row->round_us[row->nsizes] = best;
    row->nsizes++;
    double ips = (double)row->runs * (double)b * 1e6 / (double)best;
    if ((row->nsizes > 1 && best - row->round_us[0] > max_delay_us) || ips < c->prev_ips ||
        row->nsizes >= SRV_LAYOUT_MAX_SIZES)
        c->open = 0;
    c->prev_ips = ips;
}

/* Measures one size on the rows still open: a warm-up round and SRV_CALIB_ROUNDS
 * timed ones, interleaved across the rows (round k: row 0 then 1 when k is even,
 * 1 then 0 when odd); best[c] gets each row's fastest. When deadline_us > 0 the
 * rounds stop once it has passed (after at least one timed round). */
static vd_status calib_size(const srv_calib_ops *ops, calib_cand *cand, size_t ncand, size_t b,
                            int64_t deadline_us, int64_t *best, vd_error *err)
{
    for (size_t c = 0; c < ncand; c++)
        best[c] = -1;
    for (int k = 0; k <= SRV_CALIB_ROUNDS; k++) {
        for (size_t j = 0; j < ncand; j++) {
            size_t c = k % 2 ? ncand - 1 - j : j;
            if (!cand[c].open) continue;
            int64_t us = ops->round(ops->ctx, c, b, err);
            if (us < 0) return err->code;
            if (k > 0 && (best[c] < 0 || us < best[c])) best[c] = us; /* round 0 warms up */
        }
        if (k > 0 && deadline_us > 0 && ops->now_us(ops->ctx) >= deadline_us) break;
    }
    return VD_OK;
}

vd_status vd_srv_calib_rows(const srv_calib_ops *ops, srv_calib_row *rows, size_t nrows,
                            size_t max_b, int64_t max_delay_us, int64_t budget_us, vd_error *err)
{
    calib_cand cand[2];
    size_t ncand = nrows > 2 ? 2 : nrows;
    for (size_t c = 0; c < ncand; c++) {
        rows[c].nsizes = 0;
        cand[c] = (calib_cand){.row = &rows[c], .open = 1};
    }
    int64_t deadline_us = ops->now_us(ops->ctx) + budget_us, best[2];
    /* batch 1 of every row first, in full whatever the budget: it is the
     * baseline of every other point (throughput, the latency bound) */
    vd_status rc = calib_size(ops, cand, ncand, 1, 0, best, err);
    if (rc != VD_OK) return rc;
    for (size_t c = 0; c < ncand; c++)
        calib_point(&cand[c], 1, best[c], max_delay_us);
    for (size_t b = 2, next; b <= max_b; b = next) {
        next = b * 2 > max_b && b < max_b ? max_b : b * 2; /* the last size tried is max_batch */
        int any = 0;
        for (size_t c = 0; c < ncand; c++)
            any |= cand[c].open;
        if (!any || ops->now_us(ops->ctx) >= deadline_us) break;
        if ((rc = calib_size(ops, cand, ncand, b, deadline_us, best, err)) != VD_OK) return rc;
        for (size_t c = 0; c < ncand; c++)
            if (cand[c].open) calib_point(&cand[c], b, best[c], max_delay_us);
    }
    /* batch 1 again, in full, each row's fastest kept: a burst of other load
     * that fell on the first batch-1 rounds would otherwise make bigger batches
     * look cheaper and fit the latency bound (issue 17: mobilenet_v2 chose
     * 1 run x batch 2 at 108.7 images/s against 240 for 2 runs x batch 1) */
    for (size_t c = 0; c < ncand; c++)
        cand[c].open = 1;
    if ((rc = calib_size(ops, cand, ncand, 1, 0, best, err)) != VD_OK) return rc;
    for (size_t c = 0; c < ncand; c++)
        if (best[c] > 0 && best[c] < rows[c].round_us[0]) rows[c].round_us[0] = best[c];
    return VD_OK;
}

/* The real rounds: ORT runs of a cached input of the size asked. */
typedef struct {
    const srv_calib_in *in;
    vd_ort_session *sess[2];
    int runs[2];
    vd_tensor input;
    size_t input_b; /* 0 = no input yet */
} calib_real;

static int64_t real_round(void *ctx, size_t row, size_t b, vd_error *err)
{
    calib_real *r = ctx;
    if (r->input_b != b) {
        if (r->input_b) vd_tensor_free(&r->input);
        r->input_b = 0;
        if (calib_input(r->in->meta, b, &r->input, err) != VD_OK) return -1;
        r->input_b = b;
    }
    return round_once(r->in, r->sess[row], r->runs[row], &r->input, err);
}

static int64_t real_now(void *ctx)
{
    (void)ctx;
    return vd_mono_us();
}

vd_status vd_srv_calibrate(const srv_calib_in *in, vd_ort_session *shared, srv_calib_row *rows,
                           size_t *nrows, vd_ort_session **single_out, vd_error *err)
{
    *nrows = 0;
    *single_out = NULL;
    int cores = in->cores > SRV_LAYOUT_MAX_RUNS ? SRV_LAYOUT_MAX_RUNS : in->cores;
    memset(rows, 0, 2 * sizeof *rows);
    rows[0].runs = 1;
    rows[0].threads = 0;
    calib_real real = {.in = in, .sess = {shared, NULL}, .runs = {1, 0}};
    size_t n = 1;
    vd_ort_session *single = NULL;
    if (cores > 1) {
        /* the caller holds the lock that serialises session creation */
        vd_status rc = vd_ort_session_open_threads(in->env, in->onnx_path, 1, &single, err);
        if (rc != VD_OK) return rc;
        rows[1].runs = cores;
        rows[1].threads = 1;
        real.sess[1] = single;
        real.runs[1] = cores;
        n = 2;
    }
    size_t max_b = in->dynamic && in->meta->max_batch > 1 ? (size_t)in->meta->max_batch : 1;
    srv_calib_ops ops = {.round = real_round, .now_us = real_now, .ctx = &real};
    vd_status rc =
        vd_srv_calib_rows(&ops, rows, n, max_b, in->meta->max_delay_us, in->budget_us, err);
    if (real.input_b) vd_tensor_free(&real.input);
    if (rc != VD_OK) {
        vd_ort_session_close(single);
        return rc;
    }
    *nrows = n;
    *single_out = single;
    return VD_OK;
}
