/* supervisor_record.c: the supervisor's queue writes: outcomes and heartbeats.
 * See supervisor_impl.h and docs/worker.md ("What happens when"). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "core/log.h"
#include "core/util.h"
#include "worker/supervisor_impl.h"

/* --------------------------------------------------------- queue writes */

static int transient(vd_status st)
{
    return st == VD_ERR_DB || st == VD_ERR_CONN || st == VD_ERR_BUSY || st == VD_ERR_TIMEOUT ||
           st == VD_ERR_IO;
}

static void fmt_secs(char *buf, size_t n, int64_t ms)
{
    snprintf(buf, n, "%gs", (double)ms / 1000.0);
}

/* Fails the attempt, retrying a transient queue error a few times. */
void vd_sup_record_fail(vd_supervisor *s, const vd_job *job, const char *msg, int retryable)
{
    vd_error err;
    vd_status st = VD_OK;
    for (int i = 0; i < 5; i++) {
        vd_error_clear(&err);
        st = vd_queue_fail(s->q, job->id, s->worker_id, msg, retryable, &err);
        if (!transient(st)) break;
        vd_sleep_ms(50 << i);
    }
    int last = !retryable || job->attempts >= 1 + job->max_retries;
    if (st == VD_OK)
        VD_INFO("job %s (%s) failed, attempt %d/%d: %s%s", job->id, job->type, job->attempts,
                1 + job->max_retries, msg, last ? "" : "; retry scheduled");
    else
        VD_WARN("job %s (%s) failed (%s) but could not be recorded: %s", job->id, job->type, msg,
                vd_error_text(&err));
}

/* Gives a job stopped by the graceful stop back to the queue (queued again,
 * the attempt not counted), retrying a transient queue error a few times. */
static void record_release(vd_supervisor *s, const vd_job *job, const char *msg)
{
    vd_error err;
    vd_status st = VD_OK;
    for (int i = 0; i < 5; i++) {
        vd_error_clear(&err);
        st = vd_queue_release(s->q, job->id, s->worker_id, msg, &err);
        if (!transient(st)) break;
        vd_sleep_ms(50 << i);
    }
    if (st == VD_OK) {
        s->stats.handed_back++;
        VD_INFO("job %s (%s) handed back to the queue, attempt %d/%d not counted: %s", job->id,
                job->type, job->attempts, 1 + job->max_retries, msg);
    } else {
        VD_WARN("job %s (%s) could not be handed back (%s): %s", job->id, job->type, msg,
                vd_error_text(&err));
    }
}

/* Completes the job with result (may be NULL). */
static void record_complete(vd_supervisor *s, const vd_job *job, const char *result, int64_t ms)
{
    vd_error err;
    vd_error_clear(&err);
    vd_status st = VD_ERR_BUSY; /* not written yet */
    if (s->reserve_with_complete && !s->have_ahead) {
        /* the outcome and the next reserve in one transaction: the outcome is committed
         * first or with it, never after (docs/worker.md, "Fourth pass") */
        int got = 0;
        memset(&s->ahead, 0, sizeof s->ahead);
        st = vd_queue_complete_reserve(s->q, job->id, s->worker_id, result, s->lease_ms,
                                       (const char *const *)s->types, s->ntypes, &s->ahead, &got,
                                       &err);
        if (got) {
            s->have_ahead = 1;
            s->stats.reserved++;
            s->backoff_ms = 0;
        }
    }
    for (int i = 0; i < 5 && transient(st); i++) { /* alone, retried */
        if (i > 0) vd_sleep_ms(50 << (i - 1));
        vd_error_clear(&err);
        st = vd_queue_complete(s->q, job->id, s->worker_id, result, &err);
    }
    if (st == VD_OK) {
        s->stats.finished++;
        VD_INFO("job %s (%s) finished in %lld ms", job->id, job->type, (long long)ms);
    } else if (st == VD_ERR_INVALID) {
        char msg[VD_ERROR_MSG_MAX + 64];
        snprintf(msg, sizeof msg, "the handler's result was refused: %s", vd_error_text(&err));
        s->stats.failed++;
        vd_sup_record_fail(s, job, msg, 0);
    } else {
        VD_WARN("job %s (%s) finished but the result was not recorded: %s", job->id, job->type,
                vd_error_text(&err));
    }
}

/* Records how an attempt ended. why: why the supervisor stopped it (if it
 * did); out: what the handler reported; bad: the horse sent garbage;
 * wstatus/have_status: how the horse process ended (fork mode). */
void vd_sup_record_outcome(vd_supervisor *s, const vd_job *job, stop_why why,
                           const vd_horse_outcome *out, int bad, int have_status, int wstatus,
                           int64_t ms)
{
    char msg[4200];
    char how[96] = "";
    if (have_status && (WIFSIGNALED(wstatus) || WIFEXITED(wstatus)))
        vd_describe_wait_status(wstatus, how, sizeof how);
    switch (why) {
    case WHY_CANCELED:
        s->stats.canceled++;
        VD_INFO("job %s (%s) canceled; work-horse stopped after %lld ms%s%s", job->id, job->type,
                (long long)ms, how[0] ? ", " : "", how);
        return;
    case WHY_LEASE_LOST:
        s->stats.lost++;
        VD_WARN("job %s (%s): lease lost; work-horse stopped, outcome not recorded%s%s", job->id,
                job->type, how[0] ? ", " : "", how);
        return;
    default:
        break;
    }
    if (out->kind == VD_HORSE_DONE && !bad) {
        record_complete(s, job, out->result, ms);
        return;
    }
    char secs[32];
    if (why == WHY_TIMEOUT) {
        s->stats.timed_out++;
        fmt_secs(secs, sizeof secs, job->timeout_ms);
        snprintf(msg, sizeof msg, "timeout after %s", secs);
        vd_sup_record_fail(s, job, msg, 1);
    } else if (why == WHY_SHUTDOWN) {
        if (s->no_fork)
            snprintf(msg, sizeof msg, "worker shut down before the job finished (handler stopped)");
        else
            snprintf(msg, sizeof msg, "worker shut down before the job finished (work-horse %s)",
                     how[0] ? how : "stopped");
        record_release(s, job, msg);
    } else if (out->kind == VD_HORSE_FAILED && !bad) {
        s->stats.failed++;
        vd_sup_record_fail(s, job, out->error ? out->error : "failed", out->retryable);
    } else if (bad) {
        s->stats.crashed++;
        snprintf(msg, sizeof msg, "work-horse sent a malformed message (%s)", how);
        vd_sup_record_fail(s, job, msg, 1);
    } else {
        s->stats.crashed++;
        if (have_status && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
            snprintf(msg, sizeof msg, "work-horse exited without reporting an outcome");
        else
            snprintf(msg, sizeof msg, "work-horse %s", how[0] ? how : "vanished");
        vd_sup_record_fail(s, job, msg, 1);
    }
}

/* Renews a running job's lease. Returns WHY_CANCELED or WHY_LEASE_LOST when
 * the job must be stopped, WHY_NONE otherwise; sets *next_hb. */
stop_why vd_sup_heartbeat(vd_supervisor *s, const vd_job *job, int64_t now, int64_t *next_hb)
{
    vd_error err;
    vd_error_clear(&err);
    vd_status st = vd_queue_heartbeat(s->q, job->id, s->worker_id, s->lease_ms, &err);
    *next_hb = now + s->heartbeat_ms;
    if (st == VD_OK) return WHY_NONE;
    if (st == VD_ERR_CANCELED) return WHY_CANCELED;
    if (st == VD_ERR_LEASE_LOST || st == VD_ERR_NOT_FOUND || st == VD_ERR_STATE)
        return WHY_LEASE_LOST;
    VD_WARN("job %s: heartbeat failed, retrying: %s", job->id, vd_error_text(&err));
    *next_hb = now + (s->heartbeat_ms < 500 ? s->heartbeat_ms : 500);
    return WHY_NONE;
}
