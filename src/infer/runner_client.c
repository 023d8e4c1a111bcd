/* runner_client.c: the vd_runner over the model server's client. */
#include "infer/runner.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "infer/client.h"

typedef struct {
    vd_runner base;
    vd_infer_client *client;
    int64_t timeout_ms;
    json_t *models; /* the server's MODELS answer, fetched on first use */
} client_runner;

static vd_status cl_meta(vd_runner *base, const char *name, vd_model_meta *meta, vd_error *err)
{
    client_runner *r = (client_runner *)base;
    if (!r->models) {
        char *text = NULL;
        vd_status st = vd_infer_client_models(r->client, r->timeout_ms, &text, err);
        if (st != VD_OK) return st;
        json_error_t je;
        r->models = json_loads(text, 0, &je);
        free(text);
        if (!r->models)
            return vd_error_set(err, VD_ERR_PROTOCOL, "model server MODELS answer: %s", je.text);
    }
    /* {"models": [...]} or a bare array. */
    json_t *list = json_is_array(r->models) ? r->models : json_object_get(r->models, "models");
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        const char *n = json_string_value(json_object_get(m, "name"));
        if (!n || strcmp(n, name) != 0) continue;
        const char *path = json_string_value(json_object_get(m, "metadata"));
        if (!path)
            return vd_error_set(err, VD_ERR_PROTOCOL, "model server: no metadata path for %s",
                                name);
        return vd_model_meta_load(path, meta, err);
    }
    return vd_error_set(err, VD_ERR_NOT_FOUND, "the model server has no model \"%s\"", name);
}

static vd_status cl_run(vd_runner *base, const char *name, const vd_tensor *input, vd_tensor *outs,
                        size_t max_outs, size_t *nouts, vd_error *err)
{
    client_runner *r = (client_runner *)base;
    *nouts = 0;
    vd_infer_result res;
    memset(&res, 0, sizeof res);
    vd_status st = vd_infer_client_infer(r->client, name, input, r->timeout_ms, &res, err);
    if (st != VD_OK) return st;
    if (res.noutputs > max_outs) {
        size_t n = res.noutputs;
        vd_infer_result_free(&res);
        return vd_error_set(err, VD_ERR_INVALID, "model %s has %zu outputs, room for %zu", name, n,
                            max_outs);
    }
    for (size_t i = 0; i < res.noutputs; i++) {
        outs[i] = res.outputs[i]; /* ownership moves to the caller */
        memset(&res.outputs[i], 0, sizeof res.outputs[i]);
    }
    *nouts = res.noutputs;
    vd_infer_result_free(&res);
    return VD_OK;
}

static void cl_free(vd_runner *base)
{
    client_runner *r = (client_runner *)base;
    vd_infer_client_free(r->client);
    json_decref(r->models);
    free(r);
}

static const vd_runner_ops client_ops = {cl_meta, cl_run, cl_free};

vd_status vd_runner_client_new(const char *address, int64_t timeout_ms, vd_runner **out,
                               vd_error *err)
{
    *out = NULL;
    client_runner *r = calloc(1, sizeof *r);
    if (!r) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    r->base.ops = &client_ops;
    r->timeout_ms = timeout_ms;
    vd_status st = vd_infer_client_new(address, &r->client, err);
    if (st != VD_OK) {
        free(r);
        return st;
    }
    *out = &r->base;
    return VD_OK;
}
