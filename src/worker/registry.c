/* registry.c: the job-type registry and the handler-facing context functions. */
#include "worker/registry.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec/jobspec.h"
#include "worker/job_ctx.h"

typedef struct {
    char name[VD_JOB_TYPE_MAX];
    vd_job_handler fn;
    void *userdata;
    int64_t timeout_ms; /* the type's default (jobspec), 0 = none */
} entry;

struct vd_registry {
    entry *v;
    size_t n, cap;
};

vd_registry *vd_registry_new(void)
{
    return calloc(1, sizeof(vd_registry));
}

void vd_registry_free(vd_registry *reg)
{
    if (!reg) return;
    free(reg->v);
    free(reg);
}

static const entry *find(const vd_registry *reg, const char *type)
{
    if (!reg || !type) return NULL;
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->v[i].name, type) == 0) return &reg->v[i];
    return NULL;
}

vd_status vd_registry_add(vd_registry *reg, const char *type, vd_job_handler fn, void *userdata,
                          vd_error *err)
{
    if (!reg || !fn) return vd_error_set(err, VD_ERR_INVALID, "registry and handler are required");
    if (!vd_job_type_valid(type))
        return vd_error_set(err, VD_ERR_INVALID,
                            "job type must be 1-%d characters of [A-Za-z0-9_.-]",
                            VD_JOB_TYPE_MAX - 1);
    if (find(reg, type))
        return vd_error_set(err, VD_ERR_STATE, "job type '%s' is already registered", type);
    if (reg->n == reg->cap) {
        size_t cap = reg->cap ? reg->cap * 2 : 16;
        entry *v = realloc(reg->v, cap * sizeof *v);
        if (!v) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        reg->v = v;
        reg->cap = cap;
    }
    entry *e = &reg->v[reg->n++];
    vd_strlcpy(e->name, type, sizeof e->name);
    e->fn = fn;
    e->userdata = userdata;
    const vd_job_spec *spec = vd_job_spec_find(type);
    e->timeout_ms = spec ? spec->default_timeout_ms : 0;
    return VD_OK;
}

int vd_registry_has(const vd_registry *reg, const char *type)
{
    return find(reg, type) != NULL;
}

vd_job_handler vd_registry_get(const vd_registry *reg, const char *type, void **userdata)
{
    const entry *e = find(reg, type);
    if (userdata) *userdata = e ? e->userdata : NULL;
    return e ? e->fn : NULL;
}

int64_t vd_registry_timeout_ms(const vd_registry *reg, const vd_job *job)
{
    if (job->timeout_ms > 0) return job->timeout_ms;
    const entry *e = find(reg, job->type);
    return e ? e->timeout_ms : 0;
}

size_t vd_registry_count(const vd_registry *reg)
{
    return reg ? reg->n : 0;
}

const char *vd_registry_name(const vd_registry *reg, size_t i)
{
    return reg && i < reg->n ? reg->v[i].name : NULL;
}

const char *vd_job_ctx_id(const vd_job_ctx *ctx)
{
    return ctx->job->id;
}

const char *vd_job_ctx_type(const vd_job_ctx *ctx)
{
    return ctx->job->type;
}

int vd_job_ctx_attempt(const vd_job_ctx *ctx)
{
    return ctx->job->attempts;
}

int vd_job_ctx_max_attempts(const vd_job_ctx *ctx)
{
    return 1 + ctx->job->max_retries;
}

void *vd_job_ctx_userdata(const vd_job_ctx *ctx)
{
    return ctx->userdata;
}

vd_status vd_job_ctx_progress(vd_job_ctx *ctx, int64_t done, int64_t total)
{
    if (done < 0 || total < 0) return VD_ERR_INVALID;
    return ctx->progress ? ctx->progress(ctx, done, total) : VD_OK;
}

int vd_job_ctx_should_stop(vd_job_ctx *ctx)
{
    return ctx->should_stop ? ctx->should_stop(ctx) : 0;
}

void vd_job_ctx_set_retryable(vd_job_ctx *ctx, int retryable)
{
    ctx->retryable = retryable ? 1 : 0;
}

int vd_job_ctx_failure_retryable(const vd_job_ctx *ctx, vd_status st)
{
    if (ctx->retryable >= 0) return ctx->retryable;
    return !(st == VD_ERR_INVALID || st == VD_ERR_UNSUPPORTED);
}

vd_status vd_job_payload_object(const char *payload, json_t **out, vd_error *err)
{
    json_error_t je;
    json_t *j = json_loads(payload && *payload ? payload : "{}", 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return vd_error_set(err, VD_ERR_INVALID, "payload must be a JSON object");
    }
    *out = j;
    return VD_OK;
}
