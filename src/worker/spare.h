/* spare.h: forking work-horses ahead of their job.
 *
 * The supervisor keeps one spare horse: a fork that has already done its
 * set-up (vd_horse_setup) and waits, blocked in read(), on a pipe of its own
 * for one job. Handing a job over is one write; the fork itself (copying the
 * supervisor's mappings, the at-fork handlers) happens while the previous job
 * runs, off the path from one job to the next. A spare runs at most one job
 * and exits; end of file on its job pipe (the supervisor stops or retires it)
 * makes it exit 0 without running anything. It holds no job, no lease and no
 * queue handle, so killing it costs nothing: the supervisor reaps it and forks
 * another.
 *
 * Job wire format (same machine, same binary): the vd_job struct with its
 * owned pointers zeroed, then a uint32 payload length, then the payload. */
#ifndef VD_WORKER_SPARE_H
#define VD_WORKER_SPARE_H

#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"
#include "queue/queue.h"
#include "worker/horse.h"
#include "worker/registry.h"

typedef struct {
    pid_t pid;  /* 0 = none */
    int job_fd; /* write end of the job pipe (blocking); -1 after the hand-over */
    int msg_fd; /* read end of the message pipe (non-blocking), for vd_horse_reader */
} vd_spare;

/* Forks a spare horse into *sp. close_fds (n of them) are descriptors of the
 * parent the child must not keep (other horses' message pipes); the child
 * also closes the process's sigpipe. SIGTERM, SIGINT and SIGCHLD are blocked
 * across the fork until the child has its own handlers. VD_ERR_IO when pipe
 * or fork fails. */
vd_status vd_spare_fork(vd_spare *sp, const vd_registry *reg, const vd_horse_opts *opts,
                        const int *close_fds, size_t n, vd_error *err);

/* Hands job to the spare and closes its job pipe: from then on it is that
 * job's horse. VD_ERR_IO when the spare is gone (EPIPE): the caller discards
 * it and forks another. */
vd_status vd_spare_hand_over(vd_spare *sp, const vd_job *job, vd_error *err);

/* The body of a spare, in the freshly forked child: vd_horse_setup, then wait
 * on job_fd for the job and run it, reporting on msg_fd. Never returns. The
 * caller has closed every inherited descriptor the child must not keep. Used
 * by vd_spare_fork and by the fork server (forkserver.h). */
_Noreturn void vd_spare_main(const vd_registry *reg, int job_fd, int msg_fd,
                             const vd_horse_opts *opts);

/* Closes the spare's descriptors (it sees end of file and exits 0 when it
 * had no job yet) and forgets it; the caller reaps the pid. */
void vd_spare_discard(vd_spare *sp);

#endif
