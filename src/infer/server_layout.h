/* server_layout.h: how the model server runs a model on this machine
 * (docs/model-server.md, "Layout: batch size and parallel runs").
 *
 * A layout is `runs` concurrent runs of the model, each of up to `batch`
 * items, each with `threads` intra-op threads (0 = the process's shared ORT
 * pool). At load the model thread measures what a round of each candidate
 * costs (vd_srv_calibrate, bounded in time) and picks the layout with the
 * best throughput whose batch fits the latency bound (vd_srv_layout_choose,
 * a pure function: tests feed it costs). */
#ifndef VD_SERVER_LAYOUT_H
#define VD_SERVER_LAYOUT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "infer/model_meta.h"
#include "infer/ort_session.h"
#include "infer/server.h"

#define SRV_LAYOUT_MAX_SIZES 8    /* batch sizes tried: 1, 2, 4, ... 128 */
#define SRV_LAYOUT_MAX_RUNS  16   /* concurrent runs of one model */
#define SRV_LAYOUT_MARGIN    0.03 /* a bigger batch or more runs must win by more than 3% */

typedef struct {
    int runs;       /* concurrent runs */
    int threads;    /* intra-op threads per run; 0 = the shared pool */
    size_t batch;   /* items per run, at most */
    double ips;     /* measured images/s of this layout (0 = not measured) */
    int64_t run_us; /* measured wall time of one round (runs runs of batch items at once) */
} srv_layout;

/* One candidate arrangement of runs and threads, measured at several batch sizes. */
typedef struct {
    int runs, threads;
    size_t nsizes;
    size_t batch[SRV_LAYOUT_MAX_SIZES];
    int64_t round_us[SRV_LAYOUT_MAX_SIZES]; /* wall time of `runs` runs of batch[i] items at
                                               once; <= 0 = not measured */
} srv_calib_row;

/* Chooses among the measured (row, size) points: throughput = runs x batch /
 * round time. A batch > 1 is eligible only when its round costs at most
 * max_delay_us more than a round of batch 1 in the same row: batching may add
 * at most the latency the model's metadata allows for it. Batch 1 is always
 * eligible. The best throughput wins, but the smallest batch and then the
 * fewest runs (earlier rows first) within SRV_LAYOUT_MARGIN of it are
 * preferred: batching and parallel runs are used only where they pay. With
 * no measured point at all: 1 run of batch 1 on the shared pool. */
srv_layout vd_srv_layout_choose(const srv_calib_row *rows, size_t nrows, int64_t max_delay_us);

typedef struct {
    vd_ort_env *env;
    const char *onnx_path;
    const vd_model_meta *meta;
    const char *const *out_names;
    size_t nout;
    int dynamic;       /* the graph's batch dim is dynamic (else only batch 1 is tried) */
    int cores;         /* the shared pool's threads: also the runs of the parallel row */
    int64_t budget_us; /* the calibration stops trying more once this is spent */
} srv_calib_in;

/* Measures rows[0] (1 run on `shared`, the shared pool) and, when cores > 1,
 * rows[1] (cores runs at once, each single-threaded, on a session it opens:
 * *single_out, owned by the caller, NULL when not opened) at batch 1, 2, 4, ...
 * up to meta->max_batch, stopping a row at the first size that is not eligible
 * (see vd_srv_layout_choose) or whose throughput fell below the previous size's, and
 * altogether once budget_us (counted from after the session opens) is spent.
 * Batch 1 of both rows is measured first and again last, each in full whatever
 * the budget, and its fastest round kept: it is the baseline of the choice.
 * Each point is the fastest of a few
 * rounds after a warm-up one (the least disturbed by other load); at each
 * size the two rows' rounds alternate, so that other load disturbs both alike.
 * The caller holds the server's load lock throughout (it serialises session
 * creation, which this does, and keeps other models' loads and calibrations
 * off the cores being measured). */
/* The coalescing wait (docs/model-server.md, "Layout"): with a layout batch > 1
 * a run waits up to max_delay_us for more items, which pays only when other
 * requests arrive meanwhile; with one client nothing does, and each request
 * would pay the whole delay. After SRV_COALESCE_USELESS waits in a row that ran
 * out gathering nothing beyond their first request, runs start at once, but
 * every SRV_COALESCE_PROBE-th waits again (a probe); a run that takes two or
 * more requests ends the skipping. The caller serialises the calls (the
 * model's mutex). */
#define SRV_COALESCE_USELESS 4
#define SRV_COALESCE_PROBE   16
typedef struct {
    unsigned useless;     /* waits in a row that gathered nothing */
    unsigned since_probe; /* runs started without waiting since the last probe */
    int probing;          /* a probe's wait is in progress */
    uint64_t skipped;     /* runs started without the wait, in all */
} srv_coalesce;

/* Returns 1 when the run about to start should wait for more items (the queue
 * holds fewer than a batch), 0 when it starts now (counted in c->skipped). */
int vd_srv_coalesce_wait(srv_coalesce *c);
/* Records a run that took reqs requests; waited_out: it waited (wait said 1)
 * until max_delay_us passed without a full batch. */
void vd_srv_coalesce_taken(srv_coalesce *c, size_t reqs, int waited_out);

/* Timed rounds per measured point (after one warm-up round). */
#define SRV_CALIB_ROUNDS 3

/* What the calibration measures with: round() runs one round of rows[row]
 * (its runs at once) at `batch` items and returns its wall time in us, or -1
 * with err filled; now_us() is the clock the budget is counted on. The real
 * ones run ORT (vd_srv_calibrate); tests give their own. */
typedef struct {
    int64_t (*round)(void *ctx, size_t row, size_t batch, vd_error *err);
    int64_t (*now_us)(void *ctx);
    void *ctx;
} srv_calib_ops;

/* The measuring schedule of vd_srv_calibrate over nrows (1 or 2) rows whose
 * runs/threads are set: fills their batch/round_us/nsizes. */
vd_status vd_srv_calib_rows(const srv_calib_ops *ops, srv_calib_row *rows, size_t nrows,
                            size_t max_batch, int64_t max_delay_us, int64_t budget_us,
                            vd_error *err);

vd_status vd_srv_calibrate(const srv_calib_in *in, vd_ort_session *shared, srv_calib_row *rows,
                           size_t *nrows, vd_ort_session **single_out, vd_error *err);

#endif
