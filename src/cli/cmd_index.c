/* cmd_index.c: `visiond index FOLDER`: the CLI twin of POST /assets
 * {"folder"} (docs/library.md): registers the folder's images in the photo
 * library through the same service function (service/library.h), then waits
 * for the index job a worker runs, with a progress bar, and prints a summary. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/progress.h"
#include "core/datadir.h"
#include "core/paths.h"
#include "core/pg.h"
#include "core/util.h"
#include "queue/queue.h"
#include "service/library.h"

#define MAX_ROOTS 16

static const char index_usage[] =
    "usage: visiond index [--store URL] [--queue URL] [--data DIR] [--media-root DIR]\n"
    "                     [--library-model M] [--library-face-model M] [--no-wait]\n"
    "                     [--timeout SECS] FOLDER\n"
    "\n"
    "Registers the image files below FOLDER (recursively; the same bytes are one asset)\n"
    "in the photo library and enqueues one index job for a worker ('visiond worker'),\n"
    "which embeds each image and finds its faces (docs/library.md). Then waits: a\n"
    "progress bar on a terminal, and a summary as JSON (indexed, already known,\n"
    "errors). With --no-wait it prints the registration and exits. Exit 1 when\n"
    "nothing could be registered or the job fails; Ctrl-C stops waiting (the job\n"
    "goes on).\n"
    "\n"
    "  --store URL            the store (default $VISIOND_STORE, else DATA/store.db)\n"
    "  --queue URL            the job queue (default $VISIOND_QUEUE, else\n"
    "                         sqlite:DATA/visiond.db)\n"
    "  --data DIR             data directory (default $VISIOND_DATA, else ./data)\n"
    "  --media-root DIR       files must lie beneath DIR (repeatable; default: any path)\n"
    "  --library-model M      image model (default mobilenet_v2: config library_model)\n"
    "  --library-face-model M face model (default faceres; \"\" = no faces)\n"
    "  --no-wait              print the registration and the job id, and exit\n"
    "  --timeout SECS         stop waiting after SECS (exit 1; the job goes on)\n"
    "  -h, --help             this help\n";

enum { O_STORE = 1000, O_QUEUE, O_DATA, O_ROOT, O_MODEL, O_FACE, O_NOWAIT, O_TIMEOUT };

typedef struct {
    const char *store, *queue, *folder, *model, *face_model;
    const char *roots[MAX_ROOTS];
    size_t nroots;
    int nowait;
    double timeout;
} index_args;

static int index_parse(int argc, char **argv, index_args *a)
{
    static const struct option lo[] = {{"store", required_argument, NULL, O_STORE},
                                       {"queue", required_argument, NULL, O_QUEUE},
                                       {"data", required_argument, NULL, O_DATA},
                                       {"media-root", required_argument, NULL, O_ROOT},
                                       {"library-model", required_argument, NULL, O_MODEL},
                                       {"library-face-model", required_argument, NULL, O_FACE},
                                       {"no-wait", no_argument, NULL, O_NOWAIT},
                                       {"timeout", required_argument, NULL, O_TIMEOUT},
                                       {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (c == O_STORE)
            a->store = optarg;
        else if (c == O_QUEUE)
            a->queue = optarg;
        else if (c == O_DATA)
            vd_data_dir_set(optarg, NULL);
        else if (c == O_ROOT && a->nroots < MAX_ROOTS)
            a->roots[a->nroots++] = optarg;
        else if (c == O_MODEL)
            a->model = optarg;
        else if (c == O_FACE)
            a->face_model = optarg;
        else if (c == O_NOWAIT)
            a->nowait = 1;
        else if (c == O_TIMEOUT)
            a->timeout = atof(optarg);
        else
            return vd_cli_usage_error("index", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
    }
    if (optind + 1 != argc) return vd_cli_usage_error("index", "give exactly one folder");
    a->folder = argv[optind];
    return VD_EXIT_OK;
}

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void print_json_line(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (s) puts(s);
    free(s);
    json_decref(j);
    fflush(stdout);
}

/* The registration's outcomes as JSON: counts and the per-file errors (the first few). */
static json_t *registration_json(const vd_svc_assets_result *r)
{
    json_t *errs = json_array();
    for (size_t i = 0; i < r->n && json_array_size(errs) < VD_SVC_LIBRARY_MAX_OUTPUT; i++)
        if (r->v[i].code)
            json_array_append_new(errs, json_pack("{s:s, s:s, s:s}", "path", r->v[i].path, "code",
                                                  r->v[i].code, "error", r->v[i].error));
    return json_pack("{s:o, s:I, s:I, s:I, s:I, s:o}", "job_id",
                     r->job_id[0] ? json_string(r->job_id) : json_null(), "added",
                     (json_int_t)r->added, "known", (json_int_t)r->known, "queued",
                     (json_int_t)r->queued, "failed", (json_int_t)r->failed, "errors", errs);
}

/* Waits for job jid with a progress bar; adds its outcome to summary and prints it. */
static int index_wait(vd_queue *q, const index_args *a, const char *jid, json_t *summary)
{
    signal(SIGINT, on_sigint);
    vd_progress bar;
    vd_progress_init(&bar, "indexing", 0);
    int64_t start = vd_mono_ms();
    vd_error err;
    for (;;) {
        vd_job job;
        memset(&job, 0, sizeof job);
        if (vd_queue_get(q, jid, &job, &err) != VD_OK) {
            vd_progress_end(&bar);
            json_decref(summary);
            return vd_cli_fail("index: job %s: %s", jid, vd_error_text(&err));
        }
        int ended = job.state == VD_JOB_FINISHED || job.state == VD_JOB_FAILED ||
                    job.state == VD_JOB_CANCELED;
        vd_progress_update(&bar, job.progress_done, job.progress_total,
                           job.state == VD_JOB_QUEUED ? "queued (is a worker running?)" : "images");
        if (ended) {
            vd_progress_end(&bar);
            json_t *res = job.result ? json_loads(job.result, 0, NULL) : NULL;
            json_object_set_new(summary, "job_state", json_string(vd_job_state_name(job.state)));
            json_object_set_new(summary, "index", res ? res : json_null());
            if (job.error) json_object_set_new(summary, "job_error", json_string(job.error));
            int rc = job.state == VD_JOB_FINISHED ? VD_EXIT_OK : VD_EXIT_FAIL;
            vd_job_clear(&job);
            print_json_line(summary);
            return rc;
        }
        vd_job_clear(&job);
        if (interrupted ||
            (a->timeout > 0 && vd_mono_ms() - start > (int64_t)(a->timeout * 1000))) {
            vd_progress_end(&bar);
            print_json_line(summary);
            return vd_cli_fail("stopped waiting; job %s goes on", jid);
        }
        vd_sleep_ms(300);
    }
}

/* Opens the store, the queue and the roots; registers the folder. */
static int index_register(const index_args *a, vd_svc_library *lib, vd_media_roots **roots,
                          vd_svc_assets_result *r)
{
    vd_error err;
    char sp[4096], qbuf[4096], shown[1024];
    const char *url = a->store ? a->store : vd_store_default_url(sp, sizeof sp);
    if (a->nroots && vd_media_roots_new(a->roots, a->nroots, roots, &err) != VD_OK)
        return vd_cli_usage_error("index", "%s", vd_error_text(&err));
    lib->roots = *roots;
    if (vd_store_open(url, NULL, &lib->store, &err) != VD_OK)
        return vd_cli_fail("cannot open the store %s: %s",
                           vd_pg_url_shown(url, shown, sizeof shown), vd_error_text(&err));
    const char *queue = a->queue ? a->queue : vd_cli_default_queue_url(qbuf, sizeof qbuf);
    if (vd_queue_open(queue, &lib->queue, &err) != VD_OK)
        return vd_cli_fail("cannot open the queue %s: %s", queue, vd_error_text(&err));
    /* a relative FOLDER is the user's: made absolute here, the service takes absolute paths */
    char *abs = realpath(a->folder, NULL);
    vd_svc_assets_req req = {.folder = abs ? abs : a->folder};
    const char *why = NULL;
    vd_status st = vd_svc_assets_register(lib, &req, r, &why, &err);
    free(abs);
    if (st != VD_OK) {
        if (r->n) print_json_line(registration_json(r));
        return why ? vd_cli_fail("index: %s: %s", why, vd_error_text(&err))
                   : vd_cli_fail("index: %s", vd_error_text(&err));
    }
    return VD_EXIT_OK;
}

int vd_cmd_index(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        fputs(index_usage, stdout);
        return VD_EXIT_OK;
    }
    index_args a = {0};
    int rc = index_parse(argc, argv, &a);
    if (rc != VD_EXIT_OK) return rc;
    vd_svc_library lib = {.model = a.model ? a.model : vd_svc_library_model(),
                          .face_model = a.face_model ? a.face_model : vd_svc_library_face_model()};
    vd_media_roots *roots = NULL;
    vd_svc_assets_result r = {0};
    rc = index_register(&a, &lib, &roots, &r);
    if (rc == VD_EXIT_OK && (a.nowait || !r.job_id[0]))
        print_json_line(registration_json(&r));
    else if (rc == VD_EXIT_OK)
        rc = index_wait(lib.queue, &a, r.job_id, registration_json(&r));
    vd_svc_assets_result_free(&r);
    vd_queue_close(lib.queue);
    vd_store_close(lib.store);
    vd_media_roots_free(roots);
    return rc;
}
