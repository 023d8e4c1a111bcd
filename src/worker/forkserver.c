/* forkserver.c: the process that forks spare horses. See forkserver.h. */
#include "worker/forkserver.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sigpipe.h"
#include "core/util.h"

/* The answer to one request: the spare's pid, or -errno when it could not be
 * forked; with a pid come two descriptors (job pipe write end, message pipe
 * read end). */
typedef struct {
    int32_t pid;
} answer;

/* ------------------------------------------------------------ the server */

/* The process name the supervisor had; the server calls itself
 * "vd-forkserver" and gives each horse the supervisor's name back. */
static char horse_name[17];

/* Forks a child whose parent is our parent (the supervisor). The raw system
 * call, not glibc's fork(): fork() has no way to pass CLONE_PARENT. In the
 * child, glibc's cached thread id is the fork server's; glibc uses the kernel's
 * for raise() and abort(), and the horse starts no thread that would signal
 * the main one by it. */
static pid_t clone_sibling(void)
{
    return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
}

static void send_answer(int sock, int32_t pid, const int *fds, int nfds)
{
    answer a = {.pid = pid};
    struct iovec iov = {.iov_base = &a, .iov_len = sizeof a};
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        memset(&ctl, 0, sizeof ctl);
        m.msg_control = ctl.buf;
        m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    while (sendmsg(sock, &m, MSG_NOSIGNAL) < 0 && errno == EINTR) {
    }
}

/* Forks one spare for the supervisor and answers. */
static void serve_one(int sock, const vd_registry *reg, const vd_horse_opts *opts)
{
    int jp[2], mp[2];
    if (pipe2(jp, O_CLOEXEC) != 0) {
        send_answer(sock, -errno, NULL, 0);
        return;
    }
    if (pipe2(mp, O_CLOEXEC) != 0) {
        int e = errno;
        close(jp[0]);
        close(jp[1]);
        send_answer(sock, -e, NULL, 0);
        return;
    }
    fcntl(mp[0], F_SETFL, O_NONBLOCK); /* the supervisor reads it with vd_horse_reader */
    pid_t pid = clone_sibling();
    if (pid == 0) {
        prctl(PR_SET_NAME, horse_name);
        close(sock);
        close(jp[1]);
        close(mp[0]);
        vd_spare_main(reg, jp[0], mp[1], opts);
    }
    int e = errno;
    close(jp[0]);
    close(mp[1]);
    int keep[2] = {jp[1], mp[0]};
    send_answer(sock, pid > 0 ? (int32_t)pid : -e, keep, pid > 0 ? 2 : 0);
    close(jp[1]);
    close(mp[0]);
}

/* self: the server's process name; name: what the horses call themselves (the
 * supervisor's process name). */
static _Noreturn void server_main(int sock, const vd_registry *reg, const vd_horse_opts *opts,
                                  const char *self, const char *name)
{
    memcpy(horse_name, name, sizeof horse_name - 1);
    prctl(PR_SET_NAME, self);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != opts->parent) _exit(0);
    signal(SIGINT, SIG_IGN); /* a terminal's Ctrl-C is the supervisor's to handle */
    for (;;) {
        char req;
        ssize_t r = read(sock, &req, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) _exit(0); /* the supervisor closed its end */
        serve_one(sock, reg, opts);
    }
}

/* ------------------------------------------------------------ the client */

/* Forks a fork server into *fs over a fresh socket pair: SIGTERM, SIGINT and
 * SIGCHLD are blocked across the fork (for good in the server: its horses
 * unblock them, vd_horse_setup), and the child runs body(its socket end, arg),
 * which does not return. */
static vd_status fork_server(vd_forkserver *fs, void (*body)(int sock, const void *arg),
                             const void *arg, vd_error *err)
{
    fs->pid = 0;
    fs->sock = -1;
    fs->pending = 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return vd_error_set(err, VD_ERR_IO, "worker could not create a socket: %s",
                            strerror(errno));
    sigset_t saved;
    vd_horse_block_signals(&saved);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        body(sv[1], arg);
        _exit(127);
    }
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return vd_error_set(err, VD_ERR_IO, "worker could not fork its fork server: %s",
                            strerror(e));
    }
    fs->pid = pid;
    fs->sock = sv[0];
    return VD_OK;
}

typedef struct {
    const vd_registry *reg;
    const vd_horse_opts *opts;
} forked_arg;

/* The forked fork server's body: a copy of the supervisor. */
static void forked_body(int sock, const void *arg)
{
    const forked_arg *a = arg;
    vd_sigpipe_close();
    char name[sizeof horse_name] = {0};
    prctl(PR_GET_NAME, name);
    server_main(sock, a->reg, a->opts, "vd-forkserver", name);
}

vd_status vd_forkserver_start(vd_forkserver *fs, const vd_registry *reg, const vd_horse_opts *opts,
                              vd_error *err)
{
    forked_arg a = {.reg = reg, .opts = opts};
    return fork_server(fs, forked_body, &a, err);
}

/* ------------------------------------------------ the exec'd fork server */

/* What both ends of an exec'd fork server's socket check first: the job and
 * the opts cross it as structs (spare.h), so both must be of one build. */
typedef struct {
    char version[32];
    uint32_t job_size, opts_size;
} build_id;

/* The supervisor's first message: who it is, the opts, its process name. */
typedef struct {
    build_id id;
    vd_horse_opts opts;
    char name[sizeof horse_name];
} exec_setup;

static void build_id_fill(build_id *b)
{
    memset(b, 0, sizeof *b);
    vd_strlcpy(b->version, VISIOND_VERSION, sizeof b->version);
    b->job_size = (uint32_t)sizeof(vd_job);
    b->opts_size = (uint32_t)sizeof(vd_horse_opts);
}

_Noreturn void vd_forkserver_serve(int sock, const vd_registry *reg)
{
    exec_setup m;
    ssize_t r;
    while ((r = recv(sock, &m, sizeof m, 0)) < 0 && errno == EINTR) {
    }
    build_id mine;
    build_id_fill(&mine);
    if (r != (ssize_t)sizeof m || memcmp(&m.id, &mine, sizeof mine) != 0) _exit(2);
    m.name[sizeof m.name - 1] = '\0';
    size_t len = sizeof mine;
    for (size_t i = 0; i < vd_registry_count(reg); i++)
        len += strlen(vd_registry_name(reg, i)) + 1;
    char *hello = malloc(len + 1);
    if (!hello) _exit(1);
    memcpy(hello, &mine, sizeof mine);
    size_t at = sizeof mine;
    for (size_t i = 0; i < vd_registry_count(reg); i++) {
        const char *t = vd_registry_name(reg, i);
        at += (size_t)sprintf(hello + at, "%s%s", i ? "," : "", t);
    }
    if (send(sock, hello, at, MSG_NOSIGNAL) != (ssize_t)at) _exit(1);
    free(hello);
    server_main(sock, reg, &m.opts, "vd-lightfork", m.name);
}

/* The exec'd fork server's body, in the freshly forked child: the socket
 * becomes VD_FORKSERVER_FD, every other descriptor above 2 is closed, argv
 * (a NULL-terminated const char *[]) is executed. */
static void exec_body(int sock, const void *arg)
{
    const char *const *argv = arg;
    if (sock == VD_FORKSERVER_FD)
        fcntl(sock, F_SETFD, 0);
    else if (dup2(sock, VD_FORKSERVER_FD) < 0)
        _exit(127);
    close_range(VD_FORKSERVER_FD + 1, ~0U, 0);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

/* Sends the setup and takes the hello; fills *types. */
static vd_status exec_handshake(vd_forkserver *fs, const char *const *argv,
                                const vd_horse_opts *opts, int timeout_ms, char **types,
                                vd_error *err)
{
    exec_setup m;
    memset(&m, 0, sizeof m);
    build_id_fill(&m.id);
    m.opts = *opts;
    prctl(PR_GET_NAME, m.name);
    if (send(fs->sock, &m, sizeof m, MSG_NOSIGNAL) != (ssize_t)sizeof m)
        return vd_error_set(err, VD_ERR_IO, "could not set up the fork server %s: %s", argv[0],
                            strerror(errno));
    struct pollfd p = {.fd = fs->sock, .events = POLLIN};
    int pr;
    while ((pr = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
    }
    if (pr == 0)
        return vd_error_set(err, VD_ERR_IO, "the fork server %s said nothing within %d ms", argv[0],
                            timeout_ms);
    enum { MAX_HELLO = 1 << 16 };
    char *buf = malloc(MAX_HELLO + 1);
    if (!buf) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    ssize_t r;
    while ((r = recv(fs->sock, buf, MAX_HELLO, MSG_DONTWAIT)) < 0 && errno == EINTR) {
    }
    vd_status st = VD_OK;
    if (r < (ssize_t)sizeof(build_id))
        st = vd_error_set(err, VD_ERR_IO, "the fork server %s exited before it started", argv[0]);
    else if (memcmp(buf, &m.id, sizeof m.id) != 0)
        st = vd_error_set(err, VD_ERR_STATE, "the fork server %s is of another build", argv[0]);
    if (st == VD_OK) {
        buf[r] = '\0';
        *types = vd_strdup(buf + sizeof m.id);
        if (!*types) st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    free(buf);
    return st;
}

vd_status vd_forkserver_exec(vd_forkserver *fs, const char *const *argv, const vd_horse_opts *opts,
                             int timeout_ms, char **types, vd_error *err)
{
    *types = NULL;
    vd_status st = fork_server(fs, exec_body, argv, err);
    if (st != VD_OK) return st;
    st = exec_handshake(fs, argv, opts, timeout_ms, types, err);
    if (st != VD_OK) {
        pid_t pid = vd_forkserver_stop(fs);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return st;
}

vd_status vd_forkserver_ask(vd_forkserver *fs, vd_error *err)
{
    if (fs->sock < 0) return vd_error_set(err, VD_ERR_IO, "the fork server is gone");
    if (fs->pending) return vd_error_set(err, VD_ERR_STATE, "a spare is asked for already");
    char req = 'S';
    ssize_t w;
    while ((w = send(fs->sock, &req, 1, MSG_NOSIGNAL | MSG_DONTWAIT)) < 0 && errno == EINTR) {
    }
    if (w != 1)
        return vd_error_set(err, VD_ERR_IO, "could not ask the fork server for a spare: %s",
                            w < 0 ? strerror(errno) : "short write");
    fs->pending = 1;
    return VD_OK;
}

/* Closes every descriptor that came with a message we do not keep. */
static void close_passed(struct msghdr *m)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int fds[8];
        if (n > 8) n = 8;
        memcpy(fds, CMSG_DATA(c), n * sizeof(int));
        for (size_t i = 0; i < n; i++)
            close(fds[i]);
    }
}

vd_status vd_forkserver_take(vd_forkserver *fs, vd_spare *sp, int wait, vd_error *err)
{
    if (!fs->pending) return vd_error_set(err, VD_ERR_STATE, "no spare was asked for");
    answer a = {0};
    struct iovec iov = {.iov_base = &a, .iov_len = sizeof a};
    union {
        char buf[CMSG_SPACE(2 * sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t r;
    while ((r = recvmsg(fs->sock, &m, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT))) < 0 &&
           errno == EINTR) {
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return vd_error_set(err, VD_ERR_EMPTY, "the spare is not forked yet");
    fs->pending = 0;
    struct cmsghdr *c = r == (ssize_t)sizeof a ? CMSG_FIRSTHDR(&m) : NULL;
    int ok = a.pid > 0 && c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
             c->cmsg_len == CMSG_LEN(2 * sizeof(int)) && !(m.msg_flags & MSG_CTRUNC);
    if (!ok) {
        if (r > 0) close_passed(&m);
        if (r == (ssize_t)sizeof a && a.pid < 0)
            return vd_error_set(err, VD_ERR_IO, "the fork server could not fork a work-horse: %s",
                                strerror(-a.pid));
        return vd_error_set(err, VD_ERR_IO, "the fork server is gone");
    }
    int fds[2];
    memcpy(fds, CMSG_DATA(c), sizeof fds);
    sp->pid = (pid_t)a.pid;
    sp->job_fd = fds[0];
    sp->msg_fd = fds[1];
    return VD_OK;
}

pid_t vd_forkserver_stop(vd_forkserver *fs)
{
    pid_t pid = fs->pid;
    if (fs->sock >= 0) close(fs->sock);
    fs->sock = -1;
    fs->pid = 0;
    fs->pending = 0;
    return pid;
}
