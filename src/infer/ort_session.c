/* ort_session.c: ONNX Runtime sessions through the C API.
 *
 * The environment uses ORT's global thread pools (shared by every session of
 * the process, spinning off so that idle pools cost no CPU), and routes ORT's
 * own log lines into core/log. Sessions remember their input and output names
 * and shapes; a run checks the input against them before handing it to ORT,
 * so that a wrong shape is a VD_ERR_INVALID naming both shapes.
 *
 * libonnxruntime is opened with dlopen when the first environment is made
 * (core/dl.h), not linked: only a process that runs a model in-process pays
 * for mapping it and for its static constructors (~3 ms of every start); the
 * workers, their horses and the API server never do. Its C API is one table of
 * function pointers reached through OrtGetApiBase, the one symbol looked up. */
#include "infer/ort_session.h"

#include <limits.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <onnxruntime_c_api.h>

#include "core/dl.h"
#include "core/log.h"
#include "core/util.h"

/* The library's soname (ONNX Runtime's, official builds and user builds alike), found through
 * the executable's rpath (the build's ONNXRUNTIME_ROOT/lib; $ORIGIN/../lib/visiond in the
 * package), then the loader's path. */
#define ORT_SONAME "libonnxruntime.so.1"
static const char *const ort_names[] = {"OrtGetApiBase"};
static struct {
    const OrtApiBase *(ORT_API_CALL *get_api_base)(void);
} ort_fn;
static vd_dl ort_lib = VD_DL_INIT(ORT_SONAME, ort_names);

/* Sets *out to the library's API base, opening it the first time. VD_ERR_UNSUPPORTED when it
 * cannot be loaded. */
static vd_status ort_base(const OrtApiBase **out, vd_error *err)
{
    *out = NULL;
    if (!vd_dl_load(&ort_lib, &ort_fn))
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "ONNX Runtime (%s) cannot be loaded: %s; visiond looks in the "
                            "directory it was built against (its rpath), then in the loader's "
                            "path (LD_LIBRARY_PATH, ldconfig)",
                            ORT_SONAME, ort_lib.why);
    *out = ort_fn.get_api_base();
    return VD_OK;
}

struct vd_ort_env {
    const OrtApi *api;
    OrtEnv *env;
    OrtMemoryInfo *cpu;
    int intra_threads;
};

typedef struct {
    char *name;
    int64_t shape[VD_TENSOR_MAX_RANK];
    size_t rank;
    ONNXTensorElementDataType type;
} io_info;

struct vd_ort_session {
    vd_ort_env *env;
    OrtSession *session;
    size_t ninputs, noutputs;
    io_info *inputs, *outputs;
};

/* Converts an OrtStatus into a vd_error (and releases it). */
static vd_status ort_fail(const OrtApi *api, OrtStatus *st, vd_status code, vd_error *err,
                          const char *what)
{
    OrtErrorCode oc = api->GetErrorCode(st);
    const char *msg = api->GetErrorMessage(st);
    if (code == VD_ERR_MODEL && oc == ORT_INVALID_ARGUMENT && strcmp(what, "run") == 0)
        code = VD_ERR_INVALID;
    vd_error_set(err, code, "onnxruntime %s: %s", what, msg ? msg : "(no message)");
    api->ReleaseStatus(st);
    return code;
}

static void ort_logger(void *param, OrtLoggingLevel severity, const char *category,
                       const char *logid, const char *code_location, const char *message)
{
    (void)param;
    (void)logid;
    (void)code_location;
    vd_log_level lvl = severity >= ORT_LOGGING_LEVEL_ERROR ? VD_LOG_WARN : VD_LOG_DEBUG;
    vd_log(lvl, "onnxruntime [%s]: %s", category ? category : "", message ? message : "");
}

static atomic_int malloc_policy_set;

vd_status vd_ort_malloc_policy(long long reuse_bytes, long long arenas, vd_error *err)
{
    atomic_store(&malloc_policy_set, 1);
    if (reuse_bytes < 0 || reuse_bytes > INT_MAX || arenas < 0 || arenas > INT_MAX)
        return vd_error_set(err, VD_ERR_INVALID,
                            "allocator: reuse %lld or arenas %lld out of range", reuse_bytes,
                            arenas);
#ifdef __GLIBC__
    if (arenas > 0 && mallopt(M_ARENA_MAX, (int)arenas) != 1)
        return vd_error_set(err, VD_ERR_INVALID, "allocator: glibc refused M_ARENA_MAX %lld",
                            arenas);
    if (reuse_bytes > 0 && (mallopt(M_MMAP_THRESHOLD, (int)reuse_bytes) != 1 ||
                            mallopt(M_TRIM_THRESHOLD, (int)reuse_bytes) != 1))
        return vd_error_set(err, VD_ERR_INVALID,
                            "allocator: glibc refused an mmap/trim threshold of %lld bytes",
                            reuse_bytes);
#endif
    return VD_OK;
}

const char *vd_ort_version(void)
{
    const OrtApiBase *base;
    return ort_base(&base, NULL) == VD_OK ? base->GetVersionString() : "unavailable";
}

vd_status vd_ort_env_new(int intra_threads, vd_ort_env **out, vd_error *err)
{
    *out = NULL;
    if (intra_threads < 0)
        return vd_error_set(err, VD_ERR_INVALID, "intra-op threads must be >= 0, got %d",
                            intra_threads);
    const OrtApiBase *base;
    vd_status rc = ort_base(&base, err);
    if (rc != VD_OK) return rc;
    const OrtApi *api = base->GetApi(ORT_API_VERSION);
    if (!api) {
        const char *v = base->GetVersionString();
        int major = 0, minor = 0;
        if (sscanf(v ? v : "", "%d.%d", &major, &minor) != 2) minor = -1;
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "the loaded ONNX Runtime library is version %s (C API version %d), "
                            "but visiond was built against C API version %d (ONNX Runtime 1.%d "
                            "or newer): install a matching libonnxruntime",
                            v ? v : "?", minor, ORT_API_VERSION, ORT_API_VERSION);
    }
    if (!atomic_load(&malloc_policy_set)) {
        vd_error perr;
        if (vd_ort_malloc_policy(VD_ORT_MALLOC_REUSE_DEF, 1, &perr) != VD_OK)
            VD_WARN("%s", perr.msg); /* slower, not wrong */
    }
    vd_ort_env *e = calloc(1, sizeof *e);
    if (!e) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    e->api = api;
    e->intra_threads = intra_threads;

    OrtThreadingOptions *tp = NULL;
    OrtStatus *st = api->CreateThreadingOptions(&tp);
    if (!st) st = api->SetGlobalIntraOpNumThreads(tp, intra_threads);
    if (!st) st = api->SetGlobalInterOpNumThreads(tp, 1);
    if (!st) st = api->SetGlobalSpinControl(tp, 0);
    if (!st)
        st = api->CreateEnvWithCustomLoggerAndGlobalThreadPools(
            ort_logger, NULL, ORT_LOGGING_LEVEL_WARNING, "visiond", tp, &e->env);
    if (tp) api->ReleaseThreadingOptions(tp);
    if (!st) st = api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &e->cpu);
    if (st) {
        vd_status rc = ort_fail(api, st, VD_ERR_MODEL, err, "environment");
        vd_ort_env_free(e);
        return rc;
    }
    *out = e;
    return VD_OK;
}

void vd_ort_env_free(vd_ort_env *env)
{
    if (!env) return;
    if (env->cpu) env->api->ReleaseMemoryInfo(env->cpu);
    if (env->env) env->api->ReleaseEnv(env->env);
    free(env);
}

/* Reads the name, element type and shape of input or output i. */
static OrtStatus *read_io(const OrtApi *api, OrtSession *s, int is_input, size_t i,
                          OrtAllocator *alloc, io_info *io)
{
    char *name = NULL;
    OrtStatus *st = is_input ? api->SessionGetInputName(s, i, alloc, &name)
                             : api->SessionGetOutputName(s, i, alloc, &name);
    if (st) return st;
    io->name = vd_strdup(name);
    OrtStatus *fst = api->AllocatorFree(alloc, name);
    if (fst) api->ReleaseStatus(fst);

    OrtTypeInfo *ti = NULL;
    st = is_input ? api->SessionGetInputTypeInfo(s, i, &ti)
                  : api->SessionGetOutputTypeInfo(s, i, &ti);
    if (st) return st;
    const OrtTensorTypeAndShapeInfo *tsi = NULL;
    st = api->CastTypeInfoToTensorInfo(ti, &tsi);
    if (!st && tsi) {
        size_t rank = 0;
        st = api->GetTensorElementType(tsi, &io->type);
        if (!st) st = api->GetDimensionsCount(tsi, &rank);
        if (!st && rank <= VD_TENSOR_MAX_RANK) {
            io->rank = rank;
            st = api->GetDimensions(tsi, io->shape, rank);
        } else if (!st) {
            io->rank = VD_TENSOR_MAX_RANK + 1; /* too deep: marked, refused at run */
        }
    } else if (!st) {
        io->type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; /* not a tensor (a sequence, a map) */
    }
    api->ReleaseTypeInfo(ti);
    return st;
}

vd_status vd_ort_session_open(vd_ort_env *env, const char *onnx_path, vd_ort_session **out,
                              vd_error *err)
{
    return vd_ort_session_open_threads(env, onnx_path, 0, out, err);
}

/* Session options: the env's shared pool (intra_threads 0) or a pool of its own. */
static OrtStatus *session_options(const OrtApi *api, int intra_threads, OrtSessionOptions **so)
{
    OrtStatus *st = api->CreateSessionOptions(so);
    if (!st && intra_threads == 0) st = api->DisablePerSessionThreads(*so);
    if (!st && intra_threads > 0) st = api->SetIntraOpNumThreads(*so, intra_threads);
    if (!st && intra_threads > 0) st = api->SetInterOpNumThreads(*so, 1);
    if (!st && intra_threads > 0)
        st = api->AddSessionConfigEntry(*so, "session.intra_op.allow_spinning", "0");
    if (!st) st = api->SetSessionGraphOptimizationLevel(*so, ORT_ENABLE_ALL);
    if (!st) st = api->SetSessionExecutionMode(*so, ORT_SEQUENTIAL);
    /* No CPU arena: ORT's arena keeps the largest batch's activations for good and grows
     * by doubling, so an idle model server sat on several hundred MB (mobilenet_v2 at
     * batch 32: 915 MB RSS with the arena). Plain malloc/free, with the heap policy of
     * vd_ort_malloc_policy, reuses them at the next run instead. */
    if (!st) st = api->DisableCpuMemArena(*so);
    return st;
}

vd_status vd_ort_session_open_threads(vd_ort_env *env, const char *onnx_path, int intra_threads,
                                      vd_ort_session **out, vd_error *err)
{
    if (intra_threads < 0)
        return vd_error_set(err, VD_ERR_INVALID, "intra-op threads must be >= 0, got %d",
                            intra_threads);
    *out = NULL;
    const OrtApi *api = env->api;
    vd_ort_session *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    s->env = env;

    OrtSessionOptions *so = NULL;
    OrtStatus *st = session_options(api, intra_threads, &so);
    if (!st) st = api->CreateSession(env->env, onnx_path, so, &s->session);
    if (so) api->ReleaseSessionOptions(so);
    if (st) {
        vd_status rc = ort_fail(api, st, VD_ERR_MODEL, err, "load");
        /* ORT's message usually names the file; make sure it is there. */
        if (!strstr(err ? err->msg : "", onnx_path) && err) {
            char tmp[VD_ERROR_MSG_MAX];
            vd_strlcpy(tmp, err->msg, sizeof tmp);
            vd_error_set(err, rc, "%.200s: %.300s", onnx_path, tmp);
        }
        vd_ort_session_close(s);
        return rc;
    }

    OrtAllocator *alloc = NULL;
    st = api->GetAllocatorWithDefaultOptions(&alloc);
    if (!st) st = api->SessionGetInputCount(s->session, &s->ninputs);
    if (!st) st = api->SessionGetOutputCount(s->session, &s->noutputs);
    if (!st) {
        s->inputs = calloc(s->ninputs ? s->ninputs : 1, sizeof *s->inputs);
        s->outputs = calloc(s->noutputs ? s->noutputs : 1, sizeof *s->outputs);
        if (!s->inputs || !s->outputs) {
            vd_ort_session_close(s);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
    }
    for (size_t i = 0; !st && i < s->ninputs; i++)
        st = read_io(api, s->session, 1, i, alloc, &s->inputs[i]);
    for (size_t i = 0; !st && i < s->noutputs; i++)
        st = read_io(api, s->session, 0, i, alloc, &s->outputs[i]);
    if (st) {
        vd_status rc = ort_fail(api, st, VD_ERR_MODEL, err, "inspect");
        vd_ort_session_close(s);
        return rc;
    }
    for (size_t i = 0; i < s->ninputs; i++)
        if (!s->inputs[i].name) {
            vd_ort_session_close(s);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
    for (size_t i = 0; i < s->noutputs; i++)
        if (!s->outputs[i].name) {
            vd_ort_session_close(s);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
    if (s->ninputs == 0 || s->noutputs == 0) {
        vd_ort_session_close(s);
        return vd_error_set(err, VD_ERR_MODEL, "%s: the graph has no inputs or no outputs",
                            onnx_path);
    }
    *out = s;
    return VD_OK;
}

void vd_ort_session_close(vd_ort_session *s)
{
    if (!s) return;
    if (s->session) s->env->api->ReleaseSession(s->session);
    for (size_t i = 0; s->inputs && i < s->ninputs; i++)
        free(s->inputs[i].name);
    for (size_t i = 0; s->outputs && i < s->noutputs; i++)
        free(s->outputs[i].name);
    free(s->inputs);
    free(s->outputs);
    free(s);
}

size_t vd_ort_session_ninputs(const vd_ort_session *s)
{
    return s->ninputs;
}

size_t vd_ort_session_noutputs(const vd_ort_session *s)
{
    return s->noutputs;
}

const char *vd_ort_session_input_name(const vd_ort_session *s, size_t i)
{
    return i < s->ninputs ? s->inputs[i].name : NULL;
}

const char *vd_ort_session_output_name(const vd_ort_session *s, size_t i)
{
    return i < s->noutputs ? s->outputs[i].name : NULL;
}

static void copy_shape(const io_info *io, int64_t *shape, size_t *rank)
{
    size_t r = io->rank > VD_TENSOR_MAX_RANK ? VD_TENSOR_MAX_RANK : io->rank;
    for (size_t k = 0; k < r; k++)
        shape[k] = io->shape[k] < 0 ? -1 : io->shape[k];
    *rank = r;
}

void vd_ort_session_input_shape(const vd_ort_session *s, size_t i, int64_t *shape, size_t *rank)
{
    *rank = 0;
    if (i < s->ninputs) copy_shape(&s->inputs[i], shape, rank);
}

void vd_ort_session_output_shape(const vd_ort_session *s, size_t i, int64_t *shape, size_t *rank)
{
    *rank = 0;
    if (i < s->noutputs) copy_shape(&s->outputs[i], shape, rank);
}

/* Formats a shape as "[1,256,256,3]" into buf. */
static const char *shape_str(const int64_t *shape, size_t rank, char *buf, size_t n)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < rank && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

/* Copies an ORT output value into a fresh float tensor, converting integer
 * and double outputs. */
static vd_status take_output(const OrtApi *api, OrtValue *v, const char *name, vd_tensor *t,
                             vd_error *err)
{
    OrtTensorTypeAndShapeInfo *info = NULL;
    OrtStatus *st = api->GetTensorTypeAndShape(v, &info);
    if (st) return ort_fail(api, st, VD_ERR_MODEL, err, "output");
    ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    size_t rank = 0;
    int64_t shape[VD_TENSOR_MAX_RANK];
    st = api->GetTensorElementType(info, &type);
    if (!st) st = api->GetDimensionsCount(info, &rank);
    if (!st && rank <= VD_TENSOR_MAX_RANK) st = api->GetDimensions(info, shape, rank);
    api->ReleaseTensorTypeAndShapeInfo(info);
    if (st) return ort_fail(api, st, VD_ERR_MODEL, err, "output");
    if (rank > VD_TENSOR_MAX_RANK)
        return vd_error_set(err, VD_ERR_UNSUPPORTED, "output '%s' has rank %zu > %d", name, rank,
                            VD_TENSOR_MAX_RANK);
    void *data = NULL;
    st = api->GetTensorMutableData(v, &data);
    if (st) return ort_fail(api, st, VD_ERR_MODEL, err, "output");
    vd_status rc = vd_tensor_alloc_uninit(t, VD_DTYPE_FLOAT32, shape, rank, err);
    if (rc != VD_OK) return rc;
    size_t n = vd_tensor_count(t);
    switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
        if (n) memcpy(t->data, data, n * sizeof(float));
        break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE:
        for (size_t i = 0; i < n; i++)
            t->data[i] = (float)((const double *)data)[i];
        break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
        for (size_t i = 0; i < n; i++)
            t->data[i] = (float)((const int64_t *)data)[i];
        break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
        for (size_t i = 0; i < n; i++)
            t->data[i] = (float)((const int32_t *)data)[i];
        break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8:
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL:
        for (size_t i = 0; i < n; i++)
            t->data[i] = (float)((const uint8_t *)data)[i];
        break;
    default:
        vd_tensor_free(t);
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "output '%s' has element type %d, which visiond cannot return", name,
                            (int)type);
    }
    return VD_OK;
}

int vd_ort_session_input_dtype(const vd_ort_session *s, size_t i, vd_dtype *dtype)
{
    if (i >= s->ninputs) return 0;
    switch (s->inputs[i].type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT:
        *dtype = VD_DTYPE_FLOAT32;
        return 1;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32:
        *dtype = VD_DTYPE_INT32;
        return 1;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64:
        *dtype = VD_DTYPE_INT64;
        return 1;
    default:
        return 0;
    }
}

static ONNXTensorElementDataType ort_type(vd_dtype d)
{
    return d == VD_DTYPE_INT32   ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32
           : d == VD_DTYPE_INT64 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64
                                 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}

/* Integer ids in the other integer type (to is INT32 or INT64). */
static vd_status convert_ids(const vd_tensor *in, vd_dtype to, const char *name, vd_tensor *out,
                             vd_error *err)
{
    vd_status rc = vd_tensor_alloc_dtype(out, to, in->shape, in->rank, err);
    size_t n = vd_tensor_count(in);
    for (size_t i = 0; rc == VD_OK && i < n; i++) {
        if (to == VD_DTYPE_INT64) {
            out->i64[i] = in->i32[i];
        } else if (in->i64[i] < INT32_MIN || in->i64[i] > INT32_MAX) {
            rc = vd_error_set(err, VD_ERR_INVALID, "input '%s': value %lld does not fit int32",
                              name, (long long)in->i64[i]);
        } else {
            out->i32[i] = (int32_t)in->i64[i];
        }
    }
    if (rc != VD_OK) vd_tensor_free(out);
    return rc;
}

vd_status vd_ort_session_run(vd_ort_session *s, const char *input_name, const vd_tensor *input,
                             const char *const *output_names, size_t noutputs, vd_tensor *outs,
                             vd_error *err)
{
    const OrtApi *api = s->env->api;
    char a[160], b[160];
    size_t in = 0;
    if (input_name && *input_name) {
        for (in = 0; in < s->ninputs; in++)
            if (strcmp(s->inputs[in].name, input_name) == 0) break;
        if (in == s->ninputs)
            return vd_error_set(err, VD_ERR_INVALID,
                                "the model has no input named '%s' (its first is '%s')", input_name,
                                s->inputs[0].name);
    }
    if (s->ninputs != 1)
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "the model has %zu inputs; only single-input models can be run",
                            s->ninputs);
    const io_info *ii = &s->inputs[in];
    vd_dtype want;
    if (!vd_ort_session_input_dtype(s, in, &want))
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "input '%s' has element type %d; only float32, int32 and int64 inputs "
                            "are supported",
                            ii->name, (int)ii->type);
    if ((want == VD_DTYPE_FLOAT32) != (input->dtype == VD_DTYPE_FLOAT32))
        return vd_error_set(err, VD_ERR_INVALID, "input '%s' takes %s values, not %s", ii->name,
                            want == VD_DTYPE_FLOAT32 ? "float32" : "integer (token id)",
                            vd_dtype_name(input->dtype));
    int match = input->rank == ii->rank && input->raw;
    for (size_t k = 0; match && k < ii->rank; k++)
        if (input->shape[k] <= 0 || (ii->shape[k] >= 0 && ii->shape[k] != input->shape[k]))
            match = 0;
    if (!match)
        return vd_error_set(err, VD_ERR_INVALID, "input '%s' has shape %s, the model wants %s",
                            ii->name, shape_str(input->shape, input->rank, a, sizeof a),
                            shape_str(ii->shape, ii->rank, b, sizeof b));

    size_t nout = output_names && noutputs ? noutputs : s->noutputs;
    const char **names = calloc(nout, sizeof *names);
    OrtValue **values = calloc(nout, sizeof *values);
    if (!names || !values) {
        free(names);
        free(values);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    vd_status rc = VD_OK;
    for (size_t i = 0; i < nout && rc == VD_OK; i++) {
        if (output_names && noutputs) {
            size_t k;
            for (k = 0; k < s->noutputs; k++)
                if (output_names[i] && strcmp(output_names[i], s->outputs[k].name) == 0) break;
            if (k == s->noutputs)
                rc = vd_error_set(err, VD_ERR_INVALID, "the model has no output named '%s'",
                                  output_names[i] ? output_names[i] : "(null)");
            else
                names[i] = s->outputs[k].name;
        } else {
            names[i] = s->outputs[i].name;
        }
    }
    for (size_t i = 0; i < nout; i++)
        memset(&outs[i], 0, sizeof outs[i]);

    OrtValue *in_value = NULL;
    vd_tensor conv = {0}; /* int32 <-> int64, as the graph declares */
    const vd_tensor *feed = input;
    if (rc == VD_OK && want != input->dtype) {
        rc = convert_ids(input, want, ii->name, &conv, err);
        feed = &conv;
    }
    if (rc == VD_OK) {
        OrtStatus *st =
            api->CreateTensorWithDataAsOrtValue(s->env->cpu, feed->raw, vd_tensor_bytes(feed),
                                                feed->shape, feed->rank, ort_type(want), &in_value);
        if (st) rc = ort_fail(api, st, VD_ERR_MODEL, err, "input");
    }
    if (rc == VD_OK) {
        const char *in_names[1] = {ii->name};
        const OrtValue *ins[1] = {in_value};
        OrtStatus *st = api->Run(s->session, NULL, in_names, ins, 1, names, nout, values);
        if (st) rc = ort_fail(api, st, VD_ERR_MODEL, err, "run");
    }
    for (size_t i = 0; i < nout && rc == VD_OK; i++)
        rc = take_output(api, values[i], names[i], &outs[i], err);
    if (rc != VD_OK)
        for (size_t i = 0; i < nout; i++)
            vd_tensor_free(&outs[i]);
    for (size_t i = 0; i < nout; i++)
        if (values[i]) api->ReleaseValue(values[i]);
    if (in_value) api->ReleaseValue(in_value);
    vd_tensor_free(&conv);
    free(names);
    free(values);
    return rc;
}
