/* bench_embed.c: does decoding ahead on a thread pay? vd_embed_paths (decode
 * thread one batch ahead of inference) against its peer, the same steps done
 * one after the other (read, decode with shrink-on-load, preprocess a batch,
 * then run it), in the same run, on the face-api photos (JPEGs of 0.2-2 Mpx)
 * repeated to N files, no cache, the in-process ONNX Runtime runner (or the
 * model server at $MODEL_SERVER, as work-horses use it). Prints
 * ms per image for both and the ratio serial / pipelined (> 1: the pipeline
 * is faster).
 *   [MODEL_SERVER=unix:PATH] bench/pipeline/run.sh [N] [MODEL] [THREADS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "image/decode.h"
#include "image/preprocess.h"
#include "infer/runner.h"
#include "infer/runner_client.h"
#include "pipeline/embed.h"

#define DEMO "/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo"

static double serial(vd_runner *r, const char *model, const char **paths, size_t n, size_t bsz,
                     double *dec_ms, double *inf_ms)
{
    vd_model_meta m;
    vd_error err;
    if (vd_runner_meta(r, model, &m, &err) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    size_t per = vd_model_meta_input_len(&m);
    int64_t t0 = vd_mono_us(), dec = 0, inf = 0;
    for (size_t s = 0; s < n; s += bsz) {
        size_t k = n - s < bsz ? n - s : bsz;
        int64_t shape[4] = {(int64_t)k, m.height, m.width, m.channels};
        vd_tensor in;
        int64_t a = vd_mono_us();
        vd_tensor_alloc(&in, shape, 4, &err);
        for (size_t i = 0; i < k; i++) {
            uint8_t *data;
            size_t len;
            vd_image img;
            vd_decode_opts o = {.target_width = m.width, .target_height = m.height};
            if (vd_image_read_file(paths[s + i], 0, &data, &len, &err) != VD_OK ||
                vd_image_decode_buffer(data, len, &o, &img, &err) != VD_OK) {
                fprintf(stderr, "%s\n", err.msg);
                exit(1);
            }
            uint8_t dig[VD_SHA256_LEN];
            vd_sha256(data, len, dig); /* the pipeline hashes too */
            free(data);
            vd_preprocess_into(&img, &m, in.data + i * per, NULL, &err);
            vd_image_free(&img);
        }
        int64_t b = vd_mono_us();
        vd_tensor outs[VD_MODEL_MAX_OUTPUT];
        size_t nouts;
        if (vd_runner_run(r, model, &in, outs, VD_MODEL_MAX_OUTPUT, &nouts, &err) != VD_OK) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        inf += vd_mono_us() - b;
        dec += b - a;
        for (size_t o = 0; o < nouts; o++)
            vd_tensor_free(&outs[o]);
        vd_tensor_free(&in);
    }
    *dec_ms = dec / 1e3;
    *inf_ms = inf / 1e3;
    return (vd_mono_us() - t0) / 1e3;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atoi(argv[1]) : 48;
    const char *model = argc > 2 ? argv[2] : "mobilenet_v2";
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    const char *models = getenv("MODELS") ? getenv("MODELS") : "data/models";
    vd_error err;
    if (vd_image_init(argv[0], &err) != VD_OK) return 1;
    vd_runner *r;
    const char *server = getenv("MODEL_SERVER"); /* e.g. unix:data/model.sock */
    if ((server ? vd_runner_client_new(server, NULL, 600000, &r, &err)
                : vd_runner_ort_new(models, threads, &r, &err)) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char(*names)[512] = calloc(n, 512);
    const char **paths = calloc(n, sizeof *paths);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], 512, "%s/sample%zu.jpg", DEMO, 1 + i % 6);
        paths[i] = names[i];
    }
    vd_model_meta m;
    vd_runner_meta(r, model, &m, &err);
    size_t bsz = m.max_batch > 0 && m.max_batch < 32 ? (size_t)m.max_batch : 16;
    /* warm up: load the model, fault the files into the page cache */
    double d, i;
    serial(r, model, paths, bsz < n ? bsz : n, bsz, &d, &i);

    double ser = serial(r, model, paths, n, bsz, &d, &i);
    vd_embed_item *items = calloc(n, sizeof *items);
    vd_embed_opts o = {.runner = r, .model = model, .batch = bsz};
    vd_embed_stats st;
    int dim;
    int64_t t0 = vd_mono_us();
    if (vd_embed_paths(&o, paths, n, items, &dim, &st, &err) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double pip = (vd_mono_us() - t0) / 1e3;
    vd_embed_items_clear(items, n);
    printf("%zu images, %s, batch %zu, %s\n", n, model, bsz,
           server ? "through the model server" : "in-process ONNX Runtime");
    printf("serial     %7.1f ms/image  (decode+prep %.1f, infer %.1f)\n", ser / n, d / n, i / n);
    printf("pipelined  %7.1f ms/image  (decode thread %.1f, infer %.1f, overlapping)\n", pip / n,
           st.decode_us / 1e3 / n, st.infer_us / 1e3 / n);
    printf("ratio serial/pipelined: %.2f\n", ser / pip);
    /* The yardstick: the embedding path against the engine alone on
     * tensors already decoded (the serial run's inference part), and decoding alone. */
    printf("raw ONNX Runtime on decoded tensors: %7.1f images/s\n", 1e3 * n / i);
    printf("embedding (decode overlapped):       %7.1f images/s\n", 1e3 * n / pip);
    printf("decode + preprocess only:            %7.1f images/s\n", 1e3 * n / d);
    printf("ratio embedding/raw: %.2f (target >= 0.85)\n", i / pip);
    free(items);
    free(paths);
    free(names);
    vd_runner_free(r);
    vd_image_shutdown();
    return 0;
}
