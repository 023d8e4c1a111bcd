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
#include "core/paths.h"
#include "cli/cli.h"
#include "core/datadir.h"
#include "core/config.h"
#include "core/log.h"
#include "core/procsup.h"
#include "core/util.h"

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
    "  --models DIR          models directory (key models; default DATA/models)\n"
    "  --media-root DIR      a directory api clients may name files under (repeatable;\n"
    "                        key media_roots, colon-separated)\n"
    "  --token-file FILE     api bearer token (key token_file)\n"
    "  --model-threads N     ONNX Runtime threads (key model_threads; 0 = all cores)\n"
    "  --preload A,B         models loaded at start (key preload)\n"
    "  --log-level LEVEL     debug, info, warn, error (key log_level)\n"
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

int vd_cmd_up(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return VD_EXIT_OK;
    }
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},
        {"data", required_argument, 0, VD_CFG_DATA + 1000},
        {"listen", required_argument, 0, VD_CFG_LISTEN + 1000},
        {"workers", required_argument, 0, VD_CFG_WORKERS + 1000},
        {"concurrency", required_argument, 0, VD_CFG_CONCURRENCY + 1000},
        {"queue", required_argument, 0, VD_CFG_QUEUE + 1000},
        {"models", required_argument, 0, VD_CFG_MODELS + 1000},
        {"media-root", required_argument, 0, VD_CFG_MEDIA_ROOTS + 1000},
        {"token-file", required_argument, 0, VD_CFG_TOKEN_FILE + 1000},
        {"model-threads", required_argument, 0, VD_CFG_MODEL_THREADS + 1000},
        {"preload", required_argument, 0, VD_CFG_PRELOAD + 1000},
        {"log-level", required_argument, 0, VD_CFG_LOG_LEVEL + 1000},
        {"print-config", no_argument, 0, 'p'},
        {0, 0, 0, 0},
    };
    vd_config cfg;
    vd_config_defaults(&cfg);
    vd_error err;

    /* Pass 1: find --config and --print-config; pass 2 (after file and env): flags. */
    const char *config_path = getenv("VISIOND_CONFIG");
    int print_config = 0, explicit_config = config_path && *config_path;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'c') config_path = optarg, explicit_config = 1;
        if (c == 'p') print_config = 1;
        if (c == '?')
            return vd_cli_usage_error("up", "unknown or incomplete option '%s'", argv[optind - 1]);
    }
    if (optind < argc) return vd_cli_usage_error("up", "unexpected argument '%s'", argv[optind]);

    /* The data directory decides where the default config file is: env and
     * flags are looked at for it first. */
    char default_conf[PATH_MAX];
    if (!explicit_config) {
        vd_config probe = cfg;
        vd_config_load_env(&probe, NULL);
        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
            if (c == VD_CFG_DATA + 1000) vd_config_set(&probe, VD_CFG_DATA, optarg, 3, NULL);
        snprintf(default_conf, sizeof default_conf, "%s/visiond.conf", probe.value[VD_CFG_DATA]);
        if (access(default_conf, F_OK) == 0)
            config_path = default_conf;
        else
            config_path = NULL;
    }
    if (config_path && vd_config_load_file(&cfg, config_path, &err) != VD_OK)
        return vd_cli_fail("%s", err.msg);
    if (vd_config_load_env(&cfg, &err) != VD_OK) return vd_cli_fail("%s", err.msg);
    char roots[1024] = "";
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c < 1000) continue;
        const char *val = optarg;
        if (c == VD_CFG_MEDIA_ROOTS + 1000) { /* repeatable: join with ':' */
            size_t n = strlen(roots);
            snprintf(roots + n, sizeof roots - n, "%s%s", n ? ":" : "", optarg);
            val = roots;
        }
        if (vd_config_set(&cfg, (vd_cfg_key)(c - 1000), val, VD_CFG_FROM_FLAG, &err) != VD_OK)
            return vd_cli_usage_error("up", "%s", err.msg);
    }
    if (print_config) {
        if (config_path) printf("# config file: %s\n", config_path);
        vd_config_print(&cfg, stdout);
        return VD_EXIT_OK;
    }

    vd_log_init("up", (vd_log_level)vd_log_level_parse(cfg.value[VD_CFG_LOG_LEVEL]), 2);
    if (check_api_start(&cfg, &err) != VD_OK) return vd_cli_fail("up: %s", err.msg);
    const char *data = cfg.value[VD_CFG_DATA];
    if (mkdir_p(data) != 0)
        return vd_cli_fail("cannot create data directory %s: %s", data, strerror(errno));
    char models_dir[PATH_MAX];
    if (cfg.value[VD_CFG_MODELS][0])
        vd_strlcpy(models_dir, cfg.value[VD_CFG_MODELS], sizeof models_dir);
    else
        snprintf(models_dir, sizeof models_dir, "%s/models", data);
    if (mkdir_p(models_dir) != 0)
        return vd_cli_fail("cannot create models directory %s: %s", models_dir, strerror(errno));
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return vd_cli_fail("cannot find the visiond executable: %s", strerror(errno));
    self[len] = '\0';

    char queue[1100];
    if (cfg.value[VD_CFG_QUEUE][0])
        vd_strlcpy(queue, cfg.value[VD_CFG_QUEUE], sizeof queue);
    else
        snprintf(queue, sizeof queue, "sqlite:%s/visiond.db", data);
    vd_data_dir_set(data, NULL); /* children (and this process's defaults) follow it */
    setenv("VISIOND_QUEUE", queue, 1);
    /* Children read the queue from $VISIOND_QUEUE; it goes on their command
     * lines too (for ps) only when it holds no password. */
    char queue_shown[512];
    vd_url_redact(queue, queue_shown, sizeof queue_shown);
    int queue_on_argv = strcmp(queue, queue_shown) == 0;
    setenv("VISIOND_LOG_LEVEL", cfg.value[VD_CFG_LOG_LEVEL], 1);

    vd_procsup *sup = vd_procsup_new(vd_config_int(&cfg, VD_CFG_RESTART_MAX) * 1000);
    if (!sup) return vd_cli_fail("out of memory");
    vd_procsup_set_fatal_exit(sup, VD_EXIT_USAGE); /* a child's configuration error */

    /* model server: stopped last, since workers and the api call it. */
    argv_buf ms = {0};
    push(&ms, self), push(&ms, "model-server"), push(&ms, "--data"), push(&ms, data);
    push(&ms, "--threads"), push(&ms, cfg.value[VD_CFG_MODEL_THREADS]);
    push(&ms, "--models"), push(&ms, models_dir);
    if (cfg.value[VD_CFG_PRELOAD][0]) push(&ms, "--preload"), push(&ms, cfg.value[VD_CFG_PRELOAD]);
    vd_status rc = vd_procsup_add(sup, "model-server", ms.v, 2, &err);

    char roots_copy[1024];
    char *rootv[16];
    int nroot = 0;
    vd_strlcpy(roots_copy, cfg.value[VD_CFG_MEDIA_ROOTS], sizeof roots_copy);
    for (char *save = NULL, *r = strtok_r(roots_copy, ":", &save); r && nroot < 16;
         r = strtok_r(NULL, ":", &save))
        rootv[nroot++] = r;
    long nworkers = vd_config_int(&cfg, VD_CFG_WORKERS);
    for (long i = 0; rc == VD_OK && i < nworkers; i++) {
        argv_buf w = {0};
        char name[32];
        push(&w, self), push(&w, "worker");
        if (queue_on_argv) push(&w, "--queue"), push(&w, queue);
        push(&w, "--concurrency"), push(&w, cfg.value[VD_CFG_CONCURRENCY]);
        for (int k = 0; k < nroot; k++) /* workers open files under the api's roots */
            push(&w, "--media-root"), push(&w, rootv[k]);
        snprintf(name, sizeof name, "worker-%ld", i + 1);
        rc = vd_procsup_add(sup, name, w.v, 1, &err);
    }

    argv_buf api = {0};
    push(&api, self), push(&api, "serve"), push(&api, "--listen"),
        push(&api, cfg.value[VD_CFG_LISTEN]);
    push(&api, "--data"), push(&api, data);
    if (queue_on_argv) push(&api, "--queue"), push(&api, queue);
    for (int k = 0; k < nroot; k++)
        push(&api, "--media-root"), push(&api, rootv[k]);
    if (cfg.value[VD_CFG_TOKEN_FILE][0])
        push(&api, "--token-file"), push(&api, cfg.value[VD_CFG_TOKEN_FILE]);
    if (rc == VD_OK) rc = vd_procsup_add(sup, "api", api.v, 0, &err);
    if (rc != VD_OK) {
        vd_procsup_free(sup);
        return vd_cli_fail("%s", err.msg);
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    VD_INFO("visiond up: data %s, queue %s, api %s, %ld worker(s) x %s", data, queue_shown,
            cfg.value[VD_CFG_LISTEN], nworkers, cfg.value[VD_CFG_CONCURRENCY]);
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
    vd_procsup_stop(sup, vd_config_int(&cfg, VD_CFG_STOP_GRACE) * 1000);
    vd_procsup_free(sup);
    VD_INFO("stopped");
    return failed ? VD_EXIT_FAIL : VD_EXIT_OK;
}
