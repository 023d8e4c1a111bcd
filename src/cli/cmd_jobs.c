/* cmd_jobs.c: `visiond jobs ...`, inspect and manage queue jobs.
 *
 * Exit codes: 0 ok; 1 the operation failed (no such job, wrong state, the
 * queue cannot be opened or read); 2 usage (unknown option, bad number, a
 * payload that is not JSON, a malformed type name, a job refused by
 * vd_job_check: unknown or test type, bad payload, a path refused). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "queue/job_json.h"
#include "core/pg.h"
#include "core/paths.h"
#include "core/util.h"
#include "jobspec/jobspec.h"
#include "queue/queue.h"

static const char jobs_usage[] =
    "usage: visiond jobs SUBCOMMAND [OPTIONS]\n"
    "\n"
    "subcommands:\n"
    "  enqueue TYPE [--payload JSON|@FILE] [--priority N] [--retries N]\n"
    "               [--timeout SECS] [--delay SECS] [--count N] [--id ID] [--any-type]\n"
    "               [--media-root DIR[:DIR...]] [--stdin]\n"
    "                                 add job(s); prints each new id on a line. --count N\n"
    "                                 adds N jobs with the payload, --stdin one job per line\n"
    "                                 of standard input (each line a JSON payload); every\n"
    "                                 job is checked before any is added, then they go in\n"
    "                                 batches of 1000, one transaction each. TYPE must\n"
    "                                 be one this build's workers run (see visiond worker\n"
    "                                 --list-types) unless --any-type is given; the payload\n"
    "                                 is checked as POST /jobs checks it (paths confined\n"
    "                                 under --media-root when given, else absolute, no\n"
    "                                 '..'); test types need VISIOND_TEST_JOBS=1\n"
    "  list [--state S] [--type T] [--limit N] [--offset N] [--json]\n"
    "                                 newest first; a table, or a JSON array\n"
    "  show ID                        one job as JSON\n"
    "  cancel ID                      cancel a queued, scheduled or started job\n"
    "  requeue ID                     put a failed or canceled job back to queued\n"
    "  purge [--state S] [--older-than SECS]\n"
    "                                 delete ended jobs (finished, failed, canceled;\n"
    "                                 S narrows it to one) that ended SECS ago or more\n"
    "\n"
    "options for every subcommand:\n"
    "  --queue URL    sqlite:PATH or redis://HOST:PORT/DB (default: $VISIOND_QUEUE,\n"
    "                 else sqlite:$VISIOND_DATA/visiond.db, else sqlite:./data/visiond.db)\n"
    "  -h, --help     this help\n"
    "\n"
    "States: queued, scheduled, started, finished, failed, canceled.\n"
    "Exit status: 0 ok, 1 failed (no such job, wrong state, queue unusable), 2 usage.\n";

/* Parsed command line: positional arguments and the options' values. */
typedef struct {
    const char *queue;
    const char *payload, *priority, *retries, *timeout, *delay, *count, *id;
    const char *state, *type, *limit, *offset, *older_than, *media_root;
    int json, any_type, from_stdin;
    const char *pos[4];
    int npos;
} jobs_args;

typedef struct {
    const char *name;
    size_t off; /* offset of the const char * field in jobs_args */
} value_opt;

#define OPT(n, f)                                                                                  \
    {                                                                                              \
        n, offsetof(jobs_args, f)                                                                  \
    }
static const value_opt value_opts[] = {
    OPT("--queue", queue),           OPT("--payload", payload),
    OPT("--priority", priority),     OPT("--retries", retries),
    OPT("--timeout", timeout),       OPT("--delay", delay),
    OPT("--count", count),           OPT("--id", id),
    OPT("--state", state),           OPT("--type", type),
    OPT("--limit", limit),           OPT("--offset", offset),
    OPT("--older-than", older_than), OPT("--media-root", media_root),
};

/* allowed: a space-separated list of the options this subcommand takes. */
static int parse_args(int argc, char **argv, const char *allowed, jobs_args *a)
{
    memset(a, 0, sizeof *a);
    const char *sub = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--") == 0) {
            if (strcmp(arg, "--") == 0) {
                for (i++; i < argc; i++) {
                    if (a->npos == 4) return vd_cli_usage_error("jobs", "too many arguments");
                    a->pos[a->npos++] = argv[i];
                }
                break;
            }
            if (a->npos == 4) return vd_cli_usage_error("jobs", "too many arguments");
            a->pos[a->npos++] = arg;
            continue;
        }
        char name[64];
        const char *eq = strchr(arg, '=');
        size_t nl = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nl >= sizeof name) return vd_cli_usage_error("jobs", "unknown option %s", arg);
        memcpy(name, arg, nl);
        name[nl] = '\0';
        char needle[72];
        snprintf(needle, sizeof needle, " %s ", name);
        char hay[512];
        snprintf(hay, sizeof hay, " --queue %s ", allowed);
        if (!strstr(hay, needle))
            return vd_cli_usage_error("jobs", "jobs %s: unknown option %s", sub, name);
        if (strcmp(name, "--json") == 0 || strcmp(name, "--any-type") == 0 ||
            strcmp(name, "--stdin") == 0) {
            if (eq) return vd_cli_usage_error("jobs", "%s takes no value", name);
            if (name[2] == 'j')
                a->json = 1;
            else if (name[2] == 'a')
                a->any_type = 1;
            else
                a->from_stdin = 1;
            continue;
        }
        const value_opt *vo = NULL;
        for (size_t k = 0; k < sizeof value_opts / sizeof value_opts[0]; k++)
            if (strcmp(value_opts[k].name, name) == 0) vo = &value_opts[k];
        if (!vo) return vd_cli_usage_error("jobs", "unknown option %s", name);
        const char *val;
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return vd_cli_usage_error("jobs", "%s needs a value", name);
        *(const char **)((char *)a + vo->off) = val;
    }
    return VD_EXIT_OK;
}

/* Parses an integer in [lo, hi]; returns 0 and prints a usage error when not. */
static int parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        vd_cli_usage_error("jobs", "%s: '%s' is not a whole number in [%lld, %lld]", opt, s, lo,
                           hi);
        return 0;
    }
    *out = v;
    return 1;
}

/* Parses seconds (fractions allowed) >= 0 into milliseconds. */
static int parse_secs(const char *opt, const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 1e12) {
        vd_cli_usage_error("jobs", "%s: '%s' is not a number of seconds >= 0", opt, s);
        return 0;
    }
    *ms = (int64_t)llround(v * 1000.0);
    return 1;
}

static int open_queue(const jobs_args *a, vd_queue **q)
{
    char buf[1024];
    const char *url = a->queue ? a->queue : vd_cli_default_queue_url(buf, sizeof buf);
    vd_error err;
    if (vd_queue_open(url, q, &err) != VD_OK) {
        char shown[1024]; /* never the password (core/pg.h shows every URL form) */
        vd_pg_url_shown(url, shown, sizeof shown);
        if (err.code == VD_ERR_INVALID)
            return vd_cli_usage_error("jobs", "bad queue url %s: %s", shown, vd_error_text(&err));
        return vd_cli_fail("cannot open queue %s: %s", shown, vd_error_text(&err));
    }
    return VD_EXIT_OK;
}

static int print_json(json_t *v)
{
    if (!v) return vd_cli_fail("out of memory");
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(v);
    if (!s) return vd_cli_fail("out of memory");
    printf("%s\n", s);
    free(s);
    return VD_EXIT_OK;
}

/* Returns a malloc'd payload: the text itself, or the contents of @FILE ("@-" = stdin). */
static char *load_payload(const char *arg)
{
    if (arg[0] != '@') return strdup(arg);
    FILE *f = strcmp(arg + 1, "-") == 0 ? stdin : fopen(arg + 1, "rb");
    if (!f) {
        vd_cli_fail("cannot read payload file %s: %s", arg + 1, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    if (f != stdin) fclose(f);
    if (!buf || bad) {
        free(buf);
        vd_cli_fail("cannot read payload file %s", arg + 1);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* --media-root DIR[:DIR...] into *roots (NULL when not given). Prints the
 * usage error and returns 0 when it is refused. */
static int make_roots(const char *roots_arg, vd_media_roots **roots)
{
    *roots = NULL;
    if (!roots_arg) return 1;
    char buf[4096];
    const char *dirs[64];
    size_t n = 0;
    vd_strlcpy(buf, roots_arg, sizeof buf);
    for (char *save = NULL, *r = strtok_r(buf, ":", &save); r && n < 64;
         r = strtok_r(NULL, ":", &save))
        dirs[n++] = r;
    vd_error err;
    if (vd_media_roots_new(dirs, n, roots, &err) != VD_OK) {
        vd_cli_usage_error("jobs", "--media-root: %s", vd_error_text(&err));
        return 0;
    }
    return 1;
}

/* Checks the job with the enqueue rules every caller shares (jobspec.h:
 * type known and not a test type unless VISIOND_TEST_JOBS=1, payload of the
 * right shape, paths confined under roots when given, else only absolute and
 * without ".."). where ("" or "line N: ") starts the message. Prints the
 * usage error and returns 0 when it is refused. */
static int check_job(const char *type, const char *payload, int any_type,
                     const vd_media_roots *roots, const char *where)
{
    vd_error err;
    vd_job_check_opts o = {
        .roots = roots, .test_jobs = vd_job_test_types_enabled(), .any_type = any_type};
    vd_job_refusal why;
    vd_status st = vd_job_check(type, payload, &o, &why, &err);
    if (st == VD_OK) return 1;
    if (why.code && strcmp(why.code, "unknown_job_type") == 0) {
        char names[1024] = "";
        for (size_t i = 0, n = 0, k = 0; i < vd_job_spec_count() && n < sizeof names; i++) {
            const vd_job_spec *sp = vd_job_spec_at(i);
            if (sp->test_only && !o.test_jobs) continue;
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", k++ ? ", " : "", sp->name);
        }
        vd_cli_usage_error("jobs",
                           "unknown job type '%s' (known: %s; --any-type enqueues it anyway)", type,
                           names);
        return 0;
    }
    vd_cli_usage_error("jobs", "%srefused (%s): %s", where,
                       why.code ? why.code : vd_status_name(st), vd_error_text(&err));
    return 0;
}

/* The payloads of --stdin: one JSON text per line (empty lines skipped), each
 * checked with check_job. Fills *out (owned strings, *n of them). Returns an
 * exit code (every line is read and checked before any job is added). */
static int read_payload_lines(const char *type, int any_type, const vd_media_roots *roots,
                              char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int rc = VD_EXIT_OK;
    while (rc == VD_EXIT_OK && (len = getline(&line, &lcap, stdin)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0) continue;
        char where[48];
        snprintf(where, sizeof where, "line %zu: ", lineno);
        json_error_t je;
        json_t *j = json_loads(line, JSON_DECODE_ANY, &je);
        if (!j) {
            rc = vd_cli_usage_error("jobs", "%snot valid JSON: %s (column %d)", where, je.text,
                                    je.column);
            break;
        }
        json_decref(j);
        if (!check_job(type, line, any_type, roots, where)) {
            rc = VD_EXIT_USAGE;
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            char **nl = realloc(*out, cap * sizeof *nl);
            if (!nl) {
                rc = vd_cli_fail("out of memory");
                break;
            }
            *out = nl;
        }
        if (!((*out)[*n] = strdup(line))) {
            rc = vd_cli_fail("out of memory");
            break;
        }
        (*n)++;
    }
    free(line);
    return rc;
}

/* Adds count jobs like o (payloads[i] as the i-th payload when payloads is
 * given) in batches of vd_queue_enqueue_many_max, one transaction each,
 * printing the ids of each batch once it is in. Returns an exit code. */
static int enqueue_batches(vd_queue *q, const vd_enqueue_opts *o, char *const *payloads,
                           size_t count)
{
    size_t max = vd_queue_enqueue_many_max(q);
    vd_enqueue_opts *batch = malloc(max * sizeof *batch);
    char(*ids)[VD_ID_LEN + 1] = malloc(max * sizeof *ids);
    int rc = batch && ids ? VD_EXIT_OK : vd_cli_fail("out of memory");
    for (size_t done = 0; rc == VD_EXIT_OK && done < count;) {
        size_t n = count - done < max ? count - done : max;
        for (size_t i = 0; i < n; i++) {
            batch[i] = *o;
            if (payloads) batch[i].payload = payloads[done + i];
        }
        vd_error err;
        size_t added = 0;
        vd_status st = vd_queue_enqueue_many(q, batch, n, ids, &added, &err);
        for (size_t i = 0; i < added; i++)
            printf("%s\n", ids[i]);
        if (st != VD_OK)
            rc = st == VD_ERR_INVALID ? vd_cli_usage_error("jobs", "%s", err.msg)
                                      : vd_cli_fail("enqueue: %s", vd_error_text(&err));
        done += n;
    }
    free(batch);
    free(ids);
    return rc;
}

static int jobs_enqueue(int argc, char **argv)
{
    jobs_args a;
    int rc = parse_args(argc, argv,
                        "--payload --priority --retries --timeout --delay --count --id --any-type "
                        "--media-root --stdin",
                        &a);
    if (rc) return rc;
    if (a.npos != 1) return vd_cli_usage_error("jobs", "jobs enqueue needs exactly one TYPE");
    if (!vd_job_type_valid(a.pos[0]))
        return vd_cli_usage_error("jobs",
                                  "invalid job type '%s': use 1-%d characters of [A-Za-z0-9_.-]",
                                  a.pos[0], VD_JOB_TYPE_MAX - 1);
    vd_enqueue_opts o = {.type = a.pos[0]};
    long long v, count = 1;
    if (a.priority) {
        if (!parse_int("--priority", a.priority, -1000000, 1000000, &v)) return VD_EXIT_USAGE;
        o.priority = (int)v;
    }
    if (a.retries) {
        if (!parse_int("--retries", a.retries, 0, 1000, &v)) return VD_EXIT_USAGE;
        o.max_retries = (int)v;
    }
    if (a.timeout && !parse_secs("--timeout", a.timeout, &o.timeout_ms)) return VD_EXIT_USAGE;
    if (a.delay && !parse_secs("--delay", a.delay, &o.delay_ms)) return VD_EXIT_USAGE;
    if (a.count && !parse_int("--count", a.count, 1, 1000000, &count)) return VD_EXIT_USAGE;
    if (a.id && count != 1) return vd_cli_usage_error("jobs", "--id cannot go with --count > 1");
    if (a.from_stdin && (a.count || a.payload || a.id))
        return vd_cli_usage_error("jobs", "--stdin cannot go with --count, --payload or --id");
    o.id = a.id;
    char *payload = NULL;
    if (a.payload) {
        payload = load_payload(a.payload);
        if (!payload) return VD_EXIT_FAIL;
        json_error_t je;
        json_t *j = json_loads(payload, JSON_DECODE_ANY, &je);
        if (!j) {
            free(payload);
            return vd_cli_usage_error("jobs",
                                      "--payload is not valid JSON: %s (line %d, column %d)",
                                      je.text, je.line, je.column);
        }
        json_decref(j);
        o.payload = payload;
    }
    vd_media_roots *roots = NULL;
    char **lines = NULL;
    size_t nlines = 0;
    if (!make_roots(a.media_root, &roots))
        rc = VD_EXIT_USAGE;
    else if (a.from_stdin)
        rc = read_payload_lines(a.pos[0], a.any_type, roots, &lines, &nlines);
    else if (!check_job(a.pos[0], payload, a.any_type, roots, ""))
        rc = VD_EXIT_USAGE;
    vd_media_roots_free(roots);
    vd_queue *q = NULL;
    if (rc == VD_EXIT_OK) rc = open_queue(&a, &q);
    if (rc == VD_EXIT_OK) rc = enqueue_batches(q, &o, lines, a.from_stdin ? nlines : (size_t)count);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    free(payload);
    vd_queue_close(q);
    return rc;
}

static void format_time(int64_t ms, char *buf, size_t n)
{
    if (ms <= 0) {
        snprintf(buf, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int jobs_list(int argc, char **argv)
{
    jobs_args a;
    int rc = parse_args(argc, argv, "--state --type --limit --offset --json", &a);
    if (rc) return rc;
    if (a.npos) return vd_cli_usage_error("jobs", "jobs list takes no arguments");
    vd_list_opts lo = {.state = -1, .type = a.type, .limit = 100};
    if (a.state) {
        vd_job_state s;
        if (vd_job_state_parse(a.state, &s) != VD_OK)
            return vd_cli_usage_error("jobs", "unknown state '%s'", a.state);
        lo.state = (int)s;
    }
    long long v;
    if (a.limit) {
        if (!parse_int("--limit", a.limit, 1, 100000, &v)) return VD_EXIT_USAGE;
        lo.limit = (size_t)v;
    }
    if (a.offset) {
        if (!parse_int("--offset", a.offset, 0, INT64_MAX, &v)) return VD_EXIT_USAGE;
        lo.offset = (size_t)v;
    }
    vd_queue *q;
    rc = open_queue(&a, &q);
    if (rc) return rc;
    vd_job *jobs;
    size_t n;
    vd_error err;
    if (vd_queue_list(q, &lo, &jobs, &n, &err) != VD_OK) {
        vd_queue_close(q);
        return vd_cli_fail("list: %s", vd_error_text(&err));
    }
    vd_queue_close(q);
    if (a.json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++)
            if (json_array_append_new(arr, vd_job_to_json(&jobs[i]))) {
                json_decref(arr);
                arr = NULL;
            }
        vd_job_list_free(jobs, n);
        return print_json(arr);
    }
    printf("%-32s  %-9s  %-20s  %5s  %8s  %-20s  %s\n", "ID", "STATE", "TYPE", "PRIO", "ATTEMPTS",
           "CREATED", "ERROR");
    for (size_t i = 0; i < n; i++) {
        char created[32], attempts[24];
        format_time(jobs[i].created_ms, created, sizeof created);
        snprintf(attempts, sizeof attempts, "%d/%d", jobs[i].attempts, 1 + jobs[i].max_retries);
        printf("%-32s  %-9s  %-20s  %5d  %8s  %-20s  %.60s\n", jobs[i].id,
               vd_job_state_name(jobs[i].state), jobs[i].type, jobs[i].priority, attempts, created,
               jobs[i].error ? jobs[i].error : "");
    }
    vd_job_list_free(jobs, n);
    return VD_EXIT_OK;
}

enum { OP_SHOW, OP_CANCEL, OP_REQUEUE };

static int jobs_one(int argc, char **argv, int op)
{
    jobs_args a;
    int rc = parse_args(argc, argv, "", &a);
    if (rc) return rc;
    if (a.npos != 1) return vd_cli_usage_error("jobs", "jobs %s needs exactly one job ID", argv[0]);
    vd_queue *q;
    rc = open_queue(&a, &q);
    if (rc) return rc;
    vd_error err;
    vd_status st = VD_OK;
    if (op == OP_CANCEL) st = vd_queue_cancel(q, a.pos[0], &err);
    if (op == OP_REQUEUE) st = vd_queue_requeue(q, a.pos[0], &err);
    vd_job j = {0};
    if (st == VD_OK) st = vd_queue_get(q, a.pos[0], &j, &err);
    vd_queue_close(q);
    if (st != VD_OK) return vd_cli_fail("%s: %s", argv[0], vd_error_text(&err));
    json_t *v = vd_job_to_json(&j);
    vd_job_clear(&j);
    return print_json(v);
}

static int jobs_purge(int argc, char **argv)
{
    jobs_args a;
    int rc = parse_args(argc, argv, "--state --older-than", &a);
    if (rc) return rc;
    if (a.npos) return vd_cli_usage_error("jobs", "jobs purge takes no arguments");
    int state = -1;
    if (a.state) {
        vd_job_state s;
        if (vd_job_state_parse(a.state, &s) != VD_OK ||
            (s != VD_JOB_FINISHED && s != VD_JOB_FAILED && s != VD_JOB_CANCELED))
            return vd_cli_usage_error("jobs", "--state must be finished, failed or canceled");
        state = (int)s;
    }
    int64_t older = 0;
    if (a.older_than && !parse_secs("--older-than", a.older_than, &older)) return VD_EXIT_USAGE;
    vd_queue *q;
    rc = open_queue(&a, &q);
    if (rc) return rc;
    int64_t deleted = 0;
    vd_error err;
    /* "ended before now - older": +1 so that --older-than 0 includes jobs that ended this ms */
    vd_status st = vd_queue_purge(q, state, vd_now_ms() - older + 1, &deleted, &err);
    vd_queue_close(q);
    if (st != VD_OK) return vd_cli_fail("purge: %s", vd_error_text(&err));
    return print_json(json_pack("{s:I}", "deleted", (json_int_t)deleted));
}

int vd_cmd_jobs(int argc, char **argv)
{
    if (argc < 2) {
        fputs(jobs_usage, stderr);
        return vd_cli_usage_error("jobs", "jobs needs a subcommand");
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(jobs_usage, stdout);
        return VD_EXIT_OK;
    }
    if (vd_cli_wants_help(argc - 1, argv + 1)) {
        fputs(jobs_usage, stdout);
        return VD_EXIT_OK;
    }
    const char *sub = argv[1];
    argc--;
    argv++;
    if (strcmp(sub, "enqueue") == 0) return jobs_enqueue(argc, argv);
    if (strcmp(sub, "list") == 0) return jobs_list(argc, argv);
    if (strcmp(sub, "show") == 0) return jobs_one(argc, argv, OP_SHOW);
    if (strcmp(sub, "cancel") == 0) return jobs_one(argc, argv, OP_CANCEL);
    if (strcmp(sub, "requeue") == 0) return jobs_one(argc, argv, OP_REQUEUE);
    if (strcmp(sub, "purge") == 0) return jobs_purge(argc, argv);
    return vd_cli_usage_error("jobs", "unknown subcommand '%s'", sub);
}
