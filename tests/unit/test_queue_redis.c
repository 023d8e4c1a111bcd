/* test_queue_redis.c: what only the Redis backend has: URL options, key
 * prefixes, reconnecting after Redis restarts (kill -9, same port and dir),
 * reloading scripts after SCRIPT FLUSH, a clean key space after purge, the
 * priority order across per-type queues, and several processes reserving at
 * once. The queue semantics every backend shares are in test_queue.c.
 *
 * The tests start their own redis-server (appendonly yes, appendfsync always)
 * on a free loopback port in a private directory; they are skipped when
 * redis-server is not installed. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/err.h"
#include "core/util.h"
#include "queue/queue.h"
#include "queue/queue_lua.h"
#include "vdtest.h"

/* The redis-server these tests run (one per test that needs one). */
typedef struct {
    pid_t pid;
    int port;
    char dir[512];
} server;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t n = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &n) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static int have_redis_server(void)
{
    return system("command -v redis-server >/dev/null 2>&1") == 0;
}

/* Replaces this process with redis-server on srv->port in srv->dir (AOF on,
 * fsync always). */
static void server_exec(const server *srv)
{
    /* Die with the test process, even when a failed CHECK skipped server_kill,
     * and hold none of its output pipes. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2) close(null);
    }
    char port[16], log[600];
    snprintf(port, sizeof port, "%d", srv->port);
    snprintf(log, sizeof log, "%s/redis.log", srv->dir);
    execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", srv->dir,
           "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
           "--enable-debug-command", "yes", "--logfile", log, (char *)NULL);
    _exit(127);
}

/* Waits until the server answers PING. Returns 0 when it does. */
static int server_wait(const server *srv)
{
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", srv->port);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            int ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
            if (r) freeReplyObject(r);
            redisFree(c);
            if (ok) return 0;
        } else if (c) {
            redisFree(c);
        }
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) return -1;
        vd_sleep_ms(50);
    }
    return -1;
}

/* Starts redis-server and waits until it answers. Returns 0 on success. */
static int server_start(server *srv)
{
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) server_exec(srv);
    srv->pid = pid;
    return server_wait(srv);
}

static void server_kill(server *srv)
{
    if (srv->pid > 0) {
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, NULL, 0);
    }
    srv->pid = 0;
}

/* Prepares and starts a fresh server; skips the test (returns 0) when
 * redis-server is missing. */
static int server_up(server *srv)
{
    memset(srv, 0, sizeof *srv);
    if (!have_redis_server()) {
        vd_test_skip("redis-server is not installed");
        return 0;
    }
    snprintf(srv->dir, sizeof srv->dir, "%s/redis", vd_test_tmpdir());
    mkdir(srv->dir, 0700);
    for (int attempt = 0; attempt < 5; attempt++) {
        srv->port = free_port();
        if (srv->port > 0 && server_start(srv) == 0) return 1;
        server_kill(srv);
    }
    vd_test_fail_at(__FILE__, __LINE__, "could not start redis-server");
    return 0;
}

static void url_for(const server *srv, const char *opts, char *out, size_t n)
{
    snprintf(out, n, "redis://127.0.0.1:%d/0%s%s", srv->port, opts ? "?" : "", opts ? opts : "");
}

/* What a side query makes of its reply (arg: the caller's), or -1. */
typedef long long (*reply_pick)(const redisReply *r, const char *arg);

/* Runs cmd (a hiredis format with at most one %s, cmd_arg) on a side connection and returns
 * what pick makes of the reply; -1 without one. */
static long long side_query(const server *srv, const char *cmd, const char *cmd_arg,
                            reply_pick pick, const char *arg)
{
    redisContext *c = redisConnect("127.0.0.1", srv->port);
    long long v = -1;
    if (c && !c->err) {
        redisReply *r = cmd_arg ? redisCommand(c, cmd, cmd_arg) : redisCommand(c, cmd);
        if (r) v = pick(r, arg);
        if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return v;
}

/* An integer reply as is, a status or string as 0. */
static long long pick_integer(const redisReply *r, const char *arg)
{
    (void)arg;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    return r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING ? 0 : -1;
}

static long long pick_elements(const redisReply *r, const char *arg)
{
    (void)arg;
    return r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
}

/* The calls of command arg in an INFO commandstats reply (0 when it was never called). */
static long long pick_calls(const redisReply *r, const char *arg)
{
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) return -1;
    char key[64];
    snprintf(key, sizeof key, "cmdstat_%s:calls=", arg);
    const char *at = strstr(r->str, key);
    return at ? atoll(at + strlen(key)) : 0;
}

/* Runs one command on a side connection; returns the integer reply (0 for a status) or -1. */
static long long side_command(const server *srv, const char *cmd)
{
    return side_query(srv, cmd, NULL, pick_integer, NULL);
}

/* Returns how many keys match pattern, or -1. */
static long long count_keys(const server *srv, const char *pattern)
{
    return side_query(srv, "KEYS %s", pattern, pick_elements, NULL);
}

/* Returns the calls of one command in INFO commandstats (e.g. "evalsha"), or -1. */
static long long command_calls(const server *srv, const char *cmd)
{
    return side_query(srv, "INFO commandstats", NULL, pick_calls, cmd);
}

VD_TEST(url_errors_are_invalid)
{
    vd_error err;
    vd_queue *q;
    const char *bad[] = {
        "redis://",
        "redis://:6379/0",
        "redis://127.0.0.1:0/0",
        "redis://127.0.0.1:70000/0",
        "redis://127.0.0.1:6379/x",
        "redis://127.0.0.1:6379/0?nope=1",
        "redis://127.0.0.1:6379/0?prefix=",
        "redis://127.0.0.1:6379/0?prefix=a%20b",
        "redis://127.0.0.1:6379/0?timeout_ms=0",
        "redis://127.0.0.1:6379/0?retry_ms",
        "redis://secret@127.0.0.1:6379/0",
        "redis://::1/0",                  /* IPv6 without brackets: ambiguous (core/hostport.h) */
        "redis://[::1/0",                 /* unclosed bracket */
        "redis://u:hunter2@[::1:80/0",    /* the same, after credentials */
        "redis://u:hunter2@127.0.0.1:8o", /* a port that is not a number */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vd_status st = vd_queue_open(bad[i], &q, &err);
        if (st != VD_ERR_INVALID) {
            vd_test_fail_at(__FILE__, __LINE__, "%s: got %s (%s)", bad[i], vd_status_name(st),
                            err.msg);
            vd_queue_close(q);
            return;
        }
        CHECK(q == NULL);
        CHECK(strstr(err.msg, "redis url") != NULL);
        CHECK(strstr(err.msg, "hunter2") == NULL); /* never the password */
    }
}

/* The scripts are the files of src/queue/lua/, byte for byte (cmake/embed_lua.cmake), one
 * entry per file, the prelude among them. */
VD_TEST(embedded_scripts_are_the_lua_files)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/src/queue/lua", VISIOND_SOURCE_DIR);
    size_t files = 0;
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0) files++;
    }
    if (d) closedir(d);
    size_t n;
    const vd_lua_script *t = vd_queue_lua_scripts(&n);
    CHECK_EQ_INT(n, files);
    int prelude = 0;
    for (size_t i = 0; i < n; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.lua", dir, t[i].name);
        static char text[1 << 16];
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        size_t len = f ? fread(text, 1, sizeof text, f) : 0;
        if (f) fclose(f);
        CHECK_EQ_INT(len, t[i].len);
        CHECK(memcmp(text, t[i].src, len) == 0);
        CHECK(t[i].src[t[i].len] == '\0');
        if (strcmp(t[i].name, "prelude") == 0) prelude = 1;
        if (i > 0) CHECK(strcmp(t[i - 1].name, t[i].name) < 0);
    }
    CHECK(prelude);
}

VD_TEST(unreachable_redis_is_a_connection_error)
{
    int port = free_port();
    CHECK(port > 0);
    char url[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0?retry_ms=200", port);
    vd_error err;
    vd_queue *q;
    CHECK_EQ_INT(vd_queue_open(url, &q, &err), VD_ERR_CONN);
    CHECK(q == NULL);
    printf("    message: %s\n", err.msg);
    CHECK(strstr(err.msg, "cannot reach redis at 127.0.0.1") != NULL);
}

VD_TEST(operations_survive_a_redis_restart)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, "retry_ms=200", url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char ids[5][VD_ID_LEN + 1];
    for (int i = 0; i < 5; i++)
        CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = i}, ids[i], &err));
    vd_job job = {0};
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err));
    CHECK_EQ_STR(job.id, ids[4]);
    vd_job_clear(&job);

    /* Down: an operation gives up after retry_ms with a connection error. */
    server_kill(&srv);
    int64_t counts[VD_JOB__NSTATES];
    CHECK_EQ_INT(vd_queue_counts(q, counts, &err), VD_ERR_CONN);
    CHECK(strstr(err.msg, "cannot reach redis") != NULL);

    /* Up again from its append-only file: the same handle reconnects, finds
     * its scripts gone (NOSCRIPT), loads them, and sees every acknowledged write. */
    CHECK_EQ_INT(server_start(&srv), 0);
    CHECK_OK(vd_queue_counts(q, counts, &err));
    CHECK_EQ_INT(counts[VD_JOB_QUEUED], 4);
    CHECK_EQ_INT(counts[VD_JOB_STARTED], 1);
    CHECK_OK(vd_queue_complete(q, ids[4], "w1", "{\"ok\":true}", &err));
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err));
    CHECK_EQ_STR(job.id, ids[3]);
    vd_job_clear(&job);
    vd_queue_close(q);
    server_kill(&srv);
}

VD_TEST(an_operation_waits_out_a_short_outage)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, "retry_ms=20000", url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t"}, id, &err));
    vd_job job = {0};
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err));
    vd_job_clear(&job);

    /* Kill Redis, and bring it back from a child after a pause, while this
     * process is already retrying its complete. */
    server_kill(&srv);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        vd_sleep_ms(700);
        server_exec(&srv);
    }
    srv.pid = child;
    int64_t t0 = vd_mono_ms();
    vd_status st = vd_queue_complete(q, id, "w1", NULL, &err);
    printf("    complete went through after %lld ms of outage\n", (long long)(vd_mono_ms() - t0));
    CHECK_OK(st);
    CHECK_OK(vd_queue_get(q, id, &job, &err));
    CHECK_EQ_INT(job.state, VD_JOB_FINISHED);
    vd_job_clear(&job);
    vd_queue_close(q);
    server_kill(&srv);
}

VD_TEST(scripts_are_reloaded_after_script_flush)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, NULL, url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t"}, id, &err));
    CHECK_EQ_INT(side_command(&srv, "SCRIPT FLUSH"), 0);
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t"}, id, &err));
    int64_t counts[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, counts, &err));
    CHECK_EQ_INT(counts[VD_JOB_QUEUED], 2);
    vd_queue_close(q);
    server_kill(&srv);
}

VD_TEST(prefixes_and_databases_keep_queues_apart)
{
    server srv;
    if (!server_up(&srv)) return;
    char u1[256], u2[256], u3[256];
    url_for(&srv, "prefix=alpha", u1, sizeof u1);
    url_for(&srv, "prefix=beta:", u2, sizeof u2);
    snprintf(u3, sizeof u3, "redis://127.0.0.1:%d/5", srv.port);
    vd_error err;
    vd_queue *a, *b, *c;
    CHECK_OK(vd_queue_open(u1, &a, &err));
    CHECK_OK(vd_queue_open(u2, &b, &err));
    CHECK_OK(vd_queue_open(u3, &c, &err));
    CHECK_EQ_STR(vd_queue_backend(a), "redis");
    CHECK_OK(vd_queue_enqueue(a, &(vd_enqueue_opts){.type = "t"}, NULL, &err));
    CHECK_OK(vd_queue_enqueue(a, &(vd_enqueue_opts){.type = "t"}, NULL, &err));
    CHECK_OK(vd_queue_enqueue(b, &(vd_enqueue_opts){.type = "t"}, NULL, &err));
    int64_t ca[VD_JOB__NSTATES], cb[VD_JOB__NSTATES], cc[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(a, ca, &err));
    CHECK_OK(vd_queue_counts(b, cb, &err));
    CHECK_OK(vd_queue_counts(c, cc, &err));
    CHECK_EQ_INT(ca[VD_JOB_QUEUED], 2);
    CHECK_EQ_INT(cb[VD_JOB_QUEUED], 1);
    CHECK_EQ_INT(cc[VD_JOB_QUEUED], 0);
    CHECK(count_keys(&srv, "alpha:job:*") == 2);
    CHECK(count_keys(&srv, "beta:job:*") == 1);
    CHECK(count_keys(&srv, "visiond:*") == 0); /* db 0; the default prefix went to db 5 */
    vd_queue_close(a);
    vd_queue_close(b);
    vd_queue_close(c);
    server_kill(&srv);
}

/* Stalls the server for 2 s (DEBUG SLEEP from a side connection) and waits
 * a little so that the stall has begun; returns the side connection for
 * stall_end, or NULL. */
static redisContext *stall_begin(const server *srv)
{
    redisContext *side = redisConnect("127.0.0.1", srv->port);
    if (!side || side->err || redisAppendCommand(side, "DEBUG SLEEP 2") != REDIS_OK) {
        if (side) redisFree(side);
        return NULL;
    }
    int done = 0;
    while (!done)
        if (redisBufferWrite(side, &done) != REDIS_OK) {
            redisFree(side);
            return NULL;
        }
    vd_sleep_ms(200);
    return side;
}

static void stall_end(redisContext *side)
{
    redisReply *r = NULL;
    if (redisGetReply(side, (void **)&r) == REDIS_OK && r) freeReplyObject(r);
    redisFree(side);
}

/* A batch enqueue whose reply is lost (the server stalls past the client's timeout, then
 * runs the script) ends in VD_ERR_CONN; the same batch repeated on the same handle finds its
 * own jobs (enqueue.lua: the batch's EXISTS finds them, each carries the call's token) and
 * answers ok without writing them twice; another batch naming one of those ids is refused.
 * (Items without an id get fresh ids in the repeated call, so only caller ids make a batch
 * recognisable across calls; within one call the retries reuse its ids.) */
VD_TEST(a_batch_whose_reply_was_lost_is_repeated_once)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, "timeout_ms=300&retry_ms=0", url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    vd_enqueue_opts o[3] = {{.type = "t", .id = "lost-1"},
                            {.type = "t", .id = "lost-2"},
                            {.type = "u", .id = "lost-3"}};
    char ids[3][VD_ID_LEN + 1];
    size_t added = 0;
    redisContext *side = stall_begin(&srv);
    CHECK(side != NULL);
    vd_status st = vd_queue_enqueue_many(q, o, 3, ids, &added, &err);
    stall_end(side);
    if (st == VD_OK) {
        vd_test_skip("the server did not stall before the call; nothing to retry");
        vd_queue_close(q);
        server_kill(&srv);
        return;
    }
    CHECK_EQ_INT(st, VD_ERR_CONN);
    int64_t counts[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, counts, &err)); /* the script did run, late */
    CHECK_EQ_INT(counts[VD_JOB_QUEUED], 3);
    CHECK_OK(vd_queue_enqueue_many(q, o, 3, ids, &added, &err));
    CHECK_EQ_INT(added, 3);
    CHECK_OK(vd_queue_counts(q, counts, &err));
    CHECK_EQ_INT(counts[VD_JOB_QUEUED], 3);
    vd_job job = {0};
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err));
    CHECK_EQ_STR(job.id, "lost-1");
    vd_job_clear(&job);
    vd_enqueue_opts other[2] = {{.type = "t"}, {.type = "t", .id = "lost-3"}};
    CHECK_EQ_INT(vd_queue_enqueue_many(q, other, 2, ids, &added, &err), VD_ERR_STATE);
    CHECK_OK(vd_queue_counts(q, counts, &err));
    CHECK_EQ_INT(counts[VD_JOB_QUEUED], 2);
    vd_queue_close(q);
    server_kill(&srv);
}

/* A complete, fail, reserve or release whose reply is lost (the server stalls past
 * the client's timeout, then runs the command) ends in VD_ERR_CONN; repeating
 * it on the same handle succeeds, and the job moves only once. */
VD_TEST(calls_with_a_lost_reply_can_be_repeated)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, "timeout_ms=300&retry_ms=0", url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 1}, a, &err));
    CHECK_OK(vd_queue_enqueue(
        q, &(vd_enqueue_opts){.type = "t", .max_retries = 3, .retry_base_ms = 3600000}, b, &err));
    vd_job job = {0};
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err));
    CHECK_EQ_STR(job.id, a);
    vd_job_clear(&job);
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err));
    CHECK_EQ_STR(job.id, b);
    vd_job_clear(&job);

    /* complete */
    redisContext *side = stall_begin(&srv);
    CHECK(side != NULL);
    vd_status st = vd_queue_complete(q, a, "w1", "{\"n\":1}", &err);
    stall_end(side);
    if (st == VD_OK) {
        vd_test_skip("the server did not stall before the call; nothing to retry");
        vd_queue_close(q);
        server_kill(&srv);
        return;
    }
    CHECK_EQ_INT(st, VD_ERR_CONN);
    printf("    lost reply: %s\n", err.msg);
    CHECK_OK(vd_queue_get(q, a, &job, &err)); /* the complete did run, late */
    CHECK_EQ_INT(job.state, VD_JOB_FINISHED);
    int64_t ended = job.ended_ms;
    vd_job_clear(&job);
    CHECK_EQ_INT(vd_queue_complete(q, a, "w2", NULL, &err), VD_ERR_LEASE_LOST);
    CHECK_OK(vd_queue_complete(q, a, "w1", "{\"n\":2}", &err)); /* the retry */
    CHECK_OK(vd_queue_get(q, a, &job, &err));
    CHECK_EQ_STR(job.result, "{\"n\":1}"); /* the first result stands */
    CHECK_EQ_INT(job.ended_ms, ended);
    vd_job_clear(&job);

    /* fail: without the remembered token the retry would see a scheduled job
     * and answer lease_lost, and the worker could not tell what happened */
    CHECK((side = stall_begin(&srv)) != NULL);
    st = vd_queue_fail(q, b, "w1", "flaky", 1, &err);
    stall_end(side);
    CHECK_EQ_INT(st, VD_ERR_CONN);
    CHECK_OK(vd_queue_get(q, b, &job, &err));
    CHECK_EQ_INT(job.state, VD_JOB_SCHEDULED);
    int64_t run_at = job.run_at_ms;
    vd_job_clear(&job);
    CHECK_OK(vd_queue_fail(q, b, "w1", "flaky", 1, &err)); /* the retry */
    CHECK_OK(vd_queue_get(q, b, &job, &err));
    CHECK_EQ_INT(job.state, VD_JOB_SCHEDULED);
    CHECK_EQ_INT(job.run_at_ms, run_at); /* not failed twice */
    CHECK_EQ_INT(job.attempts, 1);
    vd_job_clear(&job);
    CHECK_EQ_INT(vd_queue_fail(q, b, "w1", "flaky", 1, &err), VD_ERR_LEASE_LOST); /* settled */

    /* reserve: the repeat hands back the job the lost reply carried, instead
     * of leaving it started until its lease lapses and taking another */
    char c[VD_ID_LEN + 1], d[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 9}, c, &err));
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 8}, d, &err));
    CHECK((side = stall_begin(&srv)) != NULL);
    st = vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err);
    stall_end(side);
    CHECK_EQ_INT(st, VD_ERR_CONN);
    CHECK_EQ_INT(job.id[0], 0);
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err)); /* the retry */
    CHECK_EQ_STR(job.id, c);
    CHECK_EQ_INT(job.attempts, 1);
    vd_job_clear(&job);
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err)); /* settled: the next one */
    CHECK_EQ_STR(job.id, d);
    vd_job_clear(&job);

    /* release: the repeat answers ok (not lease_lost from the job it already
     * queued) and the attempt is given back once */
    char e[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(
        q, &(vd_enqueue_opts){.type = "t", .max_retries = 2, .retry_base_ms = 1, .retry_max_ms = 2},
        e, &err));
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err));
    CHECK_EQ_STR(job.id, e);
    vd_job_clear(&job);
    CHECK_OK(vd_queue_fail(q, e, "w1", "first", 1, &err)); /* scheduled, due within 2 ms */
    CHECK_OK(vd_queue_get(q, e, &job, &err));
    CHECK_EQ_INT(job.state, VD_JOB_SCHEDULED);
    vd_job_clear(&job);
    vd_status rst;
    int64_t end = vd_mono_ms() + 30000;
    while ((rst = vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err)) == VD_ERR_EMPTY &&
           vd_mono_ms() < end)
        vd_sleep_ms(20);
    CHECK_OK(rst);
    CHECK_EQ_STR(job.id, e);
    CHECK_EQ_INT(job.attempts, 2);
    vd_job_clear(&job);
    CHECK((side = stall_begin(&srv)) != NULL);
    st = vd_queue_release(q, e, "w1", "stopping", &err);
    stall_end(side);
    CHECK_EQ_INT(st, VD_ERR_CONN);
    CHECK_OK(vd_queue_get(q, e, &job, &err));
    CHECK_EQ_INT(job.state, VD_JOB_QUEUED); /* it ran, late */
    CHECK_EQ_INT(job.attempts, 1);
    vd_job_clear(&job);
    CHECK_OK(vd_queue_release(q, e, "w1", "stopping", &err)); /* the retry */
    CHECK_OK(vd_queue_get(q, e, &job, &err));
    CHECK_EQ_INT(job.state, VD_JOB_QUEUED);
    CHECK_EQ_INT(job.attempts, 1); /* given back once */
    vd_job_clear(&job);
    CHECK_EQ_INT(vd_queue_release(q, e, "w1", "stopping", &err), VD_ERR_LEASE_LOST); /* settled */

    int64_t counts[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, counts, &err));
    CHECK_EQ_INT(counts[VD_JOB_FINISHED], 1);
    CHECK_EQ_INT(counts[VD_JOB_SCHEDULED], 1);
    CHECK_EQ_INT(counts[VD_JOB_STARTED], 2);
    CHECK_EQ_INT(counts[VD_JOB_QUEUED], 1);
    vd_queue_close(q);
    server_kill(&srv);
}

/* Reserves from q with types (n of them) and checks it takes want (NULL: none is ready). */
static void reserve_is(vd_queue *q, const char **types, size_t n, const char *want)
{
    vd_error err;
    vd_job job = {0};
    vd_status st = vd_queue_reserve(q, "w", 60000, types, n, &job, &err);
    if (!want) {
        CHECK_EQ_INT(st, VD_ERR_EMPTY);
        return;
    }
    CHECK_OK(st);
    CHECK_EQ_STR(job.id, want);
    vd_job_clear(&job);
}

VD_TEST(priority_order_holds_across_type_queues)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, NULL, url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    /* type, priority, in enqueue order; expected reserve order with types {a, b}:
     * priorities 7, 3 (a before b: FIFO), 3, 0, -1, -2000000000 */
    struct {
        const char *type;
        int pri;
    } spec[] = {{"a", -1}, {"b", 7}, {"a", 3}, {"b", 3}, {"c", 100}, {"b", 0}, {"a", -2000000000}};
    char ids[7][VD_ID_LEN + 1];
    for (int i = 0; i < 7; i++)
        CHECK_OK(vd_queue_enqueue(
            q, &(vd_enqueue_opts){.type = spec[i].type, .priority = spec[i].pri}, ids[i], &err));
    const char *types[] = {"a", "b"};
    int order[] = {1, 2, 3, 5, 0, 6};
    for (int i = 0; i < 6; i++)
        reserve_is(q, types, 2, ids[order[i]]);
    reserve_is(q, types, 2, NULL);
    reserve_is(q, NULL, 0, ids[4]);
    vd_queue_close(q);
    server_kill(&srv);
}

/* With more than two types the reserve looks at the head of the shared ready set first
 * (prelude.lua, first_ready), and asks each type's set when that head is all other types. */
VD_TEST(priority_order_holds_with_many_types)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, NULL, url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    struct {
        const char *type;
        int pri;
    } spec[] = {{"c", 100}, {"c", 100}, {"c", 100}, {"c", 100}, {"c", 100},
                {"a", -1},  {"b", 7},   {"d", 3},   {"a", 3},   {"d", 50}};
    enum { N = sizeof spec / sizeof spec[0] };
    char ids[N][VD_ID_LEN + 1];
    for (int i = 0; i < N; i++)
        CHECK_OK(vd_queue_enqueue(
            q, &(vd_enqueue_opts){.type = spec[i].type, .priority = spec[i].pri}, ids[i], &err));
    /* five c jobs lead the shared set: its head holds none of a, b, d */
    const char *abd[] = {"a", "b", "d"};
    int order[] = {9, 6, 7, 8, 5};
    for (int i = 0; i < 5; i++)
        reserve_is(q, abd, 3, ids[order[i]]);
    reserve_is(q, abd, 3, NULL);
    /* the head holds c: taken from it, in order, then nothing */
    const char *abc[] = {"a", "b", "c"};
    for (int i = 0; i < 5; i++)
        reserve_is(q, abc, 3, ids[i]);
    reserve_is(q, abc, 3, NULL);
    vd_queue_close(q);
    server_kill(&srv);
}

/* Runs jobs through every transition, then purges: nothing may be left
 * behind in any index (only the sequence counter stays). */
VD_TEST(purge_leaves_no_keys_behind)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, "prefix=clean", url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1], c[VD_ID_LEN + 1], d[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(
        q, &(vd_enqueue_opts){.type = "x", .max_retries = 1, .retry_base_ms = 1}, a, &err));
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "y"}, b, &err));
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "x", .delay_ms = 3600000}, c, &err));
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "y", .result_ttl_ms = 1}, d, &err));
    vd_job job = {0};
    const char *tx[] = {"x"}, *ty[] = {"y"};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, tx, 1, &job, &err)); /* a */
    vd_job_clear(&job);
    CHECK_OK(vd_queue_fail(q, a, "w", "first", 1, &err)); /* scheduled */
    vd_sleep_ms(5);
    CHECK_OK(vd_queue_reserve(q, "w", 1, tx, 1, &job, &err)); /* a again, tiny lease */
    CHECK_EQ_STR(job.id, a);
    CHECK_EQ_INT(job.attempts, 2);
    vd_job_clear(&job);
    vd_sleep_ms(5);
    int changed = 0;
    CHECK_OK(vd_queue_maintain(q, &changed, &err)); /* lease lapsed, no attempts left: failed */
    CHECK(changed >= 1);
    CHECK_OK(vd_queue_get(q, a, &job, &err));
    CHECK_EQ_INT(job.state, VD_JOB_FAILED);
    CHECK_EQ_STR(job.error, "lease expired: worker lost");
    vd_job_clear(&job);
    CHECK_OK(vd_queue_requeue(q, a, &err));
    CHECK_OK(vd_queue_reserve(q, "w", 60000, tx, 1, &job, &err));
    CHECK_EQ_INT(job.attempts, 1);
    vd_job_clear(&job);
    CHECK_OK(vd_queue_cancel(q, a, &err));                        /* started -> canceled */
    CHECK_OK(vd_queue_cancel(q, c, &err));                        /* scheduled -> canceled */
    CHECK_OK(vd_queue_reserve(q, "w", 60000, ty, 1, &job, &err)); /* b */
    vd_job_clear(&job);
    CHECK_OK(vd_queue_release(q, b, "w", "stopping", &err));      /* started -> queued */
    CHECK_OK(vd_queue_reserve(q, "w", 60000, ty, 1, &job, &err)); /* b again */
    CHECK_EQ_STR(job.id, b);
    CHECK_EQ_INT(job.attempts, 1);
    vd_job_clear(&job);
    CHECK_OK(vd_queue_progress(q, b, 1, 2, &err));
    CHECK_OK(vd_queue_complete(q, b, "w", "{}", &err));
    CHECK_OK(vd_queue_reserve(q, "w", 60000, ty, 1, &job, &err)); /* d */
    vd_job_clear(&job);
    CHECK_OK(vd_queue_complete(q, d, "w", NULL, &err));
    vd_sleep_ms(5);
    CHECK_OK(vd_queue_maintain(q, &changed, &err)); /* d's result TTL passed: deleted */
    CHECK_EQ_INT(vd_queue_get(q, d, &job, &err), VD_ERR_NOT_FOUND);
    int64_t deleted = 0;
    CHECK_OK(vd_queue_purge(q, -1, vd_now_ms() + 1000, &deleted, &err));
    CHECK_EQ_INT(deleted, 3);
    int64_t counts[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, counts, &err));
    for (int s = 0; s < VD_JOB__NSTATES; s++)
        CHECK_EQ_INT(counts[s], 0);
    /* What may stay: the sequence counter and the short-lived reserve tokens. */
    long long all = count_keys(&srv, "clean:*"), rsv = count_keys(&srv, "clean:rsv:*");
    if (all != 1 + rsv) {
        redisContext *rc = redisConnect("127.0.0.1", srv.port);
        redisReply *r = redisCommand(rc, "KEYS clean:*");
        for (size_t i = 0; r && i < r->elements; i++)
            printf("    left: %s\n", r->element[i]->str);
        freeReplyObject(r);
        redisFree(rc);
    }
    CHECK_EQ_INT(all, 1 + rsv);
    CHECK_EQ_INT(count_keys(&srv, "clean:seq"), 1);
    vd_queue_close(q);
    server_kill(&srv);
}

/* Four processes take 400 jobs at once; each job is taken exactly once. */
VD_TEST(concurrent_reservers_take_each_job_once)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, NULL, url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    enum { NJOBS = 400, NPROC = 4 };
    for (int i = 0; i < NJOBS; i++) {
        char id[16];
        snprintf(id, sizeof id, "job%d", i);
        CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .id = id, .priority = i % 3},
                                  NULL, &err));
    }
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t kids[NPROC];
    int64_t t0 = vd_mono_ms();
    for (int p = 0; p < NPROC; p++) {
        kids[p] = fork();
        CHECK(kids[p] >= 0);
        if (kids[p] == 0) {
            close(fds[0]);
            vd_queue *cq;
            vd_error cerr;
            if (vd_queue_open(url, &cq, &cerr) != VD_OK) _exit(2);
            char worker[32];
            snprintf(worker, sizeof worker, "w%d", p);
            for (;;) {
                vd_job job = {0};
                vd_status st = vd_queue_reserve(cq, worker, 60000, NULL, 0, &job, &cerr);
                if (st == VD_ERR_EMPTY) break;
                if (st != VD_OK) _exit(3);
                int num = atoi(job.id + 3);
                if (write(fds[1], &num, sizeof num) != sizeof num) _exit(4);
                st = vd_queue_complete(cq, job.id, worker, NULL, &cerr);
                vd_job_clear(&job);
                if (st != VD_OK) _exit(5);
            }
            vd_queue_close(cq);
            _exit(0);
        }
    }
    close(fds[1]);
    int seen[NJOBS] = {0}, num, total = 0, dup = 0;
    while (read(fds[0], &num, sizeof num) == sizeof num) {
        if (num >= 0 && num < NJOBS) {
            if (seen[num]++) dup++;
            total++;
        }
    }
    close(fds[0]);
    for (int p = 0; p < NPROC; p++) {
        int wst;
        waitpid(kids[p], &wst, 0);
        CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    }
    printf("    %d jobs through %d processes in %lld ms\n", total, NPROC,
           (long long)(vd_mono_ms() - t0));
    CHECK_EQ_INT(dup, 0);
    CHECK_EQ_INT(total, NJOBS);
    int64_t counts[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, counts, &err));
    CHECK_EQ_INT(counts[VD_JOB_FINISHED], NJOBS);
    vd_queue_close(q);
    server_kill(&srv);
}

/* Writes a queued job as the enqueue of the first layout did (every field, the whole
 * ready member in 'rk'), so that the tests below can check that it is still served. */
static void write_old_job(redisContext *c, const char *id, int prio, long long seq)
{
    char rk[128], pr[16], sq[24];
    snprintf(rk, sizeof rk, "%08x%016llx%016llx%s", 2147483647 - prio, 1700000000000LL, seq, id);
    snprintf(pr, sizeof pr, "%d", prio);
    snprintf(sq, sizeof sq, "%lld", seq);
    const char *argv[] = {"HSET",
                          NULL,
                          "id",
                          id,
                          "type",
                          "t",
                          "payload",
                          "{\"old\":1}",
                          "priority",
                          pr,
                          "attempts",
                          "0",
                          "max_retries",
                          "0",
                          "timeout_ms",
                          "0",
                          "retry_base_ms",
                          "1000",
                          "retry_max_ms",
                          "300000",
                          "result_ttl_ms",
                          "604800000",
                          "created_ms",
                          "1700000000000",
                          "started_ms",
                          "0",
                          "ended_ms",
                          "0",
                          "lease_until_ms",
                          "0",
                          "worker",
                          "",
                          "progress_done",
                          "0",
                          "progress_total",
                          "0",
                          "cancel_requested",
                          "0",
                          "seq",
                          sq,
                          "etoken",
                          "e",
                          "state",
                          "queued",
                          "rk",
                          rk,
                          "run_at_ms",
                          "1700000000000"};
    char key[64];
    snprintf(key, sizeof key, "old:job:%s", id);
    argv[1] = key;
    freeReplyObject(redisCommandArgv(c, (int)(sizeof argv / sizeof argv[0]), argv, NULL));
    freeReplyObject(redisCommand(c, "ZADD old:ready 0 %s", rk));
    freeReplyObject(redisCommand(c, "ZADD old:ready:t 0 %s", rk));
    const char *sets[] = {"all", "type:t", "state:queued", "st:queued:t"};
    for (size_t i = 0; i < 4; i++)
        freeReplyObject(redisCommand(c, "ZADD old:%s %s %s", sets[i], sq, id));
    freeReplyObject(redisCommand(c, "INCR old:seq"));
}

/* Jobs written by the first layout (every field present, the whole ready member in 'rk')
 * are read, reserved and canceled by the current scripts, and leave no index entry behind. */
VD_TEST(jobs_of_the_first_layout_are_still_served)
{
    server srv;
    if (!server_up(&srv)) return;
    redisContext *c = redisConnect("127.0.0.1", srv.port);
    CHECK(c && !c->err);
    write_old_job(c, "olda", 5, 1);
    write_old_job(c, "oldb", 0, 2);
    char url[256];
    url_for(&srv, "prefix=old", url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 1}, id, &err));
    vd_job job = {0};
    CHECK_OK(vd_queue_get(q, "oldb", &job, &err));
    CHECK_EQ_STR(job.payload, "{\"old\":1}");
    CHECK_EQ_INT(job.state, VD_JOB_QUEUED);
    vd_job_clear(&job);
    const char *types[] = {"t"};
    CHECK_OK(vd_queue_reserve(q, "w", 60000, types, 1, &job, &err)); /* priority 5 first */
    CHECK_EQ_STR(job.id, "olda");
    vd_job_clear(&job);
    CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &job, &err)); /* then the new one */
    CHECK_EQ_STR(job.id, id);
    vd_job_clear(&job);
    CHECK_OK(vd_queue_cancel(q, "oldb", &err));         /* queued (old) -> canceled */
    CHECK_OK(vd_queue_release(q, id, "w", NULL, &err)); /* started -> queued (new rk) */
    CHECK_OK(vd_queue_cancel(q, id, &err));
    CHECK_OK(vd_queue_complete(q, "olda", "w", NULL, &err));
    CHECK_EQ_INT(side_command(&srv, "ZCARD old:ready"), 0);
    CHECK_EQ_INT(side_command(&srv, "ZCARD old:ready:t"), 0);
    CHECK_EQ_INT(side_command(&srv, "ZCARD old:state:queued"), 0);
    int64_t counts[VD_JOB__NSTATES];
    CHECK_OK(vd_queue_counts(q, counts, &err));
    CHECK_EQ_INT(counts[VD_JOB_CANCELED], 2);
    CHECK_EQ_INT(counts[VD_JOB_FINISHED], 1);
    vd_queue_close(q);
    redisFree(c);
    server_kill(&srv);
}

/* Every field of a job hash stays under Redis' hash-max-listpack-value (64 bytes by default)
 * for a small payload, so the hash is kept as a compact listpack, not a hash table (half the
 * HSET time and a third of the memory of a bulk enqueue, docs/queue-redis.md). */
VD_TEST(a_job_hash_is_kept_compact)
{
    server srv;
    if (!server_up(&srv)) return;
    char url[256];
    url_for(&srv, NULL, url, sizeof url);
    vd_error err;
    vd_queue *q;
    CHECK_OK(vd_queue_open(url, &q, &err));
    char id[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "image.describe"}, id, &err));
    redisContext *c = redisConnect("127.0.0.1", srv.port);
    CHECK(c && !c->err);
    for (int round = 0; round < 2; round++) {
        redisReply *r = redisCommand(c, "HGETALL visiond:job:%s", id);
        CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements > 0);
        for (size_t i = 0; r && i < r->elements; i++)
            if (r->element[i]->len > 64)
                vd_test_fail_at(__FILE__, __LINE__, "field %zu is %zu bytes", i,
                                r->element[i]->len);
        freeReplyObject(r);
        r = redisCommand(c, "OBJECT ENCODING visiond:job:%s", id);
        CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "hashtable") != 0);
        freeReplyObject(r);
        if (round == 0) { /* and after it is queued again by set_state */
            vd_job job = {0};
            CHECK_OK(vd_queue_reserve(q, "w", 60000, NULL, 0, &job, &err));
            vd_job_clear(&job);
            CHECK_OK(vd_queue_release(q, id, "w", NULL, &err));
        }
    }
    redisFree(c);
    vd_queue_close(q);
    server_kill(&srv);
}

/* server_up, then a queue handle on it with the URL options opts. Returns 1 when both are
 * there; 0 when the test was skipped or failed. */
static int queue_up(server *srv, const char *opts, vd_queue **q)
{
    if (!server_up(srv)) return 0;
    char url[256];
    vd_error err;
    url_for(srv, opts, url, sizeof url);
    if (vd_queue_open(url, q, &err) == VD_OK) return 1;
    vd_test_fail_at(__FILE__, __LINE__, "%s", err.msg);
    server_kill(srv);
    return 0;
}

/* vd_queue_complete_reserve on Redis is one script call (complete_reserve.lua). Its reply
 * lost (the server stalls past the client's timeout, then runs it): VD_ERR_CONN; the
 * complete was written, and the caller's next steps (the complete alone, then a reserve on
 * the same handle) answer ok and hand back the job the lost reply carried, once. */
VD_TEST(complete_reserve_is_one_call_and_survives_a_lost_reply)
{
    server srv;
    vd_queue *q;
    if (!queue_up(&srv, "timeout_ms=300&retry_ms=0", &q)) return;
    vd_error err;
    char a[VD_ID_LEN + 1], b[VD_ID_LEN + 1], c[VD_ID_LEN + 1], d[VD_ID_LEN + 1];
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 9}, a, &err));
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 8}, b, &err));
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 7}, c, &err));
    CHECK_OK(vd_queue_enqueue(q, &(vd_enqueue_opts){.type = "t", .priority = 6}, d, &err));
    vd_job job = {0}, next = {0};
    int got = 0;
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err));
    CHECK_EQ_STR(job.id, a);
    vd_job_clear(&job);

    long long before = command_calls(&srv, "evalsha");
    CHECK(before > 0);
    CHECK_OK(vd_queue_complete_reserve(q, a, "w1", "{}", 60000, NULL, 0, &next, &got, &err));
    CHECK_EQ_INT(command_calls(&srv, "evalsha") - before, 1); /* one round trip */
    CHECK_EQ_INT(got, 1);
    CHECK_EQ_STR(next.id, b);
    CHECK_EQ_INT(next.state, VD_JOB_STARTED);
    vd_job_clear(&next);

    redisContext *side = stall_begin(&srv);
    CHECK(side != NULL);
    vd_status st =
        vd_queue_complete_reserve(q, b, "w1", "{\"n\":1}", 60000, NULL, 0, &next, &got, &err);
    stall_end(side);
    if (st == VD_OK) {
        vd_test_skip("the server did not stall before the call; nothing to retry");
        vd_job_clear(&next);
        vd_queue_close(q);
        server_kill(&srv);
        return;
    }
    CHECK_EQ_INT(st, VD_ERR_CONN);
    CHECK_EQ_INT(got, 0);
    CHECK_OK(vd_queue_get(q, c, &job, &err)); /* it ran, late: c is w1's */
    CHECK_EQ_INT(job.state, VD_JOB_STARTED);
    vd_job_clear(&job);
    CHECK_OK(vd_queue_complete(q, b, "w1", "{\"n\":2}", &err)); /* what the supervisor does */
    CHECK_OK(vd_queue_get(q, b, &job, &err));
    CHECK_EQ_INT(job.state, VD_JOB_FINISHED);
    CHECK_EQ_STR(job.result, "{\"n\":1}"); /* written once */
    vd_job_clear(&job);
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err));
    CHECK_EQ_STR(job.id, c); /* the job the lost reply carried, not d */
    CHECK_EQ_INT(job.attempts, 1);
    vd_job_clear(&job);
    CHECK_OK(vd_queue_reserve(q, "w1", 60000, NULL, 0, &job, &err)); /* settled: the next */
    CHECK_EQ_STR(job.id, d);
    vd_job_clear(&job);
    vd_queue_close(q);
    server_kill(&srv);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* the backend must not rely on SIGPIPE being ignored */
    return vd_test_run_all();
}
