/* jobspec.c: the job-type table, the payload parsers and the enqueue check (jobspec.h). */
#include "jobspec/jobspec.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define MIN_MS  60000LL
#define HOUR_MS (60 * MIN_MS)

/* Default timeouts: an embed job is at most VD_EMBED_MAX_PATHS files, each
 * read within VD_MEDIA_READ_MS and decoded within the pixel limit; a
 * train_session embeds a session's examples and then trains. Operators with
 * larger jobs give a timeout_ms when they enqueue (docs/pipeline.md). */
static const vd_job_spec specs[] = {
    {"noop", 1, 1 * HOUR_MS, "{}"},
    {"sleep", 1, 1 * HOUR_MS, "{\"ms\": N}"},
    {"fail", 1, 1 * HOUR_MS, "{\"message\": TEXT, \"retryable\": BOOL}"},
    {"crash", 1, 1 * HOUR_MS, "{\"signal\": \"SEGV\"|\"KILL\"|\"ABRT\"} or {\"exit\": N}"},
    {"progress", 1, 1 * HOUR_MS, "{\"steps\": N, \"ms\": M}"},
    {"count", 1, 1 * HOUR_MS, "{\"db\": PATH}"},
    {"alloc", 1, 1 * HOUR_MS, "{\"mb\": N}"},
    {"embed", 0, 1 * HOUR_MS,
     "{\"paths\": [PATH...], \"model\": NAME, \"mode\": \"image\"|\"face\"}"},
    {"train_session", 0, 2 * HOUR_MS, "{\"session_id\": ID}"},
    {"recluster_people", 0, 2 * HOUR_MS,
     "{\"model\": NAME, \"max_distance\": F, \"min_faces\": N} (all optional)"},
    {"index", 0, 4 * HOUR_MS, "{\"assets\": [ID...], \"model\": NAME, \"face_model\": NAME|\"\"}"},
};

size_t vd_job_spec_count(void)
{
    return sizeof specs / sizeof specs[0];
}

const vd_job_spec *vd_job_spec_at(size_t i)
{
    return i < vd_job_spec_count() ? &specs[i] : NULL;
}

const vd_job_spec *vd_job_spec_find(const char *type)
{
    for (size_t i = 0; type && i < vd_job_spec_count(); i++)
        if (strcmp(specs[i].name, type) == 0) return &specs[i];
    return NULL;
}

int vd_job_test_types_enabled(void)
{
    const char *v = getenv("VISIOND_TEST_JOBS");
    return v && strcmp(v, "1") == 0;
}

/* VD_OK when every key of obj is in allowed (NULL-terminated); else names the first other one. */
static vd_status only_fields(json_t *obj, const char *const *allowed, const char *type,
                             vd_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        (void)v;
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return vd_error_set(err, VD_ERR_INVALID, "%s payload: unknown field '%.64s'", type,
                                key);
    }
    return VD_OK;
}

static int name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

vd_status vd_embed_payload_parse(json_t *obj, vd_embed_payload *out, vd_error *err)
{
    static const char *const fields[] = {"paths", "model", "mode", NULL};
    memset(out, 0, sizeof *out);
    if (!json_is_object(obj))
        return vd_error_set(err, VD_ERR_INVALID, "embed payload must be a JSON object");
    vd_status st = only_fields(obj, fields, "embed", err);
    if (st != VD_OK) return st;
    json_t *jm = json_object_get(obj, "model"), *jp = json_object_get(obj, "paths"),
           *jmode = json_object_get(obj, "mode");
    out->model = jm ? json_string_value(jm) : NULL; /* NULL: the mode's default model */
    if (jm && (!out->model || !name_ok(out->model, 63) || out->model[0] == '.'))
        return vd_error_set(err, VD_ERR_INVALID,
                            "embed payload: \"model\" must be a model name (1-63 characters of "
                            "[A-Za-z0-9_.-])");
    const char *mode = jmode ? json_string_value(jmode) : "image";
    if (!mode || (strcmp(mode, "image") != 0 && strcmp(mode, "face") != 0))
        return vd_error_set(err, VD_ERR_INVALID,
                            "embed payload: \"mode\" must be \"image\" or \"face\"");
    out->face = strcmp(mode, "face") == 0;
    if (!json_is_array(jp))
        return vd_error_set(err, VD_ERR_INVALID, "embed payload needs \"paths\": [PATH, ...]");
    out->npaths = json_array_size(jp);
    if (out->npaths == 0)
        return vd_error_set(err, VD_ERR_INVALID, "embed payload: \"paths\" is empty");
    if (out->npaths > VD_EMBED_MAX_PATHS)
        return vd_error_set(err, VD_ERR_INVALID, "embed payload: at most %d paths (got %zu)",
                            VD_EMBED_MAX_PATHS, out->npaths);
    for (size_t i = 0; i < out->npaths; i++)
        if (!json_is_string(json_array_get(jp, i)))
            return vd_error_set(err, VD_ERR_INVALID, "embed payload: paths[%zu] is not a string",
                                i);
    out->paths = jp;
    return VD_OK;
}

vd_status vd_train_payload_parse(json_t *obj, const char **sid, vd_error *err)
{
    static const char *const fields[] = {"session_id", NULL};
    *sid = NULL;
    if (!json_is_object(obj))
        return vd_error_set(err, VD_ERR_INVALID, "train_session payload must be a JSON object");
    vd_status st = only_fields(obj, fields, "train_session", err);
    if (st != VD_OK) return st;
    const char *s = json_string_value(json_object_get(obj, "session_id"));
    if (!s || !name_ok(s, VD_ID_LEN) || strchr(s, '.'))
        return vd_error_set(err, VD_ERR_INVALID,
                            "train_session payload needs {\"session_id\": ID} (1-%d characters "
                            "of [A-Za-z0-9_-])",
                            VD_ID_LEN);
    *sid = s;
    return VD_OK;
}

vd_status vd_recluster_payload_parse(json_t *obj, vd_recluster_payload *out, vd_error *err)
{
    static const char *const fields[] = {"model", "max_distance", "min_faces", NULL};
    memset(out, 0, sizeof *out);
    if (!json_is_object(obj))
        return vd_error_set(err, VD_ERR_INVALID, "recluster_people payload must be a JSON object");
    vd_status st = only_fields(obj, fields, "recluster_people", err);
    if (st != VD_OK) return st;
    json_t *jm = json_object_get(obj, "model"), *jd = json_object_get(obj, "max_distance"),
           *jf = json_object_get(obj, "min_faces");
    out->model = jm ? json_string_value(jm) : NULL;
    if (jm && (!out->model || !name_ok(out->model, 63) || out->model[0] == '.'))
        return vd_error_set(err, VD_ERR_INVALID,
                            "recluster_people payload: \"model\" must be a model name (1-63 "
                            "characters of [A-Za-z0-9_.-])");
    if (jd && !json_is_number(jd))
        return vd_error_set(err, VD_ERR_INVALID,
                            "recluster_people payload: \"max_distance\" must be a number");
    if (jf &&
        (!json_is_integer(jf) || json_integer_value(jf) < 0 || json_integer_value(jf) > 1000000))
        return vd_error_set(err, VD_ERR_INVALID,
                            "recluster_people payload: \"min_faces\" must be an integer");
    out->max_distance = jd ? json_number_value(jd) : 0.0;
    out->min_faces = jf ? (int)json_integer_value(jf) : 0;
    return VD_OK;
}

vd_status vd_index_payload_parse(json_t *obj, vd_index_payload *out, vd_error *err)
{
    static const char *const fields[] = {"assets", "model", "face_model", NULL};
    memset(out, 0, sizeof *out);
    if (!json_is_object(obj))
        return vd_error_set(err, VD_ERR_INVALID, "index payload must be a JSON object");
    vd_status st = only_fields(obj, fields, "index", err);
    if (st != VD_OK) return st;
    out->model = json_string_value(json_object_get(obj, "model"));
    out->face_model = json_string_value(json_object_get(obj, "face_model"));
    if (!out->model || !name_ok(out->model, 63) || out->model[0] == '.')
        return vd_error_set(err, VD_ERR_INVALID,
                            "index payload: \"model\" must be a model name (1-63 characters of "
                            "[A-Za-z0-9_.-])");
    if (!out->face_model ||
        (*out->face_model && (!name_ok(out->face_model, 63) || out->face_model[0] == '.')))
        return vd_error_set(err, VD_ERR_INVALID,
                            "index payload: \"face_model\" must be a model name or \"\"");
    json_t *ja = json_object_get(obj, "assets");
    if (!json_is_array(ja))
        return vd_error_set(err, VD_ERR_INVALID, "index payload needs \"assets\": [ID, ...]");
    out->nassets = json_array_size(ja);
    if (out->nassets == 0)
        return vd_error_set(err, VD_ERR_INVALID, "index payload: \"assets\" is empty");
    if (out->nassets > VD_INDEX_MAX_ASSETS)
        return vd_error_set(err, VD_ERR_INVALID, "index payload: at most %d assets (got %zu)",
                            VD_INDEX_MAX_ASSETS, out->nassets);
    for (size_t i = 0; i < out->nassets; i++) {
        json_t *v = json_array_get(ja, i);
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            return vd_error_set(err, VD_ERR_INVALID,
                                "index payload: assets[%zu] is not a positive integer", i);
    }
    out->assets = ja;
    return VD_OK;
}

static vd_status refuse(vd_job_refusal *why, const char *code, vd_path_problem problem)
{
    if (why) {
        why->code = code;
        why->problem = problem;
    }
    return VD_ERR_INVALID;
}

/* Each path of an embed payload: confined when roots are known, shaped otherwise. */
static vd_status check_paths(const vd_embed_payload *e, const vd_job_check_opts *o,
                             vd_job_refusal *why, vd_error *err)
{
    for (size_t i = 0; i < e->npaths; i++) {
        const char *p = json_string_value(json_array_get(e->paths, i));
        vd_path_problem prob = VD_PATH_OK;
        vd_error pe;
        vd_status st = o->roots
                           ? vd_media_roots_check(o->roots, p, VD_PATH_WANT_FILE, NULL, &prob, &pe)
                           : vd_path_check_shape(p, &prob, &pe);
        if (st != VD_OK) {
            if (why) {
                why->code = vd_path_problem_name(prob);
                why->problem = prob;
            }
            return vd_error_set(err, st, "embed payload: paths[%zu]: %s", i, pe.msg);
        }
    }
    return VD_OK;
}

vd_status vd_job_check(const char *type, const char *payload, const vd_job_check_opts *o,
                       vd_job_refusal *why, vd_error *err)
{
    static const vd_job_check_opts none = {0};
    if (!o) o = &none;
    if (why) {
        why->code = NULL;
        why->problem = VD_PATH_OK;
    }
    const vd_job_spec *spec = vd_job_spec_find(type);
    if (!spec && o->any_type) return VD_OK;
    if (!spec || (spec->test_only && !o->test_jobs)) {
        vd_status st = refuse(why, spec ? "test_job_type" : "unknown_job_type", VD_PATH_OK);
        if (spec)
            return vd_error_set(err, st,
                                "'%s' is a test job type: only enqueued and run with "
                                "VISIOND_TEST_JOBS=1",
                                type);
        return vd_error_set(err, st,
                            "no worker of this build runs jobs of type '%.64s' (\"any_type\" "
                            "enqueues it anyway)",
                            type ? type : "");
    }
    json_error_t je;
    json_t *p = json_loads(payload && *payload ? payload : "{}", JSON_DECODE_ANY, &je);
    if (!json_is_object(p)) {
        json_decref(p);
        refuse(why, "invalid_payload", VD_PATH_OK);
        return vd_error_set(err, VD_ERR_INVALID, "%s payload must be a JSON object", type);
    }
    vd_status st = VD_OK;
    if (strcmp(type, "embed") == 0) {
        vd_embed_payload e;
        st = vd_embed_payload_parse(p, &e, err);
        if (st != VD_OK)
            refuse(why, "invalid_payload", VD_PATH_OK);
        else
            st = check_paths(&e, o, why, err);
    } else if (strcmp(type, "train_session") == 0) {
        const char *sid;
        st = vd_train_payload_parse(p, &sid, err);
        if (st != VD_OK) refuse(why, "invalid_payload", VD_PATH_OK);
    } else if (strcmp(type, "recluster_people") == 0) {
        vd_recluster_payload r;
        st = vd_recluster_payload_parse(p, &r, err);
        if (st != VD_OK) refuse(why, "invalid_payload", VD_PATH_OK);
    } else if (strcmp(type, "index") == 0) {
        vd_index_payload ip;
        st = vd_index_payload_parse(p, &ip, err);
        if (st != VD_OK) refuse(why, "invalid_payload", VD_PATH_OK);
    }
    /* test types: an object; their fields are checked by their handlers */
    json_decref(p);
    return st;
}
