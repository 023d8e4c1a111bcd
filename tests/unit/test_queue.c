/* test_queue.c: the queue contract (queue.h), run against every backend.
 *
 * Each QTEST body is written once as a function of a queue URL and runs once
 * per backend in `backends` below, each time on a fresh, empty queue:
 *   - sqlite: always, a new database file per test;
 *   - redis:  when $VISIOND_TEST_REDIS is set (e.g. redis://127.0.0.1:6390/0)
 *             and the backend is built in (vd_queue_open does not answer
 *             VD_ERR_UNSUPPORTED). The database in that URL is FLUSHDB'd
 *             before every test, so point it at a DB number used only for
 *             tests.
 *   - postgres: when $VISIOND_TEST_PG is set (a role with CREATEDB): a new
 *             database per test, created (and dropped at exit) through it.
 * Adding a backend = one entry in `backends`.
 * Tests that are about one backend only (file handling, kill -9) are plain
 * VD_TESTs at the end. */
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "queue/queue.h"
#include "queue/queue_impl.h" /* the batch fallback test runs a backend without enqueue_many */
#include "vdtest.h"
#include "vdtest_pg.h"

/* ---- backends ------------------------------------------------------------ */

/* Writes the URL of a fresh, empty queue into buf; returns 0 when the backend
 * cannot run here (the reason goes into why). */
typedef int (*fresh_url_fn)(char *buf, size_t n, char *why, size_t whyn);

static int fresh_sqlite(char *buf, size_t n, char *why, size_t whyn)
{
    (void)why;
    (void)whyn;
    static int seq;
    snprintf(buf, n, "sqlite:%s/queue%d.db", vd_test_tmpdir(), ++seq);
    return 1;
}

/* Empties the Redis database named by url (redis://HOST:PORT/DB). */
static int redis_flush(const char *url, char *why, size_t whyn)
{
    char host[256] = "127.0.0.1";
    int port = 6379, db = 0;
    const char *p = url + strlen("redis://");
    const char *colon = strchr(p, ':'), *slash = strchr(p, '/');
    size_t hl = colon ? (size_t)(colon - p) : slash ? (size_t)(slash - p) : strlen(p);
    if (hl > 0 && hl < sizeof host) {
        memcpy(host, p, hl);
        host[hl] = '\0';
    }
    if (colon) port = atoi(colon + 1);
    if (slash) db = atoi(slash + 1);
    redisContext *c = redisConnect(host, port);
    if (!c || c->err) {
        snprintf(why, whyn, "cannot reach redis at %s:%d", host, port);
        if (c) redisFree(c);
        return 0;
    }
    redisReply *r = redisCommand(c, "SELECT %d", db);
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    if (ok) {
        r = redisCommand(c, "FLUSHDB");
        ok = r && r->type != REDIS_REPLY_ERROR;
        if (r) freeReplyObject(r);
    }
    redisFree(c);
    if (!ok) snprintf(why, whyn, "FLUSHDB on %s failed", url);
    return ok;
}

static int fresh_redis(char *buf, size_t n, char *why, size_t whyn)
{
    const char *url = getenv("VISIOND_TEST_REDIS");
    if (!url || !*url) {
        snprintf(why, whyn, "VISIOND_TEST_REDIS is not set");
        return 0;
    }
    vd_queue *q = NULL;
    vd_error err;
    vd_status st = vd_queue_open(url, &q, &err);
    vd_queue_close(q);
    if (st == VD_ERR_UNSUPPORTED) {
        snprintf(why, whyn, "redis backend not built in");
        return 0;
    }
    if (!redis_flush(url, why, whyn)) return 0;
    snprintf(buf, n, "%s", url);
    return 1;
}

static const struct {
    const char *name;
    fresh_url_fn fresh;
} backends[] = {
    {"sqlite", fresh_sqlite},
    {"redis", fresh_redis},
    {"postgres", vd_test_pg_fresh},
};

typedef void (*qtest_fn)(const char *url);

static void for_each_backend(qtest_fn fn)
{
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        char url[512], why[256] = "";
        if (!backends[i].fresh(url, sizeof url, why, sizeof why)) {
            printf("    [%s] not run: %s\n", backends[i].name, why);
            continue;
        }
        printf("    [%s] %s\n", backends[i].name, url);
        fn(url);
        if (vd_test_failed()) return;
    }
}

#define QTEST(name)                                                                                \
    static void name##_body(const char *url);                                                      \
    VD_TEST(name)                                                                                  \
    {                                                                                              \
        for_each_backend(name##_body);                                                             \
    }                                                                                              \
    static void name##_body(const char *url)

/* ---- helpers ------------------------------------------------------------- */

static vd_status add(vd_queue *q, const char *type, int priority, char id[VD_ID_LEN + 1],
                     vd_error *err)
{
    vd_enqueue_opts o = {.type = type, .priority = priority};
    return vd_queue_enqueue(q, &o, id, err);
}

static vd_job_state state_of(vd_queue *q, const char *id)
{
    vd_job j = {0};
    vd_error err;
    if (vd_queue_get(q, id, &j, &err) != VD_OK) return (vd_job_state)-1;
    vd_job_state s = j.state;
    vd_job_clear(&j);
    return s;
}

/* Reserves until a job comes (a delayed or backed-off one becomes due), for
 * at most 30 s; returns the last status. */
static vd_status reserve_wait(vd_queue *q, const char *worker, int64_t lease_ms, vd_job *job,
                              vd_error *err)
{
    int64_t end = vd_mono_ms() + 30000;
    for (;;) {
        vd_status st = vd_queue_reserve(q, worker, lease_ms, NULL, 0, job, err);
        if (st != VD_ERR_EMPTY || vd_mono_ms() > end) return st;
        vd_sleep_ms(5);
    }
}

/* ---- the contract -------------------------------------------------------- */

QTEST(enqueue_get_round_trip)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    int64_t before = vd_now_ms();
    vd_enqueue_opts o = {.type = "image.describe",
                         .payload = "{\"path\": \"/x/y.jpg\", \"n\": [1, 2]}",
                         .priority = 3,
                         .max_retries = 2,
                         .timeout_ms = 5000,
                         .retry_base_ms = 250,
                         .retry_max_ms = 9000,
                         .result_ttl_ms = 60000};
    CHECK_OK(vd_queue_enqueue(q, &o, id, &err));
    CHECK_EQ_INT(strlen(id), VD_ID_LEN);
    vd_job j = {0};
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_STR(j.id, id);
    CHECK_EQ_STR(j.type, "image.describe");
    CHECK_EQ_STR(j.payload, "{\"path\": \"/x/y.jpg\", \"n\": [1, 2]}");
    CHECK_EQ_INT(j.priority, 3);
    CHECK_EQ_INT(j.state, VD_JOB_QUEUED);
    CHECK_EQ_INT(j.attempts, 0);
    CHECK_EQ_INT(j.max_retries, 2);
    CHECK_EQ_INT(j.timeout_ms, 5000);
    CHECK_EQ_INT(j.retry_base_ms, 250);
    CHECK_EQ_INT(j.retry_max_ms, 9000);
    CHECK_EQ_INT(j.result_ttl_ms, 60000);
    CHECK(j.created_ms >= before && j.created_ms <= vd_now_ms());
    CHECK(j.run_at_ms >= j.created_ms);
    CHECK_EQ_INT(j.started_ms, 0);
    CHECK_EQ_INT(j.ended_ms, 0);
    CHECK(j.result == NULL);
    CHECK(j.error == NULL);
    CHECK_EQ_INT(j.cancel_requested, 0);
    vd_job_clear(&j);

    /* defaults, a caller-chosen id, and NULL id_out */
    vd_enqueue_opts d = {.type = "t", .id = "my-job-1"};
    CHECK_OK(vd_queue_enqueue(q, &d, NULL, &err));
    CHECK_OK(vd_queue_get(q, "my-job-1", &j, &err));
    CHECK_EQ_STR(j.payload, "{}");
    CHECK_EQ_INT(j.priority, 0);
    CHECK_EQ_INT(j.max_retries, 0);
    CHECK_EQ_INT(j.retry_base_ms, 1000);
    CHECK_EQ_INT(j.retry_max_ms, 300000);
    CHECK_EQ_INT(j.result_ttl_ms, 7LL * 24 * 3600 * 1000);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_enqueue(q, &d, NULL, &err), VD_ERR_STATE); /* duplicate id */
    /* ids that could not be named in a URL, or would garble a log line (issue 18 item 10) */
    static const char *const bad_ids[] = {"a/b", "../x", "x\x1b[31m", "tab\tid", "sp ace",
                                          ".",   "..",   "",          "a\n"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        vd_enqueue_opts b = {.type = "t", .id = bad_ids[i]};
        CHECK_EQ_INT(vd_queue_enqueue(q, &b, NULL, &err), VD_ERR_INVALID);
    }

    vd_enqueue_opts forever = {.type = "t", .result_ttl_ms = -1};
    CHECK_OK(vd_queue_enqueue(q, &forever, id, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.result_ttl_ms, 0);
    vd_job_clear(&j);

    CHECK_EQ_INT(vd_queue_get(q, "no-such-job", &j, &err), VD_ERR_NOT_FOUND);
    vd_queue_close(q);
}

QTEST(enqueue_rejects_bad_input)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    const char *bad_types[] = {"", "has space", "semi;colon", "slash/no", "\xc3\xa9t\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        vd_enqueue_opts o = {.type = bad_types[i]};
        CHECK_EQ_INT(vd_queue_enqueue(q, &o, id, &err), VD_ERR_INVALID);
    }
    char longname[VD_JOB_TYPE_MAX + 1];
    memset(longname, 'a', VD_JOB_TYPE_MAX);
    longname[VD_JOB_TYPE_MAX] = '\0';
    vd_enqueue_opts o = {.type = longname};
    CHECK_EQ_INT(vd_queue_enqueue(q, &o, id, &err), VD_ERR_INVALID);
    o = (vd_enqueue_opts){.type = NULL};
    CHECK_EQ_INT(vd_queue_enqueue(q, &o, id, &err), VD_ERR_INVALID);
    const char *bad_payloads[] = {"{not json", "", "{\"a\": 1,}", "[1, 2"};
    for (size_t i = 0; i < sizeof bad_payloads / sizeof bad_payloads[0]; i++) {
        o = (vd_enqueue_opts){.type = "ok", .payload = bad_payloads[i]};
        CHECK_EQ_INT(vd_queue_enqueue(q, &o, id, &err), VD_ERR_INVALID);
        CHECK(strstr(err.msg, "JSON") != NULL);
    }
    o = (vd_enqueue_opts){.type = "ok", .max_retries = -1};
    CHECK_EQ_INT(vd_queue_enqueue(q, &o, id, &err), VD_ERR_INVALID);
    o = (vd_enqueue_opts){.type = "ok", .delay_ms = -5};
    CHECK_EQ_INT(vd_queue_enqueue(q, &o, id, &err), VD_ERR_INVALID);
    int64_t c[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, c, &err));
    for (int s = 0; s < VD_JOB__NSTATES; s++)
        CHECK_EQ_INT(c[s], 0);
    /* scalar JSON payloads are JSON too */
    o = (vd_enqueue_opts){.type = "ok", .payload = "42"};
    CHECK_OK(vd_queue_enqueue(q, &o, id, &err));
    vd_queue_close(q);
}

static int64_t total_jobs(vd_queue *q)
{
    int64_t c[VD_JOB__NSTATES], t = 0;
    vd_error err;
    if (vd_queue_counts(q, c, &err) != VD_OK) return -1;
    for (int i = 0; i < VD_JOB__NSTATES; i++)
        t += c[i];
    return t;
}

QTEST(enqueue_many_is_all_or_nothing)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    vd_enqueue_opts o[3] = {
        {.type = "a", .payload = "{\"i\": 0}", .max_retries = 2},
        {.type = "b", .payload = "[1]", .id = "batch-b", .timeout_ms = 7000},
        {.type = "a", .delay_ms = 60000},
    };
    char ids[3][VD_ID_LEN + 1];
    size_t added = 99;
    CHECK_OK(vd_queue_enqueue_many(q, o, 3, ids, &added, &err));
    CHECK_EQ_INT(added, 3);
    CHECK_EQ_STR(ids[1], "batch-b");
    vd_job j = {0};
    CHECK_OK(vd_queue_get(q, ids[0], &j, &err));
    CHECK_EQ_STR(j.type, "a");
    CHECK_EQ_STR(j.payload, "{\"i\": 0}");
    CHECK_EQ_INT(j.max_retries, 2);
    CHECK_EQ_INT(j.state, VD_JOB_QUEUED);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_get(q, "batch-b", &j, &err));
    CHECK_EQ_STR(j.payload, "[1]");
    CHECK_EQ_INT(j.timeout_ms, 7000);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_get(q, ids[2], &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_SCHEDULED);
    CHECK_EQ_STR(j.payload, "{}");
    vd_job_clear(&j);
    /* FIFO within the batch: the first item is reserved first */
    CHECK_OK(vd_queue_reserve(q, "w", 10000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, ids[0]);
    vd_job_clear(&j);
    CHECK_EQ_INT(total_jobs(q), 3);

    /* a taken id, a repeated id, a bad item: nothing of the batch goes in */
    vd_enqueue_opts taken[3] = {{.type = "c"}, {.type = "c", .id = "batch-b"}, {.type = "c"}};
    CHECK_EQ_INT(vd_queue_enqueue_many(q, taken, 3, ids, &added, &err), VD_ERR_STATE);
    CHECK_EQ_INT(added, 0);
    vd_enqueue_opts twice[3] = {
        {.type = "c", .id = "x1"}, {.type = "c"}, {.type = "c", .id = "x1"}};
    CHECK_EQ_INT(vd_queue_enqueue_many(q, twice, 3, ids, &added, &err), VD_ERR_STATE);
    vd_enqueue_opts bad[3] = {{.type = "c"}, {.type = "c", .payload = "{nope"}, {.type = "c"}};
    CHECK_EQ_INT(vd_queue_enqueue_many(q, bad, 3, ids, &added, &err), VD_ERR_INVALID);
    CHECK(strncmp(err.msg, "job 1: ", 7) == 0);
    CHECK_EQ_INT(total_jobs(q), 3);
    CHECK_EQ_INT(vd_queue_get(q, "x1", &j, &err), VD_ERR_NOT_FOUND);

    /* limits: none is fine, more than the queue's most is refused, the most goes in; the
     * most is VD_ENQUEUE_MANY_MAX at least (what the API may pass) */
    CHECK_OK(vd_queue_enqueue_many(q, o, 0, NULL, &added, &err));
    CHECK_EQ_INT(added, 0);
    size_t max = vd_queue_enqueue_many_max(q);
    CHECK(max >= VD_ENQUEUE_MANY_MAX);
    vd_enqueue_opts *big = calloc(max + 1, sizeof *big);
    CHECK(big != NULL);
    for (size_t i = 0; big && i <= max; i++)
        big[i].type = "n";
    CHECK_EQ_INT(vd_queue_enqueue_many(q, big, max + 1, NULL, &added, &err), VD_ERR_LIMIT);
    CHECK_OK(vd_queue_enqueue_many(q, big, max, NULL, &added, &err));
    CHECK_EQ_INT(added, (int64_t)max);
    CHECK_EQ_INT(total_jobs(q), 3 + (int64_t)max);
    free(big);
    vd_queue_close(q);
}

/* A backend without a batch write of its own (queue_impl.h enqueue_many
 * NULL, like a new backend): queue.c adds the items one at a time; the ones
 * before a failure stay and *added says how many. */
QTEST(enqueue_many_falls_back_to_single_enqueues)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    const vd_queue_ops *real = q->ops;
    vd_queue_ops plain = *real;
    plain.enqueue_many = NULL;
    q->ops = &plain;
    vd_enqueue_opts o[3] = {
        {.type = "a", .id = "f1"}, {.type = "a"}, {.type = "b", .payload = "2"}};
    char ids[3][VD_ID_LEN + 1];
    size_t added = 0;
    CHECK_OK(vd_queue_enqueue_many(q, o, 3, ids, &added, &err));
    CHECK_EQ_INT(added, 3);
    CHECK_EQ_STR(ids[0], "f1");
    vd_job j = {0};
    CHECK_OK(vd_queue_get(q, ids[2], &j, &err));
    CHECK_EQ_STR(j.payload, "2");
    vd_job_clear(&j);
    vd_enqueue_opts taken[3] = {{.type = "c"}, {.type = "c", .id = "f1"}, {.type = "c"}};
    CHECK_EQ_INT(vd_queue_enqueue_many(q, taken, 3, ids, &added, &err), VD_ERR_STATE);
    CHECK_EQ_INT(added, 1);
    CHECK_EQ_INT(total_jobs(q), 4);
    q->ops = real;
    vd_queue_close(q);
}

QTEST(reserve_takes_priority_then_fifo)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    vd_job j = {0};
    CHECK_EQ_INT(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err), VD_ERR_EMPTY);
    char ids[7][VD_ID_LEN + 1];
    int prio[7] = {0, 5, 0, 5, -3, 0, 5};
    for (int i = 0; i < 7; i++)
        CHECK_OK(add(q, "t", prio[i], ids[i], &err));
    int expect[7] = {1, 3, 6, 0, 2, 5, 4};
    for (int i = 0; i < 7; i++) {
        CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
        CHECK_EQ_STR(j.id, ids[expect[i]]);
        CHECK_EQ_INT(j.state, VD_JOB_STARTED);
        CHECK_EQ_INT(j.attempts, 1);
        CHECK_EQ_STR(j.worker, "w1");
        CHECK(j.lease_until_ms >= j.started_ms + 60000);
        vd_job_clear(&j);
    }
    CHECK_EQ_INT(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err), VD_ERR_EMPTY);
    CHECK_EQ_INT(vd_queue_reserve(q, "", 60000, NULL, 0, &j, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_queue_reserve(q, "w1", 0, NULL, 0, &j, &err), VD_ERR_INVALID);
    vd_queue_close(q);
}

QTEST(reserve_filters_by_type)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1], c[VD_ID_LEN + 1];
    CHECK_OK(add(q, "alpha", 9, a, &err));
    CHECK_OK(add(q, "beta", 0, b, &err));
    CHECK_OK(add(q, "gamma", 0, c, &err));
    vd_job j = {0};
    const char *only_z[] = {"zeta"};
    CHECK_EQ_INT(vd_queue_reserve(q, "w", 60000, only_z, 1, &j, &err), VD_ERR_EMPTY);
    const char *bg[] = {"gamma", "beta"};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, bg, 2, &j, &err));
    CHECK_EQ_STR(j.id, b); /* FIFO among the allowed types; alpha's priority does not matter */
    vd_job_clear(&j);
    CHECK_OK(vd_queue_reserve(q, "w", 60000, bg, 2, &j, &err));
    CHECK_EQ_STR(j.id, c);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_reserve(q, "w", 60000, bg, 2, &j, &err), VD_ERR_EMPTY);
    CHECK_EQ_INT(state_of(q, a), VD_JOB_QUEUED);
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, a);
    vd_job_clear(&j);
    vd_queue_close(q);
}

QTEST(delayed_job_is_scheduled_until_due)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char late[VD_ID_LEN + 1], soon[VD_ID_LEN + 1];
    int64_t t0 = vd_now_ms();
    vd_enqueue_opts o = {.type = "t", .delay_ms = 3600 * 1000};
    CHECK_OK(vd_queue_enqueue(q, &o, late, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_get(q, late, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_SCHEDULED);
    CHECK(j.run_at_ms >= t0 + 3600 * 1000);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err), VD_ERR_EMPTY);

    o.delay_ms = 30;
    CHECK_OK(vd_queue_enqueue(q, &o, soon, &err));
    CHECK_OK(reserve_wait(q, "w", 60000, &j, &err));
    CHECK_EQ_STR(j.id, soon);
    CHECK(vd_now_ms() >= t0 + 30);
    vd_job_clear(&j);
    CHECK_EQ_INT(state_of(q, late), VD_JOB_SCHEDULED);
    int64_t c[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, c, &err));
    CHECK_EQ_INT(c[VD_JOB_SCHEDULED], 1);
    CHECK_EQ_INT(c[VD_JOB_STARTED], 1);
    vd_queue_close(q);
}

QTEST(maintain_promotes_due_jobs)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .delay_ms = 5};
    CHECK_OK(vd_queue_enqueue(q, &o, id, &err));
    vd_sleep_ms(20);
    int changed = -1;
    CHECK_OK(vd_queue_maintain(q, &changed, &err));
    CHECK_EQ_INT(changed, 1);
    CHECK_EQ_INT(state_of(q, id), VD_JOB_QUEUED);
    CHECK_OK(vd_queue_maintain(q, &changed, &err));
    CHECK_EQ_INT(changed, 0);
    vd_queue_close(q);
}

QTEST(lapsed_lease_returns_job_to_queue)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .max_retries = 1};
    CHECK_OK(vd_queue_enqueue(q, &o, id, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "dead-worker", 1, NULL, 0, &j, &err));
    CHECK_EQ_INT(j.attempts, 1);
    vd_job_clear(&j);
    vd_sleep_ms(10);
    /* the next reserve reclaims the lapsed lease and hands the job out again */
    CHECK_OK(vd_queue_reserve(q, "w2", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id);
    CHECK_EQ_INT(j.attempts, 2);
    CHECK_EQ_STR(j.worker, "w2");
    vd_job_clear(&j);
    /* the dead worker's late calls are refused */
    CHECK_EQ_INT(vd_queue_heartbeat(q, id, "dead-worker", 60000, &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(vd_queue_complete(q, id, "dead-worker", NULL, &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(vd_queue_fail(q, id, "dead-worker", "x", 1, &err), VD_ERR_LEASE_LOST);
    CHECK_OK(vd_queue_complete(q, id, "w2", "{\"ok\": true}", &err));
    CHECK_EQ_INT(state_of(q, id), VD_JOB_FINISHED);
    vd_queue_close(q);
}

QTEST(lapsed_lease_without_attempts_left_fails_job)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 1, a, &err)); /* max_retries 0: one attempt */
    CHECK_OK(add(q, "t", 0, b, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "dead", 1, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, a);
    vd_job_clear(&j);
    vd_sleep_ms(10);
    /* via maintain */
    int changed = 0;
    CHECK_OK(vd_queue_maintain(q, &changed, &err));
    CHECK_EQ_INT(changed, 1);
    CHECK_OK(vd_queue_get(q, a, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_FAILED);
    CHECK(j.error && strncmp(j.error, "lease expired", 13) == 0);
    CHECK(j.ended_ms > 0);
    vd_job_clear(&j);
    /* via reserve */
    CHECK_OK(vd_queue_reserve(q, "dead", 1, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, b);
    vd_job_clear(&j);
    vd_sleep_ms(10);
    CHECK_EQ_INT(vd_queue_reserve(q, "w2", 60000, NULL, 0, &j, &err), VD_ERR_EMPTY);
    CHECK_OK(vd_queue_get(q, b, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_FAILED);
    CHECK(j.error && strncmp(j.error, "lease expired", 13) == 0);
    vd_job_clear(&j);
    int64_t c[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, c, &err));
    CHECK_EQ_INT(c[VD_JOB_FAILED], 2);
    CHECK_EQ_INT(c[VD_JOB_STARTED], 0);
    vd_queue_close(q);
}

QTEST(heartbeat_renews_lease)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 0, id, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w1", 1, NULL, 0, &j, &err));
    vd_job_clear(&j);
    int64_t t = vd_now_ms();
    CHECK_OK(vd_queue_heartbeat(q, id, "w1", 3600 * 1000, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK(j.lease_until_ms >= t + 3600 * 1000);
    vd_job_clear(&j);
    vd_sleep_ms(10);
    /* had the heartbeat not renewed it, this would reclaim the 1 ms lease */
    CHECK_EQ_INT(vd_queue_reserve(q, "w2", 60000, NULL, 0, &j, &err), VD_ERR_EMPTY);
    CHECK_EQ_INT(state_of(q, id), VD_JOB_STARTED);
    CHECK_EQ_INT(vd_queue_heartbeat(q, id, "w2", 60000, &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(vd_queue_heartbeat(q, "no-such-job", "w1", 60000, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_queue_complete(q, id, "w1", NULL, &err));
    CHECK_EQ_INT(vd_queue_heartbeat(q, id, "w1", 60000, &err), VD_ERR_LEASE_LOST);
    vd_queue_close(q);
}

QTEST(heartbeat_after_lease_taken_is_lease_lost)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .max_retries = 3};
    CHECK_OK(vd_queue_enqueue(q, &o, id, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "slow", 1, NULL, 0, &j, &err));
    vd_job_clear(&j);
    vd_sleep_ms(10);
    CHECK_OK(vd_queue_reserve(q, "fast", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_heartbeat(q, id, "slow", 60000, &err), VD_ERR_LEASE_LOST);
    CHECK_OK(vd_queue_heartbeat(q, id, "fast", 60000, &err));
    vd_queue_close(q);
}

QTEST(complete_stores_result_and_checks_worker)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 0, id, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_complete(q, id, "w2", "{}", &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(vd_queue_complete(q, id, "w1", "{broken", &err), VD_ERR_INVALID);
    CHECK_EQ_INT(state_of(q, id), VD_JOB_STARTED);
    CHECK_EQ_INT(vd_queue_complete(q, "no-such-job", "w1", NULL, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_queue_complete(q, id, "w1", "{\"labels\": [\"cat\"], \"score\": 0.5}", &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_FINISHED);
    CHECK_EQ_STR(j.result, "{\"labels\": [\"cat\"], \"score\": 0.5}");
    CHECK(j.ended_ms >= j.started_ms && j.started_ms > 0);
    vd_job_clear(&j);
    /* completing again (a retry after a lost reply) succeeds and changes nothing;
     * another worker cannot */
    CHECK_OK(vd_queue_complete(q, id, "w1", "{\"other\": 1}", &err));
    CHECK_EQ_INT(vd_queue_complete(q, id, "w2", NULL, &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(vd_queue_fail(q, id, "w1", "late", 1, &err), VD_ERR_LEASE_LOST);
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_STR(j.result, "{\"labels\": [\"cat\"], \"score\": 0.5}");
    CHECK_EQ_INT(j.state, VD_JOB_FINISHED);
    vd_job_clear(&j);
    /* a NULL result is stored as none */
    CHECK_OK(add(q, "t", 0, id, &err));
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
    vd_job_clear(&j);
    CHECK_OK(vd_queue_complete(q, id, "w1", NULL, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK(j.result == NULL);
    vd_job_clear(&j);
    vd_queue_close(q);
}

/* vd_queue_complete_reserve: the outcome is committed with (never after) the next reserve;
 * a complete that cannot be written reserves nothing. */
QTEST(complete_reserve_writes_the_outcome_with_the_next_reserve)
{
    vd_queue *q, *q2;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    CHECK_OK(vd_queue_open(url, &q2, &err)); /* another connection sees only what is committed */
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 1, a, &err));
    CHECK_OK(add(q, "t", 0, b, &err));
    vd_job j = {0}, next = {0};
    int got = -1;
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, a);
    vd_job_clear(&j);
    /* not held, or a result that is not JSON: nothing written, nothing reserved */
    CHECK_EQ_INT(vd_queue_complete_reserve(q, a, "w2", "{}", 60000, NULL, 0, &next, &got, &err),
                 VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(got, 0);
    CHECK_EQ_INT(vd_queue_complete_reserve(q, a, "w1", "{bad", 60000, NULL, 0, &next, &got, &err),
                 VD_ERR_INVALID);
    CHECK_EQ_INT(got, 0);
    CHECK_EQ_INT(state_of(q2, a), VD_JOB_STARTED);
    CHECK_EQ_INT(state_of(q2, b), VD_JOB_QUEUED);
    /* a type filter that matches nothing: a is finished, nothing reserved */
    const char *other[] = {"other"};
    CHECK_OK(
        vd_queue_complete_reserve(q, a, "w1", "{\"n\": 1}", 60000, other, 1, &next, &got, &err));
    CHECK_EQ_INT(got, 0);
    CHECK_EQ_INT(state_of(q2, a), VD_JOB_FINISHED);
    CHECK_EQ_INT(state_of(q2, b), VD_JOB_QUEUED);
    /* again (a retry): changes nothing, and this time takes b */
    CHECK_OK(vd_queue_complete_reserve(q, a, "w1", NULL, 60000, NULL, 0, &next, &got, &err));
    CHECK_EQ_INT(got, 1);
    CHECK_EQ_STR(next.id, b);
    CHECK_EQ_INT(next.attempts, 1);
    vd_job_clear(&next);
    CHECK_OK(vd_queue_get(q2, a, &j, &err));
    CHECK_EQ_STR(j.result, "{\"n\": 1}");
    vd_job_clear(&j);
    CHECK_EQ_INT(state_of(q2, b), VD_JOB_STARTED);
    vd_queue_close(q2);
    vd_queue_close(q);
}

/* A process SIGKILLed right after a complete_reserve loses nothing: the completed job
 * stays finished, and the one it reserved comes back when its lease lapses. */
QTEST(complete_reserve_then_kill_9_loses_nothing)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .priority = 1, .max_retries = 1};
    CHECK_OK(vd_queue_enqueue(q, &o, a, &err));
    o.priority = 0;
    CHECK_OK(vd_queue_enqueue(q, &o, b, &err));
    vd_queue_close(q); /* no handle crosses fork() */
    pid_t pid = fork();
    if (pid == 0) {
        vd_queue *cq;
        vd_job j = {0}, next = {0};
        int got = 0;
        if (vd_queue_open(url, &cq, &err) != VD_OK ||
            vd_queue_reserve(cq, "w1", 60000, NULL, 0, &j, &err) != VD_OK ||
            vd_queue_complete_reserve(cq, j.id, "w1", "{}", 200, NULL, 0, &next, &got, &err) !=
                VD_OK ||
            !got)
            _exit(1);
        raise(SIGKILL);
        _exit(2);
    }
    CHECK(pid > 0);
    int ws = 0;
    CHECK_EQ_INT(waitpid(pid, &ws, 0), pid);
    CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    CHECK_OK(vd_queue_open(url, &q, &err));
    CHECK_EQ_INT(state_of(q, a), VD_JOB_FINISHED);
    vd_job j = {0};
    CHECK_OK(reserve_wait(q, "w2", 60000, &j, &err)); /* b, once its 200 ms lease lapsed */
    CHECK_EQ_STR(j.id, b);
    CHECK_EQ_INT(j.attempts, 2);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_complete(q, b, "w2", NULL, &err));
    CHECK_EQ_INT(state_of(q, a), VD_JOB_FINISHED);
    vd_queue_close(q);
}

QTEST(fail_retries_with_backoff_then_dead_letters)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .max_retries = 2, .retry_base_ms = 20, .retry_max_ms = 30};
    CHECK_OK(vd_queue_enqueue(q, &o, id, &err));
    vd_job j = {0};
    /* backoff for retry n is base * 2^(n-1), capped, times [0.5, 1.0] */
    int64_t lo[2] = {10, 15}, hi[2] = {20, 30};
    for (int attempt = 1; attempt <= 2; attempt++) {
        CHECK_OK(reserve_wait(q, "w", 60000, &j, &err));
        CHECK_EQ_STR(j.id, id);
        CHECK_EQ_INT(j.attempts, attempt);
        vd_job_clear(&j);
        int64_t t0 = vd_now_ms();
        CHECK_OK(vd_queue_fail(q, id, "w", "disk on fire", 1, &err));
        int64_t t1 = vd_now_ms();
        CHECK_OK(vd_queue_get(q, id, &j, &err));
        CHECK_EQ_INT(j.state, VD_JOB_SCHEDULED);
        CHECK_EQ_STR(j.error, "disk on fire");
        printf("    retry %d scheduled %lld ms after the failure\n", attempt,
               (long long)(j.run_at_ms - t0));
        CHECK(j.run_at_ms >= t0 + lo[attempt - 1]);
        CHECK(j.run_at_ms <= t1 + hi[attempt - 1]);
        CHECK_EQ_INT(j.ended_ms, 0);
        vd_job_clear(&j);
    }
    CHECK_OK(reserve_wait(q, "w", 60000, &j, &err));
    CHECK_EQ_INT(j.attempts, 3);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_fail(q, id, "w", "still on fire", 1, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_FAILED);
    CHECK_EQ_STR(j.error, "still on fire");
    CHECK(j.ended_ms > 0);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err), VD_ERR_EMPTY);
    CHECK_EQ_INT(vd_queue_fail(q, id, "w", "again", 1, &err), VD_ERR_LEASE_LOST);
    vd_queue_close(q);
}

QTEST(non_retryable_failure_is_final)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .max_retries = 5};
    CHECK_OK(vd_queue_enqueue(q, &o, id, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_fail(q, id, "other", "x", 0, &err), VD_ERR_LEASE_LOST);
    CHECK_OK(vd_queue_fail(q, id, "w", "payload names a missing file", 0, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_FAILED);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK_EQ_STR(j.error, "payload names a missing file");
    vd_job_clear(&j);
    vd_queue_close(q);
}

QTEST(release_returns_job_to_queue_uncharged)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .priority = 4, .max_retries = 2};
    CHECK_OK(vd_queue_enqueue(q, &o, a, &err));
    CHECK_OK(vd_queue_enqueue(q, &o, b, &err));
    vd_job before = {0}, j = {0};
    CHECK_OK(vd_queue_get(q, a, &before, &err));
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, a);
    CHECK_EQ_INT(j.attempts, before.attempts + 1);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_progress(q, a, 1, 4, &err));
    CHECK_OK(vd_queue_release(q, a, "w1", "worker stopping", &err));
    CHECK_OK(vd_queue_get(q, a, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_QUEUED);
    CHECK_EQ_INT(j.attempts, before.attempts); /* the attempt is not counted */
    CHECK_EQ_INT(j.priority, 4);
    CHECK_EQ_INT(j.run_at_ms, before.run_at_ms); /* its place in line */
    CHECK_EQ_INT(j.lease_until_ms, 0);
    CHECK_EQ_INT(j.ended_ms, 0);
    CHECK_EQ_STR(j.error, "worker stopping");
    vd_job_clear(&j);
    int64_t c[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, c, &err));
    CHECK_EQ_INT(c[VD_JOB_QUEUED], 2);
    CHECK_EQ_INT(c[VD_JOB_STARTED], 0);
    /* the releasing worker holds it no more */
    CHECK_EQ_INT(vd_queue_release(q, a, "w1", "again", &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(vd_queue_heartbeat(q, a, "w1", 60000, &err), VD_ERR_LEASE_LOST);
    /* another worker takes it next: still ahead of b, enqueued after it */
    CHECK_OK(vd_queue_reserve(q, "w2", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, a);
    CHECK_EQ_INT(j.attempts, before.attempts + 1);
    CHECK_EQ_STR(j.worker, "w2");
    CHECK_EQ_INT(j.progress_done, 0);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_complete(q, a, "w1", NULL, &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(vd_queue_fail(q, a, "w1", "x", 1, &err), VD_ERR_LEASE_LOST);
    CHECK_OK(vd_queue_complete(q, a, "w2", "{}", &err));
    CHECK_EQ_INT(state_of(q, a), VD_JOB_FINISHED);
    CHECK_EQ_INT(vd_queue_release(q, a, "w2", "late", &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(state_of(q, a), VD_JOB_FINISHED);
    /* a queued job nobody holds, unknown ids, bad arguments */
    CHECK_EQ_INT(vd_queue_release(q, b, "w1", "x", &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(vd_queue_release(q, "no-such-job", "w1", "x", &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(vd_queue_release(q, b, "", "x", &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_queue_release(q, NULL, "w1", "x", &err), VD_ERR_INVALID);
    vd_job_clear(&before);

    /* a retried job: release takes back only the current attempt */
    char r[VD_ID_LEN + 1];
    vd_enqueue_opts ro = {.type = "r", .max_retries = 1, .retry_base_ms = 1, .retry_max_ms = 2};
    CHECK_OK(vd_queue_enqueue(q, &ro, r, &err));
    const char *only_r[] = {"r"};
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, only_r, 1, &j, &err));
    vd_job_clear(&j);
    CHECK_OK(vd_queue_fail(q, r, "w1", "first", 1, &err));
    int64_t end = vd_mono_ms() + 30000;
    vd_status st;
    while ((st = vd_queue_reserve(q, "w1", 60000, only_r, 1, &j, &err)) == VD_ERR_EMPTY &&
           vd_mono_ms() < end)
        vd_sleep_ms(2);
    CHECK_OK(st);
    CHECK_EQ_INT(j.attempts, 2);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_release(q, r, "w1", NULL, &err));
    CHECK_OK(vd_queue_get(q, r, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_QUEUED);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK_EQ_STR(j.error, "released"); /* the default reason */
    vd_job_clear(&j);
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, only_r, 1, &j, &err));
    CHECK_EQ_INT(j.attempts, 2);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_fail(q, r, "w1", "second", 1, &err)); /* the last attempt */
    CHECK_EQ_INT(state_of(q, r), VD_JOB_FAILED);
    vd_queue_close(q);
}

QTEST(release_by_another_worker_is_refused)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 0, id, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_release(q, id, "w2", "not mine", &err), VD_ERR_LEASE_LOST);
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_STARTED);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK_EQ_STR(j.worker, "w1");
    CHECK(j.lease_until_ms > 0);
    CHECK(j.error == NULL);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_heartbeat(q, id, "w1", 60000, &err)); /* w1 still holds it */
    CHECK_OK(vd_queue_release(q, id, "w1", "mine", &err));
    CHECK_EQ_INT(state_of(q, id), VD_JOB_QUEUED);
    vd_queue_close(q);
}

QTEST(release_of_a_canceled_job_is_canceled)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .max_retries = 3};
    CHECK_OK(vd_queue_enqueue(q, &o, id, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    vd_job_clear(&j);
    CHECK_OK(vd_queue_cancel(q, id, &err));
    CHECK_EQ_INT(vd_queue_release(q, id, "w", "stopping", &err), VD_ERR_CANCELED);
    CHECK_EQ_INT(vd_queue_release(q, id, "intruder", "stopping", &err), VD_ERR_LEASE_LOST);
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_CANCELED); /* the cancel stands */
    CHECK_EQ_INT(j.attempts, 1);
    CHECK(j.error == NULL);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err), VD_ERR_EMPTY);
    vd_queue_close(q);
}

QTEST(released_job_without_retries_still_finishes)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1], other[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 1, id, &err)); /* max_retries 0: one attempt */
    CHECK_OK(add(q, "t", 0, other, &err));
    vd_job j = {0};
    for (int round = 0; round < 3; round++) { /* released any number of times */
        CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
        CHECK_EQ_STR(j.id, id);
        CHECK_EQ_INT(j.attempts, 1);
        vd_job_clear(&j);
        CHECK_OK(vd_queue_release(q, id, "w1", "worker shut down", &err));
        CHECK_OK(vd_queue_get(q, id, &j, &err));
        CHECK_EQ_INT(j.state, VD_JOB_QUEUED);
        CHECK_EQ_INT(j.attempts, 0);
        vd_job_clear(&j);
    }
    /* a release that arrives after the lease lapsed, before anyone reclaimed
     * it, is accepted like fail and complete: nobody else holds the job */
    CHECK_OK(vd_queue_reserve(q, "w1", 1, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id);
    vd_job_clear(&j);
    vd_sleep_ms(10);
    CHECK_OK(vd_queue_release(q, id, "w1", "worker shut down", &err));
    CHECK_EQ_INT(state_of(q, id), VD_JOB_QUEUED);
    CHECK_OK(vd_queue_reserve(q, "w2", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id);
    CHECK_EQ_INT(j.attempts, 1);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_complete(q, id, "w2", "{\"done\": true}", &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_FINISHED);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK_EQ_STR(j.result, "{\"done\": true}");
    vd_job_clear(&j);
    /* whereas a retryable fail of its only attempt ends it in failed */
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, other);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_fail(q, other, "w1", "worker shut down", 1, &err));
    CHECK_EQ_INT(state_of(q, other), VD_JOB_FAILED);
    vd_queue_close(q);
}

QTEST(requeue_revives_failed_and_canceled)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1], other[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 0, id, &err));
    CHECK_OK(add(q, "t", 0, other, &err));
    CHECK_EQ_INT(vd_queue_requeue(q, id, &err), VD_ERR_STATE); /* queued */
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_requeue(q, id, &err), VD_ERR_STATE); /* started */
    CHECK_OK(vd_queue_fail(q, id, "w", "boom", 0, &err));
    CHECK_OK(vd_queue_requeue(q, id, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_QUEUED);
    CHECK_EQ_INT(j.attempts, 0);
    CHECK_EQ_INT(j.ended_ms, 0);
    vd_job_clear(&j);
    /* requeued jobs go behind those already waiting at their priority */
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, other);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    CHECK_EQ_STR(j.id, id);
    CHECK_EQ_INT(j.attempts, 1);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_complete(q, id, "w", NULL, &err));
    CHECK_EQ_INT(vd_queue_requeue(q, id, &err), VD_ERR_STATE); /* finished */
    CHECK_OK(vd_queue_cancel(q, other, &err));
    CHECK_OK(vd_queue_requeue(q, other, &err));
    CHECK_EQ_INT(state_of(q, other), VD_JOB_QUEUED);
    CHECK_EQ_INT(vd_queue_requeue(q, "no-such-job", &err), VD_ERR_NOT_FOUND);
    vd_queue_close(q);
}

QTEST(cancel_queued_and_scheduled)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 0, a, &err));
    vd_enqueue_opts o = {.type = "t", .delay_ms = 3600 * 1000};
    CHECK_OK(vd_queue_enqueue(q, &o, b, &err));
    CHECK_OK(vd_queue_cancel(q, a, &err));
    CHECK_OK(vd_queue_cancel(q, b, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_get(q, a, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_CANCELED);
    CHECK_EQ_INT(j.cancel_requested, 0);
    CHECK(j.ended_ms > 0);
    vd_job_clear(&j);
    CHECK_EQ_INT(state_of(q, b), VD_JOB_CANCELED);
    CHECK_EQ_INT(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err), VD_ERR_EMPTY);
    CHECK_EQ_INT(vd_queue_cancel(q, a, &err), VD_ERR_STATE);
    CHECK_EQ_INT(vd_queue_cancel(q, "no-such-job", &err), VD_ERR_NOT_FOUND);
    vd_queue_close(q);
}

QTEST(cancel_started_reaches_worker_on_heartbeat)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .max_retries = 3};
    CHECK_OK(vd_queue_enqueue(q, &o, id, &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    vd_job_clear(&j);
    CHECK_OK(vd_queue_cancel(q, id, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_CANCELED);
    CHECK_EQ_INT(j.cancel_requested, 1);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_heartbeat(q, id, "w", 60000, &err), VD_ERR_CANCELED);
    CHECK_EQ_INT(vd_queue_heartbeat(q, id, "intruder", 60000, &err), VD_ERR_LEASE_LOST);
    CHECK_EQ_INT(vd_queue_complete(q, id, "w", "{}", &err), VD_ERR_CANCELED);
    CHECK_EQ_INT(vd_queue_fail(q, id, "w", "stopped", 1, &err), VD_ERR_CANCELED);
    CHECK_EQ_INT(vd_queue_progress(q, id, 1, 2, &err), VD_ERR_STATE);
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.state, VD_JOB_CANCELED);
    CHECK(j.result == NULL);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_cancel(q, id, &err), VD_ERR_STATE);
    vd_queue_close(q);
}

QTEST(progress_is_recorded_while_started)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 0, id, &err));
    CHECK_EQ_INT(vd_queue_progress(q, id, 1, 10, &err), VD_ERR_STATE);
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
    CHECK_EQ_INT(j.progress_done, 0);
    vd_job_clear(&j);
    CHECK_OK(vd_queue_progress(q, id, 3, 10, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.progress_done, 3);
    CHECK_EQ_INT(j.progress_total, 10);
    vd_job_clear(&j);
    CHECK_EQ_INT(vd_queue_progress(q, id, -1, 10, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_queue_progress(q, "no-such-job", 1, 1, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_queue_progress(q, id, 10, 10, &err));
    CHECK_OK(vd_queue_complete(q, id, "w", NULL, &err));
    CHECK_OK(vd_queue_get(q, id, &j, &err));
    CHECK_EQ_INT(j.progress_done, 10); /* kept after the end */
    vd_job_clear(&j);
    vd_queue_close(q);
}

QTEST(counts_by_state)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char ids[6][VD_ID_LEN + 1];
    for (int i = 0; i < 6; i++)
        CHECK_OK(add(q, "t", 10 - i, ids[i], &err));
    vd_enqueue_opts o = {.type = "t", .delay_ms = 3600 * 1000};
    CHECK_OK(vd_queue_enqueue(q, &o, NULL, &err));
    vd_job j = {0};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
        CHECK_EQ_STR(j.id, ids[i]);
        vd_job_clear(&j);
    }
    CHECK_OK(vd_queue_complete(q, ids[0], "w", NULL, &err));
    CHECK_OK(vd_queue_fail(q, ids[1], "w", "x", 0, &err));
    CHECK_OK(vd_queue_cancel(q, ids[2], &err));
    int64_t c[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, c, &err));
    CHECK_EQ_INT(c[VD_JOB_QUEUED], 2);
    CHECK_EQ_INT(c[VD_JOB_SCHEDULED], 1);
    CHECK_EQ_INT(c[VD_JOB_STARTED], 1);
    CHECK_EQ_INT(c[VD_JOB_FINISHED], 1);
    CHECK_EQ_INT(c[VD_JOB_FAILED], 1);
    CHECK_EQ_INT(c[VD_JOB_CANCELED], 1);
    vd_queue_close(q);
}

QTEST(list_filters_and_pages_newest_first)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char ids[5][VD_ID_LEN + 1];
    const char *types[5] = {"a", "b", "a", "b", "a"};
    for (int i = 0; i < 5; i++)
        CHECK_OK(add(q, types[i], 0, ids[i], &err));
    vd_job j = {0};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err)); /* ids[0] */
    vd_job_clear(&j);
    vd_job *jobs;
    size_t n;
    CHECK_OK(vd_queue_list(q, NULL, &jobs, &n, &err));
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_STR(jobs[i].id, ids[4 - i]);
    CHECK_EQ_STR(jobs[0].payload, "{}");
    vd_job_list_free(jobs, n);

    vd_list_opts lo = {.state = VD_JOB_QUEUED};
    CHECK_OK(vd_queue_list(q, &lo, &jobs, &n, &err));
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_STR(jobs[3].id, ids[1]);
    vd_job_list_free(jobs, n);

    lo = (vd_list_opts){.state = VD_JOB_STARTED};
    CHECK_OK(vd_queue_list(q, &lo, &jobs, &n, &err));
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_STR(jobs[0].id, ids[0]);
    vd_job_list_free(jobs, n);

    lo = (vd_list_opts){.state = -1, .type = "a", .limit = 2, .offset = 1};
    CHECK_OK(vd_queue_list(q, &lo, &jobs, &n, &err));
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_STR(jobs[0].id, ids[2]);
    CHECK_EQ_STR(jobs[1].id, ids[0]);
    vd_job_list_free(jobs, n);

    lo = (vd_list_opts){.state = VD_JOB_FAILED};
    CHECK_OK(vd_queue_list(q, &lo, &jobs, &n, &err));
    CHECK_EQ_INT(n, 0);
    vd_job_list_free(jobs, n);

    lo = (vd_list_opts){.state = -1, .offset = 10};
    CHECK_OK(vd_queue_list(q, &lo, &jobs, &n, &err));
    CHECK_EQ_INT(n, 0);
    vd_job_list_free(jobs, n);
    vd_queue_close(q);
}

QTEST(maintain_deletes_finished_past_ttl)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char brief[VD_ID_LEN + 1], kept[VD_ID_LEN + 1], forever[VD_ID_LEN + 1], failed[VD_ID_LEN + 1];
    vd_enqueue_opts o = {.type = "t", .result_ttl_ms = 1};
    CHECK_OK(vd_queue_enqueue(q, &o, brief, &err));
    CHECK_OK(vd_queue_enqueue(q, &o, failed, &err));
    o.result_ttl_ms = 0; /* 7 days */
    CHECK_OK(vd_queue_enqueue(q, &o, kept, &err));
    o.result_ttl_ms = -1;
    CHECK_OK(vd_queue_enqueue(q, &o, forever, &err));
    vd_job j = {0};
    for (int i = 0; i < 4; i++) {
        CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
        if (strcmp(j.id, failed) == 0)
            CHECK_OK(vd_queue_fail(q, j.id, "w", "x", 0, &err));
        else
            CHECK_OK(vd_queue_complete(q, j.id, "w", "{}", &err));
        vd_job_clear(&j);
    }
    vd_sleep_ms(10);
    int changed = 0;
    CHECK_OK(vd_queue_maintain(q, &changed, &err));
    CHECK_EQ_INT(changed, 1);
    CHECK_EQ_INT(vd_queue_get(q, brief, &j, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(state_of(q, kept), VD_JOB_FINISHED);
    CHECK_EQ_INT(state_of(q, forever), VD_JOB_FINISHED);
    CHECK_EQ_INT(state_of(q, failed), VD_JOB_FAILED); /* the dead letter is kept */
    vd_queue_close(q);
}

QTEST(purge_deletes_ended_jobs)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char ids[4][VD_ID_LEN + 1];
    for (int i = 0; i < 4; i++)
        CHECK_OK(add(q, "t", 10 - i, ids[i], &err));
    vd_job j = {0};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &j, &err));
        vd_job_clear(&j);
    }
    CHECK_OK(vd_queue_complete(q, ids[0], "w", NULL, &err));
    CHECK_OK(vd_queue_fail(q, ids[1], "w", "x", 0, &err));
    CHECK_OK(vd_queue_cancel(q, ids[3], &err));
    int64_t deleted = -1;
    CHECK_EQ_INT(vd_queue_purge(q, VD_JOB_QUEUED, vd_now_ms() + 1, &deleted, &err), VD_ERR_INVALID);
    CHECK_OK(vd_queue_purge(q, -1, 0, &deleted, &err)); /* nothing ended before 1970 */
    CHECK_EQ_INT(deleted, 0);
    CHECK_OK(vd_queue_purge(q, VD_JOB_FINISHED, vd_now_ms() + 1, &deleted, &err));
    CHECK_EQ_INT(deleted, 1);
    CHECK_EQ_INT(vd_queue_get(q, ids[0], &j, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(state_of(q, ids[1]), VD_JOB_FAILED);
    CHECK_OK(vd_queue_purge(q, -1, vd_now_ms() + 1, &deleted, &err));
    CHECK_EQ_INT(deleted, 2);
    CHECK_EQ_INT(state_of(q, ids[2]), VD_JOB_STARTED);
    int64_t c[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, c, &err));
    CHECK_EQ_INT(c[VD_JOB_STARTED], 1);
    CHECK_EQ_INT(c[VD_JOB_FINISHED] + c[VD_JOB_FAILED] + c[VD_JOB_CANCELED], 0);
    vd_queue_close(q);
}

/* 4 processes drain one queue; each job must be handed out exactly once. */
#define MP_JOBS    2000
#define MP_WORKERS 4

static void mp_worker(const char *url, int w, const char *log_path)
{
    vd_queue *q;
    vd_error err;
    if (vd_queue_open(url, &q, &err) != VD_OK) {
        fprintf(stderr, "worker %d: open: %s\n", w, err.msg);
        _exit(2);
    }
    FILE *f = fopen(log_path, "w");
    if (!f) _exit(3);
    char wid[32];
    snprintf(wid, sizeof wid, "mp-%d-%d", w, (int)getpid());
    for (;;) {
        vd_job j = {0};
        vd_status st = vd_queue_reserve(q, wid, 600000, NULL, 0, &j, &err);
        if (st == VD_ERR_EMPTY) break;
        if (st != VD_OK) {
            fprintf(stderr, "worker %d: reserve: %s\n", w, err.msg);
            _exit(4);
        }
        fprintf(f, "%s %d\n", j.id, j.attempts);
        char result[64];
        snprintf(result, sizeof result, "{\"by\": %d}", w);
        st = vd_queue_complete(q, j.id, wid, result, &err);
        vd_job_clear(&j);
        if (st != VD_OK) {
            fprintf(stderr, "worker %d: complete: %s\n", w, err.msg);
            _exit(5);
        }
    }
    fclose(f);
    vd_queue_close(q);
    _exit(0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

QTEST(many_processes_never_share_a_job)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    int64_t t0 = vd_mono_ms();
    for (int i = 0; i < MP_JOBS; i++) {
        vd_enqueue_opts o = {.type = "t", .priority = i % 3};
        CHECK_OK(vd_queue_enqueue(q, &o, NULL, &err));
    }
    int64_t t1 = vd_mono_ms();
    vd_queue_close(q); /* no handle crosses fork() */
    char logs[MP_WORKERS][600];
    pid_t pids[MP_WORKERS];
    const char *dir = vd_test_tmpdir();
    for (int w = 0; w < MP_WORKERS; w++) {
        snprintf(logs[w], sizeof logs[w], "%s/worker%d.log", dir, w);
        fflush(NULL);
        pids[w] = fork();
        CHECK(pids[w] >= 0);
        if (pids[w] == 0) mp_worker(url, w, logs[w]);
    }
    int all_ok = 1;
    for (int w = 0; w < MP_WORKERS; w++) {
        int status;
        waitpid(pids[w], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) all_ok = 0;
    }
    int64_t t2 = vd_mono_ms();
    CHECK(all_ok);
    printf("    enqueue %d jobs: %lld ms; %d workers drained them in %lld ms\n", MP_JOBS,
           (long long)(t1 - t0), MP_WORKERS, (long long)(t2 - t1));

    char **seen = malloc(sizeof(char *) * (MP_JOBS + 16));
    CHECK(seen != NULL);
    size_t nseen = 0;
    int per_worker[MP_WORKERS] = {0}, overflow = 0, bad_attempts = 0;
    for (int w = 0; w < MP_WORKERS; w++) {
        FILE *f = fopen(logs[w], "r");
        if (!f) continue;
        char id[64];
        int attempts;
        while (fscanf(f, "%63s %d", id, &attempts) == 2) {
            if (attempts != 1) bad_attempts++;
            if (nseen < MP_JOBS + 16)
                seen[nseen++] = vd_strdup(id);
            else
                overflow++;
            per_worker[w]++;
        }
        fclose(f);
    }
    qsort(seen, nseen, sizeof *seen, cmp_str);
    int dups = 0;
    for (size_t i = 1; i < nseen; i++)
        if (strcmp(seen[i - 1], seen[i]) == 0) dups++;
    for (size_t i = 0; i < nseen; i++)
        free(seen[i]);
    free(seen);
    printf("    per worker: %d %d %d %d\n", per_worker[0], per_worker[1], per_worker[2],
           per_worker[3]);
    CHECK_EQ_INT(dups, 0);
    CHECK_EQ_INT(overflow, 0);
    CHECK_EQ_INT(bad_attempts, 0);
    CHECK_EQ_INT(nseen, MP_JOBS);
    CHECK_OK(vd_queue_open(url, &q, &err));
    int64_t c[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, c, &err));
    CHECK_EQ_INT(c[VD_JOB_FINISHED], MP_JOBS);
    CHECK_EQ_INT(c[VD_JOB_QUEUED] + c[VD_JOB_STARTED], 0);
    vd_queue_close(q);
}

/* Workers are killed with SIGKILL at random moments while they hold jobs and
 * replaced; the lapsed leases bring their jobs back. Nothing may be lost or
 * left started, and each job's one accepted completion is its last holder's. */
#define KILL_JOBS   300
#define KILL_ROUNDS 6

static void kill_worker(const char *url, int w)
{
    vd_queue *q;
    vd_error err;
    if (vd_queue_open(url, &q, &err) != VD_OK) _exit(2);
    char wid[48];
    snprintf(wid, sizeof wid, "kw-%d-%d", w, (int)getpid());
    for (;;) {
        vd_job j = {0};
        vd_status st = vd_queue_reserve(q, wid, 300, NULL, 0, &j, &err);
        if (st == VD_ERR_EMPTY) {
            int64_t c[VD_JOB__NSTATES];
            if (vd_queue_counts(q, c, &err) != VD_OK) _exit(3);
            if (c[VD_JOB_QUEUED] + c[VD_JOB_SCHEDULED] + c[VD_JOB_STARTED] == 0) break;
            vd_sleep_ms(20); /* others' jobs are still running or leases still lapsing */
            continue;
        }
        if (st != VD_OK) _exit(4);
        vd_sleep_ms(1 + (int64_t)(vd_random_unit() * 3)); /* the "work" */
        st = vd_queue_heartbeat(q, j.id, wid, 300, &err);
        char result[96];
        snprintf(result, sizeof result, "{\"by\": \"%s\"}", wid);
        if (st == VD_OK) st = vd_queue_complete(q, j.id, wid, result, &err);
        vd_job_clear(&j);
        if (st != VD_OK && st != VD_ERR_LEASE_LOST) _exit(5);
    }
    vd_queue_close(q);
    _exit(0);
}

QTEST(killed_workers_lose_no_job)
{
    vd_queue *q;
    vd_error err;
    CHECK_OK(vd_queue_open(url, &q, &err));
    for (int i = 0; i < KILL_JOBS; i++) {
        vd_enqueue_opts o = {.type = "t", .max_retries = KILL_ROUNDS + 2};
        CHECK_OK(vd_queue_enqueue(q, &o, NULL, &err));
    }
    vd_queue_close(q);
    pid_t pids[MP_WORKERS];
    for (int w = 0; w < MP_WORKERS; w++) {
        fflush(NULL);
        pids[w] = fork();
        CHECK(pids[w] >= 0);
        if (pids[w] == 0) kill_worker(url, w);
    }
    int kills = 0, bad_exit = 0;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        vd_sleep_ms(20 + (int64_t)(vd_random_unit() * 60));
        int w = (int)(vd_random_unit() * MP_WORKERS);
        if (kill(pids[w], SIGKILL) == 0) kills++;
        int status;
        waitpid(pids[w], &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) != 0) bad_exit++;
        fflush(NULL);
        pids[w] = fork();
        CHECK(pids[w] >= 0);
        if (pids[w] == 0) kill_worker(url, MP_WORKERS + round);
    }
    for (int w = 0; w < MP_WORKERS; w++) {
        int status;
        waitpid(pids[w], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) bad_exit++;
    }
    CHECK_EQ_INT(bad_exit, 0);
    CHECK_OK(vd_queue_open(url, &q, &err));
    vd_list_opts lo = {.state = -1, .limit = KILL_JOBS + 10};
    vd_job *jobs;
    size_t n;
    CHECK_OK(vd_queue_list(q, &lo, &jobs, &n, &err));
    vd_queue_close(q);
    int not_finished = 0, wrong_holder = 0, redelivered = 0;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i].state != VD_JOB_FINISHED) not_finished++;
        char want[160];
        snprintf(want, sizeof want, "{\"by\": \"%s\"}", jobs[i].worker);
        if (!jobs[i].result || strcmp(jobs[i].result, want) != 0) wrong_holder++;
        if (jobs[i].attempts > 1) redelivered++;
    }
    vd_job_list_free(jobs, n);
    printf("    %d kills; %d jobs delivered more than once\n", kills, redelivered);
    CHECK_EQ_INT(n, KILL_JOBS);
    CHECK_EQ_INT(not_finished, 0);
    CHECK_EQ_INT(wrong_holder, 0);
}

/* ---- SQLite only ------------------------------------------------------- */

VD_TEST(sqlite_creates_parent_dirs_and_reports_bad_files)
{
    vd_error err;
    vd_queue *q;
    char dir[400], url[512];
    snprintf(dir, sizeof dir, "%s", vd_test_tmpdir());
    snprintf(url, sizeof url, "sqlite:%s/a/b/c/q.db", dir);
    CHECK_OK(vd_queue_open(url, &q, &err));
    CHECK_EQ_STR(vd_queue_backend(q), "sqlite");
    vd_queue_close(q);
    /* a bare path works too, and reopening keeps the data */
    snprintf(url, sizeof url, "%s/a/b/c/q.db", dir);
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(add(q, "t", 0, id, &err));
    vd_queue_close(q);
    CHECK_OK(vd_queue_open(url, &q, &err));
    CHECK_EQ_INT(state_of(q, id), VD_JOB_QUEUED);
    vd_queue_close(q);

    /* a file that is not a database */
    char path[512];
    snprintf(path, sizeof path, "%s/garbage.db", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    for (int i = 0; i < 512; i++)
        fputs("this is not a database ", f);
    fclose(f);
    CHECK_EQ_INT(vd_queue_open(path, &q, &err), VD_ERR_DB);
    printf("    garbage: %s\n", err.msg);
    CHECK(strstr(err.msg, "not a usable queue database") != NULL);
    CHECK(q == NULL);

    /* a SQLite database of something else with a jobs table */
    snprintf(path, sizeof path, "%s/other.db", dir);
    sqlite3 *db;
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db, "CREATE TABLE jobs (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ_INT(vd_queue_open(path, &q, &err), VD_ERR_DB);
    printf("    foreign: %s\n", err.msg);

    /* a newer schema */
    snprintf(path, sizeof path, "%s/newer.db", dir);
    CHECK_OK(vd_queue_open(path, &q, &err));
    vd_queue_close(q);
    CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ_INT(vd_queue_open(path, &q, &err), VD_ERR_DB);
    CHECK(strstr(err.msg, "newer") != NULL);

    /* a directory where the file should be, and a parent that is a file */
    CHECK(vd_queue_open(dir, &q, &err) != VD_OK);
    printf("    directory: %s\n", err.msg);
    snprintf(url, sizeof url, "%s/garbage.db/sub/q.db", dir);
    CHECK_EQ_INT(vd_queue_open(url, &q, &err), VD_ERR_IO);
    printf("    file as parent: %s\n", err.msg);
    CHECK_EQ_INT(vd_queue_open("sqlite::memory:", &q, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_queue_open("", &q, &err), VD_ERR_INVALID);
    snprintf(url, sizeof url, "sqlite:%s/q2.db?sync=sometimes", dir);
    CHECK_EQ_INT(vd_queue_open(url, &q, &err), VD_ERR_INVALID);
    snprintf(url, sizeof url, "sqlite:%s/q2.db?sync=normal", dir);
    CHECK_OK(vd_queue_open(url, &q, &err));
    vd_queue_close(q);
}

VD_TEST(sqlite_unreadable_file_is_an_error)
{
    if (geteuid() == 0) {
        vd_test_skip("running as root: permissions are not enforced");
        return;
    }
    vd_error err;
    vd_queue *q;
    char path[512];
    snprintf(path, sizeof path, "%s/locked.db", vd_test_tmpdir());
    CHECK_OK(vd_queue_open(path, &q, &err));
    vd_queue_close(q);
    CHECK_EQ_INT(chmod(path, 0), 0);
    vd_status st = vd_queue_open(path, &q, &err);
    chmod(path, 0600);
    CHECK(st == VD_ERR_IO || st == VD_ERR_DB);
    printf("    unreadable: %s\n", err.msg);
}

/* A process that enqueues, reserves and completes in a loop is killed with
 * SIGKILL at an arbitrary moment; the database must be intact and every
 * enqueue and completion it acknowledged (reported through a pipe after the
 * call returned) must be there. */
VD_TEST(sqlite_survives_kill9_mid_write)
{
    char path[512];
    snprintf(path, sizeof path, "%s/kill.db", vd_test_tmpdir());
    for (int round = 0; round < 3; round++) {
        int fds[2];
        CHECK_EQ_INT(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            vd_queue *q;
            vd_error err;
            if (vd_queue_open(path, &q, &err) != VD_OK) _exit(2);
            for (;;) {
                char id[VD_ID_LEN + 1], line[VD_ID_LEN + 4];
                vd_enqueue_opts o = {.type = "t", .payload = "{\"big\": \"xxxxxxxxxxxxxxxx\"}"};
                if (vd_queue_enqueue(q, &o, id, &err) != VD_OK) _exit(3);
                snprintf(line, sizeof line, "E%s\n", id);
                if (write(fds[1], line, strlen(line)) < 0) _exit(4);
                vd_job j = {0};
                if (vd_queue_reserve(q, "k", 600000, NULL, 0, &j, &err) != VD_OK) _exit(5);
                if (vd_queue_complete(q, j.id, "k", "{}", &err) != VD_OK) _exit(6);
                snprintf(line, sizeof line, "C%s\n", j.id);
                vd_job_clear(&j);
                if (write(fds[1], line, strlen(line)) < 0) _exit(4);
            }
        }
        close(fds[1]);
        /* wait for some acknowledged work, then kill without warning */
        FILE *in = fdopen(fds[0], "r");
        CHECK(in != NULL);
        char line[VD_ID_LEN + 8];
        int got = 0, want = 20 + round * 37;
        char(*acked)[VD_ID_LEN + 2] = malloc(sizeof *acked * 100000);
        CHECK(acked != NULL);
        while (got < want && fgets(line, sizeof line, in))
            snprintf(acked[got++], VD_ID_LEN + 2, "%.*s", VD_ID_LEN + 1, line);
        kill(pid, SIGKILL);
        while (got < 100000 && fgets(line, sizeof line, in))
            snprintf(acked[got++], VD_ID_LEN + 2, "%.*s", VD_ID_LEN + 1, line);
        fclose(in);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        sqlite3 *db;
        CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
        sqlite3_stmt *s;
        CHECK_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
        CHECK_EQ_INT(sqlite3_step(s), SQLITE_ROW);
        CHECK_EQ_STR((const char *)sqlite3_column_text(s, 0), "ok");
        sqlite3_finalize(s);
        sqlite3_close(db);

        vd_queue *q;
        vd_error err;
        CHECK_OK(vd_queue_open(path, &q, &err));
        int missing = 0;
        for (int i = 0; i < got; i++) {
            vd_job_state st = state_of(q, acked[i] + 1);
            if ((int)st < 0 || (acked[i][0] == 'C' && st != VD_JOB_FINISHED)) missing++;
        }
        int64_t c[VD_JOB__NSTATES];
        CHECK_OK(vd_queue_counts(q, c, &err));
        printf("    round %d: %d acknowledged writes checked, queue holds %lld finished, %lld "
               "started, %lld queued\n",
               round, got, (long long)c[VD_JOB_FINISHED], (long long)c[VD_JOB_STARTED],
               (long long)c[VD_JOB_QUEUED]);
        vd_queue_close(q);
        free(acked);
        CHECK_EQ_INT(missing, 0);
    }
}

int main(void)
{
    return vd_test_run_all();
}
