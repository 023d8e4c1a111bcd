/* queue_redis_impl.h: what the two files of the Redis backend share (private to src/queue).
 *
 *   queue_redis.c       the queue operations (queue_impl.h) as script calls, replies -> jobs
 *   queue_redis_conn.c  the URL, the connection (reconnect, retry, SIGPIPE), the scripts
 *                       (src/queue/lua/NAME.lua, embedded: queue_lua.h) loaded and run by SHA */
#ifndef VD_QUEUE_REDIS_IMPL_H
#define VD_QUEUE_REDIS_IMPL_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/queue_impl.h"

#define PREFIX_MAX 100

/* The scripts, by the name of their file under src/queue/lua/ (vd_redis_script_name). */
enum {
    S_ENQUEUE,
    S_RESERVE,
    S_HEARTBEAT,
    S_PROGRESS,
    S_COMPLETE,
    S_COMPLETE_RESERVE,
    S_FAIL,
    S_RELEASE,
    S_CANCEL,
    S_REQUEUE,
    S_LIST,
    S_COUNTS,
    S_MAINTAIN,
    S_PURGE,
    S__N
};

typedef struct {
    vd_queue base;
    redisContext *c;
    char host[256];
    int port;
    int db;
    char *user;     /* owned, or NULL */
    char *password; /* owned, or NULL */
    char prefix[PREFIX_MAX + 2];
    int64_t timeout_ms;
    int64_t retry_ms;
    char *src[S__N]; /* owned: prelude.lua + the script (queue_lua.h) */
    char sha[S__N][41];
    /* The last mutating call whose outcome is unknown (it ended in VD_ERR_CONN:
     * the script may have run with its reply lost). The same call repeated on
     * this handle reuses its token, so the script recognises it if it ran. */
    struct {
        int script; /* -1 = none */
        char id[VD_ID_LEN + 1];
        char worker[VD_WORKER_ID_MAX];
        char token[VD_ID_LEN + 1];
    } unsure;
} rqueue;

/* Parses url into q (host, port, db, credentials, prefix, timeouts), assembles the scripts
 * (prelude + each) and loads them into Redis. On failure, vd_redis_teardown frees what was set. */
vd_status vd_redis_setup(rqueue *q, const char *url, vd_error *err);
/* Closes the connection and frees what vd_redis_setup allocated (not q itself). */
void vd_redis_teardown(rqueue *q);
/* Runs one command, reconnecting and retrying with backoff while the connection is broken
 * or Redis is loading, for up to retry_ms. *out is a reply (possibly an error reply) the
 * caller frees. */
vd_status vd_redis_call(rqueue *q, int argc, const char **argv, const size_t *lens,
                        redisReply **out, vd_error *err);
/* Runs script s with ARGV = prefix, args[0..nargs) (lens NULL: C strings). A NOSCRIPT reply
 * loads the script again and repeats (the script did not run). An error reply becomes
 * VD_ERR_DB (VD_ERR_NOSPACE for Redis' OOM); any other reply goes to *out for the caller to
 * free. */
vd_status vd_redis_eval(rqueue *q, int s, int nargs, const char *const *args, const size_t *lens,
                        redisReply **out, vd_error *err);

#endif
