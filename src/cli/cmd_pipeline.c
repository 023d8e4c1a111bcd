/* cmd_pipeline.c: `visiond embed`, `visiond train`, `visiond predict`, `visiond search`: the
 * CLI twins of the API's /embeddings, POST /training/sessions, predict and POST /search
 * (docs/pipeline.md; `visiond faces` is cmd_faces.c). Models run in the model server (they are
 * never loaded here); the store (DATA/store.db) caches embeddings and holds sessions; `train`
 * enqueues a train_session job for a worker. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "core/datadir.h"
#include "core/util.h"
#include "image/decode.h"
#include "infer/client.h"
#include "core/pg.h"
#include "infer/runner_client.h"
#include "pipeline/embed.h"
#include "pipeline/text_embed.h"
#include "queue/queue.h"
#include "service/search.h"
#include "service/training.h"
#include "store/sessions.h"
#include "train/classifier.h"

#define COMMON_HELP                                                                                \
    "  --data DIR           data directory (default $VISIOND_DATA, else ./data): the store is\n"   \
    "                       DIR/store.db, the model server DIR/model.sock\n"                       \
    "  --store URL          the store instead: sqlite:PATH, PATH or postgres://USER@HOST/DB\n"     \
    "                       (default $VISIOND_STORE, else DATA/store.db)\n"                        \
    "  --model-server ADDR  the model server (default $VISIOND_MODEL_SERVER, else\n"               \
    "                       unix:DATA/model.sock; several, ','-separated, with failover)\n"        \
    "  --secret-file FILE   the model servers' shared secret (default\n"                           \
    "                       $VISIOND_MODEL_SECRET_FILE)\n"                                         \
    "  --models DIR         read model metadata here instead of asking the model server\n"         \
    "  -h, --help           this help\n"

enum {
    O_DATA = 1000,
    O_MSERVER,
    O_MODELS,
    O_SECRET,
    O_MODEL,
    O_FACE,
    O_NOVEC,
    O_NOCACHE,
    O_EMBED,
    O_KIND,
    O_NAME,
    O_CROP,
    O_PRIORS,
    O_NOWAIT,
    O_QUEUE,
    O_TIMEOUT,
    O_STORE,
    O_TEXT,
    O_K,
    O_FOLDER
};

typedef struct {
    const char *model_server, *models, *secret_file, *store;
} common_opts;

/* Handles the options every command shares; returns 1 when c was one of them. */
static int common_opt(int c, common_opts *o)
{
    switch (c) {
    case O_DATA:
        vd_data_dir_set(optarg, NULL); /* every default derives from it */
        return 1;
    case O_MSERVER:
        o->model_server = optarg;
        return 1;
    case O_MODELS:
        o->models = optarg;
        return 1;
    case O_SECRET:
        o->secret_file = optarg;
        return 1;
    case O_STORE:
        o->store = optarg;
        return 1;
    default:
        return 0;
    }
}

#define COMMON_LONGOPTS                                                                            \
    {"data", required_argument, NULL, O_DATA},                                                     \
        {"model-server", required_argument, NULL, O_MSERVER},                                      \
        {"secret-file", required_argument, NULL, O_SECRET},                                        \
        {"store", required_argument, NULL, O_STORE},                                               \
    {                                                                                              \
        "models", required_argument, NULL, O_MODELS                                                \
    }

/* Opens the store, libvips and a model-server runner, checking that the
 * server answers (for model, when not NULL), with a clear message when it does not. */
static int open_all(const common_opts *co, const char *model, int need_runner, vd_store **store,
                    vd_runner **runner)
{
    vd_error err;
    *store = NULL;
    *runner = NULL;
    if (vd_image_init(NULL, &err) != VD_OK) return vd_cli_fail("%s", vd_error_text(&err));
    char sp[4096], shown[1024];
    const char *url = co->store ? co->store : vd_store_default_url(sp, sizeof sp);
    if (vd_store_open(url, NULL, store, &err) != VD_OK)
        return vd_cli_fail("cannot open the store %s: %s",
                           vd_pg_url_shown(url, shown, sizeof shown), vd_error_text(&err));
    if (!need_runner) return VD_EXIT_OK;
    int rc = co->secret_file ? vd_cli_secret_file("embed", co->secret_file) : VD_EXIT_OK;
    if (rc != VD_EXIT_OK) return rc;
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
    if (st == VD_ERR_AUTH) return vd_cli_fail("%s", vd_error_text(&err));
    if (vd_runner_client_new(addr, co->models, 60000, runner, &err) != VD_OK)
        return vd_cli_fail("%s", vd_error_text(&err));
    if (!model) return VD_EXIT_OK; /* the caller checks the model itself */
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

/* `embed --text`: the texts through vd_text_embed, one JSON line each. */
static int embed_texts(vd_runner *runner, vd_store *store, const char *model, const char **texts,
                       size_t n, int vectors)
{
    vd_text_item *items = calloc(n ? n : 1, sizeof *items);
    vd_text_opts o = {.runner = runner, .store = store, .model = model};
    int dim = 0;
    vd_error err;
    vd_status st = items ? vd_text_embed(&o, texts, n, items, &dim, NULL, &err)
                         : vd_error_set(&err, VD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == VD_OK && i < n; i++) {
        json_t *j =
            json_pack("{s:s, s:b, s:b, s:I}", "text", texts[i], "cached", items[i].cached,
                      "truncated", items[i].truncated, "tokens", (json_int_t)items[i].tokens);
        if (vectors) json_object_set_new(j, "vector", vector_json(items[i].vector, dim));
        print_json_line(j);
    }
    if (items) vd_text_items_clear(items, n);
    free(items);
    return st == VD_OK ? VD_EXIT_OK : vd_cli_fail("embed: %s", vd_error_text(&err));
}

int vd_cmd_embed(int argc, char **argv)
{
    static const char usage[] =
        "usage: visiond embed [--model M] [--face] [--no-vectors] [--no-cache] FILE...\n"
        "       visiond embed --model M [--no-vectors] [--no-cache] --text TEXT...\n"
        "\n"
        "Embeds image files through the model server, with the store's cache (an image\n"
        "embedded before, by its SHA-256, is not computed again). Prints one JSON line per\n"
        "file, as it finishes: {\"path\",\"sha256\",\"cached\",\"vector\"} or "
        "{\"path\",\"error\"}.\n"
        "Exit 1 when some file failed or the model server cannot be reached.\n"
        "\n"
        "  --model M            embedding model (default mobilenet_v2; faceres with --face)\n"
        "  --face               embed the largest face of each image (detect + align)\n"
        "  --text TEXT          embed this text (repeat for more) with a text model, or a\n"
        "                       CLIP image model's text tower; longer than the context:\n"
        "                       truncated (\"truncated\": true), as open_clip does\n"
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
                                       {"text", required_argument, NULL, O_TEXT},
                                       {NULL, 0, NULL, 0}};
    common_opts co = {0};
    const char *model = NULL, *texts[VD_TEXT_MAX_TEXTS];
    size_t ntexts = 0;
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
        case O_TEXT:
            if (ntexts == VD_TEXT_MAX_TEXTS)
                return vd_cli_usage_error("embed", "at most %d texts", VD_TEXT_MAX_TEXTS);
            texts[ntexts++] = optarg;
            break;
        default:
            return vd_cli_usage_error("embed", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
        }
    }
    if (ntexts && (optind < argc || face))
        return vd_cli_usage_error("embed", "give texts or files (--face), not both");
    if (ntexts && !model)
        return vd_cli_usage_error("embed", "--text needs --model (a text model, or a CLIP "
                                           "image model with a text tower)");
    if (ntexts) {
        vd_store *store;
        vd_runner *runner;
        int rc = open_all(&co, model, 1, &store, &runner);
        if (rc == VD_EXIT_OK)
            rc = embed_texts(runner, cache ? store : NULL, model, texts, ntexts, vectors);
        vd_runner_free(runner);
        vd_store_close(store);
        return rc;
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

/* The options of `visiond train`. */
typedef struct {
    common_opts co;
    vd_svc_session_req req;
    const char *queue, *dir;
    int nowait;
    double timeout;
} train_args;

static const char train_usage[] =
    "usage: visiond train [--kind image|face] --name NAME [--model M] [--crop] [--no-wait] "
    "DIR\n"
    "\n"
    "Creates a training session from DIR (one sub-folder per label, its files the\n"
    "examples), enqueues a train_session job for a worker ('visiond worker'), and\n"
    "waits: a progress bar on a terminal, then the session with its metrics as JSON.\n"
    "With --no-wait it prints {\"id\",\"job_id\"} and exits. Exit 1 when the session\n"
    "is refused (\"visiond: train: RULE: why\", RULE as the API's error code), fails\n"
    "or is canceled; Ctrl-C stops waiting (the job goes on).\n"
    "\n"
    "  --kind K             image (default) or face\n"
    "  --name NAME          the session's name (required)\n"
    "  --model M            embedding model (default mobilenet_v2, faceres for face)\n"
    "  --crop               face sessions: the images are already face crops\n"
    "  --prompt-priors      image sessions with a CLIP model: the labels' prompts\n"
    "                       (\"a photo of a LABEL\") as the centroids' priors\n"
    "  --queue URL          the job queue (default: $VISIOND_QUEUE, else\n"
    "                       sqlite:DATA/visiond.db)\n"
    "  --timeout SECS       stop waiting after SECS (exit 1; the job goes on)\n" COMMON_HELP;

/* Parses argv into *a; returns VD_EXIT_OK or the usage error's exit code. */
static int train_parse(int argc, char **argv, train_args *a)
{
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"kind", required_argument, NULL, O_KIND},
                                       {"name", required_argument, NULL, O_NAME},
                                       {"model", required_argument, NULL, O_MODEL},
                                       {"crop", no_argument, NULL, O_CROP},
                                       {"prompt-priors", no_argument, NULL, O_PRIORS},
                                       {"no-wait", no_argument, NULL, O_NOWAIT},
                                       {"queue", required_argument, NULL, O_QUEUE},
                                       {"timeout", required_argument, NULL, O_TIMEOUT},
                                       {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (common_opt(c, &a->co)) continue;
        if (c == O_KIND)
            a->req.kind = optarg;
        else if (c == O_NAME)
            a->req.name = optarg;
        else if (c == O_MODEL)
            a->req.model = optarg;
        else if (c == O_CROP)
            a->req.crop = 1;
        else if (c == O_PRIORS)
            a->req.prompt_priors = 1;
        else if (c == O_NOWAIT)
            a->nowait = 1;
        else if (c == O_QUEUE)
            a->queue = optarg;
        else if (c == O_TIMEOUT)
            a->timeout = atof(optarg);
        else
            return vd_cli_usage_error("train", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
    }
    if (optind + 1 != argc) return vd_cli_usage_error("train", "give exactly one folder");
    if (!a->req.name) return vd_cli_usage_error("train", "--name is required");
    a->dir = argv[optind];
    return VD_EXIT_OK;
}

/* Prints a refused or failed service call: "train: RULE: why". */
static int svc_fail(const char *cmd, const char *why, const vd_error *err)
{
    if (why) return vd_cli_fail("%s: %s: %s", cmd, why, vd_error_text(err));
    return vd_cli_fail("%s: %s", cmd, vd_error_text(err));
}

/* Waits for session sid (job jid) to end, with a progress bar; prints it. */
static int train_wait(vd_store *store, vd_queue *q, const train_args *a, const char *sid,
                      const char *jid)
{
    signal(SIGINT, on_sigint);
    vd_progress bar;
    char label[64];
    snprintf(label, sizeof label, "training %.40s", a->req.name);
    vd_progress_init(&bar, label, 0);
    int64_t start = vd_mono_ms();
    vd_error err;
    for (;;) {
        vd_session s;
        memset(&s, 0, sizeof s);
        if (vd_store_session_get(store, sid, &s, &err) != VD_OK) {
            vd_progress_end(&bar);
            return vd_cli_fail("train: %s", vd_error_text(&err));
        }
        /* a job that ended without ending the session (out of attempts) ends it failed */
        vd_svc_session_settle(store, q, &s, NULL);
        if (vd_session_state_is_final(s.state)) {
            vd_progress_update(&bar, s.progress_done, s.progress_total, "embedded");
            vd_progress_end(&bar);
            print_json_line(session_summary(&s));
            int rc = s.state == VD_SESSION_SUCCEEDED ? VD_EXIT_OK : VD_EXIT_FAIL;
            vd_session_clear(&s);
            return rc;
        }
        vd_progress_update(&bar, s.progress_done, s.progress_total,
                           s.progress_total && s.progress_done == s.progress_total
                               ? "embedded, training"
                           : s.state == VD_SESSION_QUEUED ? "queued (is a worker running?)"
                                                          : "embedded");
        vd_session_clear(&s);
        if (interrupted ||
            (a->timeout > 0 && vd_mono_ms() - start > (int64_t)(a->timeout * 1000))) {
            vd_progress_end(&bar);
            return vd_cli_fail("stopped waiting; session %s (job %s) goes on", sid, jid);
        }
        vd_sleep_ms(300);
    }
}

int vd_cmd_train(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        fputs(train_usage, stdout);
        return VD_EXIT_OK;
    }
    train_args a = {0};
    int rc = train_parse(argc, argv, &a);
    if (rc != VD_EXIT_OK) return rc;
    vd_svc_session_spec spec;
    const char *why = NULL;
    vd_error err;
    if (vd_svc_session_check(&a.req, &spec, &why, &err) != VD_OK)
        return vd_cli_usage_error("train", "train: %s: %s", why, vd_error_text(&err));
    vd_svc_examples ex = {0};
    if (vd_svc_examples_scan(a.dir, NULL, NULL, &ex, &why, &err) != VD_OK ||
        vd_svc_examples_check(&ex, &why, &err) != VD_OK) {
        vd_svc_examples_free(&ex);
        return svc_fail("train", why, &err);
    }
    vd_svc_backends b = {0};
    /* the model server answers; session start checks the model before writing anything */
    rc = open_all(&a.co, NULL, 1, &b.store, &b.runner);
    char qbuf[4096], sid[VD_ID_LEN + 1], jid[VD_ID_LEN + 1];
    const char *queue = a.queue ? a.queue : vd_cli_default_queue_url(qbuf, sizeof qbuf);
    if (rc == VD_EXIT_OK && vd_queue_open(queue, &b.queue, &err) != VD_OK)
        rc = vd_cli_fail("cannot open the queue %s: %s", queue, vd_error_text(&err));
    if (rc == VD_EXIT_OK &&
        vd_svc_session_start(&b, &a.req, &ex, NULL, sid, jid, &why, &err) != VD_OK)
        rc = svc_fail("train", why, &err);
    if (rc == VD_EXIT_OK && a.nowait)
        print_json_line(
            json_pack("{s:s, s:s, s:I}", "id", sid, "job_id", jid, "examples", (json_int_t)ex.n));
    else if (rc == VD_EXIT_OK)
        rc = train_wait(b.store, b.queue, &a, sid, jid);
    vd_svc_examples_free(&ex);
    vd_queue_close(b.queue);
    vd_runner_free(b.runner);
    vd_store_close(b.store);
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
    const char *const *files = (const char *const *)(argv + optind);
    size_t n = (size_t)(argc - optind);
    vd_store *store;
    vd_runner *runner = NULL;
    vd_error err;
    vd_session s;
    memset(&s, 0, sizeof s);
    vd_classifier *clf = NULL;
    const char *why = NULL;
    json_t *preds = NULL;
    size_t failed = 0;
    int rc = open_all(&co, NULL, 0, &store, &runner);
    if (rc == VD_EXIT_OK && vd_svc_predict_open(store, sid, &s, &clf, &why, &err) != VD_OK)
        rc = svc_fail("predict", why, &err);
    if (rc == VD_EXIT_OK) {
        vd_store_close(store);
        rc = open_all(&co, s.model, 1, &store, &runner);
    }
    if (rc == VD_EXIT_OK && vd_svc_predict(store, runner, &s, clf, files, files, n, &preds, &failed,
                                           &why, &err) != VD_OK)
        rc = svc_fail("predict", why, &err);
    size_t i;
    json_t *p;
    json_array_foreach(preds, i, p) print_json_line(json_incref(p));
    json_decref(preds);
    if (rc == VD_EXIT_OK && failed) rc = VD_EXIT_FAIL;
    vd_classifier_free(clf);
    vd_session_clear(&s);
    vd_runner_free(runner);
    vd_store_close(store);
    return rc;
}

/* ---- search ------------------------------------------------------------- */

/* The library's index, read here from its files and the store (never saved:
 * the API's owner keeps the files). */
static int search_owner(const common_opts *co, vd_libindex **li)
{
    char sp[4096], dir[4096];
    const char *url = co->store ? co->store : vd_store_default_url(sp, sizeof sp);
    vd_libindex_config c = {.store_url = url,
                            .dir = vd_data_path(dir, sizeof dir, "index"),
                            .poll_ms = -1,
                            .read_only = 1};
    vd_error err;
    if (vd_libindex_start(&c, li, &err) != VD_OK)
        return vd_cli_fail("search: the library index: %s", vd_error_text(&err));
    return VD_EXIT_OK;
}

int vd_cmd_search(int argc, char **argv)
{
    static const char usage[] =
        "usage: visiond search FILE [--k K] [--model M] [--folder DIR]\n"
        "\n"
        "Finds the library's photos nearest to an image file (docs/search.md): the file is\n"
        "embedded through the model server (cache first) and looked up in the library's index\n"
        "(loaded from DATA/index and caught up from the store). Prints the same JSON as\n"
        "POST /search: {\"model\",\"results\":[{\"asset_id\",\"path\",\"score\"}]}.\n"
        "\n"
        "  --k K                results, 1..1000 (default 20)\n"
        "  --model M            image model of the index (default mobilenet_v2)\n"
        "  --folder DIR         only photos in DIR or below\n" COMMON_HELP;
    if (vd_cli_wants_help(argc, argv)) {
        fputs(usage, stdout);
        return VD_EXIT_OK;
    }
    static const struct option lo[] = {COMMON_LONGOPTS,
                                       {"k", required_argument, NULL, O_K},
                                       {"model", required_argument, NULL, O_MODEL},
                                       {"folder", required_argument, NULL, O_FOLDER},
                                       {NULL, 0, NULL, 0}};
    common_opts co = {0};
    vd_svc_search_req r = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (common_opt(c, &co)) continue;
        char *end = NULL;
        if (c == O_K) {
            long long k = strtoll(optarg, &end, 10);
            r.k = *optarg && !*end && k != 0 ? k : -1; /* refused by the service, with its rule */
        } else if (c == O_MODEL) {
            r.model = optarg;
        } else if (c == O_FOLDER) {
            r.folder = optarg;
        } else {
            return vd_cli_usage_error("search", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
        }
    }
    if (optind + 1 != argc) return vd_cli_usage_error("search", "give exactly one file");
    r.path = argv[optind];
    vd_store *store = NULL;
    vd_runner *runner = NULL;
    vd_libindex *li = NULL;
    vd_svc_search_hit *hits = NULL;
    size_t n = 0;
    const char *why = NULL;
    vd_error err;
    int rc = open_all(&co, vd_svc_search_model(r.model), 1, &store, &runner);
    if (rc == VD_EXIT_OK) rc = search_owner(&co, &li);
    if (rc == VD_EXIT_OK && vd_svc_search(li, store, runner, &r, &hits, &n, &why, &err) != VD_OK)
        rc = svc_fail("search", why, &err);
    if (rc == VD_EXIT_OK) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, json_pack("{s:I, s:s, s:f}", "asset_id",
                                                 (json_int_t)hits[i].asset_id, "path", hits[i].path,
                                                 "score", (double)hits[i].score));
        print_json_line(
            json_pack("{s:s, s:o}", "model", vd_svc_search_model(r.model), "results", arr));
    }
    vd_svc_search_hits_free(hits, n);
    vd_libindex_stop(li);
    vd_runner_free(runner);
    vd_store_close(store);
    return rc;
}
