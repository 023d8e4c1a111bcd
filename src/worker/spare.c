/* spare.c: a work-horse forked before its job arrives. See spare.h. */
#include "worker/spare.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sigpipe.h"

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes; -1 at end of file, on an error, or when the horse
 * was asked to stop while it waited. */
static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR && !vd_horse_stop_requested()) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The spare's body: set up, wait for the job, run it. */
_Noreturn void vd_spare_main(const vd_registry *reg, int job_fd, int msg_fd,
                             const vd_horse_opts *opts)
{
    if (vd_horse_setup(opts) != 0) _exit(VD_HORSE_EXIT_ORPHAN);
    vd_job job;
    uint32_t len;
    if (read_full(job_fd, &job, sizeof job) || read_full(job_fd, &len, sizeof len) ||
        len > VD_HORSE_MAX_BODY)
        _exit(VD_HORSE_EXIT_OK); /* retired before a job came */
    job.payload = malloc((size_t)len + 1);
    job.result = job.error = NULL;
    if (!job.payload || read_full(job_fd, job.payload, len)) _exit(VD_HORSE_EXIT_PIPE);
    job.payload[len] = '\0';
    close(job_fd);
    vd_horse_run(reg, &job, msg_fd, opts);
}

vd_status vd_spare_fork(vd_spare *sp, const vd_registry *reg, const vd_horse_opts *opts,
                        const int *close_fds, size_t n, vd_error *err)
{
    memset(sp, 0, sizeof *sp);
    sp->job_fd = sp->msg_fd = -1;
    int jp[2], mp[2];
    if (pipe2(jp, O_CLOEXEC) != 0)
        return vd_error_set(err, VD_ERR_IO, "worker could not create a pipe: %s", strerror(errno));
    if (pipe2(mp, O_CLOEXEC) != 0) {
        int e = errno;
        close(jp[0]);
        close(jp[1]);
        return vd_error_set(err, VD_ERR_IO, "worker could not create a pipe: %s", strerror(e));
    }
    fcntl(mp[0], F_SETFL, O_NONBLOCK);
    sigset_t saved;
    vd_horse_block_signals(&saved);
    pid_t pid = fork();
    if (pid == 0) {
        close(jp[1]);
        close(mp[0]);
        vd_sigpipe_close();
        for (size_t i = 0; i < n; i++)
            close(close_fds[i]);
        vd_spare_main(reg, jp[0], mp[1], opts);
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    close(jp[0]);
    close(mp[1]);
    if (pid < 0) {
        close(jp[1]);
        close(mp[0]);
        return vd_error_set(err, VD_ERR_IO, "worker could not fork a work-horse: %s", strerror(e));
    }
    sp->pid = pid;
    sp->job_fd = jp[1];
    sp->msg_fd = mp[0];
    return VD_OK;
}

vd_status vd_spare_hand_over(vd_spare *sp, const vd_job *job, vd_error *err)
{
    vd_job head = *job;
    head.payload = head.result = head.error = NULL;
    const char *payload = job->payload ? job->payload : "{}";
    size_t n = strlen(payload);
    if (n > VD_HORSE_MAX_BODY)
        return vd_error_set(err, VD_ERR_LIMIT, "payload larger than the work-horse limit");
    uint32_t len = (uint32_t)n;
    /* SIGPIPE is ignored in the supervisor: a dead spare is EPIPE here */
    int bad = write_full(sp->job_fd, &head, sizeof head) ||
              write_full(sp->job_fd, &len, sizeof len) || write_full(sp->job_fd, payload, n);
    int e = errno;
    close(sp->job_fd);
    sp->job_fd = -1;
    if (bad)
        return vd_error_set(err, VD_ERR_IO, "could not hand the job to work-horse %d: %s",
                            (int)sp->pid, strerror(e));
    return VD_OK;
}

void vd_spare_discard(vd_spare *sp)
{
    if (sp->job_fd >= 0) close(sp->job_fd);
    if (sp->msg_fd >= 0) close(sp->msg_fd);
    sp->job_fd = sp->msg_fd = -1;
    sp->pid = 0;
}
