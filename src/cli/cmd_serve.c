/* cmd_serve.c: `visiond serve`, the HTTP API (see api/api.h, docs/api.md).
 *
 * Prints one JSON line on stdout once it listens ({"listen", "port", "queue"})
 * so that scripts can start it on port 0 and read the port. Runs until
 * SIGTERM or SIGINT, then stops accepting, lets in-flight requests finish
 * and exits 0. Exit 1 when it cannot start (the address in use, the queue
 * unreachable), 2 on a usage or configuration error (a malformed or refused
 * listen address, a missing media root, an unreadable or empty token file):
 * see start_failed. */
#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"
#include "core/datadir.h"
#include "core/hostport.h"
#include "core/sigpipe.h"
#include "core/log.h"
#include "core/util.h"
#include "queue/queue.h"

#define MAX_ROOTS 64

static const char serve_usage[] =
    "usage: visiond serve [OPTIONS]\n"
    "\n"
    "Serves the HTTP API (docs/api.md) until SIGTERM or SIGINT.\n"
    "\n"
    "options:\n"
    "  --listen HOST:PORT   address to listen on (default 127.0.0.1:8080; port 0 = any free\n"
    "                       port). HOST is a numeric IPv4/[IPv6] address or localhost.\n"
    "                       Beyond loopback a token is required.\n"
    "  --queue URL          sqlite:PATH, redis://HOST:PORT/DB or postgres://USER@HOST/DB\n"
    "                       (default: $VISIOND_QUEUE,\n"
    "                       else sqlite:DATA/visiond.db)\n"
    "  --model-server ADDR  model server: unix:PATH or tcp:HOST:PORT (default:\n"
    "                       $VISIOND_MODEL_SERVER, else unix:DATA/model.sock); 'none' = none;\n"
    "                       several, ','-separated, are used in turn with failover\n"
    "  --secret-file FILE   the model servers' shared secret (default\n"
    "                       $VISIOND_MODEL_SECRET_FILE; docs/deploy.md)\n"
    "  --data DIR           runtime data directory (default $VISIOND_DATA, else ./data);\n"
    "                       uploads are staged in DIR/uploads\n"
    "  --media-root DIR     a directory client-given paths may lie under (repeatable)\n"
    "  --token TOKEN        require 'Authorization: Bearer TOKEN' (visible in ps: prefer\n"
    "                       --token-file or $VISIOND_TOKEN)\n"
    "  --token-file FILE    read the token from FILE's first line\n"
    "  --max-body MB        largest JSON body (default 1)\n"
    "  --max-upload MB      largest multipart upload (default 64)\n"
    "  --max-uploads N      uploads in progress at once (default 4)\n"
    "  --threads N          HTTP worker threads, each with its own queue handle (default 4)\n"
    "  --models DIR         read model metadata here instead of asking the model server\n"
    "  --store URL          the store (sessions, embeddings): sqlite:PATH, PATH or\n"
    "                       postgres://USER@HOST:PORT/DB (default $VISIOND_STORE, else\n"
    "                       DATA/store.db)\n"
    "  --library-model M    the photo library's image model (default mobilenet_v2)\n"
    "  --library-face-model M  its face model (default faceres; \"\" = no faces)\n"
    "  --immich-ml          serve Immich's ML interface (GET /ping, POST /predict) without\n"
    "                       the token, for Immich's server, which sends none (docs/immich.md)\n"
    "  --immich-model NAME:TYPE=MODEL[,...]\n"
    "                       run visiond's MODEL for Immich's model NAME of TYPE (visual,\n"
    "                       textual, detection, recognition); repeatable\n"
    "  -h, --help           this help\n"
    "\n"
    "Environment: VISIOND_TOKEN, VISIOND_QUEUE, VISIOND_STORE, VISIOND_MODEL_SERVER, "
    "VISIOND_DATA,\n"
    "VISIOND_LOG_LEVEL.\n";

typedef struct {
    const char *listen, *queue, *data, *token, *token_file, *model_server;
    const char *max_body, *max_upload, *max_uploads, *threads;
    const char *models, *store, *secret_file, *library_model, *library_face_model;
    const char *roots[MAX_ROOTS];
    size_t nroots;
    int immich_ml;
    const char *immich_models[MAX_ROOTS];
    size_t nimmich_models;
} serve_args;

/* Parses "--opt VALUE" and "--opt=VALUE". Returns 0 on success, else a usage exit code. */
static int parse(int argc, char **argv, serve_args *a)
{
    static const struct {
        const char *name;
        size_t off;
    } opts[] = {
        {"--listen", offsetof(serve_args, listen)},
        {"--queue", offsetof(serve_args, queue)},
        {"--model-server", offsetof(serve_args, model_server)},
        {"--data", offsetof(serve_args, data)},
        {"--token", offsetof(serve_args, token)},
        {"--token-file", offsetof(serve_args, token_file)},
        {"--max-body", offsetof(serve_args, max_body)},
        {"--max-upload", offsetof(serve_args, max_upload)},
        {"--max-uploads", offsetof(serve_args, max_uploads)},
        {"--threads", offsetof(serve_args, threads)},
        {"--models", offsetof(serve_args, models)},
        {"--store", offsetof(serve_args, store)},
        {"--secret-file", offsetof(serve_args, secret_file)},
        {"--library-model", offsetof(serve_args, library_model)},
        {"--library-face-model", offsetof(serve_args, library_face_model)},
    };
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        const char *val = eq ? eq + 1 : NULL;
        if (strcmp(arg, "--immich-ml") == 0) { /* a flag: no value */
            a->immich_ml = 1;
            continue;
        }
        int is_models =
            strncmp(arg, "--immich-model", nlen) == 0 && nlen == strlen("--immich-model");
        int is_root = strncmp(arg, "--media-root", nlen) == 0 && nlen == strlen("--media-root");
        int found = -1;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && found < 0; k++)
            if (strlen(opts[k].name) == nlen && strncmp(arg, opts[k].name, nlen) == 0)
                found = (int)k;
        if (found < 0 && !is_root && !is_models)
            return vd_cli_usage_error("serve", "unknown option '%s'", arg);
        if (!val) {
            if (i + 1 >= argc)
                return vd_cli_usage_error("serve", "option '%.*s' needs a value", (int)nlen, arg);
            val = argv[++i];
        }
        if (is_models) {
            if (a->nimmich_models == MAX_ROOTS)
                return vd_cli_usage_error("serve", "at most %d --immich-model", MAX_ROOTS);
            a->immich_models[a->nimmich_models++] = val;
        } else if (is_root) {
            if (a->nroots == MAX_ROOTS)
                return vd_cli_usage_error("serve", "at most %d media roots", MAX_ROOTS);
            a->roots[a->nroots++] = val;
        } else {
            *(const char **)((char *)a + opts[found].off) = val;
        }
    }
    return 0;
}

/* Parses a positive number of MiB (decimals allowed) into bytes. */
static int parse_mb(const char *s, const char *opt, size_t *out)
{
    if (!s) return 1;
    char *end;
    errno = 0;
    double mb = strtod(s, &end);
    if (!*s || *end || errno || !(mb > 0) || mb > 1024 * 1024) {
        vd_cli_usage_error("serve", "%s wants a positive number of MB, not '%s'", opt, s);
        return 0;
    }
    *out = (size_t)(mb * 1024 * 1024);
    if (*out == 0) *out = 1;
    return 1;
}

static int parse_count(const char *s, const char *opt, int max, int *out)
{
    if (!s) return 1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < 1 || v > max) {
        vd_cli_usage_error("serve", "%s wants a whole number from 1 to %d, not '%s'", opt, max, s);
        return 0;
    }
    *out = (int)v;
    return 1;
}

/* Reads the first line of path into a malloc'd string, trailing whitespace removed. */
static char *read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        vd_cli_fail("cannot read token file %s: %s", path, strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    fclose(f);
    if (n < 0) {
        free(line);
        vd_cli_fail("token file %s is empty", path);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
        line[--n] = '\0';
    if (n == 0) {
        free(line);
        vd_cli_fail("token file %s is empty", path);
        return NULL;
    }
    return line;
}

/* Reports why the API could not start. A configuration error (VD_ERR_INVALID:
 * a malformed or refused listen address, a missing media root, a malformed
 * queue URL) exits 2, which `visiond up` takes as "restarting cannot help";
 * anything else (the address in use, the queue unreachable) exits 1. */
static int start_failed(vd_status st, const vd_error *err)
{
    vd_cli_fail("serve: %s", vd_error_text(err));
    return st == VD_ERR_INVALID ? VD_EXIT_USAGE : VD_EXIT_FAIL;
}

enum { SERVE_MALLOC_ARENAS = 2 };

int vd_cmd_serve(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        fputs(serve_usage, stdout);
        return VD_EXIT_OK;
    }
    serve_args a;
    memset(&a, 0, sizeof a);
    int rc = parse(argc, argv, &a);
    if (rc) return rc;
    /* At most two malloc arenas (unless $MALLOC_ARENA_MAX says otherwise): with one per
     * thread, freed memory stayed pinned in each and the api's RSS grew ~0.6 MB/min under
     * steady load with the bytes in use flat; with two it stayed flat (docs/operations.md). */
    if (!getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, SERVE_MALLOC_ARENAS);

    vd_api_config cfg = {0};
    cfg.listen = a.listen ? a.listen : "127.0.0.1:8080";
    cfg.data_dir = a.data ? a.data : vd_data_dir();
    char qbuf[4096];
    if (a.queue)
        cfg.queue_url = a.queue;
    else if (getenv("VISIOND_QUEUE") && *getenv("VISIOND_QUEUE"))
        cfg.queue_url = getenv("VISIOND_QUEUE");
    else {
        snprintf(qbuf, sizeof qbuf, "sqlite:%s/visiond.db", cfg.data_dir);
        cfg.queue_url = qbuf;
    }
    if (a.secret_file && (rc = vd_cli_secret_file("serve", a.secret_file)) != VD_EXIT_OK) return rc;
    char mbuf[4096];
    if (a.model_server)
        cfg.model_server = strcmp(a.model_server, "none") == 0 ? NULL : a.model_server;
    else if (getenv("VISIOND_MODEL_SERVER") && *getenv("VISIOND_MODEL_SERVER"))
        cfg.model_server = getenv("VISIOND_MODEL_SERVER");
    else {
        snprintf(mbuf, sizeof mbuf, "unix:%s/model.sock", cfg.data_dir);
        cfg.model_server = mbuf;
    }
    if (!parse_mb(a.max_body, "--max-body", &cfg.max_body) ||
        !parse_mb(a.max_upload, "--max-upload", &cfg.max_upload) ||
        !parse_count(a.max_uploads, "--max-uploads", 1024, &cfg.max_uploads) ||
        !parse_count(a.threads, "--threads", 256, &cfg.threads))
        return VD_EXIT_USAGE;
    cfg.media_roots = a.roots;
    cfg.models_path = a.models;
    cfg.store_path = a.store;
    cfg.nmedia_roots = a.nroots;
    cfg.library_model = a.library_model;
    cfg.library_face_model = a.library_face_model;
    cfg.immich_ml = a.immich_ml;
    cfg.immich_models = a.immich_models;
    cfg.nimmich_models = a.nimmich_models;

    if ((rc = vd_cli_store_check("serve", a.store)) != VD_EXIT_OK) return rc;

    char *token = NULL;
    if (a.token && a.token_file)
        return vd_cli_usage_error("serve", "give --token or --token-file, not both");
    if (a.token) {
        if (!*a.token) return vd_cli_usage_error("serve", "--token is empty");
        token = strdup(a.token);
    } else if (a.token_file) {
        token = read_token_file(a.token_file);
        if (!token) return VD_EXIT_USAGE; /* a configuration error: see start_failed */
    } else if (getenv("VISIOND_TOKEN") && *getenv("VISIOND_TOKEN")) {
        token = strdup(getenv("VISIOND_TOKEN"));
    }
    cfg.token = token;

    int level = vd_log_level_parse(getenv("VISIOND_LOG_LEVEL"));
    vd_log_init("api", level < 0 ? VD_LOG_INFO : (vd_log_level)level, 2);

    /* The stop signals arrive on a pipe (core/sigpipe.h) that the main thread
     * waits on, whichever thread the kernel hands them to. */
    static const int stop_sigs[] = {SIGTERM, SIGINT};
    int sigfd;
    vd_error err;
    if (vd_sigpipe_open(stop_sigs, 2, &sigfd, &err) != VD_OK)
        return vd_cli_fail("serve: %s", err.msg);

    vd_api *api = NULL;
    vd_status st = vd_api_start(&cfg, &api, &err);
    int with_token = token != NULL;
    cfg.token = NULL;
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (st != VD_OK) return start_failed(st, &err);
    if (a.token) VD_WARN("the token was given with --token: other local users can see it in ps");

    vd_hostport hp; /* parsed when the api started: the same host, the port bound */
    char listen[VD_HOSTPORT_HOST_MAX + 16];
    vd_hostport_parse(cfg.listen, VD_HOSTPORT_ANY_PORT, "listen address", &hp, NULL);
    vd_hostport_format(hp.host, vd_api_port(api), listen, sizeof listen);
    char queue_shown[512]; /* the queue URL without its password, if any */
    vd_queue_url_shown(cfg.queue_url, queue_shown, sizeof queue_shown);
    VD_INFO("listening on %s (queue %s, model server %s, %zu media roots, auth %s)", listen,
            queue_shown, cfg.model_server ? cfg.model_server : "none", cfg.nmedia_roots,
            with_token ? "on" : "off");
    json_t *hello = json_pack("{s:s, s:i, s:s, s:b}", "listen", listen, "port", vd_api_port(api),
                              "queue", queue_shown, "auth", with_token);
    char *line = hello ? json_dumps(hello, JSON_COMPACT) : NULL;
    json_decref(hello);
    if (line) printf("%s\n", line);
    fflush(stdout);
    free(line);

    int sig = 0;
    struct pollfd pfd = {.fd = sigfd, .events = POLLIN};
    while (vd_sigpipe_read(sigfd, &sig, 1) == 0)
        poll(&pfd, 1, -1);
    vd_sigpipe_close();
    VD_INFO("stopping on signal %d", sig);
    vd_api_stop(api);
    VD_INFO("stopped");
    return VD_EXIT_OK;
}
