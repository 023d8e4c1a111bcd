/* cmd_worker.c: `visiond worker`, the worker supervisor (see docs/worker.md). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/datadir.h"
#include "core/log.h"
#include "core/paths.h"
#include "jobspec/jobspec.h"
#include "pipeline/jobs.h"
#include "store/store.h"
#include "worker/registry.h"
#include "worker/supervisor.h"

static const char usage_text[] =
    "usage: visiond worker [OPTIONS]\n"
    "\n"
    "Runs jobs from the queue, each in a forked work-horse.\n"
    "\n"
    "options:\n"
    "  --queue URL          sqlite:PATH, redis://HOST:PORT/DB or postgres://USER@HOST/DB\n"
    "                       (default: $VISIOND_QUEUE,\n"
    "                       else sqlite:$VISIOND_DATA/visiond.db)\n"
    "  --store URL          the store of embed/train_session jobs: sqlite:PATH, PATH or \n"
    "                       postgres://USER@HOST:PORT/DB (default $VISIOND_STORE, else \n"
    "                       DATA/store.db)\n"
    "  --concurrency N      work-horses at once (default 1)\n"
    "  --lease SECS         lease on a reserved job (default 30)\n"
    "  --heartbeat SECS     lease renewal interval (default lease/3)\n"
    "  --grace SECS         on SIGTERM/SIGINT, time running jobs get to finish (default 10)\n"
    "  --kill-grace SECS    time between SIGTERM and SIGKILL of a horse (default 2)\n"
    "  --max-jobs N         exit after taking N jobs (default: no limit)\n"
    "  --burst              exit when no job is ready and none runs\n"
    "  --no-fork            run handlers inline, one at a time (debugging)\n"
    "  --memory-limit MB    address space each work-horse may add to what it starts with\n"
    "  --types a,b          only run these job types (default: every registered type)\n"
    "  --name ID            worker id (default HOSTNAME:PID)\n"
    "  --list-types         print the registered job types as JSON and exit\n"
    "  --data DIR           data directory: store DIR/store.db, default queue and model-server\n"
    "                       socket under it (default $VISIOND_DATA, else ./data)\n"
    "  --model-server ADDR  model server for embed/train_session jobs (default\n"
    "                       $VISIOND_MODEL_SERVER, else unix:DATA/model.sock)\n"
    "  --model-server ADDR,ADDR2  several are used in turn, with failover\n"
    "  --secret-file FILE   the model servers' shared secret (default\n"
    "                       $VISIOND_MODEL_SECRET_FILE; docs/deploy.md)\n"
    "  --models DIR         read model metadata here instead of asking the model server\n"
    "  --media-root DIR     open the files of embed/train_session jobs only beneath DIR\n"
    "                       (repeatable; give the api's roots; default: none, any file)\n"
    "\n"
    "Test job types (noop, sleep, fail, crash, progress, count, alloc) are only\n"
    "registered with VISIOND_TEST_JOBS=1 in the environment.\n"
    "\n"
    "Exit status: 0 after a clean stop (signal, --burst, --max-jobs), 1 when the\n"
    "queue cannot be opened, 2 for a usage error.\n";

static int parse_secs(const char *s, int64_t *ms_out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v <= 0 || v > 1e7) return -1;
    *ms_out = (int64_t)llround(v * 1000.0);
    if (*ms_out < 1) *ms_out = 1;
    return 0;
}

static int parse_count(const char *s, int64_t max, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < 1 || v > max) return -1;
    *out = v;
    return 0;
}

/* What the command line asked for; parse_args fills it, run_worker acts on it. */
typedef struct {
    vd_supervisor_opts sup;    /* queue, concurrency, leases, limits, --name */
    vd_pipeline_config pcfg;   /* --model-server, --models */
    const char *types_arg;     /* --types a,b (checked against the registry in run) */
    int list_types;            /* --list-types */
    const char *roots_arg[64]; /* --media-root DIR... */
    size_t nroots;
} worker_args;

enum {
    O_QUEUE = 1000,
    O_CONC,
    O_LEASE,
    O_HB,
    O_GRACE,
    O_KGRACE,
    O_MAXJOBS,
    O_BURST,
    O_NOFORK,
    O_MEM,
    O_TYPES,
    O_NAME,
    O_LIST,
    O_DATA,
    O_MSERVER,
    O_MODELS,
    O_MROOT,
    O_SECRET,
    O_STORE
};

static const struct option longopts[] = {
    {"queue", required_argument, NULL, O_QUEUE},
    {"concurrency", required_argument, NULL, O_CONC},
    {"lease", required_argument, NULL, O_LEASE},
    {"heartbeat", required_argument, NULL, O_HB},
    {"grace", required_argument, NULL, O_GRACE},
    {"kill-grace", required_argument, NULL, O_KGRACE},
    {"max-jobs", required_argument, NULL, O_MAXJOBS},
    {"burst", no_argument, NULL, O_BURST},
    {"no-fork", no_argument, NULL, O_NOFORK},
    {"memory-limit", required_argument, NULL, O_MEM},
    {"types", required_argument, NULL, O_TYPES},
    {"name", required_argument, NULL, O_NAME},
    {"list-types", no_argument, NULL, O_LIST},
    {"data", required_argument, NULL, O_DATA},
    {"model-server", required_argument, NULL, O_MSERVER},
    {"models", required_argument, NULL, O_MODELS},
    {"media-root", required_argument, NULL, O_MROOT},
    {"secret-file", required_argument, NULL, O_SECRET},
    {"store", required_argument, NULL, O_STORE},
    {NULL, 0, NULL, 0},
};

/* parse_opt's answer for a code that is no option of ours ('?': unknown or
 * missing its argument). */
enum { UNKNOWN_OPTION = -1 };

/* The options that take a number of seconds or a count. Returns an exit code
 * or UNKNOWN_OPTION. */
static int parse_number_opt(worker_args *a, int c, const char *arg)
{
    vd_supervisor_opts *o = &a->sup;
    int64_t v;
    switch (c) {
    case O_CONC:
        if (parse_count(arg, 1024, &v))
            return vd_cli_usage_error("worker", "--concurrency must be 1..1024");
        o->concurrency = (int)v;
        return VD_EXIT_OK;
    case O_LEASE:
        if (parse_secs(arg, &o->lease_ms))
            return vd_cli_usage_error("worker", "--lease must be a positive number of seconds");
        return VD_EXIT_OK;
    case O_HB:
        if (parse_secs(arg, &o->heartbeat_ms))
            return vd_cli_usage_error("worker", "--heartbeat must be a positive number of seconds");
        return VD_EXIT_OK;
    case O_GRACE: {
        char *end;
        double g = strtod(arg, &end);
        if (end == arg || *end || !isfinite(g) || g < 0 || g > 1e7)
            return vd_cli_usage_error("worker", "--grace must be a number of seconds >= 0");
        o->grace_ms = g == 0 ? -1 : (int64_t)llround(g * 1000.0);
        return VD_EXIT_OK;
    }
    case O_KGRACE:
        if (parse_secs(arg, &o->kill_grace_ms))
            return vd_cli_usage_error("worker",
                                      "--kill-grace must be a positive number of seconds");
        return VD_EXIT_OK;
    case O_MAXJOBS:
        if (parse_count(arg, INT64_MAX / 2, &o->max_jobs))
            return vd_cli_usage_error("worker", "--max-jobs must be a positive integer");
        return VD_EXIT_OK;
    case O_MEM:
        if (parse_count(arg, 1 << 30, &o->memory_limit_mb))
            return vd_cli_usage_error("worker", "--memory-limit must be a positive MiB count");
        return VD_EXIT_OK;
    default:
        return UNKNOWN_OPTION;
    }
}

/* One option (getopt's code c, its argument). Returns an exit code or
 * UNKNOWN_OPTION. */
static int parse_opt(worker_args *a, int c, const char *arg)
{
    switch (c) {
    case O_QUEUE:
        a->sup.queue_url = arg;
        break;
    case O_BURST:
        a->sup.burst = 1;
        break;
    case O_NOFORK:
        a->sup.no_fork = 1;
        break;
    case O_TYPES:
        a->types_arg = arg;
        break;
    case O_NAME:
        a->sup.worker_id = arg;
        break;
    case O_LIST:
        a->list_types = 1;
        break;
    case O_DATA:
        vd_data_dir_set(arg, NULL); /* the defaults in run_worker derive from it */
        break;
    case O_MSERVER:
        a->pcfg.model_server = arg;
        break;
    case O_STORE:
        a->pcfg.store_path = arg;
        break;
    case O_MODELS:
        a->pcfg.models_path = arg;
        break;
    case O_SECRET:
        return vd_cli_secret_file("worker", arg);
    case O_MROOT:
        if (a->nroots == sizeof a->roots_arg / sizeof a->roots_arg[0])
            return vd_cli_usage_error("worker", "too many --media-root options");
        a->roots_arg[a->nroots++] = arg;
        break;
    default:
        return parse_number_opt(a, c, arg);
    }
    return VD_EXIT_OK;
}

/* Fills *a from argv. Returns VD_EXIT_OK, or the exit code of a usage error
 * (already printed). */
static int parse_args(int argc, char **argv, worker_args *a)
{
    memset(a, 0, sizeof *a);
    a->sup.concurrency = 1;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int rc = parse_opt(a, c, optarg);
        if (rc == UNKNOWN_OPTION)
            return vd_cli_usage_error("worker", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
        if (rc != VD_EXIT_OK) return rc;
    }
    if (optind < argc)
        return vd_cli_usage_error("worker", "unexpected argument '%s'", argv[optind]);
    return VD_EXIT_OK;
}

/* --types a,b: splits the list into *buf (owned) and *types (owned, pointing
 * into *buf); every name must be registered. Returns an exit code. */
static int split_types(const char *arg, const vd_registry *reg, char **buf, const char ***types,
                       size_t *ntypes)
{
    *buf = strdup(arg);
    *types = calloc(strlen(arg) / 2 + 2, sizeof **types);
    *ntypes = 0;
    if (!*buf || !*types) return vd_cli_fail("out of memory");
    char *save = NULL;
    for (char *t = strtok_r(*buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!vd_registry_has(reg, t))
            return vd_cli_usage_error("worker", "unknown job type '%s' (see --list-types)", t);
        (*types)[(*ntypes)++] = t;
    }
    if (*ntypes == 0) return vd_cli_usage_error("worker", "--types needs at least one job type");
    return VD_EXIT_OK;
}

static void print_types(const vd_registry *reg)
{
    printf("{\"types\": [");
    for (size_t i = 0; i < vd_registry_count(reg); i++)
        printf("%s\"%s\"", i ? ", " : "", vd_registry_name(reg, i));
    printf("]}\n");
}

/* The light fork server's argv into argv[4] (docs/worker.md, "Light horses"):
 * visiond-horse beside this executable (a build tree) or in ../lib/visiond
 * (an install), with the store every horse opens. NULL when there is none or
 * $VISIOND_LIGHT_HORSES is 0 (then every job runs in a fork of the worker). */
static const char *const *light_argv(const char *store, char *path, size_t n, char *sbuf, size_t sn,
                                     const char **argv)
{
    const char *off = getenv("VISIOND_LIGHT_HORSES");
    if (off && strcmp(off, "0") == 0) return NULL;
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return NULL;
    self[len] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash) return NULL;
    *slash = '\0';
    static const char *const where[] = {"%s/visiond-horse", "%s/../lib/visiond/visiond-horse"};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        snprintf(path, n, where[i], self);
        if (access(path, X_OK) == 0) {
            argv[0] = path;
            argv[1] = "--store";
            argv[2] = store ? store : vd_store_default_url(sbuf, sn);
            argv[3] = NULL;
            return argv;
        }
    }
    VD_DEBUG("worker: no visiond-horse beside %s: no light work-horses", self);
    return NULL;
}

/* Starts the supervisor on reg and runs it until it stops. Returns an exit code. */
static int supervise(const vd_supervisor_opts *o, vd_registry *reg, int have_roots,
                     const char *store)
{
    int level = vd_log_level_parse(getenv("VISIOND_LOG_LEVEL"));
    vd_log_init("worker", level < 0 ? VD_LOG_INFO : (vd_log_level)level, 2);
    if (!have_roots)
        VD_WARN("no --media-root: embed and train_session jobs open any regular file this "
                "worker can read");
    int rc = vd_cli_store_check("worker", store);
    if (rc != VD_EXIT_OK) return rc;
    vd_error err;
    vd_error_clear(&err);
    char path[4200], sbuf[4096];
    const char *argv[4];
    vd_supervisor_opts opts = *o;
    if (!opts.no_fork)
        opts.light_argv = light_argv(store, path, sizeof path, sbuf, sizeof sbuf, argv);
    vd_supervisor *sup = NULL;
    if (vd_supervisor_new(&opts, reg, &sup, &err) != VD_OK)
        return vd_cli_fail("worker: %s", vd_error_text(&err));
    if (vd_supervisor_run(sup, &err) != VD_OK) rc = vd_cli_fail("worker: %s", vd_error_text(&err));
    vd_supervisor_free(sup);
    return rc;
}

/* Does what a asks for. Returns the exit code. */
static int run_worker(worker_args *a)
{
    vd_error err;
    vd_error_clear(&err);
    vd_registry *reg = NULL;
    vd_media_roots *roots = NULL;
    if (a->nroots && vd_media_roots_new(a->roots_arg, a->nroots, &roots, &err) != VD_OK)
        return vd_cli_fail("worker: %s", vd_error_text(&err));
    a->pcfg.roots = roots;
    if (vd_pipeline_registry_new(&a->pcfg, vd_job_test_types_enabled(), &reg, &err) != VD_OK) {
        vd_media_roots_free(roots);
        return vd_cli_fail("%s", vd_error_text(&err));
    }
    if (a->list_types) {
        print_types(reg);
        vd_registry_free(reg);
        vd_media_roots_free(roots);
        return VD_EXIT_OK;
    }
    if (vd_pipeline_prepare_worker(&err) != VD_OK) {
        vd_registry_free(reg);
        vd_media_roots_free(roots);
        return vd_cli_fail("worker: %s", vd_error_text(&err));
    }
    vd_supervisor_opts *o = &a->sup;
    char qbuf[1024];
    char *types_buf = NULL;
    const char **types = NULL;
    int rc = VD_EXIT_OK;
    if (a->types_arg) {
        rc = split_types(a->types_arg, reg, &types_buf, &types, &o->ntypes);
        o->types = types;
    }
    if (rc == VD_EXIT_OK && !o->queue_url)
        o->queue_url = vd_cli_default_queue_url(qbuf, sizeof qbuf);
    if (rc == VD_EXIT_OK && o->heartbeat_ms &&
        o->heartbeat_ms >= (o->lease_ms ? o->lease_ms : 30000))
        rc = vd_cli_usage_error("worker", "--heartbeat must be shorter than --lease");
    if (rc == VD_EXIT_OK) rc = supervise(o, reg, roots != NULL, a->pcfg.store_path);
    free(types);
    free(types_buf);
    vd_registry_free(reg);
    vd_media_roots_free(roots);
    return rc;
}

int vd_cmd_worker(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return VD_EXIT_OK;
    }
    worker_args a;
    int rc = parse_args(argc, argv, &a);
    return rc != VD_EXIT_OK ? rc : run_worker(&a);
}
