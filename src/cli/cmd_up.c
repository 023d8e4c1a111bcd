/* cmd_up.c: `visiond up`, every part of visiond on one machine under one
 * supervisor: the model server, N worker supervisors and the api, on the
 * embedded SQLite store under the data directory (docs/configuration.md). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/http.h"
#include "cli/cli.h"
#include "core/datadir.h"
#include "core/hostport.h"
#include "core/paths.h"
#include "core/config.h"
#include "core/log.h"
#include "core/pg.h"
#include "core/procsup.h"
#include "core/util.h"
#include "infer/auth.h"
#include "store/store.h"
#include "queue/queue.h"

static const char usage_text[] =
    "usage: visiond up [OPTIONS]\n"
    "\n"
    "Runs the model server, worker supervisors and the HTTP API under one supervisor\n"
    "that restarts a child that dies (with backoff) and stops them all cleanly on\n"
    "SIGTERM or Ctrl-C. Settings come from defaults < config file < VISIOND_* environment\n"
    "variables < flags (docs/configuration.md lists every key).\n"
    "\n"
    "options:\n"
    "  --config FILE         config file of 'key = value' lines (default $VISIOND_CONFIG,\n"
    "                        else DATA/visiond.conf when it exists)\n"
    "  --data DIR            data directory (key data; default ./data)\n"
    "  --listen HOST:PORT    api address (key listen; default 127.0.0.1:8080)\n"
    "  --workers N           worker supervisors (key workers; default 1)\n"
    "  --concurrency N       work-horses per worker (key concurrency; default 2)\n"
    "  --queue URL           queue (key queue; default sqlite:DATA/visiond.db)\n"
    "  --store URL           store: sqlite:PATH, PATH or postgres://USER@HOST:PORT/DB\n"
    "                        (key store; default DATA/store.db); children get it through\n"
    "                        $VISIOND_STORE, never on a command line\n"
    "  --models DIR          models directory (key models; default DATA/models)\n"
    "  --media-root DIR      a directory api clients may name files under (repeatable;\n"
    "                        key media_roots, colon-separated)\n"
    "  --token-file FILE     api bearer token (key token_file)\n"
    "  --model-threads N     ONNX Runtime threads (key model_threads; 0 = all cores)\n"
    "  --preload A,B         models loaded at start (key preload)\n"
    "  --log-level LEVEL     debug, info, warn, error (key log_level)\n"
    "  --log-format FORMAT   text or json, for up and every child (key log_format)\n"
    "  --role LIST           what runs on this host: api,worker,model-server (key role;\n"
    "                        default all three; docs/deploy.md)\n"
    "  --model-server LIST   model-server address(es) for the api and workers, e.g.\n"
    "                        tcp:10.0.0.10:7700,tcp:10.0.0.11:7700 (key model_server;\n"
    "                        default this host's unix:DATA/model.sock)\n"
    "  --model-listen H:P    the model server also listens on TCP here (key model_listen;\n"
    "                        beyond loopback it needs a secret)\n"
    "  --secret-file FILE    the model servers' shared secret, mode 0600 (key\n"
    "                        model_secret_file)\n"
    "  --library-model M     the photo library's image model (key library_model;\n"
    "                        default mobilenet_v2; docs/library.md)\n"
    "  --library-face-model M  its face model (key library_face_model; default faceres)\n"
    "  --immich-ml 0|1       1: Immich's ML interface (GET /ping, POST /predict) needs no\n"
    "                        token (key immich_ml; docs/immich.md)\n"
    "  --immich-models LIST  Immich model names, NAME:TYPE=MODEL,... (key immich_models)\n"
    "  --print-config        print the effective settings and where each came from, and exit\n"
    "  -h, --help            this help\n";

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Appends a NULL-terminated argv under construction. */
typedef struct {
    char *v[64];
    int n;
} argv_buf;

static void push(argv_buf *a, const char *s)
{
    if (a->n < 63) a->v[a->n++] = (char *)s;
    a->v[a->n] = NULL;
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    vd_strlcpy(tmp, path, sizeof tmp);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

/* Checks what would stop the api child from ever starting, with the
 * functions it uses itself, so that `up` refuses at once with the reason:
 * the listen address and the loopback-or-token rule (vd_http_check_listen),
 * the token file, every media root (vd_media_roots_new), and the port
 * (vd_http_bind, closed again at once: another server on it fails here). */
static vd_status check_api_start(const vd_config *cfg, vd_error *err)
{
    const char *token_file = cfg->value[VD_CFG_TOKEN_FILE], *env = getenv("VISIOND_TOKEN");
    if (*token_file && access(token_file, R_OK) != 0)
        return vd_error_set(err, VD_ERR_INVALID, "cannot read token file %s: %s", token_file,
                            strerror(errno));
    const char *listen = cfg->value[VD_CFG_LISTEN];
    vd_status st = vd_http_check_listen(listen, *token_file || (env && *env), err);
    if (st != VD_OK) return st;
    char roots[1024];
    const char *dirs[64];
    size_t n = 0;
    vd_strlcpy(roots, cfg->value[VD_CFG_MEDIA_ROOTS], sizeof roots);
    for (char *save = NULL, *r = strtok_r(roots, ":", &save); r && n < 64;
         r = strtok_r(NULL, ":", &save))
        dirs[n++] = r;
    vd_media_roots *mr = NULL;
    if ((st = vd_media_roots_new(dirs, n, &mr, err)) != VD_OK) return st;
    vd_media_roots_free(mr);
    int fd = -1;
    if ((st = vd_http_bind(listen, &fd, err)) != VD_OK) return st;
    close(fd);
    return VD_OK;
}

/* Checks what the roles need before anything starts (docs/deploy.md): an
 * address when no model server runs here, a secret for a non-loopback
 * model_listen, a secret file that can be used, something to run. */
static vd_status check_roles(const vd_config *cfg, unsigned roles, vd_error *err)
{
    const char *listen = cfg->value[VD_CFG_MODEL_LISTEN],
               *secret = cfg->value[VD_CFG_MODEL_SECRET_FILE];
    if (!(roles & VD_ROLE_MODEL_SERVER) && (roles & (VD_ROLE_API | VD_ROLE_WORKER)) &&
        !cfg->value[VD_CFG_MODEL_SERVER][0])
        return vd_error_set(
            err, VD_ERR_INVALID,
            "role '%s' runs no model server here: give model_server (--model-server "
            "tcp:HOST:PORT,...), the address of one",
            cfg->value[VD_CFG_ROLE]);
    if (*listen && !(roles & VD_ROLE_MODEL_SERVER))
        return vd_error_set(err, VD_ERR_INVALID,
                            "model_listen is set but role '%s' runs no model server",
                            cfg->value[VD_CFG_ROLE]);
    if (roles == VD_ROLE_WORKER && vd_config_int(cfg, VD_CFG_WORKERS) == 0)
        return vd_error_set(err, VD_ERR_INVALID, "role worker with workers = 0: nothing to run");
    if (*secret) {
        vd_auth_secret s;
        vd_status st = vd_auth_secret_load(secret, &s, err);
        memset(&s, 0, sizeof s);
        if (st != VD_OK) return st;
    }
    if (*listen && !*secret) {
        vd_hostport hp;
        struct sockaddr_storage ss;
        socklen_t len;
        int loopback = 0;
        vd_status st = vd_hostport_parse(listen, VD_HOSTPORT_ANY_PORT, "model_listen", &hp, err);
        if (st == VD_OK)
            st = vd_hostport_sockaddr(&hp, "model_listen", listen, &ss, &len, &loopback, err);
        if (st != VD_OK) return st;
        if (!loopback)
            return vd_error_set(err, VD_ERR_INVALID,
                                "model_listen %s is not a loopback address: the model server needs "
                                "a shared secret there (model_secret_file, --secret-file)",
                                listen);
    }
    return VD_OK;
}

/* Flags map to config keys: getopt's code for key k is FLAG(k). */
#define FLAG(k) ((k) + 1000)

static const struct option longopts[] = {
    {"config", required_argument, 0, 'c'},
    {"data", required_argument, 0, FLAG(VD_CFG_DATA)},
    {"listen", required_argument, 0, FLAG(VD_CFG_LISTEN)},
    {"workers", required_argument, 0, FLAG(VD_CFG_WORKERS)},
    {"concurrency", required_argument, 0, FLAG(VD_CFG_CONCURRENCY)},
    {"queue", required_argument, 0, FLAG(VD_CFG_QUEUE)},
    {"store", required_argument, 0, FLAG(VD_CFG_STORE)},
    {"models", required_argument, 0, FLAG(VD_CFG_MODELS)},
    {"media-root", required_argument, 0, FLAG(VD_CFG_MEDIA_ROOTS)},
    {"token-file", required_argument, 0, FLAG(VD_CFG_TOKEN_FILE)},
    {"model-threads", required_argument, 0, FLAG(VD_CFG_MODEL_THREADS)},
    {"preload", required_argument, 0, FLAG(VD_CFG_PRELOAD)},
    {"log-level", required_argument, 0, FLAG(VD_CFG_LOG_LEVEL)},
    {"role", required_argument, 0, FLAG(VD_CFG_ROLE)},
    {"model-server", required_argument, 0, FLAG(VD_CFG_MODEL_SERVER)},
    {"model-listen", required_argument, 0, FLAG(VD_CFG_MODEL_LISTEN)},
    {"secret-file", required_argument, 0, FLAG(VD_CFG_MODEL_SECRET_FILE)},
    {"library-model", required_argument, 0, FLAG(VD_CFG_LIBRARY_MODEL)},
    {"library-face-model", required_argument, 0, FLAG(VD_CFG_LIBRARY_FACE_MODEL)},
    {"immich-ml", required_argument, 0, FLAG(VD_CFG_IMMICH_ML)},
    {"immich-models", required_argument, 0, FLAG(VD_CFG_IMMICH_MODELS)},
    {"print-config", no_argument, 0, 'p'},
    {0, 0, 0, 0},
};

/* What the command line (with the config file and environment) asked for;
 * parse_args fills it, run_up acts on it. */
typedef struct {
    vd_config cfg;
    const char *config_path; /* the config file read, or NULL */
    int explicit_config;     /* --config or $VISIOND_CONFIG */
    int print_config;        /* --print-config */
    char default_conf[PATH_MAX];
} up_args;

/* Pass 1 over argv: --config, --print-config, unknown options. Returns an exit code. */
static int scan_args(int argc, char **argv, up_args *a)
{
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'c') a->config_path = optarg, a->explicit_config = 1;
        if (c == 'p') a->print_config = 1;
        if (c == '?')
            return vd_cli_usage_error("up", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (optind < argc) return vd_cli_usage_error("up", "unexpected argument '%s'", argv[optind]);
    return VD_EXIT_OK;
}

/* Without --config: DATA/visiond.conf when it exists. The data directory
 * decides where it is, so env and flags are looked at for it first. */
static void find_default_config(int argc, char **argv, up_args *a)
{
    vd_config probe = a->cfg;
    vd_config_load_env(&probe, NULL);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
        if (c == FLAG(VD_CFG_DATA)) vd_config_set(&probe, VD_CFG_DATA, optarg, 3, NULL);
    snprintf(a->default_conf, sizeof a->default_conf, "%s/visiond.conf", probe.value[VD_CFG_DATA]);
    if (access(a->default_conf, F_OK) == 0)
        a->config_path = a->default_conf;
    else
        a->config_path = NULL;
}

/* Last pass over argv: the flags, over the file and the environment.
 * Returns an exit code. */
static int apply_flags(int argc, char **argv, vd_config *cfg)
{
    vd_error err;
    char roots[1024] = "";
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c < FLAG(0)) continue;
        const char *val = optarg;
        if (c == FLAG(VD_CFG_MEDIA_ROOTS)) { /* repeatable: join with ':' */
            size_t n = strlen(roots);
            snprintf(roots + n, sizeof roots - n, "%s%s", n ? ":" : "", optarg);
            val = roots;
        }
        if (vd_config_set(cfg, (vd_cfg_key)(c - FLAG(0)), val, VD_CFG_FROM_FLAG, &err) != VD_OK)
            return vd_cli_usage_error("up", "%s", err.msg);
    }
    return VD_EXIT_OK;
}

/* Fills *a: defaults < config file < environment < flags. Returns
 * VD_EXIT_OK, or the exit code of an error (already printed). */
static int parse_args(int argc, char **argv, up_args *a)
{
    memset(a, 0, sizeof *a);
    vd_config_defaults(&a->cfg);
    a->config_path = getenv("VISIOND_CONFIG");
    a->explicit_config = a->config_path && *a->config_path;
    int rc = scan_args(argc, argv, a);
    if (rc != VD_EXIT_OK) return rc;
    if (!a->explicit_config) find_default_config(argc, argv, a);
    vd_error err;
    if (a->config_path && vd_config_load_file(&a->cfg, a->config_path, &err) != VD_OK)
        return vd_cli_fail("%s", err.msg);
    if (vd_config_load_env(&a->cfg, &err) != VD_OK) return vd_cli_fail("%s", err.msg);
    return apply_flags(argc, argv, &a->cfg);
}

/* Where the children find things, derived from the settings. */
typedef struct {
    const char *data;
    char models_dir[PATH_MAX];
    char self[PATH_MAX]; /* this executable, which every child runs */
    char queue[1100];
    char queue_shown[512]; /* the queue URL without its password */
    char store_shown[512]; /* the store URL without its password */
    int queue_on_argv;     /* children get --queue (only when it holds no password) */
    char roots_copy[1024]; /* the media roots, split in place: */
    char *rootv[16];       /* every child that opens media files gets them */
    int nroot;
} up_env;

/* Creates the data and models directories, finds this executable and the
 * queue, and exports what children read from the environment. Returns an
 * exit code. */
static int prepare(const vd_config *cfg, up_env *e)
{
    e->data = cfg->value[VD_CFG_DATA];
    if (mkdir_p(e->data) != 0)
        return vd_cli_fail("cannot create data directory %s: %s", e->data, strerror(errno));
    if (cfg->value[VD_CFG_MODELS][0])
        vd_strlcpy(e->models_dir, cfg->value[VD_CFG_MODELS], sizeof e->models_dir);
    else
        snprintf(e->models_dir, sizeof e->models_dir, "%s/models", e->data);
    if (mkdir_p(e->models_dir) != 0)
        return vd_cli_fail("cannot create models directory %s: %s", e->models_dir, strerror(errno));
    ssize_t len = readlink("/proc/self/exe", e->self, sizeof e->self - 1);
    if (len <= 0) return vd_cli_fail("cannot find the visiond executable: %s", strerror(errno));
    e->self[len] = '\0';

    if (cfg->value[VD_CFG_QUEUE][0])
        vd_strlcpy(e->queue, cfg->value[VD_CFG_QUEUE], sizeof e->queue);
    else
        snprintf(e->queue, sizeof e->queue, "sqlite:%s/visiond.db", e->data);
    vd_data_dir_set(e->data, NULL); /* children (and this process's defaults) follow it */
    setenv("VISIOND_QUEUE", e->queue, 1);
    /* Children read the queue from $VISIOND_QUEUE; it goes on their command
     * lines too (for ps) only when it holds no password. */
    vd_queue_url_shown(e->queue, e->queue_shown, sizeof e->queue_shown);
    e->queue_on_argv = strcmp(e->queue, e->queue_shown) == 0;
    /* The store reaches every child through $VISIOND_STORE only: a URL may
     * hold a password, and a command line is visible to every local user. */
    if (cfg->value[VD_CFG_STORE][0])
        setenv("VISIOND_STORE", cfg->value[VD_CFG_STORE], 1);
    else
        unsetenv("VISIOND_STORE");
    char store[1100];
    vd_store_default_url(store, sizeof store);
    vd_pg_url_shown(store, e->store_shown, sizeof e->store_shown);
    setenv("VISIOND_LOG_LEVEL", cfg->value[VD_CFG_LOG_LEVEL], 1);
    setenv("VISIOND_LOG_FORMAT", cfg->value[VD_CFG_LOG_FORMAT], 1);
    /* the api and workers find the model server(s) and the secret here */
    if (cfg->value[VD_CFG_MODEL_SERVER][0])
        setenv("VISIOND_MODEL_SERVER", cfg->value[VD_CFG_MODEL_SERVER], 1);
    else
        unsetenv("VISIOND_MODEL_SERVER");
    if (cfg->value[VD_CFG_MODEL_SECRET_FILE][0])
        setenv("VISIOND_MODEL_SECRET_FILE", cfg->value[VD_CFG_MODEL_SECRET_FILE], 1);
    else
        unsetenv("VISIOND_MODEL_SECRET_FILE");
    e->nroot = 0;
    vd_strlcpy(e->roots_copy, cfg->value[VD_CFG_MEDIA_ROOTS], sizeof e->roots_copy);
    for (char *save = NULL, *r = strtok_r(e->roots_copy, ":", &save); r && e->nroot < 16;
         r = strtok_r(NULL, ":", &save))
        e->rootv[e->nroot++] = r;
    return VD_EXIT_OK;
}

/* The model server: stopped last, since workers and the api call it. */
static vd_status add_model_server(vd_procsup *sup, const vd_config *cfg, const up_env *e,
                                  vd_error *err)
{
    argv_buf ms = {0};
    push(&ms, e->self), push(&ms, "model-server"), push(&ms, "--data"), push(&ms, e->data);
    push(&ms, "--threads"), push(&ms, cfg->value[VD_CFG_MODEL_THREADS]);
    push(&ms, "--models"), push(&ms, e->models_dir);
    if (cfg->value[VD_CFG_PRELOAD][0])
        push(&ms, "--preload"), push(&ms, cfg->value[VD_CFG_PRELOAD]);
    if (cfg->value[VD_CFG_MODEL_LISTEN][0])
        push(&ms, "--tcp"), push(&ms, cfg->value[VD_CFG_MODEL_LISTEN]);
    return vd_procsup_add(sup, "model-server", ms.v, 2, err);
}

/* The worker supervisors ("worker-1" ...). */
static vd_status add_workers(vd_procsup *sup, const vd_config *cfg, const up_env *e, vd_error *err)
{
    long nworkers = vd_config_int(cfg, VD_CFG_WORKERS);
    vd_status rc = VD_OK;
    for (long i = 0; rc == VD_OK && i < nworkers; i++) {
        argv_buf w = {0};
        char name[32];
        push(&w, e->self), push(&w, "worker");
        if (e->queue_on_argv) push(&w, "--queue"), push(&w, e->queue);
        push(&w, "--concurrency"), push(&w, cfg->value[VD_CFG_CONCURRENCY]);
        for (int k = 0; k < e->nroot; k++) /* workers open files under the api's roots */
            push(&w, "--media-root"), push(&w, e->rootv[k]);
        snprintf(name, sizeof name, "worker-%ld", i + 1);
        rc = vd_procsup_add(sup, name, w.v, 1, err);
    }
    return rc;
}

/* The api: stopped first. */
static vd_status add_api(vd_procsup *sup, const vd_config *cfg, const up_env *e, vd_error *err)
{
    argv_buf api = {0};
    push(&api, e->self), push(&api, "serve"), push(&api, "--listen"),
        push(&api, cfg->value[VD_CFG_LISTEN]);
    push(&api, "--data"), push(&api, e->data);
    if (e->queue_on_argv) push(&api, "--queue"), push(&api, e->queue);
    for (int k = 0; k < e->nroot; k++)
        push(&api, "--media-root"), push(&api, e->rootv[k]);
    if (cfg->value[VD_CFG_TOKEN_FILE][0])
        push(&api, "--token-file"), push(&api, cfg->value[VD_CFG_TOKEN_FILE]);
    push(&api, "--library-model"), push(&api, cfg->value[VD_CFG_LIBRARY_MODEL]);
    push(&api, "--library-face-model"), push(&api, cfg->value[VD_CFG_LIBRARY_FACE_MODEL]);
    if (vd_config_int(cfg, VD_CFG_IMMICH_ML)) push(&api, "--immich-ml");
    if (cfg->value[VD_CFG_IMMICH_MODELS][0])
        push(&api, "--immich-model"), push(&api, cfg->value[VD_CFG_IMMICH_MODELS]);
    return vd_procsup_add(sup, "api", api.v, 0, err);
}

/* Starts the children, restarts those that die, and stops them all on
 * SIGTERM/SIGINT or when a child cannot start (it exited with the fatal
 * status). Returns the exit code: VD_EXIT_FAIL when a child gave up. */
static int supervise(vd_procsup *sup, const vd_config *cfg, const up_env *e, unsigned roles)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    VD_INFO("visiond up: role %s, data %s, queue %s, store %s, api %s, %ld worker(s) x %s, model "
            "server %s",
            cfg->value[VD_CFG_ROLE], e->data, e->queue_shown, e->store_shown,
            roles & VD_ROLE_API ? cfg->value[VD_CFG_LISTEN] : "none",
            roles & VD_ROLE_WORKER ? vd_config_int(cfg, VD_CFG_WORKERS) : 0L,
            cfg->value[VD_CFG_CONCURRENCY],
            cfg->value[VD_CFG_MODEL_SERVER][0] ? cfg->value[VD_CFG_MODEL_SERVER] : "this host's");
    vd_error err;
    if (vd_procsup_start_all(sup, &err) != VD_OK) {
        VD_ERROR("%s", err.msg);
        stop_requested = 1;
    }
    vd_procsup_run(sup, &stop_requested);
    const char *gave_up = vd_procsup_gave_up(sup);
    int failed = gave_up != NULL;
    if (failed) VD_ERROR("%s cannot start (its reason is above); stopping everything", gave_up);
    VD_INFO(
        "stopping: api first, then workers (they hand running jobs back), then the model server");
    vd_procsup_stop(sup, vd_config_int(cfg, VD_CFG_STOP_GRACE) * 1000);
    return failed ? VD_EXIT_FAIL : VD_EXIT_OK;
}

/* Does what a asks for. Returns the exit code. */
static int run_up(const up_args *a)
{
    const vd_config *cfg = &a->cfg;
    if (a->print_config) {
        if (a->config_path) printf("# config file: %s\n", a->config_path);
        vd_config_print(cfg, stdout);
        return VD_EXIT_OK;
    }
    vd_log_init("up", (vd_log_level)vd_log_level_parse(cfg->value[VD_CFG_LOG_LEVEL]), 2);
    vd_log_set_format((vd_log_format)vd_log_format_parse(cfg->value[VD_CFG_LOG_FORMAT]));
    vd_error err;
    unsigned roles = 0;
    if (vd_config_roles(cfg->value[VD_CFG_ROLE], &roles, &err) != VD_OK ||
        check_roles(cfg, roles, &err) != VD_OK)
        return vd_cli_fail("up: %s", err.msg);
    if ((roles & VD_ROLE_API) && check_api_start(cfg, &err) != VD_OK)
        return vd_cli_fail("up: %s", err.msg);
    up_env e;
    int rc = prepare(cfg, &e);
    if (rc != VD_EXIT_OK) return rc;

    vd_procsup *sup = vd_procsup_new(vd_config_int(cfg, VD_CFG_RESTART_MAX) * 1000);
    if (!sup) return vd_cli_fail("out of memory");
    vd_procsup_set_fatal_exit(sup, VD_EXIT_USAGE); /* a child's configuration error */
    vd_status st = VD_OK;
    if (roles & VD_ROLE_MODEL_SERVER) st = add_model_server(sup, cfg, &e, &err);
    if (st == VD_OK && (roles & VD_ROLE_WORKER)) st = add_workers(sup, cfg, &e, &err);
    if (st == VD_OK && (roles & VD_ROLE_API)) st = add_api(sup, cfg, &e, &err);
    if (st != VD_OK) {
        vd_procsup_free(sup);
        return vd_cli_fail("%s", err.msg);
    }
    rc = supervise(sup, cfg, &e, roles);
    vd_procsup_free(sup);
    VD_INFO("stopped");
    return rc;
}

int vd_cmd_up(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return VD_EXIT_OK;
    }
    up_args a;
    int rc = parse_args(argc, argv, &a);
    return rc != VD_EXIT_OK ? rc : run_up(&a);
}
