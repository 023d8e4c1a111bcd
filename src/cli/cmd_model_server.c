/* cmd_model_server.c: `visiond model-server`, the process that owns ONNX Runtime. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cli/cli.h"
#include "core/datadir.h"
#include "core/sigpipe.h"
#include "core/log.h"
#include "infer/auth.h"
#include "infer/ort_session.h"
#include "infer/server.h"
#include "pipeline/text_embed.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define VD_LEAK_CHECK() __lsan_do_leak_check()
#else
#define VD_LEAK_CHECK() ((void)0)
#endif

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: visiond model-server [OPTIONS]\n"
        "\n"
        "Serves the models of a directory of metadata files (docs/models.md) over the\n"
        "model-server protocol (docs/protocol.md), with dynamic batching per model.\n"
        "Prints one JSON line on stdout when ready; stops cleanly on SIGTERM/SIGINT.\n"
        "\n"
        "  --data DIR          data directory (default $VISIOND_DATA, else ./data)\n"
        "  --models DIR        models directory (default DATA/models)\n"
        "  --socket PATH       Unix socket (default DATA/model.sock)\n"
        "  --no-socket         do not listen on a Unix socket (needs --tcp)\n"
        "  --tcp HOST:PORT     also listen on TCP (loopback only; PORT 0 = any free port)\n"
        "  --secret-file FILE  shared secret: clients must prove they hold it (docs/protocol.md);\n"
        "                      needed for a non-loopback --tcp (default\n"
        "                      $VISIOND_MODEL_SECRET_FILE; mode 0600)\n"
        "  --allow-remote      allow a non-loopback --tcp address without a secret (no\n"
        "                      authentication at all: prefer --secret-file)\n"
        "  --threads N         ONNX Runtime intra-op threads shared by all models (0 = all cores)\n"
        "  --preload A,B       load these models at start (besides \"preload\": true)\n"
        "  --idle-ttl SECONDS  unload a model idle this long, unless preloaded (0 = never; default "
        "600)\n"
        "  --queue-max N       items queued per model before answering busy (default 256)\n"
        "  --max-frame BYTES   largest request payload (default 67108864)\n"
        "  --max-conns N       simultaneous connections (default 1024)\n"
        "  --drain-ms MS       on stop, time allowed to finish queued requests (default 5000)\n"
        "  --malloc-reuse BYTES  keep freed blocks below this size in the heap for reuse\n"
        "                      (glibc M_MMAP_THRESHOLD and M_TRIM_THRESHOLD; 0 = glibc's\n"
        "                      defaults; default 1073741824)\n"
        "  --malloc-arenas N   glibc malloc arenas (M_ARENA_MAX; 0 = glibc's default; default 1)\n"
        "  --trim-idle-ms MS   give free heap memory back (malloc_trim) once no batch has run\n"
        "                      for MS (0 = never; default 1000)\n"
        "  --calibrate-ms MS   at load, spend up to MS per model measuring batch sizes and\n"
        "                      parallel runs, and use the fastest layout (0 = no calibration:\n"
        "                      one run at a time, batches of the metadata's max_batch;\n"
        "                      default 2000)\n"
        "  --layout RUNS,BATCH every model runs RUNS batches at once (one thread each when\n"
        "                      RUNS > 1) of up to BATCH items (capped by max_batch), without\n"
        "                      calibration\n"
        "  --log-level LEVEL   debug, info, warn or error\n");
}

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* What the command line asked for; parse_args fills it, run_model_server acts on it. */
typedef struct {
    vd_server_config cfg; /* the numbers, --allow-remote; paths are filled in by resolve */
    const char *data, *models, *sock, *tcp, *preload, *secret_file;
    vd_auth_secret secret;
    int no_socket;
    int log_level;           /* $VISIOND_LOG_LEVEL, then --log-level */
    long long reuse, arenas; /* --malloc-reuse, --malloc-arenas */
    char models_buf[4096], sock_buf[4096];
    char *preload_buf;     /* owned: --preload split in place */
    const char *names[64]; /* into preload_buf */
} ms_args;

static const struct option longopts[] = {{"data", required_argument, 0, 'd'},
                                         {"models", required_argument, 0, 'm'},
                                         {"socket", required_argument, 0, 's'},
                                         {"no-socket", no_argument, 0, 'S'},
                                         {"tcp", required_argument, 0, 't'},
                                         {"allow-remote", no_argument, 0, 'R'},
                                         {"threads", required_argument, 0, 'j'},
                                         {"preload", required_argument, 0, 'p'},
                                         {"idle-ttl", required_argument, 0, 'i'},
                                         {"queue-max", required_argument, 0, 'q'},
                                         {"max-frame", required_argument, 0, 'f'},
                                         {"max-conns", required_argument, 0, 'c'},
                                         {"drain-ms", required_argument, 0, 'D'},
                                         {"log-level", required_argument, 0, 'l'},
                                         {"calibrate-ms", required_argument, 0, 'C'},
                                         {"layout", required_argument, 0, 'L'},
                                         {"malloc-reuse", required_argument, 0, 'M'},
                                         {"malloc-arenas", required_argument, 0, 'A'},
                                         {"trim-idle-ms", required_argument, 0, 'T'},
                                         {"secret-file", required_argument, 0, 'K'},
                                         {0, 0, 0, 0}};

/* The numeric options: their range and how a usage error says it. */
static const struct {
    int code;
    const char *name;
    long long lo, hi;
    const char *want;
} num_opts[] = {
    {'j', "--threads", 0, 1024, "0..1024"},
    {'i', "--idle-ttl", 0, 365LL * 86400, "seconds >= 0"},
    {'q', "--queue-max", 1, 1 << 20, "1..1048576"},
    {'f', "--max-frame", 1024, 1LL << 31, "1024..2147483648"},
    {'c', "--max-conns", 1, 65536, "1..65536"},
    {'D', "--drain-ms", 1, 3600000, "1..3600000"},
    {'M', "--malloc-reuse", 0, INT32_MAX, "0..2147483647"},
    {'A', "--malloc-arenas", 0, 1024, "0..1024"},
    {'T', "--trim-idle-ms", 0, 86400000, "0..86400000"},
    {'C', "--calibrate-ms", 0, 600000, "0..600000"},
};

/* Stores v, already checked against num_opts, where option code goes. */
static void set_num(ms_args *a, int code, long long v)
{
    switch (code) {
    case 'j':
        a->cfg.intra_threads = (int)v;
        break;
    case 'i':
        a->cfg.idle_ttl_s = v;
        break;
    case 'q':
        a->cfg.queue_max_items = (size_t)v;
        break;
    case 'f':
        a->cfg.max_frame = (uint32_t)v;
        break;
    case 'c':
        a->cfg.max_conns = (int)v;
        break;
    case 'D':
        a->cfg.drain_ms = v;
        break;
    case 'M':
        a->reuse = v;
        break;
    case 'A':
        a->arenas = v;
        break;
    case 'T':
        a->cfg.trim_idle_ms = v;
        break;
    case 'C':
        a->cfg.calibrate_ms = v;
        break;
    }
}

/* One option (getopt's code c, its argument). Returns an exit code. */
static int parse_opt(ms_args *a, const char *cmd, int c, const char *arg, const char *text)
{
    for (size_t i = 0; i < sizeof num_opts / sizeof num_opts[0]; i++) {
        if (num_opts[i].code != c) continue;
        long long v;
        if (parse_num(arg, num_opts[i].lo, num_opts[i].hi, &v))
            return vd_cli_usage_error(cmd, "%s: want %s, got '%s'", num_opts[i].name,
                                      num_opts[i].want, arg);
        set_num(a, c, v);
        return VD_EXIT_OK;
    }
    switch (c) {
    case 'd':
        a->data = arg;
        break;
    case 'm':
        a->models = arg;
        break;
    case 's':
        a->sock = arg;
        break;
    case 'S':
        a->no_socket = 1;
        break;
    case 't':
        a->tcp = arg;
        break;
    case 'R':
        a->cfg.allow_remote = 1;
        break;
    case 'K':
        a->secret_file = arg;
        break;
    case 'p':
        a->preload = arg;
        break;
    case 'L': {
        int runs = 0, batch = 0, used = 0;
        if (sscanf(arg, "%d,%d%n", &runs, &batch, &used) != 2 || arg[used] || runs < 1 ||
            runs > VD_SERVER_MAX_RUNS || batch < 1 || batch > 4096)
            return vd_cli_usage_error(cmd, "--layout: want RUNS,BATCH (1..%d,1..4096), got '%s'",
                                      VD_SERVER_MAX_RUNS, arg);
        a->cfg.layout_runs = runs;
        a->cfg.layout_batch = batch;
        break;
    }
    case 'l':
        a->log_level = vd_log_level_parse(arg);
        if (a->log_level < 0) return vd_cli_usage_error(cmd, "--log-level: unknown '%s'", arg);
        break;
    default:
        return vd_cli_usage_error(cmd, "unknown or incomplete option '%s'", text);
    }
    return VD_EXIT_OK;
}

/* Fills *a from argv and the environment. Returns VD_EXIT_OK, or the exit
 * code of a usage error (already printed). */
static int parse_args(int argc, char **argv, ms_args *a)
{
    memset(a, 0, sizeof *a);
    a->cfg = (vd_server_config){.stop_fd = -1,
                                .idle_ttl_s = 600,
                                .trim_idle_ms = 1000,
                                .calibrate_ms = VD_SERVER_CALIBRATE_MS_DEF,
                                .check_meta = vd_text_model_check};
    a->reuse = VD_ORT_MALLOC_REUSE_DEF;
    a->arenas = 1;
    int lvl0 = vd_log_level_parse(getenv("VISIOND_LOG_LEVEL"));
    a->log_level = lvl0 < 0 ? VD_LOG_INFO : lvl0;
    a->data = vd_data_dir();
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int rc = parse_opt(a, argv[0], c, optarg, argv[optind - 1]);
        if (rc != VD_EXIT_OK) return rc;
    }
    if (optind < argc) return vd_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
    if (a->no_socket && !a->tcp) return vd_cli_usage_error(argv[0], "--no-socket needs --tcp");
    if (!a->secret_file) a->secret_file = getenv(VD_AUTH_SECRET_ENV);
    if (a->secret_file && *a->secret_file) {
        vd_error err;
        if (vd_auth_secret_load(a->secret_file, &a->secret, &err) != VD_OK)
            return vd_cli_usage_error(argv[0], "%s", err.msg);
        a->cfg.secret = &a->secret;
    }
    return VD_EXIT_OK;
}

/* Fills the server's paths and preload list from the options (defaults
 * under the data directory). */
static void resolve(ms_args *a)
{
    if (!a->models) {
        snprintf(a->models_buf, sizeof a->models_buf, "%s/models", a->data);
        a->models = a->models_buf;
    }
    if (!a->sock && !a->no_socket) {
        snprintf(a->sock_buf, sizeof a->sock_buf, "%s/model.sock", a->data);
        a->sock = a->sock_buf;
    }
    a->cfg.models_dir = a->models;
    a->cfg.socket_path = a->no_socket ? NULL : a->sock;
    a->cfg.tcp_addr = a->tcp;

    /* --preload a,b,c */
    char *pl = a->preload_buf = a->preload ? strdup(a->preload) : NULL;
    size_t nnames = 0;
    for (char *save = NULL, *tok = pl ? strtok_r(pl, ",", &save) : NULL; tok && nnames < 64;
         tok = strtok_r(NULL, ",", &save))
        if (*tok) a->names[nnames++] = tok;
    a->cfg.preload = a->names;
    a->cfg.npreload = nnames;
}

/* The line that tells a parent process the server is up. */
static void print_ready(const vd_server_config *cfg, vd_server *srv)
{
    printf("{\"status\":\"ready\",\"pid\":%d,\"socket\":", (int)getpid());
    if (cfg->socket_path)
        printf("\"%s\"", cfg->socket_path);
    else
        printf("null");
    if (cfg->tcp_addr) printf(",\"tcp_port\":%d", vd_server_tcp_port(srv));
    printf(",\"models\":%zu}\n", vd_server_nmodels(srv));
    fflush(stdout);
}

/* Ends the process with code once the server is torn down. ONNX Runtime can
 * leave a thread of its own running that reads its library's static strings
 * (after a failed load, and now and then after a normal stop); exit() would
 * free them under it, a use-after-free at exit that ASan reports. So the
 * process ends without the static destructors, and under ASan the leak check
 * that exit() would have run is run here first. */
static _Noreturn void end_process(int code)
{
    VD_LEAK_CHECK();
    fflush(stdout);
    fflush(stderr);
    _exit(code);
}

/* Starts the server, says so, and serves until a stop signal; never returns. */
static _Noreturn void run_model_server(ms_args *a)
{
    vd_log_init("model-server", (vd_log_level)a->log_level, 2);
    /* before any thread exists: M_ARENA_MAX only binds threads that have no arena yet */
    vd_error perr;
    if (vd_ort_malloc_policy(a->reuse, a->arenas, &perr) != VD_OK) VD_WARN("%s", perr.msg);
    resolve(a);

    /* SIGTERM/SIGINT arrive through a pipe that the server polls (core/sigpipe.h). */
    signal(SIGPIPE, SIG_IGN);
    static const int stop_sigs[] = {SIGTERM, SIGINT};
    int sfd;
    vd_error serr;
    if (vd_sigpipe_open(stop_sigs, 2, &sfd, &serr) != VD_OK) {
        free(a->preload_buf);
        end_process(vd_cli_fail("model-server: %s", serr.msg));
    }
    a->cfg.stop_fd = sfd;

    vd_server *srv = NULL;
    vd_error err;
    vd_status rc = vd_server_new(&a->cfg, &srv, &err);
    free(a->preload_buf);
    if (rc != VD_OK) {
        vd_sigpipe_close();
        end_process(vd_cli_fail("model-server: %s", vd_error_text(&err)));
    }
    print_ready(&a->cfg, srv);
    rc = vd_server_run(srv, &err);
    vd_server_free(srv);
    vd_sigpipe_close();
    end_process(rc != VD_OK ? vd_cli_fail("model-server: %s", vd_error_text(&err)) : VD_EXIT_OK);
}

int vd_cmd_model_server(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        usage(stdout);
        return VD_EXIT_OK;
    }
    ms_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != VD_EXIT_OK) return rc;
    run_model_server(&a);
}
