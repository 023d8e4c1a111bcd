/* horse.c: the work-horse's side (running a job, writing messages) and the
 * supervisor's reader of those messages. See horse.h. */
#include "worker/horse.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/util.h"

#if defined(__SANITIZE_ADDRESS__)
#define VD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VD_ASAN 1
#endif
#endif

/* The one signal flag of a work-horse: SIGTERM asks the handler to stop. */
static volatile sig_atomic_t horse_stop_requested;

static void on_sigterm(int sig)
{
    (void)sig;
    horse_stop_requested = 1;
}

void vd_horse_outcome_clear(vd_horse_outcome *o)
{
    if (!o) return;
    free(o->result);
    free(o->error);
    memset(o, 0, sizeof *o);
}

/* Returns the process's current address-space size (VmSize) in bytes. */
static rlim_t address_space_bytes(void)
{
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE);
}

int vd_horse_memory_limit_supported(void)
{
#ifdef VD_ASAN
    return 0;
#else
    return 1;
#endif
}

void vd_horse_run_handler(const vd_registry *reg, const vd_job *job, vd_job_ctx *ctx,
                          vd_horse_outcome *out)
{
    memset(out, 0, sizeof *out);
    void *ud = NULL;
    vd_job_handler fn = vd_registry_get(reg, job->type, &ud);
    if (!fn) {
        out->kind = VD_HORSE_FAILED;
        out->status = VD_ERR_UNSUPPORTED;
        out->retryable = 0;
        out->error = vd_strdup("no handler for this job type in this worker");
        return;
    }
    ctx->job = job;
    ctx->userdata = ud;
    ctx->retryable = -1;
    vd_error err;
    vd_error_clear(&err);
    char *result = NULL;
    vd_status st = fn(ctx, job->payload ? job->payload : "{}", &result, &err);
    if (st == VD_OK) {
        out->kind = VD_HORSE_DONE;
        out->result = result;
        return;
    }
    free(result);
    out->kind = VD_HORSE_FAILED;
    out->status = st;
    out->retryable = vd_job_ctx_failure_retryable(ctx, st);
    out->error = vd_strdup(err.msg[0] ? err.msg : vd_strerror(st));
}

/* ---- The horse's writer. ---- */

typedef struct {
    int fd;
    int64_t last_sent_ms; /* monotonic time of the last progress message */
    int64_t pend_done, pend_total;
    int pending;
} horse_pipe;

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes one message: kind, length, then the body in up to two pieces. */
static int send_msg(int fd, char kind, const void *a, size_t na, const void *b, size_t nb)
{
    char head[5];
    uint32_t len = (uint32_t)(na + nb);
    head[0] = kind;
    memcpy(head + 1, &len, 4);
    if (na + nb <= 4096) {
        /* small messages go out in one write, which a pipe keeps whole */
        char msg[5 + 4096];
        memcpy(msg, head, 5);
        if (na) memcpy(msg + 5, a, na);
        if (nb) memcpy(msg + 5 + na, b, nb);
        return write_all(fd, msg, 5 + na + nb);
    }
    if (write_all(fd, head, 5)) return -1;
    if (na && write_all(fd, a, na)) return -1;
    if (nb && write_all(fd, b, nb)) return -1;
    return 0;
}

static int send_failure(int fd, int retryable, vd_status status, const char *msg)
{
    char head[5];
    int32_t st = (int32_t)status;
    head[0] = (char)(retryable ? 1 : 0);
    memcpy(head + 1, &st, 4);
    size_t n = strlen(msg);
    return send_msg(fd, 'F', head, 5, msg, n > 4000 ? 4000 : n);
}

static int flush_progress(horse_pipe *hp)
{
    if (!hp->pending) return 0;
    int64_t body[2] = {hp->pend_done, hp->pend_total};
    hp->pending = 0;
    hp->last_sent_ms = vd_mono_ms();
    return send_msg(hp->fd, 'P', body, sizeof body, NULL, 0);
}

static vd_status pipe_progress(vd_job_ctx *ctx, int64_t done, int64_t total)
{
    horse_pipe *hp = ctx->impl;
    hp->pend_done = done;
    hp->pend_total = total;
    hp->pending = 1;
    /* at most one message per 20 ms, but always the first and the last step */
    if (hp->last_sent_ms == 0 || done >= total || vd_mono_ms() - hp->last_sent_ms >= 20)
        return flush_progress(hp) ? VD_ERR_IO : VD_OK;
    return VD_OK;
}

static int pipe_should_stop(vd_job_ctx *ctx)
{
    horse_pipe *hp = ctx->impl;
    if (hp->pending && vd_mono_ms() - hp->last_sent_ms >= 20) flush_progress(hp);
    return horse_stop_requested != 0;
}

int vd_horse_setup(const vd_horse_opts *opts)
{
    /* die with the supervisor; if it is already gone, do not start */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != opts->parent) return -1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    return 0;
}

void vd_horse_block_signals(sigset_t *saved)
{
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &block, saved);
}

int vd_horse_stop_requested(void)
{
    return horse_stop_requested != 0;
}

_Noreturn void vd_horse_run(const vd_registry *reg, const vd_job *job, int fd,
                            const vd_horse_opts *opts)
{
    if (opts->memory_limit_mb > 0 && vd_horse_memory_limit_supported()) {
        /* The limit is on what the job adds: the horse starts with the
         * supervisor's mappings (shared libraries, their reserved arenas),
         * which can be hundreds of MiB of address space by themselves. */
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = address_space_bytes() + ((rlim_t)opts->memory_limit_mb << 20);
        setrlimit(RLIMIT_AS, &rl);
    }

    horse_pipe hp = {.fd = fd};
    vd_job_ctx ctx = {.progress = pipe_progress, .should_stop = pipe_should_stop, .impl = &hp};
    vd_horse_outcome out;
    vd_horse_run_handler(reg, job, &ctx, &out);

    int rc = flush_progress(&hp);
    const char *r = out.result ? out.result : "";
    if (out.kind == VD_HORSE_DONE && strlen(r) <= VD_HORSE_MAX_BODY)
        rc |= send_msg(fd, 'R', r, strlen(r), NULL, 0);
    else if (out.kind == VD_HORSE_DONE)
        rc |= send_failure(fd, 0, VD_ERR_LIMIT, "result is larger than the work-horse limit");
    else
        rc |= send_failure(fd, out.retryable, out.status, out.error ? out.error : "failed");
    /* End of file now, not when the exit has torn the address space down:
     * the supervisor records the outcome while this process goes away. */
    close(fd);
    _exit(rc ? VD_HORSE_EXIT_PIPE : VD_HORSE_EXIT_OK);
}

_Noreturn void vd_horse_main(const vd_registry *reg, const vd_job *job, int fd,
                             const vd_horse_opts *opts)
{
    if (vd_horse_setup(opts) != 0) _exit(VD_HORSE_EXIT_ORPHAN);
    vd_horse_run(reg, job, fd, opts);
}

/* ---- The supervisor's reader. ---- */

static void parse_msgs(vd_horse_reader *r)
{
    size_t off = 0;
    while (!r->bad && r->len - off >= 5) {
        char kind = r->buf[off];
        uint32_t len;
        memcpy(&len, r->buf + off + 1, 4);
        if (len > VD_HORSE_MAX_BODY) {
            r->bad = 1;
            break;
        }
        if (r->len - off - 5 < len) break;
        const char *body = r->buf + off + 5;
        if (kind == 'P' && len == 16) {
            int64_t v[2];
            memcpy(v, body, 16);
            r->done = v[0];
            r->total = v[1];
            r->progress_new = 1;
        } else if (kind == 'R' && r->out.kind == VD_HORSE_NONE) {
            r->out.kind = VD_HORSE_DONE;
            if (len > 0) {
                r->out.result = malloc(len + 1);
                if (r->out.result) {
                    memcpy(r->out.result, body, len);
                    r->out.result[len] = '\0';
                } else {
                    r->out.kind = VD_HORSE_FAILED;
                    r->out.retryable = 1;
                    r->out.status = VD_ERR_NOMEM;
                    r->out.error = vd_strdup("supervisor out of memory for the result");
                }
            }
        } else if (kind == 'F' && len >= 5 && r->out.kind == VD_HORSE_NONE) {
            int32_t st;
            memcpy(&st, body + 1, 4);
            r->out.kind = VD_HORSE_FAILED;
            r->out.retryable = body[0] != 0;
            r->out.status = (vd_status)st;
            r->out.error = malloc(len - 5 + 1);
            if (r->out.error) {
                memcpy(r->out.error, body + 5, len - 5);
                r->out.error[len - 5] = '\0';
            }
        } else {
            r->bad = 1; /* unknown kind, wrong size, or a second final message */
            break;
        }
        off += 5 + len;
    }
    if (off > 0) {
        memmove(r->buf, r->buf + off, r->len - off);
        r->len -= off;
    }
}

int vd_horse_reader_pump(vd_horse_reader *r, int fd)
{
    for (;;) {
        if (r->cap - r->len < 65536) {
            /* every message fits: at most VD_HORSE_MAX_BODY + 5 bytes */
            size_t limit = (size_t)VD_HORSE_MAX_BODY + 131072;
            size_t cap = r->cap ? r->cap * 2 : 131072;
            if (cap > limit) cap = limit;
            if (cap > r->cap) {
                char *nb = realloc(r->buf, cap);
                if (!nb) return -1;
                r->buf = nb;
                r->cap = cap;
            }
            if (r->len == r->cap) {
                r->bad = 1;
                r->len = 0;
            }
        }
        ssize_t n = read(fd, r->buf + r->len, r->cap - r->len);
        if (n > 0) {
            if (!r->bad) {
                r->len += (size_t)n;
                parse_msgs(r);
            } else {
                r->len = 0;
            }
            continue;
        }
        if (n == 0) return 1;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -1;
    }
}

void vd_horse_reader_free(vd_horse_reader *r)
{
    if (!r) return;
    free(r->buf);
    vd_horse_outcome_clear(&r->out);
    memset(r, 0, sizeof *r);
}
