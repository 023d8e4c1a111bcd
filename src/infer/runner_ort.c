/* runner_ort.c: the in-process vd_runner, over infer/ort_session. */
#include "infer/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "infer/model_folder.h"
#include "infer/ort_session.h"

typedef struct loaded {
    vd_model_meta meta; /* meta.dim: declared, from the graph, or from the first run */
    char meta_path[4096];
    vd_ort_session *session;
    int64_t batch; /* the graph input's batch dim (-1 = dynamic) */
    struct loaded *next;
} loaded;

typedef struct {
    vd_runner base;
    vd_ort_env *env;
    char *path;
    loaded *models;
} ort_runner;

static vd_status find_meta(ort_runner *r, const char *name, vd_model_meta *meta, char *file,
                           vd_error *err)
{
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= VD_MODEL_NAME_MAX || strchr(name, '/') || name[0] == '.')
        return vd_error_set(err, VD_ERR_INVALID, "bad model name \"%s\"", name);
    const char *p = r->path;
    while (*p) {
        size_t dl = strcspn(p, ":");
        char dir[4096];
        if (dl > 0 && dl < sizeof dir) {
            snprintf(dir, sizeof dir, "%.*s", (int)dl, p);
            /* NAME.json, or a tower of a model folder (infer/model_folder.h) */
            if (vd_model_folder_find(dir, name, file, 4096))
                return vd_model_meta_load(file, meta, err);
        }
        p += dl;
        if (*p == ':') p++;
    }
    return vd_error_set(err, VD_ERR_NOT_FOUND, "no model \"%s\" in %s", name, r->path);
}

/* The first returned output's name. */
static const char *first_output(const loaded *m)
{
    return m->meta.noutputs ? m->meta.outputs[0] : vd_ort_session_output_name(m->session, 0);
}

/* Sets meta.dim from the graph (docs/models.md): the same rule as the model server's. */
static vd_status graph_dim(loaded *m, vd_error *err)
{
    const char *out = first_output(m);
    for (size_t k = 0; k < vd_ort_session_noutputs(m->session); k++) {
        if (strcmp(vd_ort_session_output_name(m->session, k), out) != 0) continue;
        int64_t shape[VD_TENSOR_MAX_RANK];
        size_t rank = 0;
        vd_ort_session_output_shape(m->session, k, shape, &rank);
        return vd_model_meta_graph_dim(&m->meta, m->meta_path, out, shape, rank, &m->meta.dim, err);
    }
    return vd_error_set(err, VD_ERR_MODEL, "%s: outputs[0] '%s' is not an output of the graph",
                        m->meta_path, out);
}

static vd_status get_model(ort_runner *r, const char *name, loaded **out, vd_error *err)
{
    for (loaded *m = r->models; m; m = m->next)
        if (strcmp(m->meta.name, name) == 0) {
            *out = m;
            return VD_OK;
        }
    loaded *m = calloc(1, sizeof *m);
    if (!m) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    vd_status st = find_meta(r, name, &m->meta, m->meta_path, err);
    if (st == VD_OK) st = vd_ort_session_open(r->env, m->meta.onnx_path, &m->session, err);
    if (st == VD_OK) st = graph_dim(m, err);
    if (st != VD_OK) {
        vd_ort_session_close(m->session);
        free(m);
        return st;
    }
    /* The metadata's name is the file's stem unless it says otherwise: key by the request. */
    vd_strlcpy(m->meta.name, name, sizeof m->meta.name);
    int64_t shape[VD_TENSOR_MAX_RANK];
    size_t rank = 0;
    size_t in = 0;
    for (size_t i = 0; i < vd_ort_session_ninputs(m->session); i++)
        if (m->meta.input_name[0] &&
            strcmp(vd_ort_session_input_name(m->session, i), m->meta.input_name) == 0)
            in = i;
    vd_ort_session_input_shape(m->session, in, shape, &rank);
    m->batch = rank > 0 ? shape[0] : -1;
    m->next = r->models;
    r->models = m;
    *out = m;
    return VD_OK;
}

static vd_status ort_meta(vd_runner *base, const char *name, vd_model_meta *meta, vd_error *err)
{
    loaded *m;
    vd_status st = get_model((ort_runner *)base, name, &m, err);
    if (st == VD_OK) *meta = m->meta;
    return st;
}

/* Runs one slice [i0, i0+n) of the batch. */
static vd_status run_slice(loaded *m, const vd_tensor *input, size_t i0, size_t n, vd_tensor *outs,
                           size_t nouts, vd_error *err)
{
    const char *names[VD_MODEL_MAX_OUTPUT];
    for (int i = 0; i < m->meta.noutputs; i++)
        names[i] = m->meta.outputs[i];
    vd_tensor slice = *input;
    size_t per = vd_tensor_bytes(input) / (size_t)input->shape[0];
    slice.raw = (uint8_t *)input->raw + i0 * per;
    slice.shape[0] = (int64_t)n;
    (void)nouts;
    return vd_ort_session_run(m->session, m->meta.input_name[0] ? m->meta.input_name : NULL, &slice,
                              m->meta.noutputs ? names : NULL, (size_t)m->meta.noutputs, outs, err);
}

/* Checks the run's embedding output (a dim left open is learned here);
 * frees every output when it fails. */
static vd_status check_output(loaded *m, vd_tensor *outs, size_t count, size_t n, vd_error *err)
{
    vd_status st =
        vd_model_meta_check_output(&m->meta, first_output(m), &outs[0], n, &m->meta.dim, err);
    if (st != VD_OK)
        for (size_t o = 0; o < count; o++)
            vd_tensor_free(&outs[o]);
    return st;
}

static vd_status ort_run(vd_runner *base, const char *name, const vd_tensor *input, vd_tensor *outs,
                         size_t max_outs, size_t *nouts, vd_error *err)
{
    ort_runner *r = (ort_runner *)base;
    *nouts = 0;
    loaded *m;
    vd_status st = get_model(r, name, &m, err);
    if (st != VD_OK) return st;
    if (input->rank < 1 || input->shape[0] < 1)
        return vd_error_set(err, VD_ERR_INVALID, "input has no batch dim");
    size_t count =
        m->meta.noutputs ? (size_t)m->meta.noutputs : vd_ort_session_noutputs(m->session);
    if (count > max_outs)
        return vd_error_set(err, VD_ERR_INVALID, "model %s has %zu outputs, room for %zu", name,
                            count, max_outs);
    size_t n = (size_t)input->shape[0];
    if (m->batch != 1 || n == 1) {
        /* ORT returns every graph output when none are named: the same count. */
        st = run_slice(m, input, 0, n, outs, count, err);
        if (st == VD_OK) st = check_output(m, outs, count, n, err);
        if (st == VD_OK) *nouts = count;
        return st;
    }
    /* Fixed batch of 1: run item by item and stack the outputs. */
    vd_tensor part[VD_MODEL_MAX_OUTPUT * 2];
    if (count > sizeof part / sizeof part[0])
        return vd_error_set(err, VD_ERR_UNSUPPORTED, "model %s: %zu outputs to stack", name, count);
    memset(outs, 0, count * sizeof *outs);
    for (size_t i = 0; i < n; i++) {
        st = run_slice(m, input, i, 1, part, count, err);
        if (st != VD_OK) break;
        for (size_t o = 0; o < count && st == VD_OK; o++) {
            if (i == 0) {
                int64_t shape[VD_TENSOR_MAX_RANK];
                memcpy(shape, part[o].shape, sizeof shape);
                shape[0] = (int64_t)n;
                st = vd_tensor_alloc_uninit(&outs[o], VD_DTYPE_FLOAT32, shape, part[o].rank, err);
            }
            if (st == VD_OK && vd_tensor_count(&part[o]) * n != vd_tensor_count(&outs[o]))
                st = vd_error_set(err, VD_ERR_MODEL,
                                  "model %s: output %zu changed shape between items", name, o);
            if (st == VD_OK) {
                size_t per = vd_tensor_count(&part[o]);
                memcpy(outs[o].data + i * per, part[o].data, per * sizeof(float));
            }
        }
        for (size_t o = 0; o < count; o++)
            vd_tensor_free(&part[o]);
    }
    if (st != VD_OK) {
        for (size_t o = 0; o < count; o++)
            vd_tensor_free(&outs[o]);
        return st;
    }
    st = check_output(m, outs, count, n, err);
    if (st != VD_OK) return st;
    *nouts = count;
    return VD_OK;
}

static void ort_free(vd_runner *base)
{
    ort_runner *r = (ort_runner *)base;
    while (r->models) {
        loaded *m = r->models;
        r->models = m->next;
        vd_ort_session_close(m->session);
        free(m);
    }
    vd_ort_env_free(r->env);
    free(r->path);
    free(r);
}

static const vd_runner_ops ort_ops = {ort_meta, ort_run, ort_free, NULL};

vd_status vd_runner_ort_new(const char *models_path, int intra_threads, vd_runner **out,
                            vd_error *err)
{
    *out = NULL;
    ort_runner *r = calloc(1, sizeof *r);
    if (!r) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    r->base.ops = &ort_ops;
    r->path = vd_strdup(models_path ? models_path : "");
    if (!r->path) {
        free(r);
        return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    }
    vd_status st = vd_ort_env_new(intra_threads, &r->env, err);
    if (st != VD_OK) {
        free(r->path);
        free(r);
        return st;
    }
    *out = &r->base;
    return VD_OK;
}
