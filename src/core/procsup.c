/* procsup.c: start, reap, restart with backoff, and stop child processes. */
#include "core/procsup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define BACKOFF_MIN_MS 500
#define STABLE_MS      30000

typedef struct {
    char name[48];
    char **argv; /* owned, NULL-terminated */
    int stop_order;
    pid_t pid;             /* 0 = not running */
    int64_t started_ms;    /* monotonic */
    int64_t restart_at_ms; /* monotonic; 0 = start now */
    int64_t backoff_ms;
    int restarts;
} child;

struct vd_procsup {
    child *kids;
    size_t n, cap;
    int64_t backoff_max_ms;
    int fatal_exit;         /* an exit status that is not restarted; 0 = none */
    const char *gave_up_on; /* the child that exited with it, or NULL */
};

vd_procsup *vd_procsup_new(int64_t backoff_max_ms)
{
    vd_procsup *s = calloc(1, sizeof *s);
    if (s) s->backoff_max_ms = backoff_max_ms > BACKOFF_MIN_MS ? backoff_max_ms : BACKOFF_MIN_MS;
    return s;
}

vd_status vd_procsup_add(vd_procsup *s, const char *name, char *const argv[], int stop_order,
                         vd_error *err)
{
    if (!argv || !argv[0]) return vd_error_set(err, VD_ERR_INVALID, "child %s has no argv", name);
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        child *k = realloc(s->kids, cap * sizeof *k);
        if (!k) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        s->kids = k;
        s->cap = cap;
    }
    child *c = &s->kids[s->n];
    memset(c, 0, sizeof *c);
    vd_strlcpy(c->name, name, sizeof c->name);
    size_t argc = 0;
    while (argv[argc])
        argc++;
    c->argv = calloc(argc + 1, sizeof *c->argv);
    if (!c->argv) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < argc; i++)
        if (!(c->argv[i] = vd_strdup(argv[i]))) {
            for (size_t j = 0; j < i; j++)
                free(c->argv[j]);
            free(c->argv);
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        }
    c->stop_order = stop_order;
    c->backoff_ms = BACKOFF_MIN_MS;
    s->n++;
    return VD_OK;
}

/* Forks and execs one child in its own process group. The child gets
 * SIGTERM when the supervisor dies (PR_SET_PDEATHSIG, kept across exec), so
 * a supervisor killed with SIGKILL leaves no orphans: each child stops as on
 * a normal SIGTERM (workers hand their jobs back). */
static vd_status spawn(child *c, vd_error *err)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return vd_error_set(err, VD_ERR_IO, "fork %s: %s", c->name, strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(127); /* the supervisor already died */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        execv(c->argv[0], c->argv);
        _exit(127);
    }
    setpgid(pid, pid); /* also from the parent, so there is no race with a quick stop */
    c->pid = pid;
    c->started_ms = vd_mono_ms();
    VD_INFO("started %s (pid %d)", c->name, (int)pid);
    return VD_OK;
}

vd_status vd_procsup_start_all(vd_procsup *s, vd_error *err)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->kids[i].pid == 0) {
            vd_status rc = spawn(&s->kids[i], err);
            if (rc != VD_OK) return rc;
        }
    return VD_OK;
}

static child *find_pid(vd_procsup *s, pid_t pid)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->kids[i].pid == pid) return &s->kids[i];
    return NULL;
}

int vd_procsup_run(vd_procsup *s, volatile sig_atomic_t *stop)
{
    int restarts = 0;
    while (!*stop) {
        int wstatus;
        pid_t pid;
        while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0) {
            child *c = find_pid(s, pid);
            if (!c) continue;
            int64_t now = vd_mono_ms(), lived = now - c->started_ms;
            if (lived >= STABLE_MS) c->backoff_ms = BACKOFF_MIN_MS;
            char how[96];
            vd_describe_wait_status(wstatus, how, sizeof how);
            if (s->fatal_exit && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == s->fatal_exit) {
                VD_ERROR("%s (pid %d) %s after %.1f s: a configuration error, not restarting it",
                         c->name, (int)pid, how, (double)lived / 1000.0);
                c->pid = 0;
                c->restart_at_ms = INT64_MAX;
                if (!s->gave_up_on) s->gave_up_on = c->name;
                continue;
            }
            VD_WARN("%s (pid %d) %s after %.1f s; restarting in %.1f s", c->name, (int)pid, how,
                    (double)lived / 1000.0, (double)c->backoff_ms / 1000.0);
            c->pid = 0;
            c->restart_at_ms = now + c->backoff_ms;
            c->backoff_ms *= 2;
            if (c->backoff_ms > s->backoff_max_ms) c->backoff_ms = s->backoff_max_ms;
        }
        if (s->gave_up_on) break;
        int64_t now = vd_mono_ms();
        for (size_t i = 0; i < s->n && !*stop; i++) {
            child *c = &s->kids[i];
            if (c->pid != 0 || now < c->restart_at_ms) continue;
            vd_error err;
            if (spawn(c, &err) == VD_OK) {
                c->restarts++;
                restarts++;
            } else {
                VD_ERROR("%s", err.msg);
                c->restart_at_ms = now + c->backoff_ms;
            }
        }
        vd_sleep_ms(50);
    }
    return restarts;
}

void vd_procsup_stop(vd_procsup *s, int64_t grace_ms)
{
    int max_order = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->kids[i].stop_order > max_order) max_order = s->kids[i].stop_order;
    for (int order = 0; order <= max_order; order++) {
        int running = 0;
        for (size_t i = 0; i < s->n; i++) {
            child *c = &s->kids[i];
            if (c->stop_order != order || c->pid == 0) continue;
            VD_INFO("stopping %s (pid %d)", c->name, (int)c->pid);
            kill(c->pid, SIGTERM);
            running++;
        }
        int64_t deadline = vd_mono_ms() + grace_ms;
        while (running > 0) {
            int wstatus;
            pid_t pid = waitpid(-1, &wstatus, WNOHANG);
            if (pid > 0) {
                child *c = find_pid(s, pid);
                if (!c) continue;
                char how[96];
                VD_INFO("%s (pid %d) %s", c->name, (int)pid,
                        vd_describe_wait_status(wstatus, how, sizeof how));
                kill(-pid, SIGKILL); /* leftovers of its process group: no orphans */
                c->pid = 0;
                if (c->stop_order == order) running--;
                continue;
            }
            if (pid < 0 && errno == ECHILD) break;
            if (vd_mono_ms() >= deadline) {
                for (size_t i = 0; i < s->n; i++) {
                    child *c = &s->kids[i];
                    if (c->stop_order != order || c->pid == 0) continue;
                    VD_WARN("%s (pid %d) did not stop in %lld ms; killing it", c->name, (int)c->pid,
                            (long long)grace_ms);
                    kill(-c->pid, SIGKILL); /* the whole process group */
                }
                deadline = INT64_MAX;
            }
            vd_sleep_ms(20);
        }
    }
}

void vd_procsup_set_fatal_exit(vd_procsup *s, int status)
{
    s->fatal_exit = status;
}

const char *vd_procsup_gave_up(const vd_procsup *s)
{
    return s->gave_up_on;
}

pid_t vd_procsup_pid(const vd_procsup *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->kids[i].name, name) == 0) return s->kids[i].pid;
    return -1;
}

int vd_procsup_restarts(const vd_procsup *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->kids[i].name, name) == 0) return s->kids[i].restarts;
    return -1;
}

void vd_procsup_free(vd_procsup *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        for (char **a = s->kids[i].argv; a && *a; a++)
            free(*a);
        free(s->kids[i].argv);
    }
    free(s->kids);
    free(s);
}
