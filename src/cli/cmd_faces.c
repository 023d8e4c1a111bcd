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
#include "faces/align.h"
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
        "Decodes each image (EXIF orientation applied), detects faces (--detector, default\n"
        "BlazeFace) and, with --embed, computes each face's embedding (--embedder, default\n"
        "faceres), in this process (ONNX Runtime) or on a model server (--server). Prints one\n"
        "JSON object per file:\n"
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
        "  --crops DIR       with --embed, also write each face's aligned crop, as the\n"
        "                    embedder is fed it, to DIR/N_K.ppm (file N, face K, from 0)\n"
        "  --decode-only     decode and hash only: no models are loaded\n"
        "  --threads N       ONNX Runtime intra-op threads (default 1)\n"
        "  --server ADDRESS  run the models on a model server instead (unix:PATH,\n"
        "                    tcp:HOST:PORT, several ','-separated; see visiond model-server);\n"
        "                    in-process otherwise\n"
        "  --secret-file F   the model server's shared secret (default\n"
        "                    $VISIOND_MODEL_SECRET_FILE)\n");
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
        if (d->has_lm5) { /* an SCRFD's five landmarks (faces/scrfd.h) */
            json_t *lm = json_array();
            for (int k = 0; k < 5; k++)
                json_array_append_new(lm, json_pack("[f, f]", d->lm5[k][0], d->lm5[k][1]));
            json_object_set_new(o, "landmarks", lm);
        }
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

/* What the command line asked for; parse_args fills it, run_faces acts on it. */
typedef struct {
    const char *models, *detector, *embedder, *server, *crops;
    int embed, decode_only, threads;
    float threshold;
    char **files; /* argv's FILE... */
    int nfiles;
    char models_buf[4096];
} faces_args;

static const struct option longopts[] = {
    {"models", required_argument, NULL, 'm'},
    {"detector", required_argument, NULL, 'd'},
    {"embed", no_argument, NULL, 'e'},
    {"embedder", required_argument, NULL, 'E'},
    {"threshold", required_argument, NULL, 't'},
    {"decode-only", no_argument, NULL, 'D'},
    {"threads", required_argument, NULL, 'j'},
    {"server", required_argument, NULL, 's'},
    {"secret-file", required_argument, NULL, 'K'},
    {"crops", required_argument, NULL, 'C'},
    {NULL, 0, NULL, 0},
};

/* One option (getopt's code c, its argument). Returns an exit code. */
static int parse_opt(faces_args *a, int c, const char *arg)
{
    char *end;
    switch (c) {
    case 'm':
        a->models = arg;
        break;
    case 'd':
        a->detector = arg;
        break;
    case 'e':
        a->embed = 1;
        break;
    case 'E':
        a->embedder = arg;
        a->embed = 1;
        break;
    case 'D':
        a->decode_only = 1;
        break;
    case 'C':
        a->crops = arg;
        break;
    case 's':
        a->server = arg;
        break;
    case 'K':
        return vd_cli_secret_file("faces", arg);
    case 't':
        a->threshold = strtof(arg, &end);
        if (*end || !(a->threshold > 0 && a->threshold < 1))
            return vd_cli_usage_error("faces", "--threshold wants a number in (0, 1)");
        break;
    case 'j':
        a->threads = (int)strtol(arg, &end, 10);
        if (*end || a->threads < 0 || a->threads > 256)
            return vd_cli_usage_error("faces", "--threads wants 0..256");
        break;
    default:
        return vd_cli_usage_error("faces", "unknown option");
    }
    return VD_EXIT_OK;
}

/* Fills *a from argv and the environment. Returns VD_EXIT_OK, or the exit
 * code of a usage error (already printed). */
static int parse_args(int argc, char **argv, faces_args *a)
{
    memset(a, 0, sizeof *a);
    a->threads = 1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int rc = parse_opt(a, c, optarg);
        if (rc != VD_EXIT_OK) return rc;
    }
    if (optind >= argc) return vd_cli_usage_error("faces", "no image files given");
    a->files = argv + optind;
    a->nfiles = argc - optind;
    if (!a->models) a->models = getenv("VISIOND_MODELS");
    if (!a->models) {
        snprintf(a->models_buf, sizeof a->models_buf, "%s/models:%s/models", vd_data_dir(),
                 VISIOND_SOURCE_DIR);
        a->models = a->models_buf;
    }
    return VD_EXIT_OK;
}

/* Writes face k's aligned crop of img (as the embedder is fed it) to
 * DIR/N_K.ppm. The face is in the original image's pixels; img may be the
 * shrunk decode, so the detection is scaled back to img first. */
static vd_status write_crop(vd_runner *runner, const char *embedder, const vd_image *img,
                            const vd_face *face, const char *dir, int n, size_t k, vd_error *err)
{
    vd_model_meta meta;
    vd_status st = vd_runner_meta(runner, embedder ? embedder : VD_FACES_EMBEDDER, &meta, err);
    if (st != VD_OK) return st;
    vd_face_det d = face->det;
    float kx = (float)img->width / img->src_width, ky = (float)img->height / img->src_height;
    d.x0 *= kx, d.x1 *= kx, d.y0 *= ky, d.y1 *= ky;
    for (int i = 0; i < VD_KP_COUNT; i++)
        d.kp[i][0] *= kx, d.kp[i][1] *= ky;
    for (int i = 0; d.has_lm5 && i < 5; i++)
        d.lm5[i][0] *= kx, d.lm5[i][1] *= ky;
    vd_image crop;
    vd_align_mode mode =
        meta.alignment == VD_ALIGNMENT_ARCFACE ? VD_ALIGN_ARCFACE : VD_ALIGN_FACERES;
    if ((st = vd_face_align_as(img, &d, meta.width, mode, &crop, NULL, err)) != VD_OK) return st;
    char path[4096];
    snprintf(path, sizeof path, "%s/%d_%zu.ppm", dir, n, k);
    FILE *f = fopen(path, "wb");
    int ok = f && fprintf(f, "P6\n%d %d\n255\n", crop.width, crop.height) > 0 &&
             fwrite(crop.pixels, 3, (size_t)crop.width * crop.height, f) ==
                 (size_t)crop.width * crop.height;
    if (f && fclose(f) != 0) ok = 0;
    vd_image_free(&crop);
    return ok ? VD_OK : vd_error_set(err, VD_ERR_IO, "cannot write %s", path);
}

/* One file's JSON line: decoded and hashed, then (unless decode_only) its
 * faces; or an error object. Sets *failed on error. */
static json_t *faces_of_file(const faces_args *a, vd_runner *runner, const vd_faces_opts *fo,
                             const char *file, int index, int *failed)
{
    vd_image img;
    uint8_t sha[VD_SHA256_LEN];
    char hex[VD_SHA256_HEX_LEN + 1];
    vd_error err;
    vd_error_clear(&err);
    memset(sha, 0, sizeof sha);
    if (vd_image_decode_file(file, NULL, &img, sha, &err) != VD_OK) {
        *failed = 1;
        return error_json(file, &err);
    }
    vd_sha256_hex(sha, hex);
    json_t *out = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i}", "path", file, "sha256", hex, "format",
                            img.format, "width", img.src_width, "height", img.src_height,
                            "orientation", img.orientation);
    if (!a->decode_only) {
        vd_face *faces;
        size_t n;
        if (vd_faces_run(runner, &img, fo, &faces, &n, &err) != VD_OK) {
            json_decref(out);
            out = error_json(file, &err);
            *failed = 1;
        } else {
            json_object_set_new(out, "faces", faces_json(faces, n));
            for (size_t k = 0; a->crops && a->embed && k < n; k++)
                if (write_crop(runner, a->embedder, &img, &faces[k], a->crops, index, k, &err) !=
                    VD_OK) {
                    json_decref(out);
                    out = error_json(file, &err);
                    *failed = 1;
                    break;
                }
            vd_faces_free(faces, n);
        }
    }
    vd_image_free(&img);
    return out;
}

/* Prints one line per file. Returns the exit code (1 when any file failed). */
static int run_faces(const faces_args *a, const char *argv0)
{
    vd_error err;
    if (vd_image_init(argv0, &err) != VD_OK) return vd_cli_fail("%s", err.msg);
    vd_runner *runner = NULL;
    vd_status rst = VD_OK;
    if (!a->decode_only)
        rst = a->server ? vd_runner_client_new(a->server, NULL, 0, &runner, &err)
                        : vd_runner_ort_new(a->models, a->threads, &runner, &err);
    if (rst != VD_OK) {
        vd_image_shutdown();
        return vd_cli_fail("%s", err.msg);
    }
    vd_faces_opts fo = {.detector = a->detector, .embedder = a->embed ? a->embedder : ""};
    fo.det.score_threshold = a->threshold;

    int failed = 0;
    for (int i = 0; i < a->nfiles; i++) {
        json_t *out = faces_of_file(a, runner, &fo, a->files[i], i, &failed);
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

int vd_cmd_faces(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        help(stdout);
        return VD_EXIT_OK;
    }
    faces_args a;
    int rc = parse_args(argc, argv, &a);
    return rc != VD_EXIT_OK ? rc : run_faces(&a, argv[0]);
}
