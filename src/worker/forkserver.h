/* forkserver.h: a small process that forks the supervisor's spare horses.
 *
 * Why: a fork copies the page tables of the process that forks, and after it
 * every page that process writes is a copy-on-write fault (with a TLB flush)
 * for as long as the child shares it. When the supervisor forked its own
 * horses, each job cost it ~100 such faults on the heap pages SQLite and
 * malloc write between two forks, plus the fork itself, all on the path from
 * one job to the next (docs/worker.md, "Third pass").
 *
 * The fork server is forked once, when a run starts. It holds no job, lease or
 * queue state of its own and writes almost nothing, so forking it is cheap and
 * its pages stay shared. On request it forks a spare horse (spare.h) with
 * CLONE_PARENT: the horse is the SUPERVISOR's child, so the supervisor reaps
 * it, sees how it ended and kills it exactly as before, and the horse's
 * PR_SET_PDEATHSIG fires when the supervisor dies. The horse's two pipe ends
 * that the supervisor keeps come back over a Unix socket (SCM_RIGHTS) with
 * its pid. The fork server dies with the supervisor (PR_SET_PDEATHSIG) and
 * exits at end of file on its socket.
 *
 * The forked server calls itself "vd-forkserver", the exec'd (light) one
 * "vd-lightfork"; horses of both take the supervisor's process name.
 *
 * One request at a time: ask, then take the answer (poll the socket's fd to
 * take it without blocking). A fork server that died is noticed by the
 * supervisor (waitpid returns its pid) and not replaced: the supervisor forks
 * its spares itself from then on (vd_spare_fork), which is the same horse. */
#ifndef VD_WORKER_FORKSERVER_H
#define VD_WORKER_FORKSERVER_H

#include <sys/types.h>

#include "core/err.h"
#include "worker/horse.h"
#include "worker/registry.h"
#include "worker/spare.h"

typedef struct {
    pid_t pid;   /* read-only: the fork server's pid; 0 = none (never started, or stopped) */
    int sock;    /* read-only: the supervisor's end of the socket; -1 = none */
    int pending; /* read-only: a spare was asked for and not taken yet */
} vd_forkserver;

/* Forks the fork server into *fs. opts->parent must be the caller's pid (the
 * horses' parent). The child closes the process's sigpipe and blocks SIGTERM,
 * SIGINT and SIGCHLD (its horses unblock them in vd_horse_setup). VD_ERR_IO
 * when socketpair or fork fails; *fs is then "none". */
vd_status vd_forkserver_start(vd_forkserver *fs, const vd_registry *reg, const vd_horse_opts *opts,
                              vd_error *err);

/* The descriptor on which an exec'd fork server finds its socket. */
#define VD_FORKSERVER_FD 3

/* Starts a light fork server into *fs: forks, and in the child execs argv
 * (argv[0] a path; visiond-horse, src/horse_main.c) with its end of the socket
 * as descriptor VD_FORKSERVER_FD and every other descriptor above 2 closed.
 * Sends it opts, then waits up to timeout_ms for its hello: the job types it
 * runs, into *types (owned: the names joined by ','). opts->parent must be the
 * caller's pid. VD_ERR_IO when it cannot be started or says nothing in time
 * (its pid is then killed and reaped), VD_ERR_STATE when it is of another build
 * (the job crosses the socket as a struct: spare.h). *fs is "none" then. */
vd_status vd_forkserver_exec(vd_forkserver *fs, const char *const *argv, const vd_horse_opts *opts,
                             int timeout_ms, char **types, vd_error *err);

/* The body of an exec'd fork server: takes the opts on sock, answers with the
 * names of reg's types, then serves like the forked one. Never returns; exits
 * 2 when the supervisor is of another build. */
_Noreturn void vd_forkserver_serve(int sock, const vd_registry *reg);

/* Asks for one spare (a one-byte write; never blocks). VD_ERR_STATE when one
 * is pending already, VD_ERR_IO when the fork server is gone. */
vd_status vd_forkserver_ask(vd_forkserver *fs, vd_error *err);

/* Takes the asked-for spare into *sp. wait = 0 returns VD_ERR_EMPTY when the
 * answer is not there yet; wait = 1 blocks until it is (a fork: ~1 ms).
 * VD_ERR_IO when the fork server could not fork, or is gone (end of file). */
vd_status vd_forkserver_take(vd_forkserver *fs, vd_spare *sp, int wait, vd_error *err);

/* Closes the socket (the fork server exits at end of file) and forgets it; the
 * caller reaps fs->pid (returned; 0 when there was none). A spare that was
 * asked for and not taken dies with the fork server's end of the pipes. */
pid_t vd_forkserver_stop(vd_forkserver *fs);

#endif
