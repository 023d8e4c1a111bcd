/* test_model_meta.c: metadata files (docs/models.md): defaults, the shipped
 * files, and one specific error per bad key. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/err.h"
#include "infer/model_folder.h"
#include "infer/model_meta.h"
#include "vdtest.h"

static const char *doc_example =
    "{\"name\": \"mobilenet_v2\", \"onnx\": \"mobilenet_v2.onnx\", \"task\": \"image_embedding\","
    " \"input\": {\"name\": \"input\", \"layout\": \"NHWC\", \"height\": 224, \"width\": 224,"
    " \"channels\": 3, \"color\": \"RGB\", \"resize\": \"stretch\", \"scale\": 0.00392156862745098,"
    " \"mean\": [0, 0, 0], \"std\": [1, 1, 1]}, \"outputs\": [\"embedding\"], \"dim\": 1280,"
    " \"l2_normalize\": true, \"max_batch\": 32, \"max_delay_us\": 2000, \"preload\": false}";

VD_TEST(documented_example_parses)
{
    vd_error err;
    vd_model_meta m;
    CHECK_OK(vd_model_meta_parse(doc_example, "/data/models", &m, &err));
    CHECK_EQ_STR(m.name, "mobilenet_v2");
    CHECK_EQ_STR(m.onnx_path, "/data/models/mobilenet_v2.onnx");
    CHECK_EQ_INT(m.task, VD_TASK_IMAGE_EMBEDDING);
    CHECK_EQ_STR(vd_model_task_name(m.task), "image_embedding");
    CHECK_EQ_STR(m.input_name, "input");
    CHECK_EQ_INT(m.layout, VD_LAYOUT_NHWC);
    CHECK_EQ_INT(m.height, 224);
    CHECK_EQ_INT(m.width, 224);
    CHECK_EQ_INT(m.channels, 3);
    CHECK(m.scale > 0.00392f && m.scale < 0.00393f);
    CHECK(m.std[2] == 1.0f && m.mean[1] == 0.0f);
    CHECK_EQ_INT(m.noutputs, 1);
    CHECK_EQ_STR(m.outputs[0], "embedding");
    CHECK_EQ_INT(m.dim, 1280);
    CHECK_EQ_INT(m.l2_normalize, 1);
    CHECK_EQ_INT(m.max_batch, 32);
    CHECK_EQ_INT(m.max_delay_us, 2000);
    CHECK_EQ_INT(m.preload, 0);
    CHECK_EQ_INT(vd_model_meta_input_len(&m), 224 * 224 * 3);
}

VD_TEST(defaults_apply)
{
    vd_error err;
    vd_model_meta m;
    CHECK_OK(vd_model_meta_parse(
        "{\"name\":\"x\",\"input\":{\"height\":8,\"width\":4,\"channels\":1}}", NULL, &m, &err));
    CHECK_EQ_STR(m.onnx_path, "x.onnx");
    CHECK_EQ_INT(m.task, VD_TASK_OTHER);
    CHECK_EQ_STR(m.input_name, "");
    CHECK_EQ_INT(m.layout, VD_LAYOUT_NHWC);
    CHECK_EQ_INT(m.color, VD_COLOR_RGB);
    CHECK_EQ_INT(m.resize, VD_RESIZE_STRETCH);
    CHECK(m.scale == 1.0f && m.mean[0] == 0.0f && m.std[0] == 1.0f);
    CHECK_EQ_INT(m.noutputs, 0);
    CHECK_EQ_INT(m.dim, 0);
    CHECK_EQ_INT(m.max_batch, 16);
    CHECK_EQ_INT(m.max_delay_us, 2000);
    CHECK_EQ_INT(vd_model_meta_input_len(&m), 32);
    /* one mean for every channel */
    CHECK_OK(vd_model_meta_parse("{\"name\":\"y\",\"onnx\":\"/abs/y.onnx\",\"input\":{\"height\":2,"
                                 "\"width\":2,\"channels\":3,\"mean\":[0.5],\"std\":[2]}}",
                                 "/ignored", &m, &err));
    CHECK_EQ_STR(m.onnx_path, "/abs/y.onnx");
    CHECK(m.mean[2] == 0.5f && m.std[1] == 2.0f);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

VD_TEST(load_defaults_name_to_stem_and_resolves_onnx)
{
    vd_error err;
    vd_model_meta m;
    char path[512], want[512];
    const char *tmp = vd_test_tmpdir();
    snprintf(path, sizeof path, "%s/arcface.json", tmp);
    write_file(path, "{\"input\":{\"height\":112,\"width\":112,\"channels\":3}, \"x-note\": 1}");
    CHECK_OK(vd_model_meta_load(path, &m, &err));
    CHECK_EQ_STR(m.name, "arcface");
    snprintf(want, sizeof want, "%s/arcface.onnx", tmp);
    CHECK_EQ_STR(m.onnx_path, want);
    CHECK_EQ_INT(vd_model_meta_load("/nonexistent/x.json", &m, &err), VD_ERR_NOT_FOUND);
    snprintf(path, sizeof path, "%s/broken.json", tmp);
    write_file(path, "{\"input\": ");
    CHECK_EQ_INT(vd_model_meta_load(path, &m, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "broken.json") != NULL);
    snprintf(path, sizeof path, "%s/bad.json", tmp);
    write_file(path, "{\"input\":{\"height\":112,\"width\":112,\"channels\":3},\"max_batch\":0}");
    CHECK_EQ_INT(vd_model_meta_load(path, &m, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "bad.json") && strstr(err.msg, "max_batch"));
}

VD_TEST(shipped_blazeface_files_parse)
{
    vd_error err;
    vd_model_meta m;
    CHECK_OK(vd_model_meta_load(VISIOND_SOURCE_DIR "/models/blazeface_back.json", &m, &err));
    CHECK_EQ_STR(m.name, "blazeface_back");
    CHECK_EQ_INT(m.task, VD_TASK_FACE_DETECTION);
    CHECK_EQ_STR(m.input_name, "input:0");
    CHECK_EQ_INT(m.height, 256);
    CHECK_EQ_INT(m.noutputs, 4);
    CHECK_EQ_STR(m.outputs[0], "Identity:0");
    /* x/127.5 - 1 written as (x * scale - mean) / std */
    CHECK(m.scale * 255.0f - m.mean[0] > 0.999f && m.scale * 255.0f - m.mean[0] < 1.001f);
    CHECK(0 * m.scale - m.mean[0] == -1.0f);
    CHECK_OK(vd_model_meta_load(VISIOND_SOURCE_DIR "/models/blazeface_front.json", &m, &err));
    CHECK_EQ_STR(m.name, "blazeface_front");
    CHECK_EQ_INT(m.width, 128);
}

/* Each bad document must fail with VD_ERR_INVALID and a message naming the key. */
VD_TEST(bad_keys_are_named)
{
    static const struct {
        const char *json, *key;
    } cases[] = {
        {"[1,2]", "object"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"nmae\":1}", "nmae"},
        {"{\"input\":{\"height\":1,\"width\":1,\"channels\":3}}", "name"},
        {"{\"name\":\"has space\",\"input\":{\"height\":1,\"width\":1,\"channels\":3}}", "name"},
        {"{\"name\":\"\",\"input\":{\"height\":1,\"width\":1,\"channels\":3}}", "name"},
        {"{\"name\":\"a234567890123456789012345678901234567890123456789012345678901234\","
         "\"input\":{\"height\":1,\"width\":1,\"channels\":3}}",
         "name"},
        {"{\"name\":7,\"input\":{\"height\":1,\"width\":1,\"channels\":3}}", "name"},
        {"{\"name\":\"x\",\"onnx\":\"\",\"input\":{\"height\":1,\"width\":1,\"channels\":3}}",
         "onnx"},
        {"{\"name\":\"x\",\"onnx\":3,\"input\":{\"height\":1,\"width\":1,\"channels\":3}}", "onnx"},
        {"{\"name\":\"x\",\"task\":\"classify\",\"input\":{\"height\":1,\"width\":1,\"channels\":3}"
         "}",
         "task"},
        {"{\"name\":\"x\"}", "input"},
        {"{\"name\":\"x\",\"input\":[]}", "input"},
        {"{\"name\":\"x\",\"input\":{\"width\":1,\"channels\":3}}", "input.height"},
        {"{\"name\":\"x\",\"input\":{\"height\":0,\"width\":1,\"channels\":3}}", "input.height"},
        {"{\"name\":\"x\",\"input\":{\"height\":1.5,\"width\":1,\"channels\":3}}", "input.height"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":\"1\",\"channels\":3}}", "input.width"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":2}}", "input.channels"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":4}}", "input.channels"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3,\"layout\":\"HWC\"}}",
         "input.layout"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3,\"color\":\"rgb\"}}",
         "input.color"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3,\"resize\":\"fit\"}}",
         "input.resize"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3,\"scale\":\"1\"}}",
         "input.scale"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3,\"mean\":[1,2]}}",
         "input.mean"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3,\"mean\":[1,2,\"3\"]}"
         "}",
         "input.mean[2]"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3,\"std\":[1,0,1]}}",
         "input.std[1]"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3,\"sclae\":1}}",
         "input.sclae"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"outputs\":[]}",
         "outputs"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"outputs\":\"a\"}",
         "outputs"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"outputs\":[\"a\",2]"
         "}",
         "outputs[1]"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},"
         "\"outputs\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\","
         "\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}",
         "outputs"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"dim\":-3}", "dim"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"l2_normalize\":1}",
         "l2_normalize"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"preload\":\"yes\"}",
         "preload"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"max_batch\":0}",
         "max_batch"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"max_batch\":"
         "100000}",
         "max_batch"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"max_delay_us\":-1}",
         "max_delay_us"},
        {"{\"name\":\"x\",\"input\":{\"height\":1,\"width\":1,\"channels\":3},\"description\":[]}",
         "description"},
        {"{\"name\":\"x\",\"name\":\"y\",\"input\":{\"height\":1,\"width\":1,\"channels\":3}}",
         "name"},
        {"{\"name\":", "JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vd_error err;
        vd_model_meta m;
        vd_status rc = vd_model_meta_parse(cases[i].json, NULL, &m, &err);
        if (rc != VD_ERR_INVALID || !strstr(err.msg, cases[i].key)) {
            vd_test_fail_at(__FILE__, __LINE__, "case %zu (%s): rc %d, message \"%s\", want key %s",
                            i, cases[i].json, rc, err.msg, cases[i].key);
            return;
        }
    }
}

/* Issue 19: the embedding dim from the graph, a declared dim checked against
 * it, an output that is not [batch, dim] refused, an open dim learned at the
 * first run and checked after. */
VD_TEST(dim_from_the_graph_and_from_the_first_run)
{
    vd_error err;
    vd_model_meta m;
    CHECK_OK(vd_model_meta_parse("{\"name\": \"clip\", \"task\": \"image_embedding\", \"input\": "
                                 "{\"height\": 224, \"width\": 224, \"channels\": 3}}",
                                 NULL, &m, &err));
    CHECK_EQ_INT(m.dim, 0);
    int dim = -1;
    int64_t nd[2] = {-1, 32}, open[2] = {-1, -1}, r4[4] = {-1, 32, 1, 1};
    CHECK_OK(vd_model_meta_graph_dim(&m, "/m/clip.json", "embedding", nd, 2, &dim, &err));
    CHECK_EQ_INT(dim, 32);
    CHECK_OK(vd_model_meta_graph_dim(&m, "/m/clip.json", "embedding", open, 2, &dim, &err));
    CHECK_EQ_INT(dim, 0);
    CHECK_EQ_INT(vd_model_meta_graph_dim(&m, "/m/clip.json", "embedding", r4, 4, &dim, &err),
                 VD_ERR_MODEL);
    CHECK_EQ_STR(err.msg, "/m/clip.json: the image_embedding model's output 'embedding' is "
                          "[N,32,1,1]; an embedding output must be [batch, dim]");
    m.dim = 64;
    CHECK_EQ_INT(vd_model_meta_graph_dim(&m, "/m/clip.json", "embedding", nd, 2, &dim, &err),
                 VD_ERR_MODEL);
    CHECK_EQ_STR(
        err.msg,
        "/m/clip.json: dim 64 does not match the graph's output 'embedding' [N,32] (dim 32)");
    CHECK_OK(vd_model_meta_graph_dim(&m, "/m/clip.json", "embedding", open, 2, &dim, &err));
    CHECK_EQ_INT(dim, 64);
    /* runs: an open dim is learned, then held to */
    m.dim = 0;
    dim = 0;
    vd_tensor t = {.rank = 2, .shape = {3, 32}};
    CHECK_OK(vd_model_meta_check_output(&m, "embedding", &t, 3, &dim, &err));
    CHECK_EQ_INT(dim, 32);
    t.shape[1] = 31;
    CHECK_EQ_INT(vd_model_meta_check_output(&m, "embedding", &t, 3, &dim, &err), VD_ERR_MODEL);
    CHECK_EQ_STR(err.msg, "model 'clip': output 'embedding' of a run of 3 is [3,31], not [3,32]: "
                          "no vector is returned");
    vd_tensor empty = {.rank = 2, .shape = {3, 0}};
    dim = 0;
    CHECK_EQ_INT(vd_model_meta_check_output(&m, "embedding", &empty, 3, &dim, &err), VD_ERR_MODEL);
    CHECK_EQ_INT(dim, 0);
    vd_tensor flat = {.rank = 1, .shape = {96}};
    CHECK_EQ_INT(vd_model_meta_check_output(&m, "embedding", &flat, 3, &dim, &err), VD_ERR_MODEL);
    /* other tasks are not held to [batch, dim] */
    m.task = VD_TASK_FACE_DETECTION;
    CHECK_OK(vd_model_meta_graph_dim(&m, NULL, "boxes", r4, 4, &dim, &err));
    CHECK_OK(vd_model_meta_check_output(&m, "boxes", &flat, 3, &dim, &err));
}

VD_TEST(text_models_parse_and_refuse_image_keys)
{
    vd_error err;
    vd_model_meta m;
    CHECK_OK(vd_model_meta_parse(
        "{\"name\": \"t\", \"task\": \"text_embedding\", \"input\": {\"name\": \"text\", "
        "\"context_length\": 77, \"tokenizer\": \"tok/tokenizer.json\", \"pad_token\": "
        "\"<|endoftext|>\"}, \"image_model\": \"v\"}",
        "/m", &m, &err));
    CHECK_EQ_INT(m.task, VD_TASK_TEXT_EMBEDDING);
    CHECK_EQ_STR(vd_model_task_name(m.task), "text_embedding");
    CHECK_EQ_INT(m.context_length, 77);
    CHECK_EQ_STR(m.tokenizer_path, "/m/tok/tokenizer.json");
    CHECK_EQ_STR(m.pad_token, "<|endoftext|>");
    CHECK(m.pad_id == 0 && m.start_id == -1 && m.end_id == -1);
    CHECK_EQ_STR(m.image_model, "v");
    int64_t shape[4];
    vd_dtype dt;
    CHECK_EQ_INT(vd_model_meta_input_shape(&m, 3, shape, &dt), 2);
    CHECK(shape[0] == 3 && shape[1] == 77 && dt == VD_DTYPE_INT32);
    CHECK_EQ_INT(vd_model_meta_input_len(&m), 77);
    CHECK(vd_model_task_embeds(m.task));
    /* no tokenizer; an image key on a text model; a text key on an image model */
    CHECK_EQ_INT(vd_model_meta_parse("{\"name\": \"t\", \"task\": \"text_embedding\", "
                                     "\"input\": {\"context_length\": 77}}",
                                     NULL, &m, &err),
                 VD_ERR_INVALID);
    CHECK(strstr(err.msg, "input.tokenizer") != NULL);
    CHECK_EQ_INT(vd_model_meta_parse("{\"name\": \"t\", \"task\": \"text_embedding\", "
                                     "\"input\": {\"context_length\": 77, \"tokenizer\": \"x\", "
                                     "\"height\": 3}}",
                                     NULL, &m, &err),
                 VD_ERR_INVALID);
    CHECK(strstr(err.msg, "input.height") != NULL);
    CHECK_EQ_INT(vd_model_meta_parse("{\"name\": \"v\", \"input\": {\"height\": 3, \"width\": "
                                     "3, \"channels\": 3, \"context_length\": 7}}",
                                     NULL, &m, &err),
                 VD_ERR_INVALID);
    CHECK(strstr(err.msg, "input.context_length") != NULL);
    CHECK_EQ_INT(vd_model_meta_parse("{\"name\": \"v\", \"text_model\": \"t\", \"input\": "
                                     "{\"height\": 3, \"width\": 3, \"channels\": 3}}",
                                     NULL, &m, &err),
                 VD_ERR_INVALID);
    CHECK(strstr(err.msg, "text_model") != NULL);
}

/* An Immich-layout folder: metadata derived from its files, errors naming them. */
VD_TEST(model_folders_derive_metadata)
{
    vd_error err;
    vd_model_meta m;
    char dir[512], p[768];
    snprintf(dir, sizeof dir, "%s/models", vd_test_tmpdir());
    mkdir(dir, 0700);
    const char *sub[] = {"ViT-B-32__openai", "ViT-B-32__openai/visual", "ViT-B-32__openai/textual",
                         "buffalo_l",        "buffalo_l/detection",     "buffalo_l/recognition"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, sub[i]);
        mkdir(p, 0700);
    }
    const char *files[][2] = {
        {"ViT-B-32__openai/config.json",
         "{\"embed_dim\": 512, \"vision_cfg\": {\"image_size\": 224}, \"text_cfg\": "
         "{\"context_length\": 77}}"},
        {"ViT-B-32__openai/visual/model.onnx", "x"},
        {"ViT-B-32__openai/visual/preprocess_cfg.json",
         "{\"size\": [224, 224], \"mean\": [0.5, 0.5, 0.5], \"std\": [0.25, 0.25, 0.25], "
         "\"interpolation\": \"bicubic\", \"resize_mode\": \"shortest\"}"},
        {"ViT-B-32__openai/textual/tokenizer.json", "{}"},
        {"ViT-B-32__openai/textual/tokenizer_config.json", "{\"pad_token\": \"<|endoftext|>\"}"},
        {"buffalo_l/detection/model.onnx", "x"},
        {"buffalo_l/recognition/model.onnx", "x"}};
    for (size_t i = 0; i < 7; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i][0]);
        write_file(p, files[i][1]);
    }
    char towers[4][4096];
    snprintf(p, sizeof p, "%s/ViT-B-32__openai", dir);
    CHECK_EQ_INT(vd_model_folder_towers(p, towers, 4), 2);
    snprintf(p, sizeof p, "%s/ViT-B-32__openai/visual", dir);
    CHECK_OK(vd_model_meta_load(p, &m, &err));
    CHECK_EQ_STR(m.name, "ViT-B-32__openai");
    CHECK(m.task == VD_TASK_IMAGE_EMBEDDING && m.layout == VD_LAYOUT_NCHW && m.height == 224);
    CHECK(m.resize == VD_RESIZE_CENTER_CROP && m.mean[0] == 0.5f && m.std[2] == 0.25f);
    CHECK(m.dim == 512 && m.l2_normalize && strcmp(m.input_name, "image") == 0);
    CHECK_EQ_STR(m.text_model, "ViT-B-32__openai.textual");
    /* the textual tower has no model.onnx yet: named */
    snprintf(p, sizeof p, "%s/ViT-B-32__openai/textual", dir);
    CHECK_EQ_INT(vd_model_meta_load(p, &m, &err), VD_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "ViT-B-32__openai/textual/model.onnx: missing") != NULL);
    snprintf(p, sizeof p, "%s/ViT-B-32__openai/textual/model.onnx", dir);
    write_file(p, "x");
    snprintf(p, sizeof p, "%s/ViT-B-32__openai/textual", dir);
    CHECK_OK(vd_model_meta_load(p, &m, &err));
    CHECK_EQ_STR(m.name, "ViT-B-32__openai.textual");
    CHECK(m.task == VD_TASK_TEXT_EMBEDDING && m.context_length == 77 && m.dim == 512);
    CHECK_EQ_STR(m.pad_token, "<|endoftext|>");
    CHECK_EQ_STR(m.image_model, "ViT-B-32__openai");
    /* faces */
    snprintf(p, sizeof p, "%s/buffalo_l/detection", dir);
    CHECK_OK(vd_model_meta_load(p, &m, &err));
    CHECK(strcmp(m.name, "buffalo_l.detection") == 0 && m.detector == VD_DETECTOR_SCRFD);
    snprintf(p, sizeof p, "%s/buffalo_l/recognition", dir);
    CHECK_OK(vd_model_meta_load(p, &m, &err));
    CHECK(strcmp(m.name, "buffalo_l") == 0 && m.alignment == VD_ALIGNMENT_ARCFACE &&
          m.width == 112);
    /* names to paths */
    CHECK(vd_model_folder_find(dir, "ViT-B-32__openai.textual", p, sizeof p));
    CHECK(strstr(p, "ViT-B-32__openai/textual") != NULL);
    CHECK(vd_model_folder_find(dir, "buffalo_l", p, sizeof p) && strstr(p, "recognition"));
    CHECK(!vd_model_folder_find(dir, "nothing", p, sizeof p));
    /* a bad preprocess_cfg.json is named */
    snprintf(p, sizeof p, "%s/ViT-B-32__openai/visual/preprocess_cfg.json", dir);
    write_file(p, "{\"size\": 224, \"resize_mode\": \"sideways\"}");
    snprintf(p, sizeof p, "%s/ViT-B-32__openai/visual", dir);
    CHECK_EQ_INT(vd_model_meta_load(p, &m, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "preprocess_cfg.json") && strstr(err.msg, "sideways"));
}

int main(void)
{
    return vd_test_run_all();
}
