/* cmd_faces.c: `visiond faces FILE...`, the image and face pipeline from the
 * command line, in-process or through a model server (one JSON line per
 * file; a bad file is a JSON error line and the others still run). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/datadir.h"
#include "core/sha256.h"
#include "core/util.h"
#include "faces/faces.h"
#include "image/decode.h"
#include "infer/runner.h"
#include "infer/runner_client.h"

static void help(FILE *f)
{
    fprintf(
        f,
        "usage: visiond faces [options] FILE...\n"
        "\n"
        "Decodes each image (EXIF orientation applied), detects faces with BlazeFace and,\n"
        "with --embed, computes each face's faceres embedding, in this process (ONNX\n"
        "Runtime) or on a model server (--server). Prints one JSON object per file:\n"
        "  {\"path\", \"sha256\", \"format\", \"width\", \"height\", \"orientation\",\n"
        "   \"faces\": [{\"score\", \"box\": [x,y,w,h], \"keypoints\": [[x,y] x6],\n"
        "              \"vector\": [...]}]}\n"
        "(the shape of the api's POST /faces), or {\"path\", \"error\": {\"code\", \"message\"}}\n"
        "for a file that cannot be used.\n"
        "Coordinates are pixels of the upright original image. Exits 1 if any file failed.\n"
        "\n"
        "  --models PATH     ':'-separated model directories (default: $VISIOND_MODELS, else\n"
        "                    $VISIOND_DATA/models and the source tree's models/)\n"
        "  --detector NAME   detection model (default blazeface_back)\n"
        "  --embed           also compute embeddings (model: --embedder, default faceres)\n"
        "  --embedder NAME   the embedding model\n"
        "  --threshold F     minimum detection score (default 0.5)\n"
        "  --decode-only     decode and hash only: no models are loaded\n"
        "  --threads N       ONNX Runtime intra-op threads (default 1)\n"
        "  --server ADDRESS  run the models on a model server instead (unix:PATH,\n"
        "                    tcp:HOST:PORT; see visiond model-server); in-process otherwise\n");
}

static json_t *error_json(const char *file, const vd_error *err)
{
    return json_pack("{s:s, s:{s:s, s:s}}", "path", file, "error", "code",
                     vd_status_name(err->code), "message", vd_error_text(err));
}

static json_t *faces_json(const vd_face *faces, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const vd_face_det *d = &faces[i].det;
        json_t *kp = json_array();
        for (int k = 0; k < VD_KP_COUNT; k++)
            json_array_append_new(kp, json_pack("[f, f]", d->kp[k][0], d->kp[k][1]));
        json_t *o = json_pack("{s:f, s:[f, f, f, f], s:o}", "score", d->score, "box", d->x0, d->y0,
                              d->x1 - d->x0, d->y1 - d->y0, "keypoints", kp);
        if (faces[i].embedding) {
            json_t *e = json_array();
            for (int j = 0; j < faces[i].dim; j++)
                json_array_append_new(e, json_real(faces[i].embedding[j]));
            json_object_set_new(o, "vector", e);
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

int vd_cmd_faces(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        help(stdout);
        return VD_EXIT_OK;
    }
    static const struct option longopts[] = {
        {"models", required_argument, NULL, 'm'},
        {"detector", required_argument, NULL, 'd'},
        {"embed", no_argument, NULL, 'e'},
        {"embedder", required_argument, NULL, 'E'},
        {"threshold", required_argument, NULL, 't'},
        {"decode-only", no_argument, NULL, 'D'},
        {"threads", required_argument, NULL, 'j'},
        {"server", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    const char *models = NULL, *detector = NULL, *embedder = NULL, *server = NULL;
    int embed = 0, decode_only = 0, threads = 1;
    float threshold = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'm':
            models = optarg;
            break;
        case 'd':
            detector = optarg;
            break;
        case 'e':
            embed = 1;
            break;
        case 'E':
            embedder = optarg;
            embed = 1;
            break;
        case 'D':
            decode_only = 1;
            break;
        case 's':
            server = optarg;
            break;
        case 't':
            threshold = strtof(optarg, &end);
            if (*end || !(threshold > 0 && threshold < 1))
                return vd_cli_usage_error("faces", "--threshold wants a number in (0, 1)");
            break;
        case 'j':
            threads = (int)strtol(optarg, &end, 10);
            if (*end || threads < 0 || threads > 256)
                return vd_cli_usage_error("faces", "--threads wants 0..256");
            break;
        default:
            return vd_cli_usage_error("faces", "unknown option");
        }
    }
    if (optind >= argc) return vd_cli_usage_error("faces", "no image files given");

    char path_buf[4096];
    if (!models) models = getenv("VISIOND_MODELS");
    if (!models) {
        snprintf(path_buf, sizeof path_buf, "%s/models:%s/models", vd_data_dir(),
                 VISIOND_SOURCE_DIR);
        models = path_buf;
    }

    vd_error err;
    if (vd_image_init(argv[0], &err) != VD_OK) return vd_cli_fail("%s", err.msg);
    vd_runner *runner = NULL;
    vd_status rst = VD_OK;
    if (!decode_only)
        rst = server ? vd_runner_client_new(server, NULL, 0, &runner, &err)
                     : vd_runner_ort_new(models, threads, &runner, &err);
    if (rst != VD_OK) {
        vd_image_shutdown();
        return vd_cli_fail("%s", err.msg);
    }
    vd_faces_opts fo = {.detector = detector, .embedder = embed ? embedder : ""};
    fo.det.score_threshold = threshold;

    int failed = 0;
    for (int i = optind; i < argc; i++) {
        const char *file = argv[i];
        vd_image img;
        uint8_t sha[VD_SHA256_LEN];
        char hex[VD_SHA256_HEX_LEN + 1];
        json_t *out;
        vd_error_clear(&err);
        memset(sha, 0, sizeof sha);
        vd_status st = vd_image_decode_file(file, NULL, &img, sha, &err);
        if (st != VD_OK) {
            out = error_json(file, &err);
            failed = 1;
        } else {
            vd_sha256_hex(sha, hex);
            out = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i}", "path", file, "sha256", hex, "format",
                            img.format, "width", img.src_width, "height", img.src_height,
                            "orientation", img.orientation);
            if (!decode_only) {
                vd_face *faces;
                size_t n;
                st = vd_faces_run(runner, &img, &fo, &faces, &n, &err);
                if (st != VD_OK) {
                    json_decref(out);
                    out = error_json(file, &err);
                    failed = 1;
                } else {
                    json_object_set_new(out, "faces", faces_json(faces, n));
                    vd_faces_free(faces, n);
                }
            }
            vd_image_free(&img);
        }
        char *line = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(7));
        if (line) {
            puts(line);
            free(line);
        }
        json_decref(out);
        fflush(stdout);
    }
    vd_runner_free(runner);
    vd_image_shutdown();
    return failed ? VD_EXIT_FAIL : VD_EXIT_OK;
}
