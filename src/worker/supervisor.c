/* supervisor.c: the worker supervisor. See supervisor.h and docs/worker.md. */
#include "worker/supervisor.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sigpipe.h"
#include "core/util.h"
#include "queue/queue.h"
#include "worker/forkserver.h"
#include "worker/horse.h"
#include "worker/job_ctx.h"
#include "worker/spare.h"

#include "worker/supervisor_impl.h"

/* ---------------------------------------------------------------- setup */

static vd_status check_opts(const vd_supervisor_opts *o, const vd_registry *reg, vd_error *err)
{
    if (!o->queue_url || !*o->queue_url)
        return vd_error_set(err, VD_ERR_INVALID, "a queue url is required");
    if (o->concurrency < 0 || o->concurrency > 1024)
        return vd_error_set(err, VD_ERR_INVALID, "concurrency must be 1..1024");
    if (o->lease_ms < 0 || o->heartbeat_ms < 0 || o->kill_grace_ms < 0 || o->max_jobs < 0 ||
        o->memory_limit_mb < 0)
        return vd_error_set(err, VD_ERR_INVALID, "durations, limits and counts must be >= 0");
    int64_t lease = o->lease_ms ? o->lease_ms : 30000;
    if (o->heartbeat_ms && o->heartbeat_ms >= lease)
        return vd_error_set(err, VD_ERR_INVALID,
                            "the heartbeat (%lld ms) must be shorter than the lease (%lld ms)",
                            (long long)o->heartbeat_ms, (long long)lease);
    if (o->worker_id && (!*o->worker_id || strlen(o->worker_id) >= VD_WORKER_ID_MAX))
        return vd_error_set(err, VD_ERR_INVALID, "the worker name must be 1-%d characters",
                            VD_WORKER_ID_MAX - 1);
    if (o->types && o->ntypes == 0)
        return vd_error_set(err, VD_ERR_INVALID, "an empty list of job types");
    for (size_t i = 0; o->types && i < o->ntypes; i++)
        if (!vd_registry_has(reg, o->types[i]))
            return vd_error_set(err, VD_ERR_INVALID, "unknown job type '%s'", o->types[i]);
    if (!o->types && vd_registry_count(reg) == 0)
        return vd_error_set(err, VD_ERR_INVALID, "no job types are registered");
    return VD_OK;
}

vd_status vd_supervisor_new(const vd_supervisor_opts *o, const vd_registry *reg,
                            vd_supervisor **out, vd_error *err)
{
    *out = NULL;
    vd_status st = check_opts(o, reg, err);
    if (st != VD_OK) return st;
    vd_supervisor *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    s->reg = reg;
    s->sfd = -1;
    s->concurrency = o->no_fork ? 1 : (o->concurrency ? o->concurrency : 1);
    s->lease_ms = o->lease_ms ? o->lease_ms : 30000;
    s->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : s->lease_ms / 3;
    if (s->heartbeat_ms < 1) s->heartbeat_ms = 1;
    s->grace_ms = o->grace_ms == 0 ? 10000 : (o->grace_ms < 0 ? 0 : o->grace_ms);
    s->kill_grace_ms = o->kill_grace_ms ? o->kill_grace_ms : 2000;
    s->max_jobs = o->max_jobs;
    s->memory_limit_mb = o->memory_limit_mb;
    s->burst = o->burst;
    s->no_fork = o->no_fork;
    if (o->worker_id) {
        vd_strlcpy(s->worker_id, o->worker_id, sizeof s->worker_id);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(s->worker_id, sizeof s->worker_id, "%s:%d", host, (int)getpid());
    }
    s->ntypes = o->types ? o->ntypes : vd_registry_count(reg);
    s->types = calloc(s->ntypes, sizeof *s->types);
    s->slots = calloc((size_t)s->concurrency, sizeof *s->slots);
    if (!s->types || !s->slots) {
        vd_supervisor_free(s);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->ntypes; i++) {
        s->types[i] = vd_strdup(o->types ? o->types[i] : vd_registry_name(reg, i));
        if (!s->types[i]) {
            vd_supervisor_free(s);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
    }
    for (int i = 0; i < s->concurrency; i++)
        s->slots[i].fd = -1;
    for (int i = 0; i < VD_SUP_NSRC; i++) {
        s->src[i].spare.job_fd = s->src[i].spare.msg_fd = -1;
        s->src[i].fs.sock = -1;
    }
    s->light_argv = o->light_argv;
    st = vd_queue_open(o->queue_url, &s->q, err);
    if (st != VD_OK) {
        vd_supervisor_free(s);
        return st;
    }
    *out = s;
    return VD_OK;
}

void vd_supervisor_free(vd_supervisor *s)
{
    if (!s) return;
    vd_queue_close(s->q);
    vd_job_clear(&s->ahead);
    for (size_t i = 0; s->types && i < s->ntypes; i++)
        free(s->types[i]);
    free(s->types);
    for (int i = 0; s->slots && i < s->concurrency; i++) {
        vd_job_clear(&s->slots[i].job);
        vd_horse_reader_free(&s->slots[i].rd);
        if (s->slots[i].fd >= 0) close(s->slots[i].fd);
    }
    free(s->slots);
    free(s->exiting);
    free(s->light_types);
    free(s);
}

void vd_supervisor_get_stats(const vd_supervisor *s, vd_supervisor_stats *out)
{
    *out = s->stats;
}

const char *vd_supervisor_worker_id(const vd_supervisor *s)
{
    return s->worker_id;
}

/* ------------------------------------------------------------- signals */

static void handle_signal(vd_supervisor *s, int signo, int *sigchld);

/* Reads every pending signal from the signal pipe (core/sigpipe.h). Sets
 * *sigchld when a child changed state; starts (or hurries) a graceful stop on
 * SIGTERM/SIGINT. */
static void read_signals(vd_supervisor *s, int *sigchld)
{
    int sigs[32];
    size_t n;
    while ((n = vd_sigpipe_read(s->sfd, sigs, 32)) > 0)
        for (size_t i = 0; i < n; i++)
            handle_signal(s, sigs[i], sigchld);
}

/* Acts on one signal: see read_signals. */
static void handle_signal(vd_supervisor *s, int signo, int *sigchld)
{
    if (signo == SIGCHLD) {
        if (sigchld) *sigchld = 1;
        return;
    }
    const char *name = signo == SIGINT ? "SIGINT" : "SIGTERM";
    int64_t now = vd_mono_ms();
    if (!s->stopping) {
        s->stopping = 1;
        s->stop_deadline = now + s->grace_ms;
        VD_INFO("worker %s: %s: stopping; no new jobs; %d running get %.3gs to finish",
                s->worker_id, name, s->nrunning, (double)s->grace_ms / 1000.0);
    } else if (s->stop_deadline > now) {
        s->stop_deadline = now;
        VD_INFO("worker %s: second %s: stopping running jobs now", s->worker_id, name);
    }
}

/* ---------------------------------------------------------- fork mode */

static void stop_horse(vd_supervisor *s, slot *sl, stop_why why, int64_t now)
{
    static const char *names[] = {"", "timeout", "canceled", "lease lost", "shutdown"};
    sl->why = why;
    if (!sl->kill_at) {
        kill(sl->pid, SIGTERM);
        sl->kill_at = now + s->kill_grace_ms;
        VD_INFO("job %s (%s): stopping work-horse %d (%s)", sl->job.id, sl->job.type, (int)sl->pid,
                names[why]);
    }
}

/* Hands sl->job to a spare of the job type's source (one is forked when there
 * is none, a fresh one when the spare died, a full one when no light one
 * comes); the spare becomes the slot's horse. */
static void spawn(vd_supervisor *s, slot *sl)
{
    vd_error err;
    vd_error_clear(&err);
    vd_status st = VD_OK;
    vd_sup_source *src = vd_sup_source_for(s, sl->job.type);
    for (int tries = 0; tries < 3; tries++) {
        if (!src->spare.pid && (st = vd_sup_spare_get(s, src, &err)) != VD_OK) {
            if (src == &s->src[VD_SUP_FULL]) break;
            src = &s->src[VD_SUP_FULL];
            continue;
        }
        st = vd_spare_hand_over(&src->spare, &sl->job, &err);
        if (st == VD_OK) break;
        VD_DEBUG("worker %s: %s", s->worker_id, vd_error_text(&err));
        vd_spare_discard(&src->spare); /* it died waiting; reap() collects it */
    }
    if (st != VD_OK) {
        vd_sup_record_fail(s, &sl->job, vd_error_text(&err), 1);
        vd_job_clear(&sl->job);
        return;
    }
    int64_t now = vd_mono_ms();
    pid_t pid = src->spare.pid;
    src->used = 1;
    sl->used = 1;
    sl->pid = pid;
    sl->fd = src->spare.msg_fd;
    src->spare.msg_fd = -1;
    src->spare.pid = 0;
    sl->t0 = now;
    sl->job.timeout_ms = vd_registry_timeout_ms(s->reg, &sl->job); /* the type's default if none */
    sl->deadline = sl->job.timeout_ms > 0 ? now + sl->job.timeout_ms : 0;
    sl->next_hb = now + s->heartbeat_ms;
    sl->kill_at = 0;
    sl->killed = 0;
    sl->why = WHY_NONE;
    memset(&sl->rd, 0, sizeof sl->rd);
    s->nrunning++;
    VD_INFO("job %s (%s) started, attempt %d/%d, work-horse %d", sl->job.id, sl->job.type,
            sl->job.attempts, 1 + sl->job.max_retries, (int)pid);
}

/* Sends the latest progress of a horse to the queue. */
static void push_progress(vd_supervisor *s, slot *sl)
{
    if (!sl->rd.progress_new || sl->why != WHY_NONE) return;
    sl->rd.progress_new = 0;
    vd_error err;
    if (vd_queue_progress(s->q, sl->job.id, sl->rd.done, sl->rd.total, &err) != VD_OK)
        VD_DEBUG("job %s: progress not recorded: %s", sl->job.id, vd_error_text(&err));
}

void vd_sup_remember_exiting(vd_supervisor *s, pid_t pid)
{
    if (s->nexiting == s->capexiting) {
        int cap = s->capexiting ? 2 * s->capexiting : 8;
        pid_t *np = realloc(s->exiting, (size_t)cap * sizeof *np);
        if (np) {
            s->exiting = np;
            s->capexiting = cap;
        }
    }
    if (s->nexiting < s->capexiting) s->exiting[s->nexiting++] = pid;
}

/* Records the outcome of sl's job and frees the slot. have_status: the horse
 * was reaped with wstatus; otherwise it is still exiting and is remembered
 * in s->exiting for reap(). */
static void finish_slot(vd_supervisor *s, slot *sl, int have_status, int wstatus)
{
    if (sl->fd >= 0) { /* a grandchild holds the pipe open: take what is there */
        close(sl->fd);
        sl->fd = -1;
    }
    if (!have_status) vd_sup_remember_exiting(s, sl->pid);
    int64_t now = vd_mono_ms();
    /* the freed slot is filled in this loop iteration: its reserve may go with the complete */
    s->reserve_with_complete = !s->stopping && !s->have_ahead && now >= s->next_reserve &&
                               (s->max_jobs == 0 || s->stats.reserved < s->max_jobs);
    vd_sup_record_outcome(s, &sl->job, sl->why, &sl->rd.out, sl->rd.bad, have_status, wstatus,
                          now - sl->t0);
    s->reserve_with_complete = 0;
    vd_horse_reader_free(&sl->rd);
    vd_job_clear(&sl->job);
    sl->used = 0;
    sl->pid = 0;
    s->nrunning--;
}

/* Reads what a horse sent. At end of file after a whole final message, with
 * nothing stopping the horse, the outcome is in hand: it is recorded now and
 * the slot freed, without waiting for the horse's exit (the address-space
 * teardown of a fork is its slowest part). */
static void pump(vd_supervisor *s, slot *sl)
{
    if (sl->fd < 0) return;
    int r = vd_horse_reader_pump(&sl->rd, sl->fd);
    if (r != 0) {
        close(sl->fd);
        sl->fd = -1;
    }
    push_progress(s, sl);
    if (r == 1 && sl->why == WHY_NONE && !sl->rd.bad && sl->rd.out.kind != VD_HORSE_NONE)
        finish_slot(s, sl, 0, 0);
}

/* Forgets pid when it is a horse whose outcome was recorded; returns 1 then. */
static int forget_exiting(vd_supervisor *s, pid_t pid)
{
    for (int i = 0; i < s->nexiting; i++)
        if (s->exiting[i] == pid) {
            s->exiting[i] = s->exiting[--s->nexiting];
            return 1;
        }
    return 0;
}

/* Reaps every exited horse and records its job's outcome. */
static void reap(vd_supervisor *s)
{
    for (;;) {
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, WNOHANG);
        if (pid <= 0) return;
        if (vd_sup_sources_reaped(s, pid) || forget_exiting(s, pid)) continue;
        slot *sl = NULL;
        for (int i = 0; i < s->concurrency; i++)
            if (s->slots[i].used && s->slots[i].pid == pid) sl = &s->slots[i];
        if (!sl) continue; /* not a horse of ours */
        pump(s, sl);       /* everything the horse wrote is in the pipe now */
        if (sl->used && sl->pid == pid) finish_slot(s, sl, 1, wstatus);
    }
}

/* At the end of a run: retires the spare and waits for every horse that is
 * still exiting, so that none is left a zombie. */
static void reap_all(vd_supervisor *s)
{
    vd_sup_sources_stop(s);
    for (int i = 0; i < s->nexiting; i++)
        waitpid(s->exiting[i], NULL, 0);
    s->nexiting = 0;
}

/* Heartbeats, timeouts, graceful-stop deadlines and SIGKILLs that are due. */
static void run_timers(vd_supervisor *s, int64_t now)
{
    for (int i = 0; i < s->concurrency; i++) {
        slot *sl = &s->slots[i];
        if (!sl->used) continue;
        if (sl->why == WHY_NONE && sl->deadline && now >= sl->deadline)
            stop_horse(s, sl, WHY_TIMEOUT, now);
        if (sl->why == WHY_NONE && s->stopping && now >= s->stop_deadline)
            stop_horse(s, sl, WHY_SHUTDOWN, now);
        if (sl->kill_at && !sl->killed && now >= sl->kill_at) {
            kill(sl->pid, SIGKILL);
            sl->killed = 1;
            VD_WARN("job %s (%s): work-horse %d did not stop within %.3gs; sent SIGKILL",
                    sl->job.id, sl->job.type, (int)sl->pid, (double)s->kill_grace_ms / 1000.0);
        }
        /* keep the lease while stopping for a timeout or shutdown, so that
         * the failure (or the hand-back) is ours to record */
        if (now >= sl->next_hb && sl->why != WHY_CANCELED && sl->why != WHY_LEASE_LOST) {
            stop_why w = vd_sup_heartbeat(s, &sl->job, now, &sl->next_hb);
            if (w != WHY_NONE) {
                sl->why = w; /* overrides a timeout or shutdown: nothing is recorded */
                stop_horse(s, sl, w, now);
            }
        }
    }
}

/* After an empty reserve: wait 10 ms doubling to 200 ms before the next one, or to 1 s when
 * the queue announces new jobs on its wake descriptor (vd_queue_wake_fd), which the idle
 * loops poll as well; the periodic reserve still catches due retries and lapsed leases. */
static void idle_backoff(vd_supervisor *s)
{
    int64_t cap = vd_queue_wake_fd(s->q) >= 0 ? 1000 : 200;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 10;
    if (s->backoff_ms > cap) s->backoff_ms = cap;
}

/* Reserves jobs into free slots. Returns 1 when burst mode found the queue
 * empty with nothing running (time to exit). */
static int fill_slots(vd_supervisor *s)
{
    if (s->have_ahead) { /* reserved with the last complete (record_complete) */
        slot *sl = NULL;
        for (int i = 0; i < s->concurrency && !sl; i++)
            if (!s->slots[i].used) sl = &s->slots[i];
        if (sl) {
            sl->job = s->ahead;
            memset(&s->ahead, 0, sizeof s->ahead);
            s->have_ahead = 0;
            spawn(s, sl);
        }
    }
    while (!s->stopping && s->nrunning < s->concurrency &&
           (s->max_jobs == 0 || s->stats.reserved < s->max_jobs) &&
           vd_mono_ms() >= s->next_reserve) {
        slot *sl = NULL;
        for (int i = 0; i < s->concurrency && !sl; i++)
            if (!s->slots[i].used) sl = &s->slots[i];
        vd_error err;
        vd_error_clear(&err);
        vd_status st = vd_queue_reserve(s->q, s->worker_id, s->lease_ms,
                                        (const char *const *)s->types, s->ntypes, &sl->job, &err);
        if (st == VD_OK) {
            s->stats.reserved++;
            s->backoff_ms = 0;
            spawn(s, sl);
            continue;
        }
        vd_job_clear(&sl->job);
        vd_sup_spares_retire(s); /* nothing to hand it (or the queue fails): none when idle */
        if (st == VD_ERR_EMPTY) {
            if (s->burst && s->nrunning == 0) return 1;
            if (vd_queue_woken(s->q)) continue; /* a job was announced meanwhile */
            idle_backoff(s);
        } else {
            VD_WARN("worker %s: reserve failed: %s", s->worker_id, vd_error_text(&err));
            s->backoff_ms = 1000;
        }
        s->next_reserve = vd_mono_ms() + s->backoff_ms;
        break;
    }
    return 0;
}

static int64_t min_wait(int64_t cur, int64_t at, int64_t now)
{
    int64_t w = at - now;
    if (w < 0) w = 0;
    return w < cur ? w : cur;
}

static void run_forking(vd_supervisor *s)
{
    enum { NFIXED = 2 + VD_SUP_NSRC }; /* signals, queue wake-up, one per horse source */
    struct pollfd *pfd = calloc((size_t)s->concurrency + NFIXED, sizeof *pfd);
    slot **pslot = calloc((size_t)s->concurrency + NFIXED, sizeof *pslot);
    if (!pfd || !pslot) {
        VD_ERROR("worker %s: out of memory", s->worker_id);
        free(pfd);
        free(pslot);
        return;
    }
    vd_sup_sources_start(s);
    for (;;) {
        int sigchld = 0;
        read_signals(s, &sigchld);
        if (sigchld) reap(s);
        int64_t now = vd_mono_ms();
        run_timers(s, now);
        if (fill_slots(s)) break;
        if (s->nrunning == 0 && (s->stopping || (s->max_jobs && s->stats.reserved >= s->max_jobs)))
            break;
        vd_sup_spares_keep(s);

        now = vd_mono_ms();
        int64_t wait = 1000;
        if (!s->stopping && s->nrunning < s->concurrency &&
            (s->max_jobs == 0 || s->stats.reserved < s->max_jobs))
            wait = min_wait(wait, s->next_reserve, now);
        if (s->stopping && s->nrunning > 0) wait = min_wait(wait, s->stop_deadline, now);
        int n = 0;
        pfd[n].fd = s->sfd;
        pfd[n].events = POLLIN;
        pslot[n++] = NULL;
        int idle = !s->stopping && s->nrunning < s->concurrency &&
                   (s->max_jobs == 0 || s->stats.reserved < s->max_jobs);
        int wake = idle ? vd_queue_wake_fd(s->q) : -1;
        pfd[n].fd = wake; /* poll ignores a negative fd */
        pfd[n].events = POLLIN;
        pslot[n++] = NULL;
        for (int i = 0; i < VD_SUP_NSRC; i++) { /* the asked-for spares */
            pfd[n].fd = s->src[i].fs.pending ? s->src[i].fs.sock : -1;
            pfd[n].events = POLLIN;
            pslot[n++] = NULL;
        }
        for (int i = 0; i < s->concurrency; i++) {
            slot *sl = &s->slots[i];
            if (!sl->used) continue;
            if (sl->why == WHY_NONE && sl->deadline) wait = min_wait(wait, sl->deadline, now);
            if (sl->kill_at && !sl->killed) wait = min_wait(wait, sl->kill_at, now);
            wait = min_wait(wait, sl->next_hb, now);
            if (sl->fd >= 0) {
                pfd[n].fd = sl->fd;
                pfd[n].events = POLLIN;
                pslot[n++] = sl;
            }
        }
        int r = poll(pfd, (nfds_t)n, (int)wait);
        if (r <= 0) continue;
        if (pfd[1].revents && vd_queue_woken(s->q)) s->next_reserve = 0;
        for (int i = 0; i < VD_SUP_NSRC; i++)
            if (pfd[2 + i].revents) vd_sup_spare_arrived(s, &s->src[i]);
        for (int i = NFIXED; i < n; i++)
            if (pfd[i].revents && pslot[i]->used) pump(s, pslot[i]);
    }
    reap_all(s);
    free(pfd);
    free(pslot);
}

/* --------------------------------------------------------- inline mode */

typedef struct {
    vd_supervisor *s;
    const vd_job *job;
    int64_t deadline, next_hb, last_progress;
    stop_why why;
} inline_run;

static void inline_tick(inline_run *ir)
{
    vd_supervisor *s = ir->s;
    read_signals(s, NULL);
    int64_t now = vd_mono_ms();
    if (ir->why == WHY_NONE && ir->deadline && now >= ir->deadline) ir->why = WHY_TIMEOUT;
    if (ir->why == WHY_NONE && s->stopping && now >= s->stop_deadline) ir->why = WHY_SHUTDOWN;
    if (now >= ir->next_hb && ir->why != WHY_CANCELED && ir->why != WHY_LEASE_LOST) {
        stop_why w = vd_sup_heartbeat(s, ir->job, now, &ir->next_hb);
        if (w != WHY_NONE) ir->why = w;
    }
}

static vd_status inline_progress(vd_job_ctx *ctx, int64_t done, int64_t total)
{
    inline_run *ir = ctx->impl;
    inline_tick(ir);
    int64_t now = vd_mono_ms();
    if (ir->why != WHY_NONE || (now - ir->last_progress < 20 && done < total)) return VD_OK;
    ir->last_progress = now;
    vd_error err;
    return vd_queue_progress(ir->s->q, ir->job->id, done, total, &err);
}

static int inline_should_stop(vd_job_ctx *ctx)
{
    inline_run *ir = ctx->impl;
    inline_tick(ir);
    return ir->why != WHY_NONE;
}

static void run_inline(vd_supervisor *s)
{
    for (;;) {
        read_signals(s, NULL);
        if (s->stopping || (s->max_jobs && s->stats.reserved >= s->max_jobs)) break;
        vd_job job;
        memset(&job, 0, sizeof job);
        vd_error err;
        vd_error_clear(&err);
        vd_status st = vd_queue_reserve(s->q, s->worker_id, s->lease_ms,
                                        (const char *const *)s->types, s->ntypes, &job, &err);
        if (st != VD_OK) {
            vd_job_clear(&job);
            if (st == VD_ERR_EMPTY) {
                if (s->burst) break;
                if (vd_queue_woken(s->q)) continue;
                idle_backoff(s);
            } else {
                VD_WARN("worker %s: reserve failed: %s", s->worker_id, vd_error_text(&err));
                s->backoff_ms = 1000;
            }
            struct pollfd p[2] = {{.fd = s->sfd, .events = POLLIN},
                                  {.fd = vd_queue_wake_fd(s->q), .events = POLLIN}};
            if (poll(p, 2, (int)s->backoff_ms) > 0 && p[1].revents) vd_queue_woken(s->q);
            continue;
        }
        s->backoff_ms = 0;
        s->stats.reserved++;
        int64_t t0 = vd_mono_ms();
        job.timeout_ms = vd_registry_timeout_ms(s->reg, &job); /* the type's default if none */
        VD_INFO("job %s (%s) started inline, attempt %d/%d", job.id, job.type, job.attempts,
                1 + job.max_retries);
        inline_run ir = {.s = s,
                         .job = &job,
                         .deadline = job.timeout_ms > 0 ? t0 + job.timeout_ms : 0,
                         .next_hb = t0 + s->heartbeat_ms};
        vd_job_ctx ctx = {
            .progress = inline_progress, .should_stop = inline_should_stop, .impl = &ir};
        vd_horse_outcome out;
        vd_horse_run_handler(s->reg, &job, &ctx, &out);
        inline_tick(&ir);
        /* a handler that finished is finished, even past its deadline */
        stop_why why = ir.why;
        if (out.kind == VD_HORSE_DONE && (why == WHY_TIMEOUT || why == WHY_SHUTDOWN))
            why = WHY_NONE;
        vd_sup_record_outcome(s, &job, why, &out, 0, 0, 0, vd_mono_ms() - t0);
        vd_horse_outcome_clear(&out);
        vd_job_clear(&job);
    }
}

/* ---------------------------------------------------------------- run */

vd_status vd_supervisor_run(vd_supervisor *s, vd_error *err)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGCHLD};
    vd_status st = vd_sigpipe_open(sigs, 3, &s->sfd, err);
    if (st != VD_OK) return st;
    struct sigaction sa, old_pipe;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, &old_pipe);

    VD_INFO("worker %s: started: queue %s, %s, concurrency %d, lease %.3gs, heartbeat %.3gs, "
            "%zu job types%s",
            s->worker_id, vd_queue_backend(s->q), s->no_fork ? "inline (no fork)" : "fork per job",
            s->concurrency, (double)s->lease_ms / 1000.0, (double)s->heartbeat_ms / 1000.0,
            s->ntypes, s->burst ? ", burst" : "");
    if (s->memory_limit_mb > 0 && (s->no_fork || !vd_horse_memory_limit_supported()))
        VD_WARN("worker %s: --memory-limit is not enforced %s", s->worker_id,
                s->no_fork ? "with --no-fork" : "in a sanitizer build");

    if (s->no_fork)
        run_inline(s);
    else
        run_forking(s);

    VD_INFO("worker %s: stopped: %lld reserved, %lld finished, %lld failed, %lld crashed, "
            "%lld timed out, %lld canceled, %lld lost, %lld handed back",
            s->worker_id, (long long)s->stats.reserved, (long long)s->stats.finished,
            (long long)s->stats.failed, (long long)s->stats.crashed, (long long)s->stats.timed_out,
            (long long)s->stats.canceled, (long long)s->stats.lost,
            (long long)s->stats.handed_back);
    vd_sigpipe_close();
    s->sfd = -1;
    sigaction(SIGPIPE, &old_pipe, NULL);
    return VD_OK;
}
