/* sigpipe.h: signals delivered as bytes on a pipe, for poll/epoll loops.
 *
 * Why not signalfd: a signalfd only sees a signal that every thread of the
 * process blocks, and libraries start threads before main runs (OpenBLAS,
 * pulled in by liblinear, starts its thread pool from a constructor). A
 * process-directed SIGTERM may then go to such a thread and kill the process
 * (or a SIGCHLD is lost). A handler runs on whichever thread the kernel picks,
 * so routing through a handler and a pipe works in every process.
 *
 * One sigpipe per process (the handler's write end is the one piece of
 * process-wide state it keeps); used by long-running commands only. */
#ifndef VD_SIGPIPE_H
#define VD_SIGPIPE_H

#include <stddef.h>

#include "core/err.h"

/* Installs handlers for the n signals in sigs and returns, in *read_fd, the
 * non-blocking read end of a pipe that receives one byte (the signal number)
 * per delivered signal. VD_ERR_STATE when a sigpipe is already open. */
vd_status vd_sigpipe_open(const int *sigs, size_t n, int *read_fd, vd_error *err);

/* Reads pending signal numbers into sigs (at most max); returns how many
 * (0 when none is pending). */
size_t vd_sigpipe_read(int read_fd, int *sigs, size_t max);

/* Restores the default dispositions of the signals and closes the pipe. */
void vd_sigpipe_close(void);

#endif
