/* test_fuzz_regress.c: regressions for bugs found by the fuzz harnesses
 * (tests/fuzz/) whose inputs are too large for the corpus. Each test says
 * which harness found what, and fails (or crashes under ASan) without the fix.
 * Small crash inputs go to tests/fuzz/corpus/NAME/ instead (ctest fuzz/NAME). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert.h"
#include "vdtest.h"

/* Writes a model.json whose output is a chain of n Identity nodes above a Placeholder. */
static void write_chain(const char *path, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs("{\"format\":\"graph-model\",\"modelTopology\":{\"node\":[{\"name\":\"x\",\"op\":"
          "\"Placeholder\",\"attr\":{\"shape\":{\"shape\":{\"dim\":[{\"size\":\"-1\"},{\"size\":"
          "\"2\"}]}},\"dtype\":{\"type\":\"DT_FLOAT\"}}}",
          f);
    for (int i = 0; i < n; i++) {
        if (i == 0)
            fprintf(f, ",{\"name\":\"n0\",\"op\":\"Identity\",\"input\":[\"x\"]}");
        else
            fprintf(f, ",{\"name\":\"n%d\",\"op\":\"Identity\",\"input\":[\"n%d\"]}", i, i - 1);
    }
    fputs("]},\"weightsManifest\":[{\"paths\":[],\"weights\":[]}]}", f);
    fclose(f);
}

/* fuzz_convert: a 20000-node chain overflowed the stack of the recursive
 * graph walk in a sanitized build (the depth limit was 20000). Now the limit
 * is 4000 and a deeper graph is a clean VD_ERR_LIMIT; a chain within it converts. */
VD_TEST(convert_deep_chain_is_a_limit_not_a_stack_overflow)
{
    const char *dir = vd_test_tmpdir();
    char model[512], onnx[512];
    snprintf(model, sizeof model, "%s/deep.json", dir);
    snprintf(onnx, sizeof onnx, "%s/deep.onnx", dir);
    vd_error err;

    write_chain(model, 25000);
    vd_convert_opts o = {.model_path = model, .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = "n24999";
    CHECK_EQ_INT(vd_convert_tfjs(&o, NULL, &err), VD_ERR_LIMIT);
    printf("  25000 deep: %s\n", err.msg);
    CHECK(strstr(err.msg, "deep") != NULL);

    write_chain(model, 3000);
    o.outputs[0] = "n2999";
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    CHECK_EQ_INT(info.noutputs, 1);
    CHECK_EQ_INT(info.tf_nodes_used, 3001);
}

int main(void)
{
    return vd_test_run_all();
}
