/* cheap_model.c: writes a model whose inference costs next to nothing, for measuring what
 * the model server itself costs per request (docs/model-server.md, "Per-request cost").
 *
 *   cheap_model DIR   writes DIR/cheap_224.onnx and DIR/cheap_224.json
 *
 * The graph takes images as mobilenet_v2 and CLIP do ([N, 224, 224, 3] float32, 602 KB per
 * image) and answers their per-channel mean ([N, 3], ReduceMean): tens of microseconds of
 * compute, so a request's time is the wire, the copies and the hand-offs around the run, the
 * part a fast accelerator leaves over. */
#include <stdio.h>
#include <string.h>

#include "convert/onnx_writer.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: cheap_model DIR\n");
        return 2;
    }
    vd_onnx_graph g;
    vd_onnx_graph_init(&g);
    int64_t in_dims[4] = {-1, 224, 224, 3}, out_dims[2] = {-1, 3}, axes[2] = {1, 2};
    vd_onnx_graph_add_input(&g, "x", VD_ONNX_FLOAT, in_dims, 4, "N");
    vd_onnx_node n;
    vd_onnx_node_begin(&n, "ReduceMean", "mean");
    vd_onnx_node_input(&n, "x");
    vd_onnx_node_output(&n, "y");
    vd_onnx_node_attr_ints(&n, "axes", axes, 2);
    vd_onnx_node_attr_int(&n, "keepdims", 0);
    vd_onnx_graph_add_node(&g, &n);
    vd_onnx_graph_add_output(&g, "y", VD_ONNX_FLOAT, out_dims, 2, "N");
    char path[4096];
    snprintf(path, sizeof path, "%s/cheap_224.onnx", argv[1]);
    vd_error err;
    vd_status rc =
        vd_onnx_write(&g, "cheap_224", 13, "visiond-bench", "per-channel mean", path, &err);
    vd_onnx_graph_free(&g);
    if (rc != VD_OK) {
        fprintf(stderr, "cheap_model: %s\n", err.msg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/cheap_224.json", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "{\"name\":\"cheap_224\",\"onnx\":\"cheap_224.onnx\",\"task\":\"image_embedding\","
               "\"input\":{\"name\":\"x\",\"height\":224,\"width\":224,\"channels\":3},"
               "\"outputs\":[\"y\"],\"dim\":3,\"max_batch\":8,\"max_delay_us\":2000}\n");
    return fclose(f) == 0 ? 0 : 1;
}
