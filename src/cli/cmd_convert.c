/* cmd_convert.c: `visiond convert`, a TensorFlow.js graph model to ONNX (+ metadata). */
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "convert/convert.h"
#include "core/util.h"
#include "infer/ort_session.h"
#include "infer/tensor.h"

static void help(FILE *f)
{
    fprintf(f, "usage: visiond convert --tfjs MODEL.json|model.min.js --output NODE[=NAME]... -o "
               "OUT.onnx [options]\n"
               "\n"
               "Converts a TensorFlow.js graph model to ONNX (opset 13). Only the nodes the\n"
               "outputs depend on are kept. The ONNX input is the TF placeholder: NHWC float32\n"
               "with a dynamic batch dimension \"N\". Prints a JSON summary on stdout.\n"
               "\n"
               "  --tfjs PATH          the model JSON (weights shards beside it), or a JS module\n"
               "                       exporting it (model.min.js with group*-shard*.min.js)\n"
               "  --output NODE[=NAME] a TF node to expose as a graph output (repeatable; an\n"
               "                       inner layer is fine). NODE is the full name or a unique\n"
               "                       suffix after '/'; NAME renames the ONNX output\n"
               "  --input-shape DIMS   e.g. 1,224,224,3: fills unknown input dims (dim 0 stays\n"
               "                       dynamic)\n"
               "  -o, --onnx OUT.onnx  where to write the ONNX model\n"
               "\n"
               "Metadata (docs/models.md), written when --meta is given:\n"
               "  --meta OUT.json      write a metadata file for the model server\n"
               "  --name NAME          the model's name (default: OUT's stem)\n"
               "  --task TASK          image_embedding, face_embedding, face_detection, other\n"
               "  --scale F            input scale (pixel * scale - mean) / std (default 1)\n"
               "  --mean A,B,C         per-channel mean (default 0,0,0)\n"
               "  --std A,B,C          per-channel std (default 1,1,1)\n"
               "  --l2-normalize       clients L2-normalise the embedding\n");
}

static int parse_floats(const char *s, double *out, int max)
{
    int n = 0;
    const char *p = s;
    while (*p && n < max) {
        char *e;
        out[n++] = strtod(p, &e);
        if (e == p) return -1;
        if (*e == ',')
            p = e + 1;
        else if (*e == 0)
            p = e;
        else
            return -1;
    }
    return *p ? -1 : n;
}

static json_t *dims_json(const vd_convert_value *v)
{
    if (v->rank < 0) return json_null();
    json_t *a = json_array();
    for (int i = 0; i < v->rank; i++)
        json_array_append_new(a, json_integer(v->dims[i]));
    return a;
}

static int write_meta(const char *meta_path, const char *onnx_path, const char *name,
                      const char *task, double scale, const double *mean, const double *std, int l2,
                      const vd_convert_info *info)
{
    const vd_convert_value *in = &info->inputs[0];
    if (in->rank != 4 || in->dims[1] <= 0 || in->dims[2] <= 0 || in->dims[3] <= 0)
        return vd_cli_fail("--meta needs a known NHWC input shape; give --input-shape");
    /* onnx: relative to the metadata file when both are in the same directory */
    char *a = vd_strdup(meta_path), *b = vd_strdup(onnx_path);
    char *onnx_b = vd_strdup(onnx_path);
    if (!a || !b || !onnx_b) {
        free(a);
        free(b);
        free(onnx_b);
        return vd_cli_fail("out of memory");
    }
    const char *onnx_ref = strcmp(dirname(a), dirname(b)) == 0 ? basename(onnx_b) : onnx_path;
    json_t *m = json_object();
    json_object_set_new(m, "name", json_string(name));
    json_object_set_new(m, "onnx", json_string(onnx_ref));
    json_object_set_new(m, "task", json_string(task));
    json_t *inp = json_object();
    json_object_set_new(inp, "name", json_string(in->name));
    json_object_set_new(inp, "layout", json_string("NHWC"));
    json_object_set_new(inp, "height", json_integer(in->dims[1]));
    json_object_set_new(inp, "width", json_integer(in->dims[2]));
    json_object_set_new(inp, "channels", json_integer(in->dims[3]));
    json_object_set_new(inp, "color", json_string("RGB"));
    json_object_set_new(inp, "resize", json_string("stretch"));
    json_object_set_new(inp, "scale", json_real(scale));
    json_t *jm = json_array(), *js = json_array();
    for (int i = 0; i < 3; i++) {
        json_array_append_new(jm, json_real(mean[i]));
        json_array_append_new(js, json_real(std[i]));
    }
    json_object_set_new(inp, "mean", jm);
    json_object_set_new(inp, "std", js);
    json_object_set_new(m, "input", inp);
    json_t *outs = json_array();
    for (size_t i = 0; i < info->noutputs; i++)
        json_array_append_new(outs, json_string(info->outputs[i].name));
    json_object_set_new(m, "outputs", outs);
    const vd_convert_value *o = &info->outputs[0];
    if (o->rank == 2 && o->dims[1] > 0) json_object_set_new(m, "dim", json_integer(o->dims[1]));
    json_object_set_new(m, "l2_normalize", json_boolean(l2));
    json_object_set_new(m, "max_batch", json_integer(16));
    json_object_set_new(m, "max_delay_us", json_integer(2000));
    json_object_set_new(m, "preload", json_false());
    int rc = json_dump_file(m, meta_path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(m);
    free(a);
    free(b);
    free(onnx_b);
    if (rc != 0) return vd_cli_fail("cannot write %s", meta_path);
    return VD_EXIT_OK;
}

/* Runs the converted model on a zero batch of 2 in ONNX Runtime; returns the
 * "check" object for the summary, or NULL with *why set. */
static json_t *check_model(const char *onnx, const vd_convert_info *info, char *why, size_t n)
{
    const vd_convert_value *in = &info->inputs[0];
    int64_t shape[VD_TENSOR_MAX_RANK];
    if (info->ninputs != 1 || in->rank < 1 || in->rank > VD_TENSOR_MAX_RANK) {
        snprintf(why, n, "--check needs one input of known rank");
        return NULL;
    }
    for (int i = 0; i < in->rank; i++) {
        shape[i] = i == 0 ? 2 : in->dims[i];
        if (shape[i] < 0) {
            snprintf(why, n, "--check needs a known input shape; give --input-shape");
            return NULL;
        }
    }
    vd_error err;
    vd_ort_env *env = NULL;
    vd_ort_session *s = NULL;
    vd_tensor x = {0}, outs[VD_CONVERT_MAX_OUTPUTS];
    memset(outs, 0, sizeof outs);
    const char *names[VD_CONVERT_MAX_OUTPUTS];
    for (size_t k = 0; k < info->noutputs; k++)
        names[k] = info->outputs[k].name;
    vd_status st = vd_tensor_alloc(&x, shape, (size_t)in->rank, &err);
    if (st == VD_OK) st = vd_ort_env_new(1, &env, &err);
    if (st == VD_OK) st = vd_ort_session_open(env, onnx, &s, &err);
    if (st == VD_OK) st = vd_ort_session_run(s, NULL, &x, names, info->noutputs, outs, &err);
    json_t *j = NULL;
    if (st == VD_OK) {
        j = json_object();
        json_object_set_new(j, "batch", json_integer(2));
        json_t *arr = json_array();
        for (size_t k = 0; k < info->noutputs; k++) {
            json_t *o = json_object(), *dims = json_array();
            int finite = 1;
            for (size_t i = 0; i < vd_tensor_count(&outs[k]); i++)
                finite &= isfinite(outs[k].data[i]) != 0;
            for (size_t i = 0; i < outs[k].rank; i++)
                json_array_append_new(dims, json_integer(outs[k].shape[i]));
            json_object_set_new(o, "name", json_string(names[k]));
            json_object_set_new(o, "shape", dims);
            json_object_set_new(o, "finite", json_boolean(finite));
            json_array_append_new(arr, o);
        }
        json_object_set_new(j, "outputs", arr);
    } else {
        snprintf(why, n, "%s", vd_error_text(&err));
    }
    for (size_t k = 0; k < VD_CONVERT_MAX_OUTPUTS; k++)
        vd_tensor_free(&outs[k]);
    vd_tensor_free(&x);
    vd_ort_session_close(s);
    vd_ort_env_free(env);
    return j;
}

/* What the command line asked for; parse_args fills it, run_convert acts on it. */
typedef struct {
    vd_convert_opts o;                   /* --tfjs, --output, --input-shape, -o */
    char *names[VD_CONVERT_MAX_OUTPUTS]; /* owned: the --output values, split at '=' */
    const char *meta, *name, *task;      /* --meta, --name (default: OUT's stem), --task */
    double scale, mean[3], std[3];       /* --scale, --mean, --std */
    int l2, check;                       /* --l2-normalize, --check */
    char stem[VD_CONVERT_NAME_MAX];
} convert_args;

static void convert_args_free(convert_args *a)
{
    for (size_t k = 0; k < VD_CONVERT_MAX_OUTPUTS; k++)
        free(a->names[k]);
}

static int takes_value(const char *a)
{
    static const char *const with_value[] = {"--tfjs",  "--output", "--input-shape", "-o",
                                             "--onnx",  "--meta",   "--name",        "--task",
                                             "--scale", "--mean",   "--std"};
    for (size_t i = 0; i < sizeof with_value / sizeof with_value[0]; i++)
        if (strcmp(a, with_value[i]) == 0) return 1;
    return 0;
}

/* --output NODE[=NAME]. Returns an exit code. */
static int parse_output(convert_args *a, const char *val)
{
    vd_convert_opts *o = &a->o;
    if (o->noutputs >= VD_CONVERT_MAX_OUTPUTS)
        return vd_cli_usage_error("convert", "at most %d --output", VD_CONVERT_MAX_OUTPUTS);
    char *copy = vd_strdup(val);
    if (!copy) return vd_cli_fail("out of memory");
    a->names[o->noutputs] = copy;
    char *eq = strchr(copy, '=');
    if (eq) {
        *eq = 0;
        if (!eq[1]) return vd_cli_usage_error("convert", "--output %s: empty NAME", val);
        o->output_names[o->noutputs] = eq + 1;
    }
    o->outputs[o->noutputs++] = copy;
    return VD_EXIT_OK;
}

/* The options with numbers: --input-shape, --scale, --mean, --std. Returns an
 * exit code. */
static int parse_numbers(convert_args *a, const char *opt, const char *val)
{
    if (strcmp(opt, "--input-shape") == 0) {
        double d[VD_CONVERT_MAX_RANK];
        int n = parse_floats(val, d, VD_CONVERT_MAX_RANK);
        if (n <= 0) return vd_cli_usage_error("convert", "bad --input-shape '%s'", val);
        for (int k = 0; k < n; k++)
            a->o.input_shape[k] = (int64_t)d[k];
        a->o.input_rank = n;
    } else if (strcmp(opt, "--scale") == 0) {
        if (parse_floats(val, &a->scale, 1) != 1)
            return vd_cli_usage_error("convert", "bad --scale '%s'", val);
    } else { /* --mean, --std */
        double *dst = opt[2] == 'm' ? a->mean : a->std;
        if (parse_floats(val, dst, 3) != 3)
            return vd_cli_usage_error("convert", "%s needs three numbers, got '%s'", opt, val);
    }
    return VD_EXIT_OK;
}

/* One option that takes a value. Returns an exit code. */
static int parse_opt(convert_args *a, const char *opt, const char *val)
{
    if (strcmp(opt, "--tfjs") == 0) {
        a->o.model_path = val;
    } else if (strcmp(opt, "--output") == 0) {
        return parse_output(a, val);
    } else if (strcmp(opt, "-o") == 0 || strcmp(opt, "--onnx") == 0) {
        a->o.onnx_path = val;
    } else if (strcmp(opt, "--meta") == 0) {
        a->meta = val;
    } else if (strcmp(opt, "--name") == 0) {
        a->name = val;
    } else if (strcmp(opt, "--task") == 0) {
        a->task = val;
        if (strcmp(val, "image_embedding") && strcmp(val, "face_embedding") &&
            strcmp(val, "face_detection") && strcmp(val, "other"))
            return vd_cli_usage_error("convert", "bad --task '%s'", val);
    } else {
        return parse_numbers(a, opt, val);
    }
    return VD_EXIT_OK;
}

/* Fills *a from argv (free it with convert_args_free whatever this returns).
 * Returns VD_EXIT_OK, or the exit code of an error (already printed). */
static int parse_args(int argc, char **argv, convert_args *a)
{
    memset(a, 0, sizeof *a);
    a->task = "other";
    a->scale = 1;
    a->std[0] = a->std[1] = a->std[2] = 1;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = VD_EXIT_OK;
        if (strcmp(opt, "--l2-normalize") == 0) {
            a->l2 = 1;
        } else if (strcmp(opt, "--check") == 0) {
            a->check = 1;
        } else if (!takes_value(opt)) {
            return vd_cli_usage_error("convert", "unknown option '%s'", opt);
        } else if (!val) {
            return vd_cli_usage_error("convert", "%s needs a value", opt);
        } else {
            rc = parse_opt(a, opt, val);
            i++;
        }
        if (rc != VD_EXIT_OK) return rc;
    }
    if (!a->o.model_path || !a->o.onnx_path || a->o.noutputs == 0)
        return vd_cli_usage_error("convert", "--tfjs, --output and -o are required");
    if (!a->name) {
        const char *base = strrchr(a->o.onnx_path, '/');
        vd_strlcpy(a->stem, base ? base + 1 : a->o.onnx_path, sizeof a->stem);
        char *dot = strrchr(a->stem, '.');
        if (dot && dot != a->stem) *dot = 0;
        a->name = a->stem;
    }
    return VD_EXIT_OK;
}

static json_t *values_json(const vd_convert_value *v, size_t n)
{
    json_t *arr = json_array();
    for (size_t k = 0; k < n; k++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(v[k].name));
        json_object_set_new(o, "shape", dims_json(&v[k]));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* Prints the JSON summary of a conversion; takes checked (may be NULL). */
static void print_summary(const convert_args *a, const vd_convert_info *info, json_t *checked)
{
    json_t *j = json_object();
    json_object_set_new(j, "onnx", json_string(a->o.onnx_path));
    if (a->meta) json_object_set_new(j, "meta", json_string(a->meta));
    json_object_set_new(j, "inputs", values_json(info->inputs, info->ninputs));
    json_object_set_new(j, "outputs", values_json(info->outputs, info->noutputs));
    json_object_set_new(j, "tf_nodes_used", json_integer((json_int_t)info->tf_nodes_used));
    json_object_set_new(j, "onnx_nodes", json_integer((json_int_t)info->onnx_nodes));
    json_object_set_new(j, "onnx_initializers", json_integer((json_int_t)info->onnx_initializers));
    if (checked) json_object_set_new(j, "check", checked);
    char *text = json_dumps(j, JSON_PRESERVE_ORDER);
    json_decref(j);
    if (text) printf("%s\n", text);
    free(text);
}

/* Converts, writes the metadata, checks and prints the summary as a asks.
 * Returns the exit code. */
static int run_convert(const convert_args *a)
{
    vd_convert_info info;
    vd_error err;
    if (vd_convert_tfjs(&a->o, &info, &err) != VD_OK)
        return vd_cli_fail("convert: %s", vd_error_text(&err));
    if (a->meta) {
        int rc = write_meta(a->meta, a->o.onnx_path, a->name, a->task, a->scale, a->mean, a->std,
                            a->l2, &info);
        if (rc != VD_EXIT_OK) return rc;
    }
    json_t *checked = NULL;
    if (a->check) {
        char why[VD_ERROR_MSG_MAX + 64];
        checked = check_model(a->o.onnx_path, &info, why, sizeof why);
        if (!checked) return vd_cli_fail("convert --check: %s", why);
    }
    print_summary(a, &info, checked);
    return VD_EXIT_OK;
}

int vd_cmd_convert(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        help(stdout);
        return VD_EXIT_OK;
    }
    convert_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc == VD_EXIT_OK) rc = run_convert(&a);
    convert_args_free(&a);
    return rc;
}
