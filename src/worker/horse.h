/* horse.h: running one job, in a forked work-horse or inline.
 *
 * The supervisor forks one work-horse per job. The horse never touches the
 * queue: it inherits the job (already reserved by the supervisor) through
 * fork's copy of memory, runs the handler, and reports back over a pipe:
 * progress messages while it runs and exactly one final message, the result
 * or the failure. The supervisor is the only process that writes the job's
 * outcome to the queue, which makes "completed exactly once" hold by
 * construction (see docs/worker.md).
 *
 * Wire format on the pipe (same machine, native byte order): a 1-byte kind,
 * a 4-byte body length, the body.
 *   'P' progress: int64 done, int64 total
 *   'R' result:   the result JSON text (empty = no result)
 *   'F' failure:  1 byte retryable, 4 bytes vd_status, the message text
 *
 * The horse stops on SIGTERM only when its handler asks
 * vd_job_ctx_should_stop; it ignores SIGINT (a terminal's Ctrl-C reaches the
 * supervisor, which decides), and it dies with its supervisor
 * (PR_SET_PDEATHSIG), so that an orphan never runs on after its lease. */
#ifndef VD_WORKER_HORSE_H
#define VD_WORKER_HORSE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/queue.h"
#include "worker/job_ctx.h"
#include "worker/registry.h"

/* Exit statuses of a work-horse. */
enum {
    VD_HORSE_EXIT_OK = 0,     /* the final message was written */
    VD_HORSE_EXIT_PIPE = 3,   /* the final message could not be written */
    VD_HORSE_EXIT_ORPHAN = 4, /* the supervisor died before the horse started */
};

/* Largest result or message a horse may send (bigger results fail the job). */
#define VD_HORSE_MAX_BODY (64u << 20)

typedef enum { VD_HORSE_NONE = 0, VD_HORSE_DONE, VD_HORSE_FAILED } vd_horse_kind;

/* What the handler said about the job. */
typedef struct {
    vd_horse_kind kind;
    char *result;  /* owned: DONE's JSON text or NULL */
    char *error;   /* owned: FAILED's message */
    int retryable; /* FAILED: whether the failure may be retried */
    vd_status status;
} vd_horse_outcome;

/* Frees the owned strings of *o and zeroes it. */
void vd_horse_outcome_clear(vd_horse_outcome *o);

/* Runs the handler of job->type with ctx (whose progress/should_stop/impl the
 * caller has set) and fills *out (cleared by the caller). An unknown type is
 * a permanent failure. */
void vd_horse_run_handler(const vd_registry *reg, const vd_job *job, vd_job_ctx *ctx,
                          vd_horse_outcome *out);

typedef struct {
    pid_t parent;            /* the supervisor's pid (to detect being orphaned) */
    int64_t memory_limit_mb; /* > 0: RLIMIT_AS of the horse, in MiB */
} vd_horse_opts;

/* Returns 1 when vd_horse_opts.memory_limit_mb is enforced; 0 in an
 * AddressSanitizer build, whose shadow memory cannot live under RLIMIT_AS. */
int vd_horse_memory_limit_supported(void);

/* The body of a freshly forked work-horse: vd_horse_setup, then
 * vd_horse_run. Never returns. The caller has closed every inherited
 * descriptor it must not keep. */
_Noreturn void vd_horse_main(const vd_registry *reg, const vd_job *job, int fd,
                             const vd_horse_opts *opts);

/* A fresh horse's first step: dies with its parent (PR_SET_PDEATHSIG), takes
 * its own signal dispositions (SIGTERM sets the stop flag, SIGINT ignored)
 * and unblocks signals. Returns -1 when the parent is already gone (the
 * horse must _exit(VD_HORSE_EXIT_ORPHAN)). */
int vd_horse_setup(const vd_horse_opts *opts);

/* Blocks SIGTERM, SIGINT and SIGCHLD in the calling thread, the old mask in
 * *saved. Held across the fork of a horse (or of the fork server) and
 * restored in the parent right after: the child keeps them blocked until it
 * has its own handlers (vd_horse_setup), so a signal sent to a fresh child
 * never runs the supervisor's handler there. */
void vd_horse_block_signals(sigset_t *saved);

/* Returns 1 once SIGTERM reached this horse. */
int vd_horse_stop_requested(void);

/* Applies the memory limit, runs the job, writes the final message to fd,
 * closes fd (so the supervisor sees end of file before the exit has torn
 * the process down) and _exits with a VD_HORSE_EXIT_ code. */
_Noreturn void vd_horse_run(const vd_registry *reg, const vd_job *job, int fd,
                            const vd_horse_opts *opts);

/* The supervisor's side of one horse's pipe. */
typedef struct {
    char *buf; /* bytes not yet parsed */
    size_t len, cap;
    int64_t done, total; /* the latest progress */
    int progress_new;    /* set when a progress message arrived; the reader's user clears it */
    vd_horse_outcome out;
    int bad; /* a malformed or oversized message arrived; the rest is ignored */
} vd_horse_reader;

/* Reads what fd (non-blocking) has and parses complete messages. Returns 1 at
 * end of file, 0 when no more bytes are ready now, -1 on a read error. */
int vd_horse_reader_pump(vd_horse_reader *r, int fd);

/* Frees the reader's buffer and outcome. */
void vd_horse_reader_free(vd_horse_reader *r);

#endif
