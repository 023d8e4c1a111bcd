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
#include "infer/server.h"

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
        "  --allow-remote      allow a non-loopback --tcp address (no authentication!)\n"
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
        "  --log-level LEVEL   debug, info, warn or error\n");
}

/* The allocator policy of this process (docs/model-server.md, "Memory"): with
 * ONNX Runtime's arena off, every run mallocs its activations and frees them;
 * glibc would hand blocks over its mmap threshold (at most 32 MiB, and 64 MiB
 * in a thread's arena) straight back to the kernel, and every run would fault
 * them in again, zeroed. Raised thresholds and one arena keep them in the heap
 * while busy; the server's idle trim gives them back. Returns 0, or -1 when
 * glibc refused a setting (the message says which). */
static int malloc_policy(long long reuse, long long arenas)
{
#ifdef __GLIBC__
    if (arenas > 0 && mallopt(M_ARENA_MAX, (int)arenas) != 1) {
        VD_WARN("allocator: glibc refused M_ARENA_MAX %lld", arenas);
        return -1;
    }
    if (reuse > 0 && (mallopt(M_MMAP_THRESHOLD, (int)reuse) != 1 ||
                      mallopt(M_TRIM_THRESHOLD, (int)reuse) != 1)) {
        VD_WARN("allocator: glibc refused an mmap/trim threshold of %lld bytes", reuse);
        return -1;
    }
#else
    (void)reuse;
    (void)arenas;
#endif
    return 0;
}

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int vd_cmd_model_server(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        usage(stdout);
        return VD_EXIT_OK;
    }
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},         {"models", required_argument, 0, 'm'},
        {"socket", required_argument, 0, 's'},       {"no-socket", no_argument, 0, 'S'},
        {"tcp", required_argument, 0, 't'},          {"allow-remote", no_argument, 0, 'R'},
        {"threads", required_argument, 0, 'j'},      {"preload", required_argument, 0, 'p'},
        {"idle-ttl", required_argument, 0, 'i'},     {"queue-max", required_argument, 0, 'q'},
        {"max-frame", required_argument, 0, 'f'},    {"max-conns", required_argument, 0, 'c'},
        {"drain-ms", required_argument, 0, 'D'},     {"log-level", required_argument, 0, 'l'},
        {"malloc-reuse", required_argument, 0, 'M'}, {"malloc-arenas", required_argument, 0, 'A'},
        {"trim-idle-ms", required_argument, 0, 'T'}, {0, 0, 0, 0}};
    const char *lvl_env = getenv("VISIOND_LOG_LEVEL");
    int lvl0 = vd_log_level_parse(lvl_env);
    vd_log_init("model-server", lvl0 < 0 ? VD_LOG_INFO : (vd_log_level)lvl0, 2);
    const char *data = vd_data_dir();
    const char *models = NULL, *sock = NULL, *tcp = NULL, *preload = NULL;
    int no_socket = 0;
    vd_server_config cfg = {.stop_fd = -1, .idle_ttl_s = 600, .trim_idle_ms = 1000};
    long long v, reuse = 1LL << 30, arenas = 1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'm':
            models = optarg;
            break;
        case 's':
            sock = optarg;
            break;
        case 'S':
            no_socket = 1;
            break;
        case 't':
            tcp = optarg;
            break;
        case 'R':
            cfg.allow_remote = 1;
            break;
        case 'p':
            preload = optarg;
            break;
        case 'j':
            if (parse_num(optarg, 0, 1024, &v))
                return vd_cli_usage_error(argv[0], "--threads: want 0..1024, got '%s'", optarg);
            cfg.intra_threads = (int)v;
            break;
        case 'i':
            if (parse_num(optarg, 0, 365LL * 86400, &v))
                return vd_cli_usage_error(argv[0], "--idle-ttl: want seconds >= 0, got '%s'",
                                          optarg);
            cfg.idle_ttl_s = v;
            break;
        case 'q':
            if (parse_num(optarg, 1, 1 << 20, &v))
                return vd_cli_usage_error(argv[0], "--queue-max: want 1..1048576, got '%s'",
                                          optarg);
            cfg.queue_max_items = (size_t)v;
            break;
        case 'f':
            if (parse_num(optarg, 1024, 1LL << 31, &v))
                return vd_cli_usage_error(argv[0], "--max-frame: want 1024..2147483648, got '%s'",
                                          optarg);
            cfg.max_frame = (uint32_t)v;
            break;
        case 'c':
            if (parse_num(optarg, 1, 65536, &v))
                return vd_cli_usage_error(argv[0], "--max-conns: want 1..65536, got '%s'", optarg);
            cfg.max_conns = (int)v;
            break;
        case 'D':
            if (parse_num(optarg, 1, 3600000, &v))
                return vd_cli_usage_error(argv[0], "--drain-ms: want 1..3600000, got '%s'", optarg);
            cfg.drain_ms = v;
            break;
        case 'M':
            if (parse_num(optarg, 0, INT32_MAX, &v))
                return vd_cli_usage_error(argv[0], "--malloc-reuse: want 0..2147483647, got '%s'",
                                          optarg);
            reuse = v;
            break;
        case 'A':
            if (parse_num(optarg, 0, 1024, &v))
                return vd_cli_usage_error(argv[0], "--malloc-arenas: want 0..1024, got '%s'",
                                          optarg);
            arenas = v;
            break;
        case 'T':
            if (parse_num(optarg, 0, 86400000, &v))
                return vd_cli_usage_error(argv[0], "--trim-idle-ms: want 0..86400000, got '%s'",
                                          optarg);
            cfg.trim_idle_ms = v;
            break;
        case 'l': {
            int lvl = vd_log_level_parse(optarg);
            if (lvl < 0) return vd_cli_usage_error(argv[0], "--log-level: unknown '%s'", optarg);
            vd_log_init("model-server", (vd_log_level)lvl, 2);
            break;
        }
        default:
            return vd_cli_usage_error(argv[0], "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
        }
    }
    if (optind < argc) return vd_cli_usage_error(argv[0], "unexpected argument '%s'", argv[optind]);
    if (no_socket && !tcp) return vd_cli_usage_error(argv[0], "--no-socket needs --tcp");
    /* before any thread exists: M_ARENA_MAX only binds threads that have no arena yet */
    malloc_policy(reuse, arenas);

    char models_buf[4096], sock_buf[4096];
    if (!models) {
        snprintf(models_buf, sizeof models_buf, "%s/models", data);
        models = models_buf;
    }
    if (!sock && !no_socket) {
        snprintf(sock_buf, sizeof sock_buf, "%s/model.sock", data);
        sock = sock_buf;
    }
    cfg.models_dir = models;
    cfg.socket_path = no_socket ? NULL : sock;
    cfg.tcp_addr = tcp;

    /* --preload a,b,c */
    char *pl = preload ? strdup(preload) : NULL;
    const char *names[64];
    size_t nnames = 0;
    for (char *save = NULL, *tok = pl ? strtok_r(pl, ",", &save) : NULL; tok && nnames < 64;
         tok = strtok_r(NULL, ",", &save))
        if (*tok) names[nnames++] = tok;
    cfg.preload = names;
    cfg.npreload = nnames;

    /* SIGTERM/SIGINT arrive through a pipe that the server polls (core/sigpipe.h). */
    signal(SIGPIPE, SIG_IGN);
    static const int stop_sigs[] = {SIGTERM, SIGINT};
    int sfd;
    vd_error serr;
    if (vd_sigpipe_open(stop_sigs, 2, &sfd, &serr) != VD_OK) {
        free(pl);
        return vd_cli_fail("model-server: %s", serr.msg);
    }
    cfg.stop_fd = sfd;

    vd_server *srv = NULL;
    vd_error err;
    vd_status rc = vd_server_new(&cfg, &srv, &err);
    free(pl);
    if (rc) {
        vd_sigpipe_close();
        return vd_cli_fail("model-server: %s", vd_error_text(&err));
    }
    printf("{\"status\":\"ready\",\"pid\":%d,\"socket\":", (int)getpid());
    if (cfg.socket_path)
        printf("\"%s\"", cfg.socket_path);
    else
        printf("null");
    if (tcp) printf(",\"tcp_port\":%d", vd_server_tcp_port(srv));
    printf(",\"models\":%zu}\n", vd_server_nmodels(srv));
    fflush(stdout);
    rc = vd_server_run(srv, &err);
    vd_server_free(srv);
    vd_sigpipe_close();
    if (rc) return vd_cli_fail("model-server: %s", vd_error_text(&err));
    return VD_EXIT_OK;
}
