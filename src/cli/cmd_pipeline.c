/* cmd_pipeline.c: `visiond embed`, `visiond train`, `visiond predict`: the
 * CLI twins of the API's /embeddings, POST /training/sessions and predict
 * (docs/pipeline.md; `visiond faces` is cmd_faces.c). Models run in the model server (they are
 * never loaded here); the store (DATA/store.db) caches embeddings and holds sessions; `train`
 * enqueues a train_session job for a worker. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "core/util.h"
#include "faces/faces.h"
#include "image/decode.h"
#include "infer/client.h"
#include "infer/runner_client.h"
#include "pipeline/embed.h"
#include "pipeline/jobs.h"
#include "queue/queue.h"
#include "store/sessions.h"
#include "train/classifier.h"
#include "train/persist.h"

#define COMMON_HELP                                                                                \
    "  --data DIR           data directory (default $VISIOND_DATA, else ./data): the store is\n"   \
    "                       DIR/store.db, the model server DIR/model.sock\n"                       \
    "  --model-server ADDR  the model server (default $VISIOND_MODEL_SERVER, else\n"               \
    "                       unix:DATA/model.sock)\n"                                               \
    "  --models DIR         read model metadata here instead of asking the model server\n"         \
    "  -h, --help           this help\n"

enum {
    O_DATA = 1000,
    O_MSERVER,
    O_MODELS,
    O_MODEL,
    O_FACE,
    O_NOVEC,
    O_NOCACHE,
    O_EMBED,
    O_KIND,
    O_NAME,
    O_CROP,
    O_NOWAIT,
    O_QUEUE,
    O_TIMEOUT
};

typedef struct {
    const char *model_server, *models;
} common_opts;

/* Handles the options every command shares; returns 1 when c was one of them. */
static int common_opt(int c, common_opts *o)
{
    switch (c) {
    case O_DATA:
        setenv("VISIOND_DATA", optarg, 1); /* every default derives from it */
        return 1;
    case O_MSERVER:
        o->model_server = optarg;
        return 1;
    case O_MODELS:
        o->models = optarg;
        return 1;
    default:
        return 0;
    }
}

#define COMMON_LONGOPTS                                                                            \
    {"data", required_argument, NULL, O_DATA},                                                     \
        {"model-server", required_argument, NULL, O_MSERVER},                                      \
    {                                                                                              \
        "models", required_argument, NULL, O_MODELS                                                \
    }

/* Opens the store, libvips and a model-server runner, checking that the
 * server answers for model (a clear message when it does not). */
static int open_all(const common_opts *co, const char *model, int need_runner, vd_store **store,
                    vd_runner **runner)
{
    vd_error err;
    *store = NULL;
    *runner = NULL;
    if (vd_image_init(NULL, &err) != VD_OK) return vd_cli_fail("%s", vd_error_text(&err));
    char sp[4096];
    vd_store_default_path(sp, sizeof sp);
    if (vd_store_open(sp, NULL, store, &err) != VD_OK)
        return vd_cli_fail("cannot open the store %s: %s", sp, vd_error_text(&err));
    if (!need_runner) return VD_EXIT_OK;
    char addr[4096];
    if (co->model_server)
        vd_strlcpy(addr, co->model_server, sizeof addr);
    else
        vd_infer_default_address(addr, sizeof addr);
    /* a quick probe, so that a missing server is said in seconds */
    vd_infer_client *probe = NULL;
    vd_status st = vd_infer_client_new(addr, &probe, &err);
    char *health = NULL;
    if (st == VD_OK) st = vd_infer_client_health(probe, 2000, &health, &err);
    free(health);
    vd_infer_client_free(probe);
    if (st == VD_ERR_CONN || st == VD_ERR_TIMEOUT)
        return vd_cli_fail("the model server at %s is not reachable (%s): start 'visiond "
                           "model-server' or give --model-server",
                           addr, vd_error_text(&err));
    if (vd_runner_client_new(addr, co->models, 60000, runner, &err) != VD_OK)
        return vd_cli_fail("%s", vd_error_text(&err));
    vd_model_meta meta;
    st = vd_runner_meta(*runner, model, &meta, &err);
    if (st == VD_ERR_CONN || st == VD_ERR_TIMEOUT)
        return vd_cli_fail("the model server at %s is not reachable (%s): start 'visiond "
                           "model-server' or give --model-server",
                           addr, vd_error_text(&err));
    if (st != VD_OK) return vd_cli_fail("%s", vd_error_text(&err));
    return VD_EXIT_OK;
}

static void print_json_line(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        free(s);
    }
}

static json_t *vector_json(const float *v, int dim)
{
    json_t *a = json_array();
    for (int i = 0; i < dim; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

/* ---- embed -------------------------------------------------------------- */

typedef struct {
    char **paths;
    int vectors;
    size_t done, total, failed;
    vd_progress bar;
} embed_print;

static void embed_item(void *ud, size_t i, const vd_embed_item *it)
{
    embed_print *e = ud;
    json_t *j = json_object();
    json_object_set_new(j, "path", json_string(e->paths[i]));
    if (it->status == VD_OK) {
        json_object_set_new(j, "sha256", json_string(it->sha256));
        json_object_set_new(j, "cached", json_boolean(it->cached));
        if (e->vectors && it->vector) {
            json_object_set_new(j, "vector", vector_json(it->vector, it->dim));
        }
    } else {
        json_object_set_new(j, "error", json_string(it->error));
        e->failed++;
    }
    vd_progress_end(&e->bar);
    print_json_line(j);
    vd_progress_update(&e->bar, (int64_t)++e->done, (int64_t)e->total, "embedded");
}

int vd_cmd_embed(int argc, char **argv)
{
    static const char usage[] =
        "usage: visiond embed [--model M] [--face] [--no-vectors] [--no-cache] FILE...\n"
        "\n"
        "Embeds image files through the model server, with the store's cache (an image\n"
        "embedded before, by its SHA-256, is not computed again). Prints one JSON line per\n"
        "file, as it finishes: {\"path\",\"sha256\",\"cached\",\"vector\"} or "
        "{\"path\",\"error\"}.\n"
        "Exit 1 when some file failed or the model server cannot be reached.\n"
        "\n"
        "  --model M            embedding model (default mobilenet_v2; faceres with --face)\n"
        "  --face               embed the largest face of each image (detect + align)\n"
        "  --no-vectors         print no vectors (fill the cache only)\n"
        "  --no-cache           neither read nor write the store's cache\n" COMMON_HELP;
    if (vd_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return VD_EXIT_OK;
    }
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"model", required_argument, NULL, O_MODEL},
                                       {"face", no_argument, NULL, O_FACE},
                                       {"no-vectors", no_argument, NULL, O_NOVEC},
                                       {"no-cache", no_argument, NULL, O_NOCACHE},
                                       {NULL, 0, NULL, 0}};
    common_opts co = {0};
    const char *model = NULL;
    int face = 0, vectors = 1, cache = 1, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (common_opt(c, &co)) continue;
        switch (c) {
        case O_MODEL:
            model = optarg;
            break;
        case O_FACE:
            face = 1;
            break;
        case O_NOVEC:
            vectors = 0;
            break;
        case O_NOCACHE:
            cache = 0;
            break;
        default:
            return vd_cli_usage_error("embed", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
        }
    }
    if (optind >= argc) return vd_cli_usage_error("embed", "no files given");
    if (!model) model = vd_embed_default_model(face ? VD_EMBED_FACE : VD_EMBED_IMAGE);
    vd_store *store;
    vd_runner *runner;
    int rc = open_all(&co, model, 1, &store, &runner);
    if (rc == VD_EXIT_OK) {
        size_t n = (size_t)(argc - optind);
        embed_print e = {.paths = argv + optind, .vectors = vectors, .total = n};
        vd_progress_init(&e.bar, "embed", 0);
        vd_embed_item *items = calloc(n, sizeof *items);
        vd_embed_opts o = {.runner = runner,
                           .store = cache ? store : NULL,
                           .model = model,
                           .mode = face ? VD_EMBED_FACE : VD_EMBED_IMAGE,
                           .want_vectors = vectors,
                           .on_item = embed_item,
                           .ud = &e};
        int dim = 0;
        vd_error err;
        vd_status st = items ? vd_embed_paths(&o, (const char *const *)(argv + optind), n, items,
                                              &dim, NULL, &err)
                             : vd_error_set(&err, VD_ERR_NOMEM, "out of memory");
        vd_progress_end(&e.bar);
        if (st != VD_OK)
            rc = vd_cli_fail("embed: %s", vd_error_text(&err));
        else if (e.failed)
            rc = VD_EXIT_FAIL;
        if (items) vd_embed_items_clear(items, n);
        free(items);
    }
    vd_runner_free(runner);
    vd_store_close(store);
    return rc;
}

/* ---- train -------------------------------------------------------------- */

static int visible(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* Lists DIR/LABEL/FILE into examples (paths absolute when dir is). */
static int scan_folder(const char *dir, vd_example **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    struct dirent **labels = NULL;
    int nl = scandir(dir, &labels, visible, alphasort);
    if (nl < 0) return vd_cli_fail("cannot list %s: %s", dir, strerror(errno));
    int rc = VD_EXIT_OK;
    for (int i = 0; i < nl; i++) {
        char sub[4096];
        struct stat sb;
        int len = snprintf(sub, sizeof sub, "%s/%s", dir, labels[i]->d_name);
        if (rc == VD_EXIT_OK && len < (int)sizeof sub && stat(sub, &sb) == 0 &&
            S_ISDIR(sb.st_mode)) {
            struct dirent **files = NULL;
            int nf = scandir(sub, &files, visible, alphasort);
            for (int k = 0; k < nf; k++) {
                char file[4400];
                int flen = snprintf(file, sizeof file, "%s/%s", sub, files[k]->d_name);
                if (rc == VD_EXIT_OK && flen < (int)sizeof file && stat(file, &sb) == 0 &&
                    S_ISREG(sb.st_mode)) {
                    if (*n == cap) {
                        cap = cap ? cap * 2 : 256;
                        vd_example *v = realloc(*out, cap * sizeof *v);
                        if (!v)
                            rc = vd_cli_fail("out of memory");
                        else
                            *out = v;
                    }
                    if (rc == VD_EXIT_OK) {
                        memset(&(*out)[*n], 0, sizeof **out);
                        (*out)[*n].path = vd_strdup(file);
                        (*out)[*n].label = vd_strdup(labels[i]->d_name);
                        (*n)++;
                    }
                }
                free(files[k]);
            }
            free(files);
        }
        free(labels[i]);
    }
    free(labels);
    if (rc == VD_EXIT_OK && *n == 0)
        rc = vd_cli_fail("%s has no sub-folder with files (one sub-folder per label)", dir);
    return rc;
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static json_t *session_summary(const vd_session *s)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:I, s:I}}", "id", s->id, "name", s->name,
                          "kind", vd_session_kind_name(s->kind), "model", s->model, "state",
                          vd_session_state_name(s->state), "progress", "done",
                          (json_int_t)s->progress_done, "total", (json_int_t)s->progress_total);
    json_t *e = json_loads(s->errors_json ? s->errors_json : "[]", 0, NULL);
    json_object_set_new(j, "errors", e ? e : json_array());
    json_t *m = s->metrics_json ? json_loads(s->metrics_json, 0, NULL) : NULL;
    json_object_set_new(j, "metrics", m ? m : json_null());
    if (s->message) json_object_set_new(j, "message", json_string(s->message));
    json_object_set_new(j, "job_id", json_string(s->job_id));
    return j;
}

int vd_cmd_train(int argc, char **argv)
{
    static const char usage[] =
        "usage: visiond train [--kind image|face] --name NAME [--model M] [--crop] [--no-wait] "
        "DIR\n"
        "\n"
        "Creates a training session from DIR (one sub-folder per label, its files the\n"
        "examples), enqueues a train_session job for a worker ('visiond worker'), and\n"
        "waits: a progress bar on a terminal, then the session with its metrics as JSON.\n"
        "With --no-wait it prints {\"id\",\"job_id\"} and exits. Exit 1 when the session\n"
        "fails or is canceled; Ctrl-C stops waiting (the job goes on).\n"
        "\n"
        "  --kind K             image (default) or face\n"
        "  --name NAME          the session's name (required)\n"
        "  --model M            embedding model (default mobilenet_v2, faceres for face)\n"
        "  --crop               face sessions: the images are already face crops\n"
        "  --queue URL          the job queue (default: $VISIOND_QUEUE, else\n"
        "                       sqlite:DATA/visiond.db)\n"
        "  --timeout SECS       stop waiting after SECS (exit 1; the job goes on)\n" COMMON_HELP;
    if (vd_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return VD_EXIT_OK;
    }
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"kind", required_argument, NULL, O_KIND},
                                       {"name", required_argument, NULL, O_NAME},
                                       {"model", required_argument, NULL, O_MODEL},
                                       {"crop", no_argument, NULL, O_CROP},
                                       {"no-wait", no_argument, NULL, O_NOWAIT},
                                       {"queue", required_argument, NULL, O_QUEUE},
                                       {"timeout", required_argument, NULL, O_TIMEOUT},
                                       {NULL, 0, NULL, 0}};
    common_opts co = {0};
    const char *kind_s = "image", *name = NULL, *model = NULL, *queue = NULL;
    int crop = 0, nowait = 0, c;
    double timeout = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (common_opt(c, &co)) continue;
        switch (c) {
        case O_KIND:
            kind_s = optarg;
            break;
        case O_NAME:
            name = optarg;
            break;
        case O_MODEL:
            model = optarg;
            break;
        case O_CROP:
            crop = 1;
            break;
        case O_NOWAIT:
            nowait = 1;
            break;
        case O_QUEUE:
            queue = optarg;
            break;
        case O_TIMEOUT:
            timeout = atof(optarg);
            break;
        default:
            return vd_cli_usage_error("train", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
        }
    }
    if (optind + 1 != argc) return vd_cli_usage_error("train", "give exactly one folder");
    if (!name || !*name) return vd_cli_usage_error("train", "--name is required");
    vd_session_kind kind;
    if (vd_session_kind_parse(kind_s, &kind) != VD_OK)
        return vd_cli_usage_error("train", "--kind must be image or face");
    if (crop && kind != VD_SESSION_FACE)
        return vd_cli_usage_error("train", "--crop needs --kind face");
    if (!model) model = vd_pipeline_default_model(kind);
    char dir[4096];
    if (!realpath(argv[optind], dir)) return vd_cli_fail("%s: %s", argv[optind], strerror(errno));

    vd_example *ex = NULL;
    size_t n = 0;
    int rc = scan_folder(dir, &ex, &n);
    if (rc != VD_EXIT_OK) {
        vd_example_list_free(ex, n);
        return rc;
    }
    vd_store *store;
    vd_runner *runner;
    rc = open_all(&co, model, 1, &store,
                  &runner); /* the model is checked before anything is written */
    char qbuf[4096];
    if (!queue) queue = vd_cli_default_queue_url(qbuf, sizeof qbuf);
    vd_queue *q = NULL;
    vd_error err;
    char sid[VD_ID_LEN + 1], jid[VD_ID_LEN + 1];
    if (rc == VD_EXIT_OK && vd_queue_open(queue, &q, &err) != VD_OK)
        rc = vd_cli_fail("cannot open the queue %s: %s", queue, vd_error_text(&err));
    if (rc == VD_EXIT_OK) {
        vd_session_new sn = {.name = name,
                             .kind = kind,
                             .model = model,
                             .options_json = crop ? "{\"crop\": true}" : "{}"};
        char payload[128];
        vd_status st = vd_store_session_create(store, &sn, sid, &err);
        if (st == VD_OK) st = vd_store_examples_add(store, sid, ex, n, &err);
        if (st == VD_OK) {
            snprintf(payload, sizeof payload, "{\"session_id\": \"%s\"}", sid);
            vd_enqueue_opts o = {.type = "train_session",
                                 .payload = payload,
                                 .max_retries = 3,
                                 .retry_base_ms = 1000};
            st = vd_queue_enqueue(q, &o, jid, &err);
        }
        if (st == VD_OK) st = vd_store_session_set_job(store, sid, jid, &err);
        if (st != VD_OK) rc = vd_cli_fail("train: %s", vd_error_text(&err));
    }
    vd_example_list_free(ex, n);
    if (rc == VD_EXIT_OK && nowait) {
        print_json_line(
            json_pack("{s:s, s:s, s:I}", "id", sid, "job_id", jid, "examples", (json_int_t)n));
    } else if (rc == VD_EXIT_OK) {
        signal(SIGINT, on_sigint);
        vd_progress bar;
        char label[64];
        snprintf(label, sizeof label, "training %.40s", name);
        vd_progress_init(&bar, label, 0);
        int64_t start = vd_mono_ms();
        for (;;) {
            vd_session s;
            memset(&s, 0, sizeof s);
            vd_status st = vd_store_session_get(store, sid, &s, &err);
            if (st != VD_OK) {
                vd_progress_end(&bar);
                rc = vd_cli_fail("train: %s", vd_error_text(&err));
                break;
            }
            if (vd_session_state_is_final(s.state)) {
                vd_progress_update(&bar, s.progress_done, s.progress_total, "embedded");
                vd_progress_end(&bar);
                print_json_line(session_summary(&s));
                if (s.state != VD_SESSION_SUCCEEDED) rc = VD_EXIT_FAIL;
                vd_session_clear(&s);
                break;
            }
            vd_progress_update(&bar, s.progress_done, s.progress_total,
                               s.progress_total && s.progress_done == s.progress_total
                                   ? "embedded, training"
                               : s.state == VD_SESSION_QUEUED ? "queued (is a worker running?)"
                                                              : "embedded");
            vd_session_clear(&s);
            /* a job that ended without ending the session (out of attempts) */
            vd_job job;
            memset(&job, 0, sizeof job);
            if (vd_queue_get(q, jid, &job, NULL) == VD_OK &&
                (job.state == VD_JOB_FAILED || job.state == VD_JOB_CANCELED)) {
                vd_progress_end(&bar);
                rc = vd_cli_fail("train: job %s %s: %s", jid, vd_job_state_name(job.state),
                                 job.error ? job.error : "");
                vd_job_clear(&job);
                break;
            }
            vd_job_clear(&job);
            if (interrupted || (timeout > 0 && vd_mono_ms() - start > (int64_t)(timeout * 1000))) {
                vd_progress_end(&bar);
                rc = vd_cli_fail("stopped waiting; session %s (job %s) goes on", sid, jid);
                break;
            }
            vd_sleep_ms(300);
        }
    }
    vd_queue_close(q);
    vd_runner_free(runner);
    vd_store_close(store);
    return rc;
}

/* ---- predict ------------------------------------------------------------ */

int vd_cmd_predict(int argc, char **argv)
{
    static const char usage[] =
        "usage: visiond predict SESSION FILE...\n"
        "\n"
        "Classifies image files with a trained session's classifier (embeddings through\n"
        "the model server, cache first). Prints one JSON line per file:\n"
        "{\"path\",\"label\",\"score\",\"scores\"} (label \"unknown\" below the session's\n"
        "threshold) or {\"path\",\"error\"}. Exit 1 when some file failed.\n"
        "\n" COMMON_HELP;
    if (vd_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return VD_EXIT_OK;
    }
    static const struct option lo[] = {COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    common_opts co = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1)
        if (!common_opt(c, &co))
            return vd_cli_usage_error("predict", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
    if (optind + 2 > argc) return vd_cli_usage_error("predict", "give a session id and files");
    const char *sid = argv[optind++];
    vd_store *store;
    vd_runner *runner = NULL;
    vd_error err;
    vd_session s;
    memset(&s, 0, sizeof s);
    vd_classifier *clf = NULL;
    int rc = open_all(&co, NULL, 0, &store, &runner);
    if (rc == VD_EXIT_OK && vd_store_session_get(store, sid, &s, &err) != VD_OK)
        rc = vd_cli_fail("predict: %s", vd_error_text(&err));
    if (rc == VD_EXIT_OK && s.state != VD_SESSION_SUCCEEDED)
        rc = vd_cli_fail("predict: session %s is %s, not succeeded", sid,
                         vd_session_state_name(s.state));
    if (rc == VD_EXIT_OK && vd_train_load(store, sid, &clf, &err) != VD_OK)
        rc = vd_cli_fail("predict: %s", vd_error_text(&err));
    if (rc == VD_EXIT_OK) {
        vd_store_close(store);
        rc = open_all(&co, s.model, 1, &store, &runner);
    }
    size_t n = (size_t)(argc - optind);
    vd_embed_item *items = rc == VD_EXIT_OK ? calloc(n, sizeof *items) : NULL;
    if (items) {
        vd_embed_opts o = {.runner = runner,
                           .store = store,
                           .model = s.model,
                           .mode = vd_pipeline_session_mode(&s),
                           .want_vectors = 1};
        int dim = 0;
        vd_status st =
            vd_embed_paths(&o, (const char *const *)(argv + optind), n, items, &dim, NULL, &err);
        if (st != VD_OK) rc = vd_cli_fail("predict: %s", vd_error_text(&err));
        size_t nl = vd_classifier_nlabels(clf);
        double *scores = calloc(nl, sizeof *scores);
        for (size_t i = 0; st == VD_OK && scores && i < n; i++) {
            vd_prediction p;
            json_t *j;
            if (items[i].status == VD_OK &&
                vd_classifier_predict(clf, items[i].vector, (size_t)dim, &p, scores, &err) == VD_OK)
                j = vd_train_prediction_json(clf, argv[optind + i], &p, scores);
            else {
                j = json_pack("{s:s, s:s}", "path", argv[optind + i], "error",
                              items[i].status ? items[i].error : vd_error_text(&err));
                rc = VD_EXIT_FAIL;
            }
            print_json_line(j);
        }
        free(scores);
        vd_embed_items_clear(items, n);
        free(items);
    }
    vd_classifier_free(clf);
    vd_session_clear(&s);
    vd_runner_free(runner);
    vd_store_close(store);
    return rc;
}
