/* fuzz_convert.c: the TFJS converter's readers (convert/tfjs.h, convert/jsmodule.h)
 * and the conversion behind them (convert/convert.h).
 *
 * The first byte picks the target, the rest is its input:
 *   0  vd_jsmodule_object_json   (a JS module exporting the model JSON)
 *   1  vd_jsmodule_base64_bytes  (a JS module exporting a base64 shard)
 *   2  vd_base64_decode
 *   3  a model.json + a w.bin shard: the bytes up to the first NUL are the model
 *      JSON, the bytes after it the shard. vd_tfjs_load reads them (model JSON,
 *      weights manifest, dequantisation); when that works, vd_convert_tfjs
 *      converts the graph up to its last node (and up to its first) to ONNX.
 *   4  as 3, packaged as model.min.js + group1-shard1of1.min.js (JS modules).
 * Files go to a private temporary directory, removed at exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert.h"
#include "convert/jsmodule.h"
#include "convert/tfjs.h"

static char g_dir[256];

static void check(int cond)
{
    if (!cond) abort();
}

static void cleanup(void)
{
    const char *names[] = {"model.json", "w.bin", "model.min.js", "group1-shard1of1.min.js",
                           "m.onnx"};
    char path[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", g_dir, names[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_convert.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_dir)) abort();
    atexit(cleanup);
    return 0;
}

static void write_file(const char *name, const uint8_t *data, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

static void convert_up_to(const char *model_path, const char *node)
{
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", g_dir);
    vd_convert_opts o = {.model_path = model_path, .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = node;
    vd_convert_info info;
    vd_error e;
    if (vd_convert_tfjs(&o, &info, &e) == VD_OK) {
        check(info.noutputs == 1);
        check(info.ninputs <= VD_CONVERT_MAX_OUTPUTS);
    }
}

static void model_files(const uint8_t *data, size_t size, int js)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t jlen = nul ? (size_t)(nul - data) : size;
    const uint8_t *shard = nul ? nul + 1 : data + size;
    size_t slen = size - jlen - (nul ? 1 : 0);
    const char *model_name = js ? "model.min.js" : "model.json";
    write_file(model_name, data, jlen);
    write_file(js ? "group1-shard1of1.min.js" : "w.bin", shard, slen);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, model_name);
    vd_tfjs_model *m = NULL;
    vd_error e;
    if (vd_tfjs_load(path, &m, &e) != VD_OK) {
        check(m == NULL);
        return;
    }
    for (size_t i = 0; i < m->nweights; i++) {
        const vd_tfjs_weight *w = &m->weights[i];
        check(w->rank >= 0 && w->rank <= VD_TFJS_MAX_RANK);
        check(w->data != NULL);
        size_t count = 1;
        for (int d = 0; d < w->rank; d++)
            count *= (size_t)w->shape[d];
        check(count == w->count);
        /* every element is readable (ASan checks the allocation's size) */
        volatile uint8_t sink = 0;
        if (w->count) sink ^= ((const uint8_t *)w->data)[w->count * 4 - 1];
        (void)sink;
    }
    char first[VD_CONVERT_NAME_MAX] = "", last[VD_CONVERT_NAME_MAX] = "";
    if (m->nnodes) {
        snprintf(first, sizeof first, "%s", m->nodes[0].name);
        snprintf(last, sizeof last, "%s", m->nodes[m->nnodes - 1].name);
    }
    vd_tfjs_free(m);
    if (last[0]) convert_up_to(path, last);
    if (first[0] && strcmp(first, last) != 0) convert_up_to(path, first);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0] % 5;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    vd_error e;
    switch (mode) {
    case 0: {
        char *json = NULL;
        if (vd_jsmodule_object_json(text, n, &json, &e) == VD_OK) {
            check(json != NULL);
            free(json);
        } else {
            check(json == NULL);
        }
        break;
    }
    case 1:
    case 2: {
        uint8_t *bytes = NULL;
        size_t len = 0;
        vd_status rc = mode == 1 ? vd_jsmodule_base64_bytes(text, n, &bytes, &len, &e)
                                 : vd_base64_decode(text, n, &bytes, &len, &e);
        if (rc == VD_OK) {
            check(bytes != NULL && len <= n / 4 * 3 + 3);
            if (len) bytes[len - 1] ^= 1; /* writable to its end */
        }
        free(bytes);
        break;
    }
    default:
        model_files(data + 1, n, mode == 4);
    }
    return 0;
}
