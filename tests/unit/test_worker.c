/* test_worker.c: the job-type registry, the built-in handlers, the
 * work-horse pipe protocol (with real forked horses) and the supervisor run
 * in-process against a real SQLite queue.
 *
 * With arguments it is also the small queue driver of the worker's shell
 * tests (tests/lib/worker.sh), so that they need nothing but the queue API:
 *   test_worker enqueue URL TYPE PAYLOAD [COUNT [TIMEOUT_MS [MAX_RETRIES [RETRY_BASE_MS]]]]
 *                                    prints one job id per line
 *   test_worker get URL ID FIELD     prints state|attempts|error|result|progress|worker
 *   test_worker cancel URL ID | requeue URL ID
 *   test_worker counts URL           prints "queued N scheduled N started N finished N ..." */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "queue/queue.h"
#include "vdtest.h"
#include "worker/forkserver.h"
#include "worker/horse.h"
#include "worker/registry.h"
#include "worker/supervisor.h"

/* ---- the driver ------------------------------------------------------- */

static int driver(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_worker enqueue|get|cancel|requeue|counts URL ...\n");
        return 2;
    }
    const char *cmd = argv[1];
    vd_queue *q;
    vd_error err;
    if (vd_queue_open(argv[2], &q, &err)) {
        fprintf(stderr, "test_worker: %s\n", vd_error_text(&err));
        return 1;
    }
    int rc = 0;
    if (strcmp(cmd, "enqueue") == 0 && argc >= 5) {
        long n = argc > 5 ? atol(argv[5]) : 1;
        vd_enqueue_opts o = {.type = argv[3], .payload = argv[4]};
        if (argc > 6) o.timeout_ms = atoll(argv[6]);
        if (argc > 7) o.max_retries = atoi(argv[7]);
        if (argc > 8) o.retry_base_ms = atoll(argv[8]);
        if (o.retry_base_ms) o.retry_max_ms = 8 * o.retry_base_ms;
        for (long i = 0; i < n && rc == 0; i++) {
            char id[VD_ID_LEN + 1];
            if (vd_queue_enqueue(q, &o, id, &err)) {
                fprintf(stderr, "test_worker: %s\n", vd_error_text(&err));
                rc = 1;
            } else {
                printf("%s\n", id);
            }
        }
    } else if (strcmp(cmd, "get") == 0 && argc == 5) {
        vd_job j;
        memset(&j, 0, sizeof j);
        if (vd_queue_get(q, argv[3], &j, &err)) {
            fprintf(stderr, "test_worker: %s\n", vd_error_text(&err));
            rc = 1;
        } else if (strcmp(argv[4], "state") == 0) {
            printf("%s\n", vd_job_state_name(j.state));
        } else if (strcmp(argv[4], "attempts") == 0) {
            printf("%d\n", j.attempts);
        } else if (strcmp(argv[4], "error") == 0) {
            printf("%s\n", j.error ? j.error : "");
        } else if (strcmp(argv[4], "result") == 0) {
            printf("%s\n", j.result ? j.result : "");
        } else if (strcmp(argv[4], "progress") == 0) {
            printf("%lld/%lld\n", (long long)j.progress_done, (long long)j.progress_total);
        } else if (strcmp(argv[4], "worker") == 0) {
            printf("%s\n", j.worker);
        } else {
            fprintf(stderr, "test_worker: unknown field %s\n", argv[4]);
            rc = 2;
        }
        vd_job_clear(&j);
    } else if ((strcmp(cmd, "cancel") == 0 || strcmp(cmd, "requeue") == 0) && argc == 4) {
        vd_status st =
            cmd[0] == 'c' ? vd_queue_cancel(q, argv[3], &err) : vd_queue_requeue(q, argv[3], &err);
        if (st) {
            fprintf(stderr, "test_worker: %s\n", vd_error_text(&err));
            rc = 1;
        }
    } else if (strcmp(cmd, "counts") == 0 && argc == 3) {
        int64_t c[VD_JOB__NSTATES];
        if (vd_queue_counts(q, c, &err)) {
            fprintf(stderr, "test_worker: %s\n", vd_error_text(&err));
            rc = 1;
        } else {
            for (int i = 0; i < VD_JOB__NSTATES; i++)
                printf("%s%s %lld", i ? " " : "", vd_job_state_name((vd_job_state)i),
                       (long long)c[i]);
            printf("\n");
        }
    } else {
        fprintf(stderr, "test_worker: bad driver command\n");
        rc = 2;
    }
    vd_queue_close(q);
    return rc;
}

/* ---- registry ----------------------------------------------------------- */

static vd_status h_echo(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    (void)err;
    int *calls = vd_job_ctx_userdata(ctx);
    if (calls) (*calls)++;
    *result = vd_strdup(payload);
    return VD_OK;
}

VD_TEST(registry_adds_finds_and_refuses_duplicates)
{
    vd_error err;
    vd_registry *reg = vd_registry_new();
    CHECK(reg != NULL);
    int calls = 0;
    CHECK_OK(vd_registry_add(reg, "echo", h_echo, &calls, &err));
    CHECK_EQ_INT(vd_registry_add(reg, "echo", h_echo, NULL, &err), VD_ERR_STATE);
    CHECK_EQ_INT(vd_registry_add(reg, "bad name", h_echo, NULL, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_registry_add(reg, "", h_echo, NULL, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_registry_add(reg, "x", NULL, NULL, &err), VD_ERR_INVALID);
    CHECK(vd_registry_has(reg, "echo"));
    CHECK(!vd_registry_has(reg, "ech"));
    CHECK(!vd_registry_has(reg, NULL));
    void *ud = NULL;
    CHECK(vd_registry_get(reg, "echo", &ud) == h_echo);
    CHECK(ud == &calls);
    CHECK(vd_registry_get(reg, "nope", &ud) == NULL);
    CHECK_OK(vd_registry_add_builtin(reg, &err));
    CHECK_EQ_INT(vd_registry_count(reg), 8);
    CHECK_EQ_STR(vd_registry_name(reg, 0), "echo");
    CHECK_EQ_STR(vd_registry_name(reg, 1), "noop");
    CHECK(vd_registry_name(reg, 8) == NULL);
    const char *names[] = {"noop", "sleep", "fail", "crash", "progress", "count", "alloc"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(vd_registry_has(reg, names[i]));
    CHECK_EQ_INT(vd_registry_add_builtin(reg, &err), VD_ERR_STATE);
    vd_registry_free(reg);
}

/* ---- handlers run through vd_horse_run_handler -------------------------- */

typedef struct {
    int stop;
    int nprogress;
    int64_t done, total;
} fake_runner;

static vd_status fake_progress(vd_job_ctx *ctx, int64_t done, int64_t total)
{
    fake_runner *f = ctx->impl;
    f->nprogress++;
    f->done = done;
    f->total = total;
    return VD_OK;
}

static int fake_should_stop(vd_job_ctx *ctx)
{
    return ((fake_runner *)ctx->impl)->stop;
}

static void run_one(const vd_registry *reg, const char *type, const char *payload, int stop,
                    fake_runner *f, vd_horse_outcome *out)
{
    vd_job job;
    memset(&job, 0, sizeof job);
    vd_strlcpy(job.id, "0123456789abcdef0123456789abcdef", sizeof job.id);
    vd_strlcpy(job.type, type, sizeof job.type);
    job.payload = (char *)payload;
    job.attempts = 1;
    memset(f, 0, sizeof *f);
    f->stop = stop;
    vd_job_ctx ctx = {.progress = fake_progress, .should_stop = fake_should_stop, .impl = f};
    vd_horse_run_handler(reg, &job, &ctx, out);
}

VD_TEST(builtin_handlers_report_results_and_failures)
{
    vd_error err;
    vd_registry *reg = vd_registry_new();
    CHECK_OK(vd_registry_add_builtin(reg, &err));
    fake_runner f;
    vd_horse_outcome o;

    run_one(reg, "noop", "{}", 0, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_DONE);
    vd_horse_outcome_clear(&o);

    run_one(reg, "sleep", "{\"ms\": 5}", 0, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_DONE);
    CHECK_EQ_STR(o.result, "{\"slept_ms\": 5}");
    vd_horse_outcome_clear(&o);

    /* bad payloads are permanent failures */
    run_one(reg, "sleep", "{\"ms\": \"x\"}", 0, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_FAILED);
    CHECK_EQ_INT(o.status, VD_ERR_INVALID);
    CHECK_EQ_INT(o.retryable, 0);
    vd_horse_outcome_clear(&o);
    run_one(reg, "sleep", "[1]", 0, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_FAILED);
    CHECK_EQ_INT(o.retryable, 0);
    vd_horse_outcome_clear(&o);

    /* a stop request ends a sleep early */
    run_one(reg, "sleep", "{\"ms\": 60000}", 1, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_FAILED);
    CHECK_EQ_INT(o.status, VD_ERR_CANCELED);
    vd_horse_outcome_clear(&o);

    run_one(reg, "fail", "{\"message\": \"boom\", \"retryable\": false}", 0, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_FAILED);
    CHECK_EQ_STR(o.error, "boom");
    CHECK_EQ_INT(o.retryable, 0);
    vd_horse_outcome_clear(&o);
    run_one(reg, "fail", "{\"message\": \"again\"}", 0, &f, &o);
    CHECK_EQ_INT(o.retryable, 1);
    vd_horse_outcome_clear(&o);

    run_one(reg, "progress", "{\"steps\": 4, \"ms\": 0}", 0, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_DONE);
    CHECK_EQ_INT(f.nprogress, 5);
    CHECK_EQ_INT(f.done, 4);
    CHECK_EQ_INT(f.total, 4);
    vd_horse_outcome_clear(&o);

    run_one(reg, "crash", "{\"signal\": \"BOGUS\"}", 0, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_FAILED);
    CHECK_EQ_INT(o.retryable, 0);
    vd_horse_outcome_clear(&o);

    run_one(reg, "count", "{\"db\": \"/nonexistent/dir/x.db\"}", 0, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_FAILED);
    CHECK_EQ_INT(o.status, VD_ERR_DB);
    vd_horse_outcome_clear(&o);

    run_one(reg, "no-such-type", "{}", 0, &f, &o);
    CHECK_EQ_INT(o.kind, VD_HORSE_FAILED);
    CHECK_EQ_INT(o.retryable, 0);
    vd_horse_outcome_clear(&o);
    vd_registry_free(reg);
}

/* ---- real forked horses and the pipe reader ------------------------------ */

/* Forks a horse for (type, payload); reads its pipe to the end into *rd and
 * returns its wait status. */
static int fork_horse(const vd_registry *reg, const char *type, const char *payload,
                      vd_horse_reader *rd)
{
    vd_job job;
    memset(&job, 0, sizeof job);
    vd_strlcpy(job.id, "fedcba9876543210fedcba9876543210", sizeof job.id);
    vd_strlcpy(job.type, type, sizeof job.type);
    job.payload = (char *)payload;
    job.attempts = 1;
    int p[2];
    if (pipe(p) != 0) return -1;
    vd_horse_opts opts = {.parent = getpid()};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        vd_horse_main(reg, &job, p[1], &opts);
    }
    close(p[1]);
    memset(rd, 0, sizeof *rd);
    while (vd_horse_reader_pump(rd, p[0]) == 0) {
    } /* blocking fd: returns at end of file */
    close(p[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    return ws;
}

VD_TEST(forked_horse_reports_progress_result_failure_and_dies_by_signal)
{
    vd_error err;
    vd_registry *reg = vd_registry_new();
    CHECK_OK(vd_registry_add_builtin(reg, &err));
    vd_horse_reader rd;

    int ws = fork_horse(reg, "progress", "{\"steps\": 3, \"ms\": 1}", &rd);
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == VD_HORSE_EXIT_OK);
    CHECK_EQ_INT(rd.bad, 0);
    CHECK_EQ_INT(rd.out.kind, VD_HORSE_DONE);
    CHECK_EQ_STR(rd.out.result, "{\"steps\": 3}");
    CHECK_EQ_INT(rd.done, 3);
    CHECK_EQ_INT(rd.total, 3);
    vd_horse_reader_free(&rd);

    ws = fork_horse(reg, "fail", "{\"message\": \"nope\", \"retryable\": false}", &rd);
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    CHECK_EQ_INT(rd.out.kind, VD_HORSE_FAILED);
    CHECK_EQ_STR(rd.out.error, "nope");
    CHECK_EQ_INT(rd.out.retryable, 0);
    vd_horse_reader_free(&rd);

    ws = fork_horse(reg, "crash", "{\"signal\": \"SEGV\"}", &rd);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV);
    CHECK_EQ_INT(rd.out.kind, VD_HORSE_NONE);
    vd_horse_reader_free(&rd);

    ws = fork_horse(reg, "crash", "{\"signal\": \"ABRT\"}", &rd);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT);
    vd_horse_reader_free(&rd);
    vd_registry_free(reg);
}

VD_TEST(reader_takes_messages_split_anywhere_and_flags_garbage)
{
    /* one progress and one result message, fed one byte at a time */
    char msg[64];
    size_t n = 0;
    int64_t pv[2] = {7, 9};
    uint32_t len = 16;
    msg[n++] = 'P';
    memcpy(msg + n, &len, 4);
    n += 4;
    memcpy(msg + n, pv, 16);
    n += 16;
    len = 2;
    msg[n++] = 'R';
    memcpy(msg + n, &len, 4);
    n += 4;
    memcpy(msg + n, "{}", 2);
    n += 2;
    int p[2];
    CHECK(pipe(p) == 0);
    vd_horse_reader rd;
    memset(&rd, 0, sizeof rd);
    for (size_t i = 0; i < n; i++) {
        /* each byte arrives alone: a pipe holding it, then end of file */
        int q[2];
        CHECK(pipe(q) == 0);
        CHECK(write(q[1], msg + i, 1) == 1);
        close(q[1]);
        CHECK_EQ_INT(vd_horse_reader_pump(&rd, q[0]), 1);
        close(q[0]);
        if (i < 20) CHECK_EQ_INT(rd.progress_new, 0);
    }
    CHECK_EQ_INT(rd.progress_new, 1);
    CHECK_EQ_INT(rd.done, 7);
    CHECK_EQ_INT(rd.total, 9);
    CHECK_EQ_INT(rd.out.kind, VD_HORSE_DONE);
    CHECK_EQ_STR(rd.out.result, "{}");
    CHECK_EQ_INT(rd.bad, 0);
    /* a second final message is garbage */
    CHECK(write(p[1], msg + 21, 7) == 7);
    close(p[1]);
    CHECK_EQ_INT(vd_horse_reader_pump(&rd, p[0]), 1);
    CHECK_EQ_INT(rd.bad, 1);
    close(p[0]);
    vd_horse_reader_free(&rd);
}

/* ---- the supervisor, in-process, on a real SQLite queue ------------------ */

static void enqueue_n(vd_queue *q, const char *type, const char *payload, int n, int64_t timeout)
{
    vd_error err;
    vd_enqueue_opts o = {.type = type, .payload = payload, .timeout_ms = timeout};
    for (int i = 0; i < n; i++)
        if (vd_queue_enqueue(q, &o, NULL, &err)) vd_test_fail_at(__FILE__, __LINE__, "enqueue");
}

static void supervise(int no_fork)
{
    vd_error err;
    char url[512];
    snprintf(url, sizeof url, "sqlite:%s/q.db?sync=normal", vd_test_tmpdir());
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    enqueue_n(q, "noop", "{}", 20, 0);
    enqueue_n(q, "progress", "{\"steps\": 3, \"ms\": 1}", 2, 0);
    enqueue_n(q, "fail", "{\"message\": \"no\"}", 2, 0);
    enqueue_n(q, "sleep", "{\"ms\": 60000}", 1, 300); /* times out */
    if (!no_fork) enqueue_n(q, "crash", "{\"signal\": \"SEGV\"}", 1, 0);

    vd_registry *reg = vd_registry_new();
    CHECK_OK(vd_registry_add_builtin(reg, &err));
    const char *types[] = {"noop", "progress", "fail", "sleep", "crash"};
    vd_supervisor_opts o = {.queue_url = url,
                            .worker_id = "unit-worker",
                            .concurrency = 3,
                            .kill_grace_ms = 200,
                            .burst = 1,
                            .no_fork = no_fork,
                            .types = types,
                            .ntypes = 5};
    vd_supervisor *s;
    CHECK_OK(vd_supervisor_new(&o, reg, &s, &err));
    CHECK_EQ_STR(vd_supervisor_worker_id(s), "unit-worker");
    CHECK_OK(vd_supervisor_run(s, &err));
    vd_supervisor_stats st;
    vd_supervisor_get_stats(s, &st);
    vd_supervisor_free(s);
    /* every horse reaped, the spare too: no child left, not even a zombie */
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
    CHECK_EQ_INT(st.reserved, no_fork ? 25 : 26);
    CHECK_EQ_INT(st.finished, 22);
    CHECK_EQ_INT(st.failed, 2);
    CHECK_EQ_INT(st.timed_out, 1);
    CHECK_EQ_INT(st.crashed, no_fork ? 0 : 1);

    int64_t c[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, c, &err));
    CHECK_EQ_INT(c[VD_JOB_FINISHED], 22);
    CHECK_EQ_INT(c[VD_JOB_FAILED], no_fork ? 3 : 4);
    CHECK_EQ_INT(c[VD_JOB_STARTED], 0);
    CHECK_EQ_INT(c[VD_JOB_QUEUED], 0);

    vd_list_opts lo = {.state = VD_JOB_FAILED};
    vd_job *jobs;
    size_t n;
    CHECK_OK(vd_queue_list(q, &lo, &jobs, &n, &err));
    int seen_timeout = 0, seen_segv = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(jobs[i].type, "sleep") == 0)
            seen_timeout = jobs[i].error && strcmp(jobs[i].error, "timeout after 0.3s") == 0;
        if (strcmp(jobs[i].type, "crash") == 0)
            seen_segv = jobs[i].error && strcmp(jobs[i].error, "work-horse killed by SIGSEGV") == 0;
    }
    vd_job_list_free(jobs, n);
    CHECK(seen_timeout);
    CHECK(seen_segv || no_fork);
    vd_registry_free(reg);
    vd_queue_close(q);
}

VD_TEST(supervisor_runs_a_burst_with_forked_horses)
{
    supervise(0);
}

VD_TEST(supervisor_runs_a_burst_inline)
{
    supervise(1);
}

/* A graceful stop (SIGTERM) past the grace period hands the running job back
 * with vd_queue_release: queued at once, the attempt not counted, so a job
 * with no retries left is not failed by the stop. The supervisor runs in a
 * child process, which is the one that gets the signal. */
static void graceful_stop(int no_fork)
{
    vd_error err;
    char url[512];
    snprintf(url, sizeof url, "sqlite:%s/q.db?sync=normal", vd_test_tmpdir());
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    vd_enqueue_opts eo = {.type = "sleep", .payload = "{\"ms\": 600000}"}; /* max_retries 0 */
    CHECK_OK(vd_queue_enqueue(q, &eo, id, &err));
    vd_queue_close(q); /* no handle crosses the fork */
    pid_t pid = fork();
    if (pid == 0) {
        vd_registry *reg = vd_registry_new();
        const char *types[] = {"sleep"};
        vd_supervisor_opts o = {.queue_url = url,
                                .worker_id = "stopping-worker",
                                .grace_ms = 50,
                                .kill_grace_ms = 2000,
                                .no_fork = no_fork,
                                .types = types,
                                .ntypes = 1};
        vd_supervisor *s;
        if (!reg || vd_registry_add_builtin(reg, &err) || vd_supervisor_new(&o, reg, &s, &err))
            _exit(20);
        if (vd_supervisor_run(s, &err)) _exit(21);
        vd_supervisor_stats st;
        vd_supervisor_get_stats(s, &st);
        vd_supervisor_free(s);
        vd_registry_free(reg);
        _exit(st.reserved == 1 && st.handed_back == 1 && st.failed == 0 && st.crashed == 0 ? 0
                                                                                           : 22);
    }
    CHECK(pid > 0);
    CHECK_OK(vd_queue_open(url, &q, &err));
    vd_job j = {0};
    int64_t end = vd_mono_ms() + 60000;
    int started = 0;
    while (!started && vd_mono_ms() < end) {
        if (vd_queue_get(q, id, &j, &err) == VD_OK) started = j.state == VD_JOB_STARTED;
        vd_job_clear(&j);
        if (!started) vd_sleep_ms(10);
    }
    if (!started) kill(pid, SIGKILL);
    CHECK(started);
    kill(pid, SIGTERM);
    int ws = 0;
    CHECK_EQ_INT(waitpid(pid, &ws, 0), pid);
    CHECK(WIFEXITED(ws));
    CHECK_EQ_INT(WEXITSTATUS(ws), 0);
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_QUEUED);
    CHECK_EQ_INT(j.attempts, 0); /* not charged */
    CHECK_EQ_INT(j.lease_until_ms, 0);
    CHECK_EQ_STR(j.worker, "stopping-worker");
    CHECK(j.error && strncmp(j.error, "worker shut down before the job finished", 40) == 0);
    printf("    handed back: %s\n", j.error ? j.error : "(no error)");
    vd_job_clear(&j);
    /* the next worker runs it as its first attempt */
    CHECK_OK(vd_queue_reserve(q, "next-worker", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id);
    CHECK_EQ_INT(j.attempts, 1);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_complete(q, id, "next-worker", NULL, &err));
    CHECK_EQ_INT(vd_queue_get(q, id, &j, &err), VD_OK);
    CHECK_EQ_INT(j.state, VD_JOB_FINISHED);
    vd_job_clear(&j);
    vd_queue_close(q);
}

VD_TEST(graceful_stop_hands_the_job_back_uncharged)
{
    graceful_stop(0);
}

VD_TEST(graceful_stop_hands_the_job_back_uncharged_inline)
{
    graceful_stop(1);
}

VD_TEST(supervisor_refuses_bad_options)
{
    vd_error err;
    vd_registry *reg = vd_registry_new();
    CHECK_OK(vd_registry_add_builtin(reg, &err));
    vd_supervisor *s = NULL;
    const char *bad[] = {"noop", "nope"};
    vd_supervisor_opts o = {
        .queue_url = "sqlite:/nonexistent-dir-x/q.db", .types = bad, .ntypes = 2};
    CHECK_EQ_INT(vd_supervisor_new(&o, reg, &s, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "nope") != NULL);
    vd_supervisor_opts o2 = {.queue_url = "x.db", .lease_ms = 1000, .heartbeat_ms = 1000};
    CHECK_EQ_INT(vd_supervisor_new(&o2, reg, &s, &err), VD_ERR_INVALID);
    vd_supervisor_opts o3 = {.queue_url = ""};
    CHECK_EQ_INT(vd_supervisor_new(&o3, reg, &s, &err), VD_ERR_INVALID);
    CHECK(s == NULL);
    vd_registry_free(reg);
}

/* ---- the fork server ----------------------------------------------------- */

/* Hands a job to sp and reads its pipe to the end into *rd (non-blocking fd). */
static void run_spare(vd_spare *sp, const char *type, const char *payload, vd_horse_reader *rd)
{
    vd_error err;
    vd_job job;
    memset(&job, 0, sizeof job);
    vd_strlcpy(job.id, "00112233445566778899aabbccddeeff", sizeof job.id);
    vd_strlcpy(job.type, type, sizeof job.type);
    job.payload = (char *)payload;
    job.attempts = 1;
    CHECK_OK(vd_spare_hand_over(sp, &job, &err));
    memset(rd, 0, sizeof *rd);
    struct pollfd pf = {.fd = sp->msg_fd, .events = POLLIN};
    while (vd_horse_reader_pump(rd, sp->msg_fd) == 0)
        poll(&pf, 1, 1000);
}

VD_TEST(forkserver_forks_horses_that_are_the_callers_children)
{
    vd_error err;
    vd_registry *reg = vd_registry_new();
    CHECK_OK(vd_registry_add_builtin(reg, &err));
    vd_horse_opts opts = {.parent = getpid()};
    vd_forkserver fs;
    fflush(stdout);
    CHECK_OK(vd_forkserver_start(&fs, reg, &opts, &err));
    CHECK(fs.pid > 0 && fs.sock >= 0);

    for (int i = 0; i < 3; i++) {
        CHECK_OK(vd_forkserver_ask(&fs, &err));
        CHECK_EQ_INT(vd_forkserver_ask(&fs, &err), VD_ERR_STATE); /* one at a time */
        vd_spare sp;
        CHECK_OK(vd_forkserver_take(&fs, &sp, 1, &err));
        CHECK(sp.pid > 0 && sp.pid != fs.pid);
        /* CLONE_PARENT: the spare is OUR child (waitpid would say ECHILD otherwise) */
        CHECK_EQ_INT(waitpid(sp.pid, NULL, WNOHANG), 0);
        vd_horse_reader rd;
        run_spare(&sp, "progress", "{\"steps\": 2, \"ms\": 1}", &rd);
        CHECK_EQ_INT(rd.bad, 0);
        CHECK_EQ_INT(rd.out.kind, VD_HORSE_DONE);
        CHECK_EQ_STR(rd.out.result, "{\"steps\": 2}");
        vd_horse_reader_free(&rd);
        int ws = 0;
        CHECK_EQ_INT(waitpid(sp.pid, &ws, 0), sp.pid);
        CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == VD_HORSE_EXIT_OK);
        vd_spare_discard(&sp);
    }

    /* a crash in a horse is seen by us, with its signal */
    CHECK_OK(vd_forkserver_ask(&fs, &err));
    vd_spare sp;
    CHECK_OK(vd_forkserver_take(&fs, &sp, 1, &err));
    vd_horse_reader rd;
    run_spare(&sp, "crash", "{\"signal\": \"SEGV\"}", &rd);
    vd_horse_reader_free(&rd);
    int ws = 0;
    CHECK_EQ_INT(waitpid(sp.pid, &ws, 0), sp.pid);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSEGV);
    vd_spare_discard(&sp);

    /* a spare retired before its job exits 0 */
    CHECK_OK(vd_forkserver_ask(&fs, &err));
    CHECK_OK(vd_forkserver_take(&fs, &sp, 1, &err));
    pid_t idle = sp.pid;
    vd_spare_discard(&sp);
    CHECK_EQ_INT(waitpid(idle, &ws, 0), idle);
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

    /* a fork server that died is an error, not a hang */
    CHECK_EQ_INT(kill(fs.pid, SIGKILL), 0);
    CHECK_EQ_INT(waitpid(fs.pid, NULL, 0), fs.pid);
    vd_status st = vd_forkserver_ask(&fs, &err);
    if (st == VD_OK) st = vd_forkserver_take(&fs, &sp, 1, &err);
    CHECK_EQ_INT(st, VD_ERR_IO);
    CHECK(vd_forkserver_stop(&fs) > 0);
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);

    /* stopping a live one: it exits at end of file */
    CHECK_OK(vd_forkserver_start(&fs, reg, &opts, &err));
    pid_t server = vd_forkserver_stop(&fs);
    CHECK_EQ_INT(waitpid(server, &ws, 0), server);
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    vd_registry_free(reg);
}

/* 1 when /proc/PID/maps names a file containing needle. */
static int maps_have(pid_t pid, const char *needle)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

VD_TEST(light_forkserver_is_exec_d_and_its_clones_map_no_libvips)
{
    const char *dir = getenv("VISIOND_BUILD_DIR");
    if (!dir) {
        printf("  (VISIOND_BUILD_DIR unset: skipped)\n");
        return;
    }
    char exe[4096];
    snprintf(exe, sizeof exe, "%s/visiond-horse", dir);
    const char *argv[] = {exe, "--store", "sqlite::memory:", NULL};
    setenv("VISIOND_TEST_JOBS", "1", 1);
    vd_error err;
    vd_horse_opts opts = {.parent = getpid()};
    vd_forkserver fs;
    char *types = NULL;
    fflush(stdout);
    CHECK_OK(vd_forkserver_exec(&fs, argv, &opts, 10000, &types, &err));
    /* the light types only: the test types and recluster_people, no embed */
    CHECK(strstr(types, "noop") && strstr(types, "crash") && strstr(types, "recluster_people"));
    CHECK(!strstr(types, "embed") && !strstr(types, "index") && !strstr(types, "train_session"));
    free(types);

    CHECK_OK(vd_forkserver_ask(&fs, &err));
    vd_spare sp;
    CHECK_OK(vd_forkserver_take(&fs, &sp, 1, &err));
    CHECK_EQ_INT(waitpid(sp.pid, NULL, WNOHANG), 0);  /* our child, waiting for its job */
    CHECK_EQ_INT(maps_have(sp.pid, "libsqlite3"), 1); /* the check can see a library */
    CHECK_EQ_INT(maps_have(sp.pid, "libvips"), 0);
    CHECK_EQ_INT(maps_have(sp.pid, "onnxruntime"), 0);
    vd_horse_reader rd;
    run_spare(&sp, "progress", "{\"steps\": 3, \"ms\": 1}", &rd);
    CHECK_EQ_INT(rd.out.kind, VD_HORSE_DONE);
    CHECK_EQ_STR(rd.out.result, "{\"steps\": 3}");
    vd_horse_reader_free(&rd);
    int ws = 0;
    CHECK_EQ_INT(waitpid(sp.pid, &ws, 0), sp.pid);
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == VD_HORSE_EXIT_OK);
    vd_spare_discard(&sp);
    pid_t server = vd_forkserver_stop(&fs);
    CHECK_EQ_INT(waitpid(server, &ws, 0), server);
    CHECK(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);

    /* what is no fork server is an error, and no process is left behind */
    const char *not_one[] = {"/bin/true", NULL};
    CHECK_EQ_INT(vd_forkserver_exec(&fs, not_one, &opts, 10000, &types, &err), VD_ERR_IO);
    CHECK(fs.pid == 0 && fs.sock == -1 && types == NULL);
    const char *missing[] = {"/nonexistent/visiond-horse", NULL};
    CHECK_EQ_INT(vd_forkserver_exec(&fs, missing, &opts, 10000, &types, &err), VD_ERR_IO);
    const char *silent[] = {"/bin/sleep", "30", NULL};
    CHECK_EQ_INT(vd_forkserver_exec(&fs, silent, &opts, 200, &types, &err), VD_ERR_IO);
    CHECK(strstr(vd_error_text(&err), "said nothing") != NULL);
    CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
    unsetenv("VISIOND_TEST_JOBS");
}

int main(int argc, char **argv)
{
    if (argc > 1) return driver(argc, argv);
    return vd_test_run_all();
}
