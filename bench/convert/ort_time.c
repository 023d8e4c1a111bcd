/* ort_time.c: runs an ONNX model in ONNX Runtime (visiond's in-process
 * session) on a float32 input file and prints the mean wall time of one run,
 * for bench/convert/run.sh.
 *
 *   ort_time MODEL.onnx INPUT.f32 N,H,W,C REPEATS THREADS
 *
 * Prints one JSON line: {"ms_per_run": ...}. One warm-up run comes first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "infer/ort_session.h"
#include "infer/tensor.h"

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: ort_time MODEL.onnx INPUT.f32 N,H,W,C REPEATS THREADS\n");
        return 2;
    }
    int64_t shape[4];
    if (sscanf(argv[3], "%ld,%ld,%ld,%ld", &shape[0], &shape[1], &shape[2], &shape[3]) != 4) {
        fprintf(stderr, "ort_time: bad shape %s\n", argv[3]);
        return 2;
    }
    int reps = atoi(argv[4]), threads = atoi(argv[5]);
    vd_error err;
    vd_tensor x;
    if (vd_tensor_alloc(&x, shape, 4, &err) != VD_OK) {
        fprintf(stderr, "ort_time: %s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(argv[2], "rb");
    size_t n = vd_tensor_count(&x);
    if (!f || fread(x.data, 4, n, f) != n) {
        fprintf(stderr, "ort_time: cannot read %zu floats from %s\n", n, argv[2]);
        return 1;
    }
    fclose(f);
    vd_ort_env *env;
    vd_ort_session *s;
    if (vd_ort_env_new(threads, &env, &err) != VD_OK ||
        vd_ort_session_open(env, argv[1], &s, &err) != VD_OK) {
        fprintf(stderr, "ort_time: %s\n", err.msg);
        return 1;
    }
    vd_tensor out;
    if (vd_ort_session_run(s, NULL, &x, NULL, 0, &out, &err) != VD_OK) {
        fprintf(stderr, "ort_time: %s\n", err.msg);
        return 1;
    }
    vd_tensor_free(&out);
    int64_t t0 = vd_mono_us();
    for (int r = 0; r < reps; r++) {
        if (vd_ort_session_run(s, NULL, &x, NULL, 0, &out, &err) != VD_OK) {
            fprintf(stderr, "ort_time: %s\n", err.msg);
            return 1;
        }
        vd_tensor_free(&out);
    }
    printf("{\"ms_per_run\": %.3f}\n", (vd_mono_us() - t0) / 1000.0 / (reps > 0 ? reps : 1));
    vd_tensor_free(&x);
    vd_ort_session_close(s);
    vd_ort_env_free(env);
    return 0;
}
