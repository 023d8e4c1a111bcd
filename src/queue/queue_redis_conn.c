/* queue_redis_conn.c: the Redis backend's connection: the URL, connecting (AUTH, SELECT),
 * running a command with reconnects and retries for up to retry_ms, and the Lua scripts
 * (src/queue/lua/NAME.lua, embedded at build time: queue_lua.h) loaded with SCRIPT LOAD and run
 * with EVALSHA. See queue_redis.c for the URL's parameters and docs/queue-redis.md. */
#include "core/hostport.h"
#include "core/util.h"
#include "queue/queue_lua.h"
#include "queue/queue_redis_impl.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the scripts ----------------------------------------------------------------------------- */

static const char *const script_names[S__N] = {
    [S_ENQUEUE] = "enqueue",     [S_RESERVE] = "reserve",
    [S_HEARTBEAT] = "heartbeat", [S_PROGRESS] = "progress",
    [S_COMPLETE] = "complete",   [S_FAIL] = "fail",
    [S_RELEASE] = "release",     [S_CANCEL] = "cancel",
    [S_REQUEUE] = "requeue",     [S_LIST] = "list",
    [S_COUNTS] = "counts",       [S_MAINTAIN] = "maintain",
    [S_PURGE] = "purge",         [S_COMPLETE_RESERVE] = "complete_reserve",
};

/* The embedded source of src/queue/lua/NAME.lua, or NULL. */
static const vd_lua_script *lua_find(const char *name)
{
    size_t n;
    const vd_lua_script *t = vd_queue_lua_scripts(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return &t[i];
    return NULL;
}

/* q->src[s] = prelude.lua + the script's own file, for every script. */
static vd_status assemble_scripts(rqueue *q, vd_error *err)
{
    const vd_lua_script *prelude = lua_find("prelude");
    if (!prelude) return vd_error_set(err, VD_ERR_INTERNAL, "redis: prelude.lua is not embedded");
    for (int s = 0; s < S__N; s++) {
        const vd_lua_script *own = lua_find(script_names[s]);
        if (!own)
            return vd_error_set(err, VD_ERR_INTERNAL, "redis: %s.lua is not embedded",
                                script_names[s]);
        if (!(q->src[s] = malloc(prelude->len + own->len + 1)))
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        memcpy(q->src[s], prelude->src, prelude->len);
        memcpy(q->src[s] + prelude->len, own->src, own->len + 1);
    }
    return VD_OK;
}

/* ---- connection ----------------------------------------------------------------------------- */

/* Runs one command, keeping a SIGPIPE raised by writing to a socket the
 * server closed from killing the process: the signal is blocked for the call
 * and a SIGPIPE it raised is consumed (a library must not touch handlers). */
static redisReply *command_nosigpipe(redisContext *c, int argc, const char **argv,
                                     const size_t *lens)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    if (!was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

static void drop_connection(rqueue *q)
{
    if (q->c) redisFree(q->c);
    q->c = NULL;
}

/* One connection attempt: connect, set timeouts, AUTH, SELECT. Returns
 * VD_ERR_CONN for what a retry may cure, VD_ERR_AUTH or VD_ERR_DB otherwise;
 * the reason goes into why. */
static vd_status try_connect(rqueue *q, char *why, size_t why_n)
{
    struct timeval tv = {(time_t)(q->timeout_ms / 1000),
                         (suseconds_t)(q->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(q->host, q->port, tv);
    if (!c) {
        snprintf(why, why_n, "out of memory");
        return VD_ERR_CONN;
    }
    if (c->err) {
        snprintf(why, why_n, "%s", c->errstr);
        redisFree(c);
        return VD_ERR_CONN;
    }
    redisSetTimeout(c, tv);
    redisEnableKeepAlive(c);
    vd_status st = VD_OK;
    if (q->password) {
        const char *argv[3] = {"AUTH", q->user ? q->user : q->password, q->password};
        redisReply *r = command_nosigpipe(c, q->user ? 3 : 2, argv, NULL);
        if (!r) {
            snprintf(why, why_n, "%s", c->errstr);
            st = VD_ERR_CONN;
        } else {
            if (r->type == REDIS_REPLY_ERROR) {
                snprintf(why, why_n, "AUTH failed: %s", r->str);
                st = strncmp(r->str, "LOADING", 7) == 0 ? VD_ERR_CONN : VD_ERR_AUTH;
            }
            freeReplyObject(r);
        }
    }
    if (st == VD_OK && q->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", q->db);
        const char *argv[2] = {"SELECT", db};
        redisReply *r = command_nosigpipe(c, 2, argv, NULL);
        if (!r) {
            snprintf(why, why_n, "%s", c->errstr);
            st = VD_ERR_CONN;
        } else {
            if (r->type == REDIS_REPLY_ERROR) {
                snprintf(why, why_n, "SELECT %d failed: %s", q->db, r->str);
                st = strncmp(r->str, "LOADING", 7) == 0 ? VD_ERR_CONN : VD_ERR_DB;
            }
            freeReplyObject(r);
        }
    }
    if (st != VD_OK) {
        redisFree(c);
        return st;
    }
    q->c = c;
    return VD_OK;
}

/* Replies that mean "not now, the same command will work shortly". */
static int transient_error(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && r->str &&
           (strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "BUSY ", 5) == 0 ||
            strncmp(r->str, "TRYAGAIN", 8) == 0);
}

/* Runs one command, reconnecting and retrying with backoff while the
 * connection is broken or Redis is loading, for up to retry_ms. *out is a
 * reply (possibly an error reply) the caller frees. */
vd_status vd_redis_call(rqueue *q, int argc, const char **argv, const size_t *lens,
                        redisReply **out, vd_error *err)
{
    *out = NULL;
    int64_t start = vd_mono_ms(), pause = 25;
    int tries = 0;
    char why[256] = "";
    for (;;) {
        tries++;
        if (!q->c) {
            vd_status st = try_connect(q, why, sizeof why);
            if (st != VD_OK && st != VD_ERR_CONN)
                return vd_error_set(err, st, "redis %s:%d: %s", q->host, q->port, why);
        }
        if (q->c) {
            redisReply *r = command_nosigpipe(q->c, argc, argv, lens);
            if (!r) {
                if (q->c->err == REDIS_ERR_IO && strstr(q->c->errstr, "temporarily unavailable"))
                    snprintf(why, sizeof why, "no reply within timeout_ms=%" PRId64, q->timeout_ms);
                else
                    snprintf(why, sizeof why, "%s",
                             q->c->errstr[0] ? q->c->errstr : "connection lost");
                drop_connection(q);
            } else if (transient_error(r)) {
                snprintf(why, sizeof why, "%s", r->str);
                freeReplyObject(r);
            } else {
                *out = r;
                return VD_OK;
            }
        }
        int64_t spent = vd_mono_ms() - start;
        if (spent >= q->retry_ms)
            return vd_error_set(err, VD_ERR_CONN,
                                "cannot reach redis at %s:%d (%d tries over %" PRId64 " ms): %s",
                                q->host, q->port, tries, spent, why);
        int64_t left = q->retry_ms - spent;
        vd_sleep_ms(pause < left ? pause : left);
        pause = pause * 2 > 1000 ? 1000 : pause * 2;
    }
}

static vd_status load_script(rqueue *q, int s, vd_error *err)
{
    const char *argv[3] = {"SCRIPT", "LOAD", q->src[s]};
    redisReply *r;
    vd_status st = vd_redis_call(q, 3, argv, NULL, &r, err);
    if (st != VD_OK) return st;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        st = vd_error_set(err, VD_ERR_DB, "redis SCRIPT LOAD %s failed: %s", script_names[s],
                          r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    } else {
        memcpy(q->sha[s], r->str, 40);
        q->sha[s][40] = '\0';
    }
    freeReplyObject(r);
    return st;
}

/* Runs script s with ARGV = prefix, args[0..nargs). A NOSCRIPT reply (the
 * server lost its script cache, e.g. it restarted) loads the script again and
 * repeats: the script did not run. An error reply becomes VD_ERR_DB; any
 * other reply goes to *out for the caller to free. */
vd_status vd_redis_eval(rqueue *q, int s, int nargs, const char *const *args, const size_t *lens,
                        redisReply **out, vd_error *err)
{
    *out = NULL;
    int argc = 4 + nargs;
    const char **argv = malloc(sizeof *argv * (size_t)argc);
    size_t *alen = malloc(sizeof *alen * (size_t)argc);
    if (!argv || !alen) {
        free(argv);
        free(alen);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    argv[0] = "EVALSHA";
    argv[2] = "0";
    argv[3] = q->prefix;
    for (int i = 0; i < nargs; i++) {
        argv[4 + i] = args[i];
        alen[4 + i] = lens ? lens[i] : strlen(args[i]);
    }
    alen[0] = 7;
    alen[2] = 1;
    alen[3] = strlen(q->prefix);
    vd_status st = VD_OK;
    for (int round = 0;; round++) {
        if (!q->sha[s][0] && (st = load_script(q, s, err)) != VD_OK) break;
        argv[1] = q->sha[s];
        alen[1] = 40;
        redisReply *r;
        if ((st = vd_redis_call(q, argc, argv, alen, &r, err)) != VD_OK) break;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && round < 3) {
            freeReplyObject(r);
            q->sha[s][0] = '\0';
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            /* "OOM command not allowed when used memory > 'maxmemory'" */
            vd_status code = strncmp(r->str, "OOM", 3) == 0 ? VD_ERR_NOSPACE : VD_ERR_DB;
            st = vd_error_set(err, code, "redis %s script failed: %s", script_names[s], r->str);
            freeReplyObject(r);
            break;
        }
        *out = r;
        break;
    }
    free(argv);
    free(alen);
    return st;
}

/* ---- URL and set-up ---------------------------------------------------------------------------
 */

static int parse_int64(const char *s, size_t n, int64_t lo, int64_t hi, int64_t *out)
{
    if (n == 0 || n > 18) return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static vd_status parse_url(rqueue *q, const char *url, vd_error *err)
{
    char shown[512]; /* for messages: never the password */
    vd_url_redact(url, shown, sizeof shown);
    const char *p = url + 8; /* after "redis://" */
    const char *end = p + strcspn(p, "/?");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon)
            return vd_error_set(err, VD_ERR_INVALID,
                                "redis url: credentials must be USER:PASSWORD@");
        if (colon > p && !(q->user = dup_n(p, (size_t)(colon - p))))
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        if (!(q->password = dup_n(colon + 1, (size_t)(at - colon - 1))))
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        p = at + 1;
    }
    /* HOST[:PORT] through the one HOST:PORT parser (core/hostport.h), the
     * port defaulting to 6379; the text parsed holds no credentials. */
    char hp_text[VD_HOSTPORT_HOST_MAX + 16];
    size_t alen = (size_t)(end - p);
    if (alen >= VD_HOSTPORT_HOST_MAX + 8)
        return vd_error_set(err, VD_ERR_INVALID, "redis url: host too long in '%s'", shown);
    const char *close = *p == '[' ? memchr(p, ']', alen) : NULL;
    int has_port = *p == '[' ? close && close + 1 < end && close[1] == ':' : !!memchr(p, ':', alen);
    snprintf(hp_text, sizeof hp_text, "%.*s%s", (int)alen, p, has_port ? "" : ":6379");
    vd_hostport hp;
    vd_status st = vd_hostport_parse(hp_text, 0, "redis url", &hp, err);
    if (st != VD_OK) return st;
    if (strlen(hp.host) >= sizeof q->host)
        return vd_error_set(err, VD_ERR_INVALID, "redis url: host too long in '%s'", shown);
    vd_strlcpy(q->host, hp.host, sizeof q->host);
    q->port = hp.port;
    p = end;
    q->db = 0;
    if (*p == '/') {
        p++;
        size_t n = strcspn(p, "?");
        int64_t db;
        if (n > 0) {
            if (!parse_int64(p, n, 0, 1000000, &db))
                return vd_error_set(err, VD_ERR_INVALID, "redis url: bad database number in '%s'",
                                    shown);
            q->db = (int)db;
        }
        p += n;
    }
    snprintf(q->prefix, sizeof q->prefix, "visiond:");
    q->timeout_ms = 5000;
    q->retry_ms = 10000;
    if (*p == '?') p++;
    while (*p) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        if (!eq)
            return vd_error_set(err, VD_ERR_INVALID, "redis url: option without '=' in '%s'",
                                shown);
        size_t kn = (size_t)(eq - p), vn = n - kn - 1;
        const char *v = eq + 1;
        if (kn == 6 && strncmp(p, "prefix", 6) == 0) {
            if (vn == 0 || vn > PREFIX_MAX ||
                strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:.{}-") <
                    vn)
                return vd_error_set(
                    err, VD_ERR_INVALID,
                    "redis url: prefix must be 1-%d characters of [A-Za-z0-9_:.{}-]", PREFIX_MAX);
            memcpy(q->prefix, v, vn);
            q->prefix[vn] = '\0';
            if (v[vn - 1] != ':') strcat(q->prefix, ":");
        } else if (kn == 10 && strncmp(p, "timeout_ms", 10) == 0) {
            if (!parse_int64(v, vn, 1, 3600000, &q->timeout_ms))
                return vd_error_set(err, VD_ERR_INVALID, "redis url: timeout_ms must be 1-3600000");
        } else if (kn == 8 && strncmp(p, "retry_ms", 8) == 0) {
            if (!parse_int64(v, vn, 0, 86400000, &q->retry_ms))
                return vd_error_set(err, VD_ERR_INVALID, "redis url: retry_ms must be 0-86400000");
        } else {
            return vd_error_set(err, VD_ERR_INVALID, "redis url: unknown option '%.*s'", (int)kn,
                                p);
        }
        p += n;
        if (*p == '&') p++;
    }
    return VD_OK;
}

vd_status vd_redis_setup(rqueue *q, const char *url, vd_error *err)
{
    vd_status st = parse_url(q, url, err);
    if (st == VD_OK) st = assemble_scripts(q, err);
    for (int s = 0; st == VD_OK && s < S__N; s++)
        st = load_script(q, s, err);
    return st;
}

void vd_redis_teardown(rqueue *q)
{
    drop_connection(q);
    for (int s = 0; s < S__N; s++)
        free(q->src[s]);
    free(q->user);
    free(q->password);
}
