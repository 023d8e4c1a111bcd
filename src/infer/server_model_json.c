/* server_model_json.c: a model's MODELS/HEALTH description (metadata, state,
 * statistics, layout), split from server_model.c. See server_impl.h. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "infer/server_impl.h"

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The layout as JSON (mu held). */
static json_t *layout_json_locked(const srv_model *m)
{
    const srv_layout *l = &m->layout;
    json_t *j = json_pack("{s:i, s:i, s:I, s:b}", "runs", l->runs, "threads_per_run", l->threads,
                          "batch", (json_int_t)l->batch, "calibrated", m->calibrated);
    if (!j || !m->calibrated) return j;
    json_object_set_new(j, "images_per_s", json_real(l->ips));
    json_object_set_new(j, "calibration_ms", json_real(m->calib_ms));
    json_object_set_new(j, "calibration_start_ms", json_real(m->calib_start_ms));
    json_t *pts = json_array();
    for (size_t r = 0; r < m->ncalib; r++)
        for (size_t i = 0; i < m->calib[r].nsizes; i++) {
            const srv_calib_row *row = &m->calib[r];
            double us = (double)row->round_us[i];
            json_array_append_new(
                pts,
                json_pack("{s:i, s:i, s:I, s:f, s:f}", "runs", row->runs, "threads_per_run",
                          row->threads, "batch", (json_int_t)row->batch[i], "round_ms", us / 1000.0,
                          "images_per_s",
                          us > 0 ? (double)row->runs * (double)row->batch[i] * 1e6 / us : 0.0));
        }
    json_object_set_new(j, "measured", pts);
    return j;
}

void *vd_srv_model_layout_json(srv_model *m)
{
    pthread_mutex_lock(&m->mu);
    json_t *j = m->loads ? layout_json_locked(m) : NULL;
    pthread_mutex_unlock(&m->mu);
    return j;
}

void *vd_srv_model_json(srv_model *m)
{
    const vd_model_meta *mt = &m->meta;
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(mt->name));
    json_object_set_new(j, "task", json_string(vd_model_task_name(mt->task)));
    json_object_set_new(j, "onnx", json_string(mt->onnx_path));
    json_object_set_new(j, "metadata", json_string(m->meta_path));
    int64_t dims[4];
    vd_dtype dt;
    size_t rank = vd_model_meta_input_shape(mt, -1, dims, &dt);
    json_t *shape = json_array();
    for (size_t k = 0; k < rank; k++)
        json_array_append_new(shape, json_integer(dims[k]));
    json_object_set_new(j, "input_shape", shape);
    json_object_set_new(j, "layout", json_string(mt->layout == VD_LAYOUT_NCHW ? "NCHW" : "NHWC"));
    json_object_set_new(j, "input_dtype", json_string(vd_dtype_name(dt)));
    if (mt->task == VD_TASK_TEXT_EMBEDDING) {
        json_object_set_new(j, "context_length", json_integer(mt->context_length));
        json_object_set_new(j, "tokenizer", json_string(mt->tokenizer_path));
    }
    if (mt->text_model[0]) json_object_set_new(j, "text_model", json_string(mt->text_model));
    if (mt->image_model[0]) json_object_set_new(j, "image_model", json_string(mt->image_model));
    json_t *outs = json_array();
    for (int i = 0; i < mt->noutputs; i++)
        json_array_append_new(outs, json_string(mt->outputs[i]));
    json_object_set_new(j, "outputs", outs);
    json_object_set_new(j, "l2_normalize", json_boolean(mt->l2_normalize));
    json_object_set_new(j, "max_batch", json_integer(mt->max_batch));
    json_object_set_new(j, "max_delay_us", json_integer(mt->max_delay_us));

    pthread_mutex_lock(&m->mu);
    json_object_set_new(j, "preload", json_boolean(m->pinned));
    json_object_set_new(j, "state", json_string(vd_srv_state_name(m->state)));
    json_object_set_new(j, "dim", json_integer(mt->dim ? mt->dim : m->graph_dim));
    if (m->loads) json_object_set_new(j, "dynamic_batch", json_boolean(m->dynamic_batch));
    if (m->loads) json_object_set_new(j, "run_layout", layout_json_locked(m));
    if (m->state == SRV_FAILED) json_object_set_new(j, "error", json_string(m->error));
    if (m->loads) json_object_set_new(j, "load_ms", json_real(m->load_ms));
    json_t *st = json_object();
    json_object_set_new(st, "requests", json_integer((json_int_t)m->requests));
    json_object_set_new(st, "items", json_integer((json_int_t)m->items));
    json_object_set_new(st, "ok", json_integer((json_int_t)m->ok));
    json_object_set_new(st, "errors", json_integer((json_int_t)m->errors));
    json_object_set_new(st, "timeouts", json_integer((json_int_t)m->timeouts));
    json_object_set_new(st, "busy", json_integer((json_int_t)m->busy_rejects));
    json_object_set_new(st, "batches", json_integer((json_int_t)m->batches));
    json_object_set_new(st, "mean_batch",
                        json_real(m->batches ? (double)m->batch_items / (double)m->batches : 0.0));
    json_object_set_new(st, "coalesce_skipped", json_integer((json_int_t)m->coalesce.skipped));
    json_object_set_new(st, "queue_depth", json_integer((json_int_t)m->q_items));
    json_object_set_new(st, "queued_requests", json_integer((json_int_t)m->q_reqs));
    json_object_set_new(st, "loads", json_integer((json_int_t)m->loads));
    json_object_set_new(st, "unloads", json_integer((json_int_t)m->unloads));
    json_object_set_new(st, "load_failures", json_integer((json_int_t)m->load_failures));
    size_t n = m->lat_n < SRV_LAT_RING ? m->lat_n : SRV_LAT_RING;
    uint32_t lat[SRV_LAT_RING];
    memcpy(lat, m->lat_us, n * sizeof lat[0]);
    pthread_mutex_unlock(&m->mu);
    if (n) {
        qsort(lat, n, sizeof lat[0], cmp_u32);
        json_object_set_new(st, "latency_ms_p50", json_real(lat[(n - 1) * 50 / 100] / 1000.0));
        json_object_set_new(st, "latency_ms_p99", json_real(lat[(n - 1) * 99 / 100] / 1000.0));
    }
    json_object_set_new(j, "stats", st);
    return j;
}
