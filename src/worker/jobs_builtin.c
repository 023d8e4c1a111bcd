/* jobs_builtin.c: the built-in job types (noop, sleep, fail, crash, progress,
 * count, alloc) used by tests, fault drills and benchmarks. See registry.h. */
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"
#include "worker/registry.h"

/* Reads an optional non-negative integer field; VD_ERR_INVALID when present but not one. */
static vd_status get_count(json_t *obj, const char *key, int64_t dflt, int64_t max, int64_t *out,
                           vd_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return VD_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return vd_error_set(err, VD_ERR_INVALID, "payload field '%s' must be an integer 0..%lld",
                            key, (long long)max);
    *out = json_integer_value(v);
    return VD_OK;
}

static vd_status job_noop(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    (void)ctx;
    (void)payload;
    (void)result;
    (void)err;
    return VD_OK;
}

/* Sleeps ms in short slices, asking should_stop between them. */
static int sleep_checked(vd_job_ctx *ctx, int64_t ms)
{
    int64_t end = vd_mono_ms() + ms;
    for (;;) {
        if (vd_job_ctx_should_stop(ctx)) return 0;
        int64_t left = end - vd_mono_ms();
        if (left <= 0) return 1;
        vd_sleep_ms(left < 20 ? left : 20);
    }
}

static vd_status job_sleep(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    json_t *p;
    int64_t ms = 0;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    st = get_count(p, "ms", -1, 86400000, &ms, err);
    json_decref(p);
    if (st != VD_OK) return st;
    if (ms < 0) return vd_error_set(err, VD_ERR_INVALID, "sleep needs {\"ms\": N}");
    int64_t t0 = vd_mono_ms();
    if (!sleep_checked(ctx, ms))
        return vd_error_set(err, VD_ERR_CANCELED, "stopped after %lld ms of %lld",
                            (long long)(vd_mono_ms() - t0), (long long)ms);
    char buf[64];
    snprintf(buf, sizeof buf, "{\"slept_ms\": %lld}", (long long)ms);
    *result = vd_strdup(buf);
    return *result ? VD_OK : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
}

static vd_status job_fail(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    (void)result;
    json_t *p;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    json_t *m = json_object_get(p, "message"), *r = json_object_get(p, "retryable");
    if ((m && !json_is_string(m)) || (r && !json_is_boolean(r))) {
        json_decref(p);
        return vd_error_set(err, VD_ERR_INVALID,
                            "fail takes {\"message\": string, \"retryable\": bool}");
    }
    vd_job_ctx_set_retryable(ctx, r ? json_is_true(r) : 1);
    vd_error_set(err, VD_ERR_INTERNAL, "%s", m ? json_string_value(m) : "failed on purpose");
    json_decref(p);
    return VD_ERR_INTERNAL;
}

static vd_status job_crash(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    (void)ctx;
    (void)result;
    json_t *p;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    json_t *x = json_object_get(p, "exit");
    if (x && json_is_integer(x)) {
        int code = (int)json_integer_value(x);
        json_decref(p);
        _exit(code); /* an exit without a word to the supervisor */
    }
    json_t *s = json_object_get(p, "signal");
    char sig[16] = "SEGV";
    int bad = s && !json_is_string(s);
    if (s && !bad) vd_strlcpy(sig, json_string_value(s), sizeof sig);
    json_decref(p);
    if (bad)
        return vd_error_set(err, VD_ERR_INVALID, "crash takes {\"signal\": \"SEGV|KILL|ABRT\"}");
    if (strcmp(sig, "SEGV") == 0) {
        /* A real invalid memory access. The default action is restored first
         * so that a sanitizer's SEGV handler does not turn it into an exit. */
        signal(SIGSEGV, SIG_DFL);
        volatile int *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED) page = NULL;
        page[1] = 42;
        raise(SIGSEGV); /* not reached */
    } else if (strcmp(sig, "ABRT") == 0) {
        signal(SIGABRT, SIG_DFL);
        abort();
    } else if (strcmp(sig, "KILL") == 0) {
        raise(SIGKILL);
    }
    return vd_error_set(err, VD_ERR_INVALID, "crash: unknown signal '%s' (SEGV, KILL, ABRT)", sig);
}

static vd_status job_progress(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    json_t *p;
    int64_t steps = 0, ms = 0;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    if ((st = get_count(p, "steps", 5, 1000000, &steps, err)) != VD_OK ||
        (st = get_count(p, "ms", 10, 3600000, &ms, err)) != VD_OK) {
        json_decref(p);
        return st;
    }
    json_decref(p);
    vd_job_ctx_progress(ctx, 0, steps);
    for (int64_t i = 1; i <= steps; i++) {
        if (!sleep_checked(ctx, ms))
            return vd_error_set(err, VD_ERR_CANCELED, "stopped at step %lld of %lld",
                                (long long)i - 1, (long long)steps);
        vd_job_ctx_progress(ctx, i, steps);
    }
    char buf[64];
    snprintf(buf, sizeof buf, "{\"steps\": %lld}", (long long)steps);
    *result = vd_strdup(buf);
    return *result ? VD_OK : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
}

/* Waits for a contended lock in short, jittered steps (SQLite's own busy
 * timeout sleeps up to 100 ms at a time, which many writers turn into long
 * stalls); gives up after about a minute. */
static int busy_wait(void *arg, int tries)
{
    (void)arg;
    if (tries > 60000) return 0;
    struct timespec ts = {0, (long)(200000 + vd_random_unit() * 1000000)};
    nanosleep(&ts, NULL);
    return 1;
}

static vd_status job_count(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    (void)result;
    json_t *p;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    json_t *d = json_object_get(p, "db");
    if (!d || !json_is_string(d)) {
        json_decref(p);
        return vd_error_set(err, VD_ERR_INVALID, "count needs {\"db\": PATH}");
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(json_string_value(d), &db, SQLITE_OPEN_READWRITE, NULL);
    json_decref(p);
    sqlite3_stmt *ins = NULL;
    if (rc == SQLITE_OK) {
        sqlite3_busy_handler(db, busy_wait, NULL);
        rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT INTO runs(job_id, attempt, pid) VALUES(?, ?, ?)", -1,
                                &ins, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(ins, 1, vd_job_ctx_id(ctx), -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 2, vd_job_ctx_attempt(ctx));
        sqlite3_bind_int(ins, 3, (int)getpid());
        rc = sqlite3_step(ins) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    if (rc != SQLITE_OK) st = vd_error_set(err, VD_ERR_DB, "count: %s", sqlite3_errmsg(db));
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return st;
}

static vd_status job_alloc(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    json_t *p;
    int64_t mb = 0;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    st = get_count(p, "mb", 1, 1 << 20, &mb, err);
    json_decref(p);
    if (st != VD_OK) return st;
    size_t n = (size_t)mb << 20;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        vd_job_ctx_set_retryable(ctx, 0);
        return vd_error_set(err, VD_ERR_LIMIT, "could not allocate %lld MiB", (long long)mb);
    }
    for (size_t i = 0; i < n; i += 4096)
        buf[i] = (unsigned char)i;
    free(buf);
    char out[64];
    snprintf(out, sizeof out, "{\"mb\": %lld}", (long long)mb);
    *result = vd_strdup(out);
    return *result ? VD_OK : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
}

vd_status vd_registry_add_builtin(vd_registry *reg, vd_error *err)
{
    static const struct {
        const char *name;
        vd_job_handler fn;
    } types[] = {{"noop", job_noop},   {"sleep", job_sleep},       {"fail", job_fail},
                 {"crash", job_crash}, {"progress", job_progress}, {"count", job_count},
                 {"alloc", job_alloc}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        vd_status st = vd_registry_add(reg, types[i].name, types[i].fn, NULL, err);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}
