/* test_fuzz_regress.c: regressions for bugs found by the fuzz harnesses
 * (tests/fuzz/) whose inputs are too large for the corpus. Each test says
 * which harness found what, and fails (or crashes under ASan) without the fix.
 * Small crash inputs go to tests/fuzz/corpus/NAME/ instead (ctest fuzz/NAME). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/convert.h"
#include "image/decode.h"
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

/* fuzz_image: a PPM or PGM header with a zero width or height made libvips set
 * out-of-range GObject properties, and GLib-GObject printed warnings on stderr
 * (decode.h promises nothing is printed). The decode fails and stderr stays empty. */
VD_TEST(zero_sized_pnm_is_an_error_and_prints_nothing)
{
    static const char *const inputs[] = {"P6\n0 0\n255\n", "P5\n0 7\n255\n", "P6\n5 0\n255\n"};
    char path[512];
    snprintf(path, sizeof path, "%s/stderr.txt", vd_test_tmpdir());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    vd_status st[3];
    char msgs[3][VD_ERROR_MSG_MAX];
    for (int i = 0; i < 3; i++) {
        vd_image img;
        vd_error err;
        vd_error_clear(&err);
        st[i] = vd_image_decode_buffer(inputs[i], strlen(inputs[i]), NULL, &img, &err);
        snprintf(msgs[i], sizeof msgs[i], "%s", err.msg);
        if (st[i] == VD_OK) vd_image_free(&img);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    for (int i = 0; i < 3; i++)
        if (st[i] != VD_ERR_IMAGE && st[i] != VD_ERR_LIMIT) {
            vd_test_fail_at(__FILE__, __LINE__,
                            "input %d: status %s (%s), want bad_image or too_large", i,
                            vd_status_name(st[i]), msgs[i]);
            return;
        }
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    if (sb.st_size) {
        char buf[300] = "";
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            buf[n] = 0;
            fclose(f);
        }
        printf("  printed: %s\n", buf);
    }
    CHECK_EQ_INT(sb.st_size, 0);
}

int main(void)
{
    vd_error err;
    if (vd_image_init("test_fuzz_regress", &err) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int rc = vd_test_run_all();
    vd_image_shutdown();
    return rc;
}
