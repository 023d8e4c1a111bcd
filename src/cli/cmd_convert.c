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

int vd_cmd_convert(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        help(stdout);
        return VD_EXIT_OK;
    }
    vd_convert_opts o = {0};
    char *names[VD_CONVERT_MAX_OUTPUTS] = {0};
    const char *meta = NULL, *name = NULL, *task = "other";
    double scale = 1, mean[3] = {0, 0, 0}, std[3] = {1, 1, 1};
    int l2 = 0, check = 0, rc = VD_EXIT_USAGE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int takes =
            strcmp(a, "--tfjs") == 0 || strcmp(a, "--output") == 0 ||
            strcmp(a, "--input-shape") == 0 || strcmp(a, "-o") == 0 || strcmp(a, "--onnx") == 0 ||
            strcmp(a, "--meta") == 0 || strcmp(a, "--name") == 0 || strcmp(a, "--task") == 0 ||
            strcmp(a, "--scale") == 0 || strcmp(a, "--mean") == 0 || strcmp(a, "--std") == 0;
        if (takes && !val) {
            vd_cli_usage_error("convert", "%s needs a value", a);
            goto out;
        }
        if (strcmp(a, "--tfjs") == 0) {
            o.model_path = val;
        } else if (strcmp(a, "--output") == 0) {
            if (o.noutputs >= VD_CONVERT_MAX_OUTPUTS) {
                vd_cli_usage_error("convert", "at most %d --output", VD_CONVERT_MAX_OUTPUTS);
                goto out;
            }
            char *copy = vd_strdup(val);
            if (!copy) {
                rc = vd_cli_fail("out of memory");
                goto out;
            }
            names[o.noutputs] = copy;
            char *eq = strchr(copy, '=');
            if (eq) {
                *eq = 0;
                if (!eq[1]) {
                    vd_cli_usage_error("convert", "--output %s: empty NAME", val);
                    goto out;
                }
                o.output_names[o.noutputs] = eq + 1;
            }
            o.outputs[o.noutputs++] = copy;
        } else if (strcmp(a, "--input-shape") == 0) {
            double d[VD_CONVERT_MAX_RANK];
            int n = parse_floats(val, d, VD_CONVERT_MAX_RANK);
            if (n <= 0) {
                vd_cli_usage_error("convert", "bad --input-shape '%s'", val);
                goto out;
            }
            for (int k = 0; k < n; k++)
                o.input_shape[k] = (int64_t)d[k];
            o.input_rank = n;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--onnx") == 0) {
            o.onnx_path = val;
        } else if (strcmp(a, "--meta") == 0) {
            meta = val;
        } else if (strcmp(a, "--name") == 0) {
            name = val;
        } else if (strcmp(a, "--task") == 0) {
            task = val;
            if (strcmp(task, "image_embedding") && strcmp(task, "face_embedding") &&
                strcmp(task, "face_detection") && strcmp(task, "other")) {
                vd_cli_usage_error("convert", "bad --task '%s'", val);
                goto out;
            }
        } else if (strcmp(a, "--scale") == 0) {
            if (parse_floats(val, &scale, 1) != 1) {
                vd_cli_usage_error("convert", "bad --scale '%s'", val);
                goto out;
            }
        } else if (strcmp(a, "--mean") == 0 || strcmp(a, "--std") == 0) {
            double *dst = a[2] == 'm' ? mean : std;
            if (parse_floats(val, dst, 3) != 3) {
                vd_cli_usage_error("convert", "%s needs three numbers, got '%s'", a, val);
                goto out;
            }
        } else if (strcmp(a, "--l2-normalize") == 0) {
            l2 = 1;
            continue;
        } else if (strcmp(a, "--check") == 0) {
            check = 1;
            continue;
        } else {
            vd_cli_usage_error("convert", "unknown option '%s'", a);
            goto out;
        }
        i++;
    }
    if (!o.model_path || !o.onnx_path || o.noutputs == 0) {
        vd_cli_usage_error("convert", "--tfjs, --output and -o are required");
        goto out;
    }
    char stem[VD_CONVERT_NAME_MAX];
    if (!name) {
        const char *base = strrchr(o.onnx_path, '/');
        vd_strlcpy(stem, base ? base + 1 : o.onnx_path, sizeof stem);
        char *dot = strrchr(stem, '.');
        if (dot && dot != stem) *dot = 0;
        name = stem;
    }

    vd_convert_info info;
    vd_error err;
    if (vd_convert_tfjs(&o, &info, &err) != VD_OK) {
        rc = vd_cli_fail("convert: %s", vd_error_text(&err));
        goto out;
    }
    if (meta) {
        rc = write_meta(meta, o.onnx_path, name, task, scale, mean, std, l2, &info);
        if (rc != VD_EXIT_OK) goto out;
    }
    json_t *checked = NULL;
    if (check) {
        char why[VD_ERROR_MSG_MAX + 64];
        checked = check_model(o.onnx_path, &info, why, sizeof why);
        if (!checked) {
            rc = vd_cli_fail("convert --check: %s", why);
            goto out;
        }
    }
    json_t *j = json_object();
    json_object_set_new(j, "onnx", json_string(o.onnx_path));
    if (meta) json_object_set_new(j, "meta", json_string(meta));
    json_t *ins = json_array(), *outs = json_array();
    for (size_t k = 0; k < info.ninputs; k++) {
        json_t *v = json_object();
        json_object_set_new(v, "name", json_string(info.inputs[k].name));
        json_object_set_new(v, "shape", dims_json(&info.inputs[k]));
        json_array_append_new(ins, v);
    }
    for (size_t k = 0; k < info.noutputs; k++) {
        json_t *v = json_object();
        json_object_set_new(v, "name", json_string(info.outputs[k].name));
        json_object_set_new(v, "shape", dims_json(&info.outputs[k]));
        json_array_append_new(outs, v);
    }
    json_object_set_new(j, "inputs", ins);
    json_object_set_new(j, "outputs", outs);
    json_object_set_new(j, "tf_nodes_used", json_integer((json_int_t)info.tf_nodes_used));
    json_object_set_new(j, "onnx_nodes", json_integer((json_int_t)info.onnx_nodes));
    json_object_set_new(j, "onnx_initializers", json_integer((json_int_t)info.onnx_initializers));
    if (checked) json_object_set_new(j, "check", checked);
    char *text = json_dumps(j, JSON_PRESERVE_ORDER);
    json_decref(j);
    if (text) printf("%s\n", text);
    free(text);
    rc = VD_EXIT_OK;
out:
    for (size_t k = 0; k < VD_CONVERT_MAX_OUTPUTS; k++)
        free(names[k]);
    return rc;
}
