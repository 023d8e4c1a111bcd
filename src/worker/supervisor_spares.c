/* supervisor_spares.c: where the supervisor's horses come from (supervisor_impl.h).
 *
 * Two sources, each a fork server and the spare it forked ahead: the full one,
 * a fork of the supervisor (forkserver.h), which runs every type, and the light
 * one, visiond-horse exec'd (vd_forkserver_exec), which runs the light types
 * only (pipeline/light.h) and whose clones map a quarter of the libraries
 * (docs/worker.md, "Light horses"). A job of a light type goes to the light
 * source while it is up; every other job, and every job once the light server
 * is gone, to the full one. When the full fork server is gone the supervisor
 * forks the full spares itself (the same horse). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "worker/supervisor_impl.h"

/* How long a light fork server may take to exec and say which types it runs. */
#define LIGHT_START_MS 10000

static int is_light(const vd_supervisor *s, const vd_sup_source *src)
{
    return src == &s->src[VD_SUP_LIGHT];
}

/* 1 when type is one of the names in list (joined by ','). */
static int list_has(const char *list, const char *type)
{
    size_t n = strlen(type);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, type, n) == 0) return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* Forgets src's spare: it exits at end of file on its job pipe; reap() collects it. */
static void retire(vd_supervisor *s, vd_sup_source *src)
{
    if (!src->spare.pid) return;
    vd_sup_remember_exiting(s, src->spare.pid);
    vd_spare_discard(&src->spare);
}

/* Forgets a fork server that failed or died. Without the light one, its types
 * go to the full source; without the full one, the supervisor forks. */
static void drop_server(vd_supervisor *s, vd_sup_source *src, const vd_error *why)
{
    VD_WARN("worker %s: %s; %s", s->worker_id, vd_error_text(why),
            is_light(s, src) ? "every job type runs in a full work-horse from now on"
                             : "forking work-horses from the supervisor from now on");
    pid_t pid = vd_forkserver_stop(&src->fs);
    if (pid > 0) kill(pid, SIGKILL); /* reap() collects it */
    if (is_light(s, src)) {
        retire(s, src);
        free(s->light_types);
        s->light_types = NULL;
    }
}

/* Takes the spare src's server was asked for. wait = 0: only when it is there.
 * A spare that cannot come drops the server. */
static void take(vd_supervisor *s, vd_sup_source *src, int wait)
{
    vd_error err;
    vd_error_clear(&err);
    vd_status st = vd_forkserver_take(&src->fs, &src->spare, wait, &err);
    if (st != VD_OK && st != VD_ERR_EMPTY) drop_server(s, src, &err);
}

/* Asks src's server for the next spare, when none is there or coming. */
static void ask(vd_supervisor *s, vd_sup_source *src)
{
    if (src->fs.sock < 0 || src->fs.pending || src->spare.pid) return;
    vd_error err;
    vd_error_clear(&err);
    if (vd_forkserver_ask(&src->fs, &err) != VD_OK) drop_server(s, src, &err);
}

vd_status vd_sup_spare_get(vd_supervisor *s, vd_sup_source *src, vd_error *err)
{
    ask(s, src);
    if (src->fs.pending) take(s, src, 1);
    if (src->spare.pid) return VD_OK;
    if (is_light(s, src)) return vd_error_set(err, VD_ERR_IO, "no light work-horse");
    int fds[1024 + 1];
    size_t n = 0;
    for (int i = 0; i < s->concurrency; i++)
        if (s->slots[i].used && s->slots[i].fd >= 0) fds[n++] = s->slots[i].fd;
    vd_horse_opts hopts = {.parent = getpid(), .memory_limit_mb = s->memory_limit_mb};
    return vd_spare_fork(&src->spare, s->reg, &hopts, fds, n, err);
}

vd_sup_source *vd_sup_source_for(vd_supervisor *s, const char *type)
{
    vd_sup_source *light = &s->src[VD_SUP_LIGHT];
    if (s->light_types && light->fs.sock >= 0 && list_has(s->light_types, type)) return light;
    return &s->src[VD_SUP_FULL];
}

void vd_sup_spares_retire(vd_supervisor *s)
{
    for (int i = 0; i < VD_SUP_NSRC; i++) {
        vd_sup_source *src = &s->src[i];
        if (src->fs.pending) take(s, src, 1); /* it is on its way: retire it too */
        retire(s, src);
    }
}

void vd_sup_spares_keep(vd_supervisor *s)
{
    if (s->stopping || (s->max_jobs && s->stats.reserved >= s->max_jobs)) {
        vd_sup_spares_retire(s);
        return;
    }
    if (s->backoff_ms != 0) return; /* the last reserve found nothing */
    for (int i = 0; i < VD_SUP_NSRC; i++) {
        vd_sup_source *src = &s->src[i];
        if (!src->used || src->spare.pid || src->fs.pending) continue;
        if (src->fs.sock >= 0) { /* the fork server forks it while we go on */
            ask(s, src);
            if (src->fs.pending) continue;
        }
        if (is_light(s, src)) continue;
        vd_error err;
        vd_error_clear(&err);
        if (vd_sup_spare_get(s, src, &err) != VD_OK)
            VD_WARN("worker %s: %s", s->worker_id, vd_error_text(&err));
    }
}

void vd_sup_spare_arrived(vd_supervisor *s, vd_sup_source *src)
{
    if (src->fs.pending) take(s, src, 0);
}

int vd_sup_sources_reaped(vd_supervisor *s, pid_t pid)
{
    for (int i = 0; i < VD_SUP_NSRC; i++) {
        vd_sup_source *src = &s->src[i];
        if (pid == src->fs.pid) {
            vd_error why;
            vd_error_set(&why, VD_ERR_IO, "the %sfork server (%d) exited",
                         is_light(s, src) ? "light " : "", (int)pid);
            drop_server(s, src, &why);
            return 1;
        }
        if (pid == src->spare.pid) { /* died waiting for a job: another comes */
            VD_DEBUG("worker %s: spare work-horse %d exited", s->worker_id, (int)pid);
            vd_spare_discard(&src->spare);
            return 1;
        }
    }
    return 0;
}

/* Starts the light fork server; keeps it only when it runs a type this worker takes. */
static void start_light(vd_supervisor *s, const vd_horse_opts *hopts)
{
    vd_sup_source *src = &s->src[VD_SUP_LIGHT];
    vd_error err;
    vd_error_clear(&err);
    if (vd_forkserver_exec(&src->fs, s->light_argv, hopts, LIGHT_START_MS, &s->light_types, &err) !=
        VD_OK) {
        VD_WARN("worker %s: %s; no light work-horses", s->worker_id, vd_error_text(&err));
        return;
    }
    int any = 0;
    for (size_t i = 0; i < s->ntypes && !any; i++)
        any = list_has(s->light_types, s->types[i]);
    if (!any) { /* it would never be asked: stop it at once */
        pid_t pid = vd_forkserver_stop(&src->fs);
        waitpid(pid, NULL, 0);
        free(s->light_types);
        s->light_types = NULL;
        return;
    }
    VD_DEBUG("worker %s: light work-horses from %s (fork server %d) for %s", s->worker_id,
             s->light_argv[0], (int)src->fs.pid, s->light_types);
}

void vd_sup_sources_start(vd_supervisor *s)
{
    vd_horse_opts hopts = {.parent = getpid(), .memory_limit_mb = s->memory_limit_mb};
    vd_error err;
    vd_error_clear(&err);
    s->src[VD_SUP_FULL].used = 1; /* a full spare is kept from the start, as ever */
    if (vd_forkserver_start(&s->src[VD_SUP_FULL].fs, s->reg, &hopts, &err) != VD_OK)
        VD_WARN("worker %s: %s; forking work-horses from the supervisor", s->worker_id,
                vd_error_text(&err));
    if (s->light_argv) start_light(s, &hopts);
}

void vd_sup_sources_stop(vd_supervisor *s)
{
    for (int i = 0; i < VD_SUP_NSRC; i++) {
        vd_sup_source *src = &s->src[i];
        if (src->fs.pending) take(s, src, 1);
        pid_t server = vd_forkserver_stop(&src->fs);
        if (server > 0) waitpid(server, NULL, 0);
        pid_t spare = src->spare.pid;
        vd_spare_discard(&src->spare);
        if (spare > 0) waitpid(spare, NULL, 0);
    }
    free(s->light_types);
    s->light_types = NULL;
}
