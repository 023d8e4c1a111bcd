/* cmd_worker.c: `visiond worker`, the worker supervisor (see docs/worker.md). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/datadir.h"
#include "core/log.h"
#include "core/paths.h"
#include "jobspec/jobspec.h"
#include "pipeline/jobs.h"
#include "worker/registry.h"
#include "worker/supervisor.h"

static const char usage_text[] =
    "usage: visiond worker [OPTIONS]\n"
    "\n"
    "Runs jobs from the queue, each in a forked work-horse.\n"
    "\n"
    "options:\n"
    "  --queue URL          sqlite:PATH or redis://HOST:PORT/DB (default: $VISIOND_QUEUE,\n"
    "                       else sqlite:$VISIOND_DATA/visiond.db)\n"
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

int vd_cmd_worker(int argc, char **argv)
{
    if (vd_cli_wants_help(argc, argv)) {
        fputs(usage_text, stdout);
        return VD_EXIT_OK;
    }
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
        O_MROOT
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
        {NULL, 0, NULL, 0},
    };
    vd_supervisor_opts o = {.concurrency = 1};
    char qbuf[1024];
    const char *types_arg = NULL;
    int list_types = 0;
    vd_pipeline_config pcfg = {0};
    const char *roots_arg[64];
    size_t nroots = 0;
    int64_t v;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_QUEUE:
            o.queue_url = optarg;
            break;
        case O_CONC:
            if (parse_count(optarg, 1024, &v))
                return vd_cli_usage_error("worker", "--concurrency must be 1..1024");
            o.concurrency = (int)v;
            break;
        case O_LEASE:
            if (parse_secs(optarg, &o.lease_ms))
                return vd_cli_usage_error("worker", "--lease must be a positive number of seconds");
            break;
        case O_HB:
            if (parse_secs(optarg, &o.heartbeat_ms))
                return vd_cli_usage_error("worker",
                                          "--heartbeat must be a positive number of seconds");
            break;
        case O_GRACE: {
            char *end;
            double g = strtod(optarg, &end);
            if (end == optarg || *end || !isfinite(g) || g < 0 || g > 1e7)
                return vd_cli_usage_error("worker", "--grace must be a number of seconds >= 0");
            o.grace_ms = g == 0 ? -1 : (int64_t)llround(g * 1000.0);
            break;
        }
        case O_KGRACE:
            if (parse_secs(optarg, &o.kill_grace_ms))
                return vd_cli_usage_error("worker",
                                          "--kill-grace must be a positive number of seconds");
            break;
        case O_MAXJOBS:
            if (parse_count(optarg, INT64_MAX / 2, &o.max_jobs))
                return vd_cli_usage_error("worker", "--max-jobs must be a positive integer");
            break;
        case O_BURST:
            o.burst = 1;
            break;
        case O_NOFORK:
            o.no_fork = 1;
            break;
        case O_MEM:
            if (parse_count(optarg, 1 << 30, &o.memory_limit_mb))
                return vd_cli_usage_error("worker", "--memory-limit must be a positive MiB count");
            break;
        case O_TYPES:
            types_arg = optarg;
            break;
        case O_NAME:
            o.worker_id = optarg;
            break;
        case O_LIST:
            list_types = 1;
            break;
        case O_DATA:
            vd_data_dir_set(optarg, NULL); /* the defaults below derive from it */
            break;
        case O_MSERVER:
            pcfg.model_server = optarg;
            break;
        case O_MODELS:
            pcfg.models_path = optarg;
            break;
        case O_MROOT:
            if (nroots == sizeof roots_arg / sizeof roots_arg[0])
                return vd_cli_usage_error("worker", "too many --media-root options");
            roots_arg[nroots++] = optarg;
            break;
        default:
            return vd_cli_usage_error("worker", "unknown or incomplete option '%s'",
                                      argv[optind - 1]);
        }
    }
    if (optind < argc)
        return vd_cli_usage_error("worker", "unexpected argument '%s'", argv[optind]);

    vd_error err;
    vd_error_clear(&err);
    vd_registry *reg = NULL;
    vd_media_roots *roots = NULL;
    if (nroots && vd_media_roots_new(roots_arg, nroots, &roots, &err) != VD_OK)
        return vd_cli_fail("worker: %s", vd_error_text(&err));
    pcfg.roots = roots;
    if (vd_pipeline_registry_new(&pcfg, vd_job_test_types_enabled(), &reg, &err) != VD_OK) {
        vd_media_roots_free(roots);
        return vd_cli_fail("%s", vd_error_text(&err));
    }
    if (list_types) {
        printf("{\"types\": [");
        for (size_t i = 0; i < vd_registry_count(reg); i++)
            printf("%s\"%s\"", i ? ", " : "", vd_registry_name(reg, i));
        printf("]}\n");
        vd_registry_free(reg);
        vd_media_roots_free(roots);
        return VD_EXIT_OK;
    }

    /* --types a,b: every name must be registered */
    char *types_buf = NULL;
    const char **types = NULL;
    size_t ntypes = 0;
    int rc = VD_EXIT_OK;
    if (types_arg) {
        types_buf = strdup(types_arg);
        types = calloc(strlen(types_arg) / 2 + 2, sizeof *types);
        if (!types_buf || !types) {
            rc = vd_cli_fail("out of memory");
            goto out;
        }
        char *save = NULL;
        for (char *t = strtok_r(types_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!vd_registry_has(reg, t)) {
                rc = vd_cli_usage_error("worker", "unknown job type '%s' (see --list-types)", t);
                goto out;
            }
            types[ntypes++] = t;
        }
        if (ntypes == 0) {
            rc = vd_cli_usage_error("worker", "--types needs at least one job type");
            goto out;
        }
        o.types = types;
        o.ntypes = ntypes;
    }
    if (!o.queue_url) o.queue_url = vd_cli_default_queue_url(qbuf, sizeof qbuf);
    if (o.heartbeat_ms && o.heartbeat_ms >= (o.lease_ms ? o.lease_ms : 30000)) {
        rc = vd_cli_usage_error("worker", "--heartbeat must be shorter than --lease");
        goto out;
    }

    int level = vd_log_level_parse(getenv("VISIOND_LOG_LEVEL"));
    vd_log_init("worker", level < 0 ? VD_LOG_INFO : (vd_log_level)level, 2);
    if (!roots)
        VD_WARN("no --media-root: embed and train_session jobs open any regular file this "
                "worker can read");
    vd_supervisor *sup = NULL;
    if (vd_supervisor_new(&o, reg, &sup, &err) != VD_OK) {
        rc = vd_cli_fail("worker: %s", vd_error_text(&err));
        goto out;
    }
    if (vd_supervisor_run(sup, &err) != VD_OK) rc = vd_cli_fail("worker: %s", vd_error_text(&err));
    vd_supervisor_free(sup);
out:
    free(types);
    free(types_buf);
    vd_registry_free(reg);
    vd_media_roots_free(roots);
    return rc;
}
