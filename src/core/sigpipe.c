/* sigpipe.c: the handler-to-pipe route for signals. */
#include "core/sigpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define MAX_SIGS 8

static struct {
    int read_fd, write_fd;
    int sigs[MAX_SIGS];
    size_t nsigs;
} sp = {-1, -1, {0}, 0};

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(sp.write_fd, &b, 1); /* a full pipe drops it: the reader is behind anyway */
    (void)w;
    errno = saved;
}

vd_status vd_sigpipe_open(const int *sigs, size_t n, int *read_fd, vd_error *err)
{
    if (sp.read_fd >= 0) return vd_error_set(err, VD_ERR_STATE, "a sigpipe is already open");
    if (n > MAX_SIGS) return vd_error_set(err, VD_ERR_INVALID, "too many signals");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return vd_error_set(err, VD_ERR_IO, "pipe: %s", strerror(errno));
    sp.read_fd = fds[0];
    sp.write_fd = fds[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sp.nsigs = 0;
    for (size_t i = 0; i < n; i++) {
        sigaction(sigs[i], &sa, NULL);
        sp.sigs[sp.nsigs++] = sigs[i];
    }
    /* Unblock them in this thread in case the caller inherited a blocked mask. */
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < n; i++)
        sigaddset(&set, sigs[i]);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    *read_fd = sp.read_fd;
    return VD_OK;
}

size_t vd_sigpipe_read(int read_fd, int *sigs, size_t max)
{
    size_t got = 0;
    unsigned char buf[64];
    while (got < max) {
        size_t want = max - got < sizeof buf ? max - got : sizeof buf;
        ssize_t r = read(read_fd, buf, want);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; i++)
            sigs[got++] = buf[i];
    }
    return got;
}

void vd_sigpipe_close(void)
{
    if (sp.read_fd < 0) return;
    for (size_t i = 0; i < sp.nsigs; i++)
        signal(sp.sigs[i], SIG_DFL);
    close(sp.read_fd);
    close(sp.write_fd);
    sp.read_fd = sp.write_fd = -1;
    sp.nsigs = 0;
}
