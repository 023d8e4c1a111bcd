/* job_json.c: vd_job as JSON (see job_json.h). */
#include "queue/job_json.h"

static json_t *time_or_null(int64_t ms)
{
    return ms > 0 ? json_integer(ms) : json_null();
}

#include <stdlib.h>
#include <string.h>

/* A JSON string of s; bytes that are not valid UTF-8 become '?'. */
static json_t *safe_string(const char *s)
{
    json_t *v = json_string(s);
    if (v) return v;
    char *copy = strdup(s);
    if (!copy) return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80) *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

static json_t *json_text(const char *text)
{
    if (!text) return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v ? v : safe_string(text);
}

json_t *vd_job_to_json(const vd_job *j)
{
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "id", json_string(j->id));
    bad |= json_object_set_new(o, "type", safe_string(j->type));
    bad |= json_object_set_new(o, "state", json_string(vd_job_state_name(j->state)));
    bad |= json_object_set_new(o, "priority", json_integer(j->priority));
    bad |= json_object_set_new(o, "attempts", json_integer(j->attempts));
    bad |= json_object_set_new(o, "max_retries", json_integer(j->max_retries));
    bad |= json_object_set_new(o, "timeout_ms", json_integer(j->timeout_ms));
    bad |= json_object_set_new(o, "retry_base_ms", json_integer(j->retry_base_ms));
    bad |= json_object_set_new(o, "retry_max_ms", json_integer(j->retry_max_ms));
    bad |= json_object_set_new(o, "result_ttl_ms", json_integer(j->result_ttl_ms));
    bad |= json_object_set_new(o, "created_ms", json_integer(j->created_ms));
    bad |= json_object_set_new(o, "run_at_ms", json_integer(j->run_at_ms));
    bad |= json_object_set_new(o, "started_ms", time_or_null(j->started_ms));
    bad |= json_object_set_new(o, "ended_ms", time_or_null(j->ended_ms));
    bad |= json_object_set_new(o, "lease_until_ms", time_or_null(j->lease_until_ms));
    bad |= json_object_set_new(o, "worker", j->worker[0] ? safe_string(j->worker) : json_null());
    bad |= json_object_set_new(o, "progress",
                               json_pack("{s:I, s:I}", "done", (json_int_t)j->progress_done,
                                         "total", (json_int_t)j->progress_total));
    bad |= json_object_set_new(o, "payload", json_text(j->payload ? j->payload : "{}"));
    bad |= json_object_set_new(o, "result", json_text(j->result));
    bad |= json_object_set_new(o, "error", j->error ? safe_string(j->error) : json_null());
    bad |= json_object_set_new(o, "cancel_requested", json_boolean(j->cancel_requested));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *vd_job_counts_to_json(const int64_t counts[VD_JOB__NSTATES])
{
    json_t *o = json_object();
    for (int s = 0; o && s < VD_JOB__NSTATES; s++)
        if (json_object_set_new(o, vd_job_state_name((vd_job_state)s), json_integer(counts[s]))) {
            json_decref(o);
            return NULL;
        }
    return o;
}
