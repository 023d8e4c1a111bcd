/* test_procsup.c: the child-process supervisor of `visiond up`, and its config. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/procsup.h"
#include "core/sigpipe.h"
#include "core/util.h"
#include "vdtest.h"

static volatile sig_atomic_t stop_flag;

static void on_alarm(int sig)
{
    (void)sig;
    stop_flag = 1;
}

VD_TEST(dying_child_is_restarted_and_stable_one_is_not)
{
    vd_error err;
    vd_procsup *s = vd_procsup_new(1000);
    CHECK(s != NULL);
    char *dies[] = {"/bin/sh", "-c", "exit 3", NULL};
    char *lives[] = {"/bin/sleep", "30", NULL};
    CHECK_OK(vd_procsup_add(s, "dies", dies, 0, &err));
    CHECK_OK(vd_procsup_add(s, "lives", lives, 1, &err));
    CHECK_OK(vd_procsup_start_all(s, &err));
    pid_t first = vd_procsup_pid(s, "lives");
    CHECK(first > 0);
    /* Supervise for 2.5 s: "dies" restarts after 0.5 s, 1 s, ... backoff. */
    stop_flag = 0;
    signal(SIGALRM, on_alarm);
    alarm(3);
    int restarts = vd_procsup_run(s, &stop_flag);
    CHECK(restarts >= 1);
    CHECK(vd_procsup_restarts(s, "dies") >= 1);
    CHECK_EQ_INT(vd_procsup_restarts(s, "lives"), 0);
    CHECK_EQ_INT(vd_procsup_pid(s, "lives"), first);
    CHECK_EQ_INT(vd_procsup_pid(s, "nobody"), -1);
    vd_procsup_stop(s, 2000);
    CHECK_EQ_INT(vd_procsup_pid(s, "lives"), 0);
    CHECK(kill(first, 0) != 0); /* really gone */
    vd_procsup_free(s);
}

/* issue 18 item 8: a child that exits with the fatal status (up: 2, a
 * configuration error) is not restarted; run returns at once, naming it,
 * while a child dying with another status is restarted as before. */
VD_TEST(child_with_fatal_exit_is_not_restarted)
{
    vd_error err;
    vd_procsup *s = vd_procsup_new(1000);
    CHECK(s != NULL);
    vd_procsup_set_fatal_exit(s, 2);
    char *config_error[] = {"/bin/sh", "-c", "sleep 0.2; exit 2", NULL};
    char *lives[] = {"/bin/sleep", "30", NULL};
    CHECK_OK(vd_procsup_add(s, "api", config_error, 0, &err));
    CHECK_OK(vd_procsup_add(s, "lives", lives, 1, &err));
    CHECK_OK(vd_procsup_start_all(s, &err));
    CHECK(vd_procsup_gave_up(s) == NULL);
    stop_flag = 0;
    signal(SIGALRM, on_alarm);
    alarm(20); /* a safety net only: run must return as soon as "api" exits */
    int restarts = vd_procsup_run(s, &stop_flag);
    alarm(0);
    CHECK_EQ_INT(stop_flag, 0); /* returned on its own, not by the alarm */
    CHECK_EQ_INT(restarts, 0);
    CHECK(vd_procsup_gave_up(s) != NULL && strcmp(vd_procsup_gave_up(s), "api") == 0);
    CHECK_EQ_INT(vd_procsup_restarts(s, "api"), 0);
    CHECK_EQ_INT(vd_procsup_pid(s, "api"), 0);
    CHECK(vd_procsup_pid(s, "lives") > 0);
    vd_procsup_stop(s, 2000);
    vd_procsup_free(s);
}

/* Counts processes of process group pgid that are not zombies (a zombie
 * waits for init to reap it, which a container's init may never do). */
static int live_in_group(pid_t pgid)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')'); /* fields after the command name */
        char state;
        int ppid, pgrp;
        if (rp && sscanf(rp + 2, "%c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
            state != 'Z')
            n++;
    }
    if (d) closedir(d);
    return n;
}

VD_TEST(child_ignoring_sigterm_is_killed_after_grace)
{
    vd_error err;
    vd_procsup *s = vd_procsup_new(1000);
    char *stubborn[] = {"/bin/sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30", NULL};
    CHECK_OK(vd_procsup_add(s, "stubborn", stubborn, 0, &err));
    CHECK_OK(vd_procsup_start_all(s, &err));
    pid_t pid = vd_procsup_pid(s, "stubborn");
    vd_sleep_ms(200); /* let the shell install its trap and start its own child */
    vd_procsup_stop(s, 300);
    CHECK_EQ_INT(vd_procsup_pid(s, "stubborn"), 0);
    CHECK(kill(pid, 0) != 0);
    vd_sleep_ms(100);
    CHECK_EQ_INT(live_in_group(pid), 0); /* its background sleep went with it: no orphan */
    vd_procsup_free(s);
}

/* 1 while pid runs and is not a zombie. */
static int running(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z';
}

/* Regression (chaos drill): `visiond up` killed with SIGKILL left its model
 * server, workers and api running as orphans. */
VD_TEST(children_get_sigterm_when_the_supervisor_is_killed)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t sup = fork();
    CHECK(sup >= 0);
    if (sup == 0) { /* the supervisor: starts one child, reports its pid, waits */
        close(fds[0]);
        vd_error err;
        vd_procsup *s = vd_procsup_new(1000);
        char *lives[] = {"/bin/sleep", "30", NULL};
        if (!s || vd_procsup_add(s, "lives", lives, 0, &err) != VD_OK ||
            vd_procsup_start_all(s, &err) != VD_OK)
            _exit(1);
        pid_t kid = vd_procsup_pid(s, "lives");
        if (write(fds[1], &kid, sizeof kid) != (ssize_t)sizeof kid) _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    pid_t kid = 0;
    CHECK_EQ_INT((int)read(fds[0], &kid, sizeof kid), (int)sizeof kid);
    close(fds[0]);
    CHECK(kid > 0);
    CHECK(running(kid));
    kill(sup, SIGKILL);
    int st;
    CHECK_EQ_INT(waitpid(sup, &st, 0), sup);
    for (int i = 0; i < 100 && running(kid); i++)
        vd_sleep_ms(50);
    int orphan = running(kid);
    if (orphan) kill(kid, SIGKILL);
    CHECK(!orphan);
}

VD_TEST(config_sources_layer_and_bad_values_are_named)
{
    vd_config cfg;
    vd_error err;
    vd_config_defaults(&cfg);
    CHECK_EQ_STR(cfg.value[VD_CFG_LISTEN], "127.0.0.1:8080");
    char path[400];
    snprintf(path, sizeof path, "%s/visiond.conf", vd_test_tmpdir());
    FILE *f = fopen(path, "w");
    fputs("# comment\nworkers = 3\n  listen=127.0.0.1:9000   # trailing\n\n", f);
    fclose(f);
    CHECK_OK(vd_config_load_file(&cfg, path, &err));
    CHECK_EQ_INT(vd_config_int(&cfg, VD_CFG_WORKERS), 3);
    CHECK_EQ_STR(cfg.value[VD_CFG_LISTEN], "127.0.0.1:9000");
    CHECK_EQ_INT(cfg.source[VD_CFG_WORKERS], VD_CFG_FROM_FILE);
    setenv("VISIOND_WORKERS", "5", 1);
    CHECK_OK(vd_config_load_env(&cfg, &err));
    unsetenv("VISIOND_WORKERS");
    CHECK_EQ_INT(vd_config_int(&cfg, VD_CFG_WORKERS), 5);
    CHECK_EQ_INT(cfg.source[VD_CFG_WORKERS], VD_CFG_FROM_ENV);
    CHECK_EQ_INT(vd_config_set(&cfg, VD_CFG_CONCURRENCY, "0", VD_CFG_FROM_FLAG, &err),
                 VD_ERR_INVALID);
    CHECK(strstr(err.msg, "concurrency") != NULL);
    CHECK_EQ_INT(vd_config_set(&cfg, VD_CFG_LOG_LEVEL, "loud", VD_CFG_FROM_FLAG, &err),
                 VD_ERR_INVALID);
    f = fopen(path, "w");
    fputs("workers = 2\nbogus = 1\n", f);
    fclose(f);
    CHECK_EQ_INT(vd_config_load_file(&cfg, path, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, ":2: unknown key 'bogus'") != NULL);
    CHECK_EQ_INT(vd_config_load_file(&cfg, "/nonexistent/v.conf", &err), VD_ERR_NOT_FOUND);
}

static void *idle_thread(void *arg)
{
    (void)arg;
    pause(); /* a thread that blocks no signal, like OpenBLAS's pool */
    return NULL;
}

VD_TEST(sigpipe_delivers_signals_whichever_thread_takes_them)
{
    vd_error err;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, idle_thread, NULL) == 0);
    pthread_detach(t);
    /* What signalfd would need: block SIGTERM here. The other thread does not. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    static const int sigs[] = {SIGTERM, SIGUSR1};
    int fd;
    CHECK_OK(vd_sigpipe_open(sigs, 2, &fd, &err));
    CHECK_EQ_INT(vd_sigpipe_open(sigs, 2, &fd, &err), VD_ERR_STATE);
    for (int i = 0; i < 5; i++)
        kill(getpid(), SIGTERM); /* the process survives: a handler runs somewhere */
    kill(getpid(), SIGUSR1);
    int got[16], nterm = 0, nusr = 0;
    for (int tries = 0; tries < 100 && nusr == 0; tries++) {
        size_t n = vd_sigpipe_read(fd, got, 16);
        for (size_t i = 0; i < n; i++) {
            nterm += got[i] == SIGTERM;
            nusr += got[i] == SIGUSR1;
        }
        if (nusr == 0) vd_sleep_ms(10);
    }
    CHECK(nterm >= 1); /* standard signals may merge while pending */
    CHECK_EQ_INT(nusr, 1);
    CHECK_EQ_INT(vd_sigpipe_read(fd, got, 16), 0);
    vd_sigpipe_close();
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int main(void)
{
    vd_log_init("test", VD_LOG_ERROR, 2);
    return vd_test_run_all();
}
