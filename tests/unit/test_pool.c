/* test_pool.c: core/pool (lazy opening, the max bound with a waiting borrower
 * woken by a put, broken and unusable handles replaced, a failed open freeing
 * its slot, many threads at once) and what makes long-lived pooled handles
 * safe: a store handle says when its file was replaced, a model-server runner
 * notices metadata files added, changed and removed, and asks a restarted
 * model server (a real one, in-process) again. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/pool.h"
#include "infer/runner_client.h"
#include "infer/server.h"
#include "store/store.h"
#include "vdtest.h"

/* ---- a fake handle kind, counting what the pool does with it ----------- */

typedef struct {
    pthread_mutex_t mu;
    int next_id;
    int opened, closed;
    int fail_opens;   /* this many next opens fail */
    int refuse_id;    /* usable() refuses this handle id (0 = none) */
    int in_use, peak; /* handles borrowed now / at most, as the users count them */
} fake_ctx;

typedef struct {
    int id;
} fake_handle;

static vd_status fake_open(void *ctx, void **out, vd_error *err)
{
    fake_ctx *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (c->fail_opens > 0) {
        c->fail_opens--;
        pthread_mutex_unlock(&c->mu);
        return vd_error_set(err, VD_ERR_CONN, "fake: cannot connect");
    }
    fake_handle *h = malloc(sizeof *h);
    h->id = ++c->next_id;
    c->opened++;
    pthread_mutex_unlock(&c->mu);
    *out = h;
    return VD_OK;
}

static void fake_close(void *ctx, void *h)
{
    fake_ctx *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->closed++;
    pthread_mutex_unlock(&c->mu);
    free(h);
}

static int fake_usable(void *ctx, void *h)
{
    fake_ctx *c = ctx;
    pthread_mutex_lock(&c->mu);
    int ok = ((fake_handle *)h)->id != c->refuse_id;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static const vd_pool_ops fake_ops = {fake_open, fake_close, fake_usable};

static void fake_init(fake_ctx *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
}

static int fake_get(fake_ctx *c, int what)
{
    pthread_mutex_lock(&c->mu);
    int v = what == 0 ? c->opened : c->closed;
    pthread_mutex_unlock(&c->mu);
    return v;
}

VD_TEST(opens_lazily_and_reuses)
{
    fake_ctx c;
    fake_init(&c);
    vd_error err;
    vd_pool *p = NULL;
    CHECK_OK(vd_pool_new(&fake_ops, &c, 3, &p, &err));
    CHECK_EQ_INT(vd_pool_max(p), 3);
    size_t open = 9, idle = 9;
    vd_pool_counts(p, &open, &idle);
    CHECK_EQ_INT(open, 0);
    CHECK_EQ_INT(c.opened, 0);
    void *a = NULL, *b = NULL;
    CHECK_OK(vd_pool_get(p, &a, &err));
    CHECK_EQ_INT(c.opened, 1);
    vd_pool_put(p, a, 0);
    for (int i = 0; i < 5; i++) { /* one at a time: always the same handle */
        CHECK_OK(vd_pool_get(p, &b, &err));
        CHECK(b == a);
        vd_pool_put(p, b, 0);
    }
    CHECK_EQ_INT(c.opened, 1);
    CHECK_OK(vd_pool_get(p, &a, &err)); /* two at once: a second is opened */
    CHECK_OK(vd_pool_get(p, &b, &err));
    CHECK(a != b);
    CHECK_EQ_INT(c.opened, 2);
    vd_pool_counts(p, &open, &idle);
    CHECK_EQ_INT(open, 2);
    CHECK_EQ_INT(idle, 0);
    vd_pool_put(p, a, 0);
    vd_pool_put(p, b, 0);
    vd_pool_put(p, NULL, 1); /* ignored */
    vd_pool_counts(p, &open, &idle);
    CHECK_EQ_INT(idle, 2);
    vd_pool_free(p);
    CHECK_EQ_INT(c.closed, 2); /* free closes the idle ones */
}

typedef struct {
    vd_pool *p;
    fake_ctx *c;
    pthread_mutex_t mu;
    int started, got;
    void *h;
    vd_status st;
} waiter;

static void *waiter_main(void *arg)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->started = 1;
    pthread_mutex_unlock(&w->mu);
    void *h = NULL;
    vd_error err;
    vd_status st = vd_pool_get(w->p, &h, &err);
    pthread_mutex_lock(&w->mu);
    w->h = h;
    w->st = st;
    w->got = 1;
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int waiter_flag(waiter *w, int which)
{
    pthread_mutex_lock(&w->mu);
    int v = which == 0 ? w->started : w->got;
    pthread_mutex_unlock(&w->mu);
    return v;
}

VD_TEST(max_bound_waits_for_a_put)
{
    fake_ctx c;
    fake_init(&c);
    vd_error err;
    vd_pool *p = NULL;
    CHECK_OK(vd_pool_new(&fake_ops, &c, 2, &p, &err));
    void *a = NULL, *b = NULL;
    CHECK_OK(vd_pool_get(p, &a, &err));
    CHECK_OK(vd_pool_get(p, &b, &err));
    waiter w = {.p = p, .c = &c};
    pthread_mutex_init(&w.mu, NULL);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, waiter_main, &w) == 0);
    while (!waiter_flag(&w, 0))
        usleep(1000);
    usleep(50000); /* let it reach the wait (the outcome below holds either way) */
    /* Both handles are out and max is 2: it cannot have one. */
    CHECK_EQ_INT(waiter_flag(&w, 1), 0);
    CHECK_EQ_INT(fake_get(&c, 0), 2);
    vd_pool_put(p, b, 0); /* wakes it, with b */
    pthread_join(th, NULL);
    CHECK_EQ_INT(w.got, 1);
    CHECK_EQ_INT(w.st, VD_OK);
    CHECK(w.h == b);
    CHECK_EQ_INT(c.opened, 2); /* nothing more was opened */
    vd_pool_put(p, a, 0);
    vd_pool_put(p, w.h, 0);
    vd_pool_free(p);
    CHECK_EQ_INT(c.closed, 2);
    pthread_mutex_destroy(&w.mu);
}

VD_TEST(a_broken_put_wakes_a_waiter_who_opens_fresh)
{
    fake_ctx c;
    fake_init(&c);
    vd_error err;
    vd_pool *p = NULL;
    CHECK_OK(vd_pool_new(&fake_ops, &c, 1, &p, &err));
    void *a = NULL;
    CHECK_OK(vd_pool_get(p, &a, &err));
    int aid = ((fake_handle *)a)->id;
    waiter w = {.p = p, .c = &c};
    pthread_mutex_init(&w.mu, NULL);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, waiter_main, &w) == 0);
    while (!waiter_flag(&w, 0))
        usleep(1000);
    usleep(50000);
    CHECK_EQ_INT(waiter_flag(&w, 1), 0);
    vd_pool_put(p, a, 1); /* closed; the waiter gets the slot */
    pthread_join(th, NULL);
    CHECK_EQ_INT(w.st, VD_OK);
    CHECK(w.h != NULL);
    CHECK(((fake_handle *)w.h)->id != aid);
    CHECK_EQ_INT(c.opened, 2);
    CHECK_EQ_INT(c.closed, 1);
    vd_pool_put(p, w.h, 0);
    vd_pool_free(p);
    CHECK_EQ_INT(c.closed, 2);
    pthread_mutex_destroy(&w.mu);
}

VD_TEST(broken_handles_are_closed_and_replaced)
{
    fake_ctx c;
    fake_init(&c);
    vd_error err;
    vd_pool *p = NULL;
    CHECK_OK(vd_pool_new(&fake_ops, &c, 2, &p, &err));
    void *a = NULL, *b = NULL;
    CHECK_OK(vd_pool_get(p, &a, &err));
    int aid = ((fake_handle *)a)->id;
    vd_pool_put(p, a, 1);
    CHECK_EQ_INT(c.closed, 1);
    size_t open = 9, idle = 9;
    vd_pool_counts(p, &open, &idle);
    CHECK_EQ_INT(open, 0);
    CHECK_EQ_INT(idle, 0);
    CHECK_OK(vd_pool_get(p, &b, &err));
    CHECK(((fake_handle *)b)->id != aid);
    CHECK_EQ_INT(c.opened, 2);
    vd_pool_put(p, b, 0);
    vd_pool_free(p);
    CHECK_EQ_INT(c.closed, 2);
}

VD_TEST(unusable_idle_handles_are_replaced)
{
    fake_ctx c;
    fake_init(&c);
    vd_error err;
    vd_pool *p = NULL;
    CHECK_OK(vd_pool_new(&fake_ops, &c, 1, &p, &err));
    void *a = NULL, *b = NULL;
    CHECK_OK(vd_pool_get(p, &a, &err));
    int aid = ((fake_handle *)a)->id;
    vd_pool_put(p, a, 0);
    pthread_mutex_lock(&c.mu);
    c.refuse_id = aid;
    pthread_mutex_unlock(&c.mu);
    CHECK_OK(vd_pool_get(p, &b, &err)); /* max 1: the refused one's slot is reused */
    CHECK(((fake_handle *)b)->id != aid);
    CHECK_EQ_INT(c.closed, 1);
    CHECK_EQ_INT(c.opened, 2);
    vd_pool_put(p, b, 0);
    vd_pool_free(p);
    CHECK_EQ_INT(c.closed, 2);
}

VD_TEST(a_failed_open_returns_its_error_and_frees_the_slot)
{
    fake_ctx c;
    fake_init(&c);
    c.fail_opens = 1;
    vd_error err;
    vd_pool *p = NULL;
    CHECK_OK(vd_pool_new(&fake_ops, &c, 1, &p, &err));
    void *h = (void *)&c;
    vd_error_clear(&err);
    CHECK_EQ_INT(vd_pool_get(p, &h, &err), VD_ERR_CONN);
    CHECK(h == NULL);
    CHECK(strstr(err.msg, "cannot connect") != NULL);
    size_t open = 9;
    vd_pool_counts(p, &open, NULL);
    CHECK_EQ_INT(open, 0);
    /* max is 1: this get would wait for ever had the slot not been freed */
    CHECK_OK(vd_pool_get(p, &h, &err));
    CHECK(h != NULL);
    CHECK_EQ_INT(c.opened, 1);
    /* A failed reopen of an unusable handle frees the slot too. */
    vd_pool_put(p, h, 0);
    pthread_mutex_lock(&c.mu);
    c.refuse_id = ((fake_handle *)h)->id;
    c.fail_opens = 1;
    pthread_mutex_unlock(&c.mu);
    CHECK_EQ_INT(vd_pool_get(p, &h, &err), VD_ERR_CONN);
    vd_pool_counts(p, &open, NULL);
    CHECK_EQ_INT(open, 0);
    CHECK_EQ_INT(c.closed, 1);
    CHECK_OK(vd_pool_get(p, &h, &err));
    vd_pool_put(p, h, 0);
    vd_pool_free(p);
    CHECK_EQ_INT(c.closed, c.opened);
}

VD_TEST(bad_arguments_are_refused)
{
    vd_error err;
    vd_pool *p = (vd_pool *)&err;
    vd_pool_ops none = {0};
    CHECK_EQ_INT(vd_pool_new(&none, NULL, 1, &p, &err), VD_ERR_INVALID);
    CHECK(p == NULL);
    CHECK_OK(vd_pool_new(&fake_ops, NULL, 0, &p, &err));
    CHECK_EQ_INT(vd_pool_max(p), 4); /* 0 = 4 */
    vd_pool_free(p);
    vd_pool_free(NULL);
}

#define NTHREADS 6
#define ROUNDS   400

typedef struct {
    vd_pool *p;
    fake_ctx *c;
    int seed, errors;
} hammer_arg;

static void *hammer(void *arg)
{
    hammer_arg *a = arg;
    unsigned s = (unsigned)a->seed;
    for (int i = 0; i < ROUNDS; i++) {
        void *h = NULL;
        vd_error err;
        if (vd_pool_get(a->p, &h, &err) != VD_OK) {
            a->errors++;
            continue;
        }
        pthread_mutex_lock(&a->c->mu);
        if (++a->c->in_use > a->c->peak) a->c->peak = a->c->in_use;
        pthread_mutex_unlock(&a->c->mu);
        s = s * 1103515245u + 12345u;
        if ((s >> 16) % 4 == 0) sched_yield();
        pthread_mutex_lock(&a->c->mu);
        a->c->in_use--;
        pthread_mutex_unlock(&a->c->mu);
        vd_pool_put(a->p, h, (s >> 16) % 10 == 0); /* some go back broken */
    }
    return NULL;
}

VD_TEST(many_threads_never_exceed_max_and_nothing_leaks)
{
    fake_ctx c;
    fake_init(&c);
    vd_error err;
    vd_pool *p = NULL;
    CHECK_OK(vd_pool_new(&fake_ops, &c, 3, &p, &err));
    pthread_t th[NTHREADS];
    hammer_arg args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (hammer_arg){.p = p, .c = &c, .seed = i + 1};
        CHECK(pthread_create(&th[i], NULL, hammer, &args[i]) == 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ_INT(args[i].errors, 0);
    printf("  %d gets by %d threads: %d opened, peak %d borrowed at once\n", NTHREADS * ROUNDS,
           NTHREADS, c.opened, c.peak);
    CHECK(c.peak <= 3);
    CHECK_EQ_INT(c.in_use, 0);
    size_t open = 0, idle = 0;
    vd_pool_counts(p, &open, &idle);
    CHECK(open <= 3);
    CHECK_EQ_INT(open, idle);
    vd_pool_free(p);
    CHECK_EQ_INT(c.closed, c.opened);
}

/* ---- what pooled handles rely on ---------------------------------------- */

VD_TEST(store_handle_says_when_its_file_was_replaced)
{
    vd_error err;
    char path[4096], other[4096];
    snprintf(path, sizeof path, "%s/store.db", vd_test_tmpdir());
    snprintf(other, sizeof other, "%s/other.db", vd_test_tmpdir());
    vd_store *s = NULL, *o = NULL;
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    CHECK_EQ_INT(vd_store_moved(s), 0);
    CHECK_OK(vd_store_begin(s, &err)); /* still the same file after use */
    CHECK_OK(vd_store_commit(s, &err));
    CHECK_EQ_INT(vd_store_moved(s), 0);
    CHECK_OK(vd_store_open(other, NULL, &o, &err));
    vd_store_close(o);
    CHECK(rename(other, path) == 0); /* replaced */
    CHECK_EQ_INT(vd_store_moved(s), 1);
    vd_store_close(s);
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    CHECK_EQ_INT(vd_store_moved(s), 0);
    CHECK(unlink(path) == 0); /* deleted */
    CHECK_EQ_INT(vd_store_moved(s), 1);
    vd_store_close(s);
}

static int write_meta(const char *dir, const char *name, int height)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "{\"input\": {\"height\": %d, \"width\": 4, \"channels\": 1}}", height);
    if (fclose(f) != 0) return -1;
    return rename(tmp, path); /* a new file (new inode) in place of the old */
}

VD_TEST(runner_metadata_cache_follows_the_files)
{
    /* The models_path form reads metadata files itself and connects to no
     * server for meta(): the cache can be checked without one. */
    vd_error err;
    const char *dir = vd_test_tmpdir();
    vd_runner *r = NULL;
    CHECK_OK(vd_runner_client_new("unix:/nonexistent/model.sock", dir, 1000, &r, &err));
    vd_model_meta m;
    CHECK_EQ_INT(vd_runner_meta(r, "late", &m, &err), VD_ERR_NOT_FOUND);
    CHECK(write_meta(dir, "late", 8) == 0); /* added after a miss: found */
    CHECK_OK(vd_runner_meta(r, "late", &m, &err));
    CHECK_EQ_STR(m.name, "late");
    CHECK_EQ_INT(m.height, 8);
    CHECK_OK(vd_runner_meta(r, "late", &m, &err)); /* cached */
    CHECK_EQ_INT(m.height, 8);
    CHECK(write_meta(dir, "late", 16) == 0); /* changed: read again */
    CHECK_OK(vd_runner_meta(r, "late", &m, &err));
    CHECK_EQ_INT(m.height, 16);
    char path[4096];
    snprintf(path, sizeof path, "%s/late.json", dir);
    CHECK(unlink(path) == 0); /* removed: not found any more */
    CHECK_EQ_INT(vd_runner_meta(r, "late", &m, &err), VD_ERR_NOT_FOUND);
    vd_runner_free(r);
}

static void *serve_main(void *a)
{
    vd_server_run(a, NULL);
    return NULL;
}

typedef struct {
    vd_server *s;
    pthread_t th;
} test_server;

static int server_start(test_server *v, const char *dir, const char *sock)
{
    vd_server_config cfg = {
        .models_dir = dir, .socket_path = sock, .intra_threads = 1, .stop_fd = -1};
    vd_error err;
    if (vd_server_new(&cfg, &v->s, &err) != VD_OK) {
        fprintf(stderr, "  model server: %s\n", err.msg);
        return -1;
    }
    return pthread_create(&v->th, NULL, serve_main, v->s);
}

static void server_stop(test_server *v)
{
    vd_server_stop(v->s);
    pthread_join(v->th, NULL);
    vd_server_free(v->s);
}

VD_TEST(runner_asks_a_restarted_model_server_again)
{
    vd_error err;
    char d1[4096], d2[4096], sock[4096], addr[4200];
    snprintf(d1, sizeof d1, "%s/m1", vd_test_tmpdir());
    snprintf(d2, sizeof d2, "%s/m2", vd_test_tmpdir());
    snprintf(sock, sizeof sock, "%s/ms.sock", vd_test_tmpdir());
    snprintf(addr, sizeof addr, "unix:%s", sock);
    CHECK(mkdir(d1, 0755) == 0 && mkdir(d2, 0755) == 0);
    /* Same model name, other metadata in the second server's directory (the
     * first one's file stays where it was). */
    CHECK(write_meta(d1, "m", 8) == 0);
    CHECK(write_meta(d2, "m", 16) == 0);
    test_server a;
    CHECK(server_start(&a, d1, sock) == 0);
    vd_runner *r = NULL;
    CHECK_OK(vd_runner_client_new(addr, NULL, 2000, &r, &err));
    vd_model_meta m;
    CHECK_OK(vd_runner_meta(r, "m", &m, &err));
    CHECK_EQ_INT(m.height, 8);
    CHECK_OK(vd_runner_meta(r, "m", &m, &err));
    CHECK_EQ_INT(m.height, 8);
    server_stop(&a);
    /* The server is gone: said (after the MODELS wait), not answered from the cache. */
    vd_status st = vd_runner_meta(r, "m", &m, &err);
    CHECK_EQ_INT(st, VD_ERR_CONN);
    test_server b;
    CHECK(server_start(&b, d2, sock) == 0);
    CHECK_OK(vd_runner_meta(r, "m", &m, &err)); /* the new server's answer */
    CHECK_EQ_INT(m.height, 16);
    CHECK_OK(vd_runner_meta(r, "m", &m, &err));
    CHECK_EQ_INT(m.height, 16);
    vd_runner_free(r);
    server_stop(&b);
}

int main(void)
{
    return vd_test_run_all();
}
