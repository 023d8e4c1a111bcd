/* queue_redis.c: the Redis backend of queue.h ("redis://HOST:PORT/DB").
 *
 * Every state change is one Lua script run with EVALSHA (loaded with SCRIPT
 * LOAD; a NOSCRIPT reply, e.g. after a Redis restart, loads it again), so a
 * change that touches several keys is atomic. Times come from the Redis
 * server's clock (TIME inside the scripts): every worker on every machine
 * measures leases and run_at times against one clock. The key layout and the
 * scripts are described in docs/queue-redis.md.
 *
 * URL: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P&timeout_ms=N&retry_ms=N]
 *   prefix      key prefix, default "visiond:" (a ':' is appended when missing)
 *   timeout_ms  connect and per-command timeout, default 5000
 *   retry_ms    how long an operation keeps reconnecting and retrying after
 *               the connection broke (or Redis is loading its data set),
 *               with backoff from 25 ms to 1 s; default 10000. After that the
 *               operation returns VD_ERR_CONN.
 *
 * Retries are safe: every mutating script carries a random token and
 * recognises a repeat of an operation it already applied (enqueue, reserve,
 * fail, release, cancel, requeue); heartbeat and progress are idempotent; complete of a
 * job already finished by the same worker succeeds. */
#include "core/util.h"
#include "queue/queue_impl.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

vd_status vd_queue_redis_open(const char *url, vd_queue **out, vd_error *err);

#define PREFIX_MAX   100
#define BATCH        1000 /* jobs one maintain/purge/reserve script touches at most */
#define MAX_DELAY_MS ((int64_t)1 << 50)

/* ---- Lua ------------------------------------------------------------------------------------ */

/* Shared by every script (prepended to each when a handle loads them). ARGV[1] is
 * always the key prefix. set_state(id, to, at) moves a job to state `to` and keeps
 * every index right; `at` is the run_at (queued, scheduled), the lease end (started)
 * or the end time (finished, failed, canceled). */
static const char lua_prelude[] =
    "local P = ARGV[1]\n"
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local LEASE_LOST_MSG = 'lease expired: worker lost'\n"
    "local function K(s) return P .. s end\n"
    "local function JK(id) return P .. 'job:' .. id end\n"
    "local function I(x) return string.format('%d', x) end\n"
    "local function now_ms()\n"
    "  local t = redis.call('TIME')\n"
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "end\n"
    "local function leave(id, from, typ)\n"
    "  if not from then return end\n"
    "  if from == 'queued' then\n"
    "    local rk = redis.call('HGET', JK(id), 'rk')\n"
    "    if rk then\n"
    "      redis.call('ZREM', K('ready'), rk)\n"
    "      redis.call('ZREM', K('ready:' .. typ), rk)\n"
    "      redis.call('HDEL', JK(id), 'rk')\n"
    "    end\n"
    "  elseif from == 'scheduled' then\n"
    "    redis.call('ZREM', K('scheduled'), id)\n"
    "  elseif from == 'started' then\n"
    "    redis.call('ZREM', K('leases'), id)\n"
    "    redis.call('HSET', JK(id), 'lease_until_ms', '0')\n"
    "  else\n"
    "    redis.call('ZREM', K('ended:' .. from), id)\n"
    "    if from == 'finished' then redis.call('ZREM', K('expires'), id) end\n"
    "  end\n"
    "  redis.call('ZREM', K('state:' .. from), id)\n"
    "  redis.call('ZREM', K('st:' .. from .. ':' .. typ), id)\n"
    "end\n"
    "local function set_state(id, to, at, tie)\n"
    "  local k = JK(id)\n"
    "  local f = redis.call('HMGET', k, 'state', 'type', 'seq', 'priority', 'result_ttl_ms')\n"
    "  local typ, seq = f[2], tonumber(f[3])\n"
    "  tie = tie or seq\n"
    "  leave(id, f[1], typ)\n"
    "  redis.call('ZADD', K('state:' .. to), seq, id)\n"
    "  redis.call('ZADD', K('st:' .. to .. ':' .. typ), seq, id)\n"
    "  redis.call('HSET', k, 'state', to)\n"
    "  if to == 'queued' then\n"
    "    local rk = string.format('%08x%016x%016x', 2147483647 - tonumber(f[4]), at, tie)\n"
    "    rk = rk .. id\n"
    "    redis.call('ZADD', K('ready'), 0, rk)\n"
    "    redis.call('ZADD', K('ready:' .. typ), 0, rk)\n"
    "    redis.call('HSET', k, 'rk', rk, 'run_at_ms', I(at))\n"
    "  elseif to == 'scheduled' then\n"
    "    redis.call('ZADD', K('scheduled'), at, id)\n"
    "    redis.call('HSET', k, 'run_at_ms', I(at))\n"
    "  elseif to == 'started' then\n"
    "    redis.call('ZADD', K('leases'), at, id)\n"
    "    redis.call('HSET', k, 'lease_until_ms', I(at))\n"
    "  else\n"
    "    redis.call('ZADD', K('ended:' .. to), at, id)\n"
    "    redis.call('HSET', k, 'ended_ms', I(at))\n"
    "    local ttl = tonumber(f[5]) or 0\n"
    "    if to == 'finished' and ttl > 0 then\n"
    "      redis.call('ZADD', K('expires'), at + ttl, id)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function delete_job(id)\n"
    "  local f = redis.call('HMGET', JK(id), 'state', 'type')\n"
    "  leave(id, f[1], f[2])\n"
    "  if f[2] then\n"
    "    redis.call('ZREM', K('all'), id)\n"
    "    redis.call('ZREM', K('type:' .. f[2]), id)\n"
    "  end\n"
    "  redis.call('DEL', JK(id))\n"
    "end\n"
    /* lapsed leases: back to queued (run_at = now), or failed when no attempt is left */
    "local function reclaim(now, limit)\n"
    "  local ids = redis.call('ZRANGEBYSCORE', K('leases'), '-inf', '(' .. I(now),\n"
    "                         'LIMIT', 0, limit)\n"
    "  for _, id in ipairs(ids) do\n"
    "    local f = redis.call('HMGET', JK(id), 'state', 'attempts', 'max_retries')\n"
    "    if f[1] ~= 'started' then\n"
    "      redis.call('ZREM', K('leases'), id)\n"
    "    else\n"
    "      redis.call('HSET', JK(id), 'error', LEASE_LOST_MSG)\n"
    "      if tonumber(f[2]) >= 1 + tonumber(f[3]) then\n"
    "        set_state(id, 'failed', now)\n"
    "      else\n"
    "        set_state(id, 'queued', now)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  return #ids\n"
    "end\n"
    /* due scheduled jobs: queued, keeping their run_at */
    "local function promote(now, limit)\n"
    "  local ids = redis.call('ZRANGEBYSCORE', K('scheduled'), '-inf', I(now),\n"
    "                         'LIMIT', 0, limit)\n"
    "  for _, id in ipairs(ids) do\n"
    "    local f = redis.call('HMGET', JK(id), 'state', 'run_at_ms')\n"
    "    if f[1] ~= 'scheduled' then\n"
    "      redis.call('ZREM', K('scheduled'), id)\n"
    "    else\n"
    "      set_state(id, 'queued', tonumber(f[2]))\n"
    "    end\n"
    "  end\n"
    "  return #ids\n"
    "end\n";

/* ARGV: P token id type payload priority max_retries timeout_ms delay_ms retry_base_ms
 *       retry_max_ms result_ttl_ms */
static const char lua_enqueue[] =
    "local token, id, typ = ARGV[2], ARGV[3], ARGV[4]\n"
    "local k = JK(id)\n"
    "if redis.call('EXISTS', k) == 1 then\n"
    "  if redis.call('HGET', k, 'etoken') == token then return {'ok'} end\n"
    "  return {'exists'}\n"
    "end\n"
    "local now = now_ms()\n"
    "local delay = tonumber(ARGV[9])\n"
    "local seq = redis.call('INCR', K('seq'))\n"
    "redis.call('HSET', k, 'id', id, 'type', typ, 'payload', ARGV[5], 'priority', ARGV[6],\n"
    "  'attempts', '0', 'max_retries', ARGV[7], 'timeout_ms', ARGV[8], 'retry_base_ms', ARGV[10],\n"
    "  'retry_max_ms', ARGV[11], 'result_ttl_ms', ARGV[12], 'created_ms', I(now),\n"
    "  'started_ms', '0', 'ended_ms', '0', 'lease_until_ms', '0', 'worker', '',\n"
    "  'progress_done', '0', 'progress_total', '0', 'cancel_requested', '0', 'seq', I(seq),\n"
    "  'etoken', token)\n"
    "redis.call('ZADD', K('all'), seq, id)\n"
    "redis.call('ZADD', K('type:' .. typ), seq, id)\n"
    "if delay > 0 then\n"
    "  set_state(id, 'scheduled', now + delay)\n"
    "else\n"
    "  set_state(id, 'queued', now)\n"
    "end\n"
    "return {'ok'}\n";

/* ARGV: P token worker lease_ms [type...] */
static const char lua_reserve[] =
    "local token, worker, lease = ARGV[2], ARGV[3], tonumber(ARGV[4])\n"
    "local rsv = K('rsv:' .. token)\n"
    "local prev = redis.call('GET', rsv)\n"
    "if prev then\n"
    "  local f = redis.call('HMGET', JK(prev), 'state', 'worker')\n"
    "  if f[1] == 'started' and f[2] == worker then\n"
    "    return {'ok', redis.call('HGETALL', JK(prev))}\n"
    "  end\n"
    "  return {'empty'}\n"
    "end\n"
    "local now = now_ms()\n"
    "reclaim(now, 1000)\n"
    "promote(now, 1000)\n"
    "local function less(a, b)\n"
    "  for i = 1, 33, 8 do\n"
    "    local x = tonumber(string.sub(a, i, i + 7), 16)\n"
    "    local y = tonumber(string.sub(b, i, i + 7), 16)\n"
    "    if x ~= y then return x < y end\n"
    "  end\n"
    "  return false\n"
    "end\n"
    "local best\n"
    "if #ARGV < 5 then best = redis.call('ZRANGE', K('ready'), 0, 0)[1]\n"
    "else\n"
    "  for i = 5, #ARGV do\n"
    "    local h = redis.call('ZRANGE', K('ready:' .. ARGV[i]), 0, 0)[1]\n"
    "    if h and (not best or less(h, best)) then best = h end\n"
    "  end\n"
    "end\n"
    "if not best then return {'empty'} end\n"
    "local id = string.sub(best, 41)\n"
    "local k = JK(id)\n"
    "redis.call('HINCRBY', k, 'attempts', 1)\n"
    "redis.call('HSET', k, 'worker', worker, 'started_ms', I(now), 'ended_ms', '0',\n"
    "  'cancel_requested', '0', 'progress_done', '0', 'progress_total', '0')\n"
    "set_state(id, 'started', now + lease)\n"
    "redis.call('SET', rsv, id, 'PX', 60000)\n"
    "return {'ok', redis.call('HGETALL', k)}\n";

/* ARGV: P id worker lease_ms */
static const char lua_heartbeat[] =
    "local id, worker = ARGV[2], ARGV[3]\n"
    "local f = redis.call('HMGET', JK(id), 'state', 'worker', 'cancel_requested')\n"
    "if not f[1] then return {'not_found'} end\n"
    "if f[2] ~= worker then return {'lease_lost'} end\n"
    "if f[1] == 'canceled' and f[3] == '1' then return {'canceled'} end\n"
    "if f[1] ~= 'started' then return {'lease_lost'} end\n"
    "local until_ms = now_ms() + tonumber(ARGV[4])\n"
    "redis.call('ZADD', K('leases'), until_ms, id)\n"
    "redis.call('HSET', JK(id), 'lease_until_ms', I(until_ms))\n"
    "return {'ok'}\n";

/* ARGV: P id done total */
static const char lua_progress[] =
    "local id = ARGV[2]\n"
    "local st = redis.call('HGET', JK(id), 'state')\n"
    "if not st then return {'not_found'} end\n"
    "if st ~= 'started' then return {'state', st} end\n"
    "redis.call('HSET', JK(id), 'progress_done', ARGV[3], 'progress_total', ARGV[4])\n"
    "return {'ok'}\n";

/* ARGV: P token id worker has_result result */
static const char lua_complete[] =
    "local token, id, worker = ARGV[2], ARGV[3], ARGV[4]\n"
    "local f = redis.call('HMGET', JK(id), 'state', 'worker', 'cancel_requested', 'last_op')\n"
    "if not f[1] then return {'not_found'} end\n"
    "if f[4] == token then return {'ok'} end\n"
    /* a repeated complete by the worker that finished it succeeds and changes nothing */
    "if f[1] == 'finished' and f[2] == worker then return {'ok'} end\n"
    "if f[2] ~= worker then return {'lease_lost'} end\n"
    "if f[1] == 'canceled' and f[3] == '1' then return {'canceled'} end\n"
    "if f[1] ~= 'started' then return {'lease_lost'} end\n"
    "if ARGV[5] == '1' then redis.call('HSET', JK(id), 'result', ARGV[6])\n"
    "else redis.call('HDEL', JK(id), 'result') end\n"
    "redis.call('HSET', JK(id), 'last_op', token)\n"
    "set_state(id, 'finished', now_ms())\n"
    "return {'ok'}\n";

/* ARGV: P token id worker message retryable unit */
static const char lua_fail[] =
    "local token, id, worker = ARGV[2], ARGV[3], ARGV[4]\n"
    "local f = redis.call('HMGET', JK(id), 'state', 'worker', 'cancel_requested', 'last_op',\n"
    "  'attempts', 'max_retries', 'retry_base_ms', 'retry_max_ms')\n"
    "if not f[1] then return {'not_found'} end\n"
    "if f[4] == token then return {'ok'} end\n"
    "if f[2] ~= worker then return {'lease_lost'} end\n"
    "if f[1] == 'canceled' and f[3] == '1' then return {'canceled'} end\n"
    "if f[1] ~= 'started' then return {'lease_lost'} end\n"
    "local now = now_ms()\n"
    "local attempts, max_retries = tonumber(f[5]), tonumber(f[6])\n"
    "redis.call('HSET', JK(id), 'error', ARGV[5], 'last_op', token)\n"
    "if ARGV[6] == '1' and attempts < 1 + max_retries then\n"
    /* the same formula as vd_queue_backoff_ms */
    "  local base, cap = tonumber(f[7]), tonumber(f[8])\n"
    "  if base <= 0 then base = 1000 end\n"
    "  if cap <= 0 then cap = 300000 end\n"
    "  local n = attempts\n"
    "  if n < 1 then n = 1 end\n"
    "  local e = n - 1\n"
    "  if n > 40 then e = 40 end\n"
    "  local d = base * 2 ^ e\n"
    "  if d > cap then d = cap end\n"
    "  if d > 1e15 then d = 1e15 end\n"
    "  d = math.floor(d * (0.5 + 0.5 * tonumber(ARGV[7])))\n"
    "  set_state(id, 'scheduled', now + d)\n"
    "  return {'ok', 'scheduled'}\n"
    "end\n"
    "set_state(id, 'failed', now)\n"
    "return {'ok', 'failed'}\n";

/* ARGV: P token id worker reason. Back to queued at the job's own run_at (its
 * place in line), the attempt not counted. */
static const char lua_release[] =
    "local token, id, worker = ARGV[2], ARGV[3], ARGV[4]\n"
    "local f = redis.call('HMGET', JK(id), 'state', 'worker', 'cancel_requested', 'last_op',\n"
    "  'attempts', 'run_at_ms')\n"
    "if not f[1] then return {'not_found'} end\n"
    "if f[4] == token then return {'ok'} end\n"
    "if f[2] ~= worker then return {'lease_lost'} end\n"
    "if f[1] == 'canceled' and f[3] == '1' then return {'canceled'} end\n"
    "if f[1] ~= 'started' then return {'lease_lost'} end\n"
    "local attempts = tonumber(f[5]) - 1\n"
    "if attempts < 0 then attempts = 0 end\n"
    "redis.call('HSET', JK(id), 'attempts', I(attempts), 'error', ARGV[5], 'last_op', token)\n"
    "set_state(id, 'queued', tonumber(f[6]))\n"
    "return {'ok'}\n";

/* ARGV: P token id */
static const char lua_cancel[] =
    "local token, id = ARGV[2], ARGV[3]\n"
    "local f = redis.call('HMGET', JK(id), 'state', 'last_op')\n"
    "if not f[1] then return {'not_found'} end\n"
    "if f[2] == token then return {'ok'} end\n"
    "local st = f[1]\n"
    "if st ~= 'queued' and st ~= 'scheduled' and st ~= 'started' then return {'state', st} end\n"
    "if st == 'started' then redis.call('HSET', JK(id), 'cancel_requested', '1') end\n"
    "redis.call('HSET', JK(id), 'last_op', token)\n"
    "set_state(id, 'canceled', now_ms())\n"
    "return {'ok'}\n";

/* ARGV: P token id */
static const char lua_requeue[] =
    "local token, id = ARGV[2], ARGV[3]\n"
    "local f = redis.call('HMGET', JK(id), 'state', 'last_op')\n"
    "if not f[1] then return {'not_found'} end\n"
    "if f[2] == token then return {'ok'} end\n"
    "if f[1] ~= 'failed' and f[1] ~= 'canceled' then return {'state', f[1]} end\n"
    "redis.call('HSET', JK(id), 'attempts', '0', 'cancel_requested', '0', 'ended_ms', '0',\n"
    "  'progress_done', '0', 'progress_total', '0', 'last_op', token)\n"
    "redis.call('HDEL', JK(id), 'result')\n"
    "-- a fresh tie-breaker: behind every job already waiting at its priority, even one\n"
    "-- enqueued in the same millisecond\n"
    "set_state(id, 'queued', now_ms(), redis.call('INCR', K('seq')))\n"
    "return {'ok'}\n";

/* ARGV: P state type offset limit ("" = any) */
static const char lua_list[] = "local st, typ = ARGV[2], ARGV[3]\n"
                               "local idx\n"
                               "if st ~= '' and typ ~= '' then idx = K('st:' .. st .. ':' .. typ)\n"
                               "elseif st ~= '' then idx = K('state:' .. st)\n"
                               "elseif typ ~= '' then idx = K('type:' .. typ)\n"
                               "else idx = K('all') end\n"
                               "local off, lim = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
                               "local ids = redis.call('ZREVRANGE', idx, off, off + lim - 1)\n"
                               "local out = {}\n"
                               "for _, id in ipairs(ids) do\n"
                               "  local h = redis.call('HGETALL', JK(id))\n"
                               "  if #h > 0 then out[#out + 1] = h end\n"
                               "end\n"
                               "return out\n";

/* ARGV: P */
static const char lua_counts[] =
    "local out = {}\n"
    "for i, s in ipairs({'queued', 'scheduled', 'started', 'finished', 'failed', 'canceled'}) do\n"
    "  out[i] = redis.call('ZCARD', K('state:' .. s))\n"
    "end\n"
    "return out\n";

/* ARGV: P limit -> {touched, more} */
static const char lua_maintain[] =
    "local lim = tonumber(ARGV[2])\n"
    "local now = now_ms()\n"
    "local a = reclaim(now, lim)\n"
    "local b = promote(now, lim)\n"
    "local ids = redis.call('ZRANGEBYSCORE', K('expires'), '-inf', I(now), 'LIMIT', 0, lim)\n"
    "for _, id in ipairs(ids) do delete_job(id) end\n"
    "local more = 0\n"
    "if a == lim or b == lim or #ids == lim then more = 1 end\n"
    "return {a + b + #ids, more}\n";

/* ARGV: P older_than_ms limit state... -> {deleted, more} */
static const char lua_purge[] =
    "local lim = tonumber(ARGV[3])\n"
    "local n, more = 0, 0\n"
    "for i = 4, #ARGV do\n"
    "  local ids = redis.call('ZRANGEBYSCORE', K('ended:' .. ARGV[i]), '-inf', '(' .. ARGV[2],\n"
    "                         'LIMIT', 0, lim)\n"
    "  for _, id in ipairs(ids) do delete_job(id) end\n"
    "  n = n + #ids\n"
    "  if #ids == lim then more = 1 end\n"
    "end\n"
    "return {n, more}\n";

enum {
    S_ENQUEUE,
    S_RESERVE,
    S_HEARTBEAT,
    S_PROGRESS,
    S_COMPLETE,
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

static const struct {
    const char *name;
    const char *src;
} scripts[S__N] = {
    {"enqueue", lua_enqueue},   {"reserve", lua_reserve},   {"heartbeat", lua_heartbeat},
    {"progress", lua_progress}, {"complete", lua_complete}, {"fail", lua_fail},
    {"release", lua_release},   {"cancel", lua_cancel},     {"requeue", lua_requeue},
    {"list", lua_list},         {"counts", lua_counts},     {"maintain", lua_maintain},
    {"purge", lua_purge},
};

/* ---- connection ----------------------------------------------------------------------------- */

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
    char *src[S__N]; /* owned: prelude + script */
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
static vd_status call(rqueue *q, int argc, const char **argv, const size_t *lens, redisReply **out,
                      vd_error *err)
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
    vd_status st = call(q, 3, argv, NULL, &r, err);
    if (st != VD_OK) return st;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        st = vd_error_set(err, VD_ERR_DB, "redis SCRIPT LOAD %s failed: %s", scripts[s].name,
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
static vd_status eval(rqueue *q, int s, int nargs, const char *const *args, const size_t *lens,
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
        if ((st = call(q, argc, argv, alen, &r, err)) != VD_OK) break;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && round < 3) {
            freeReplyObject(r);
            q->sha[s][0] = '\0';
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            /* "OOM command not allowed when used memory > 'maxmemory'" */
            vd_status code = strncmp(r->str, "OOM", 3) == 0 ? VD_ERR_NOSPACE : VD_ERR_DB;
            st = vd_error_set(err, code, "redis %s script failed: %s", scripts[s].name, r->str);
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

/* ---- replies -------------------------------------------------------------------------------- */

static int reply_is(const redisReply *r, size_t i, const char *s)
{
    return r && r->type == REDIS_REPLY_ARRAY && i < r->elements &&
           r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, s) == 0;
}

static const char *reply_code(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING)
        return r->element[0]->str;
    return "?";
}

static int64_t reply_int(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER) return e->integer;
    if (e->type == REDIS_REPLY_STRING) return strtoll(e->str, NULL, 10);
    return 0;
}

/* Turns a script's status code into a vd_status about job id. */
static vd_status code_status(const redisReply *r, const char *op, const char *id, vd_error *err)
{
    const char *code = reply_code(r);
    if (strcmp(code, "ok") == 0) return VD_OK;
    if (strcmp(code, "not_found") == 0) return vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    if (strcmp(code, "lease_lost") == 0)
        return vd_error_set(err, VD_ERR_LEASE_LOST, "%s: job %s is no longer held by this worker",
                            op, id);
    if (strcmp(code, "canceled") == 0)
        return vd_error_set(err, VD_ERR_CANCELED, "%s: job %s was canceled", op, id);
    if (strcmp(code, "state") == 0)
        return vd_error_set(err, VD_ERR_STATE, "cannot %s job %s: it is %s", op, id,
                            r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING
                                ? r->element[1]->str
                                : "in another state");
    if (strcmp(code, "exists") == 0)
        return vd_error_set(err, VD_ERR_STATE, "a job with id %s already exists", id);
    return vd_error_set(err, VD_ERR_INTERNAL, "redis %s script answered '%s'", op, code);
}

static char *dup_str(const redisReply *v)
{
    char *s = malloc(v->len + 1);
    if (s) {
        memcpy(s, v->str, v->len);
        s[v->len] = '\0';
    }
    return s;
}

/* Fills *job from a flat HGETALL reply (field, value, ...). */
static vd_status job_from_hash(const redisReply *h, vd_job *job, vd_error *err)
{
    memset(job, 0, sizeof *job);
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements % 2 != 0)
        return vd_error_set(err, VD_ERR_INTERNAL, "redis job hash has an unexpected shape");
    int have_state = 0;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        const char *f = k->str;
        int64_t n = strtoll(v->str, NULL, 10);
        if (strcmp(f, "id") == 0)
            vd_strlcpy(job->id, v->str, sizeof job->id);
        else if (strcmp(f, "type") == 0)
            vd_strlcpy(job->type, v->str, sizeof job->type);
        else if (strcmp(f, "worker") == 0)
            vd_strlcpy(job->worker, v->str, sizeof job->worker);
        else if (strcmp(f, "state") == 0) {
            vd_job_state s;
            if (vd_job_state_parse(v->str, &s) != VD_OK) {
                vd_job_clear(job);
                return vd_error_set(err, VD_ERR_INTERNAL, "redis job has unknown state '%s'",
                                    v->str);
            }
            job->state = s;
            have_state = 1;
        } else if (strcmp(f, "payload") == 0 || strcmp(f, "result") == 0 ||
                   strcmp(f, "error") == 0) {
            char **dst = f[0] == 'p' ? &job->payload : f[0] == 'r' ? &job->result : &job->error;
            free(*dst);
            if (!(*dst = dup_str(v))) {
                vd_job_clear(job);
                return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            }
        } else if (strcmp(f, "priority") == 0)
            job->priority = (int)n;
        else if (strcmp(f, "attempts") == 0)
            job->attempts = (int)n;
        else if (strcmp(f, "max_retries") == 0)
            job->max_retries = (int)n;
        else if (strcmp(f, "timeout_ms") == 0)
            job->timeout_ms = n;
        else if (strcmp(f, "retry_base_ms") == 0)
            job->retry_base_ms = n;
        else if (strcmp(f, "retry_max_ms") == 0)
            job->retry_max_ms = n;
        else if (strcmp(f, "result_ttl_ms") == 0)
            job->result_ttl_ms = n;
        else if (strcmp(f, "created_ms") == 0)
            job->created_ms = n;
        else if (strcmp(f, "run_at_ms") == 0)
            job->run_at_ms = n;
        else if (strcmp(f, "started_ms") == 0)
            job->started_ms = n;
        else if (strcmp(f, "ended_ms") == 0)
            job->ended_ms = n;
        else if (strcmp(f, "lease_until_ms") == 0)
            job->lease_until_ms = n;
        else if (strcmp(f, "progress_done") == 0)
            job->progress_done = n;
        else if (strcmp(f, "progress_total") == 0)
            job->progress_total = n;
        else if (strcmp(f, "cancel_requested") == 0)
            job->cancel_requested = n != 0;
    }
    if (!job->id[0] || !have_state || !job->payload) {
        vd_job_clear(job);
        return vd_error_set(err, VD_ERR_INTERNAL, "redis job hash is incomplete");
    }
    return VD_OK;
}

/* ---- operations ----------------------------------------------------------------------------- */

/* Picks the token for a mutating call: the one of the same call left unsure
 * on this handle, or a fresh one. */
static void op_token(rqueue *q, int script, const char *id, const char *worker,
                     char token[VD_ID_LEN + 1])
{
    if (q->unsure.script == script && strcmp(q->unsure.id, id) == 0 &&
        strcmp(q->unsure.worker, worker ? worker : "") == 0) {
        memcpy(token, q->unsure.token, VD_ID_LEN + 1);
        return;
    }
    vd_id_new(token);
}

/* Records how a mutating call ended: unsure after VD_ERR_CONN, settled otherwise. */
static void op_settled(rqueue *q, int script, const char *id, const char *worker, const char *token,
                       vd_status st)
{
    if (st == VD_ERR_CONN) {
        q->unsure.script = script;
        vd_strlcpy(q->unsure.id, id, sizeof q->unsure.id);
        vd_strlcpy(q->unsure.worker, worker ? worker : "", sizeof q->unsure.worker);
        vd_strlcpy(q->unsure.token, token, sizeof q->unsure.token);
    } else if (q->unsure.script == script && strcmp(q->unsure.id, id) == 0 &&
               strcmp(q->unsure.worker, worker ? worker : "") == 0) {
        q->unsure.script = -1;
    }
}

#define I64(buf, v) snprintf(buf, sizeof buf, "%" PRId64, (int64_t)(v))

static vd_status rq_enqueue(vd_queue *base, const vd_enqueue_opts *o, char id_out[VD_ID_LEN + 1],
                            vd_error *err)
{
    rqueue *q = (rqueue *)base;
    if (o->delay_ms > MAX_DELAY_MS)
        return vd_error_set(err, VD_ERR_INVALID, "delay_ms must be <= %" PRId64, MAX_DELAY_MS);
    char id[VD_ID_LEN + 1], token[VD_ID_LEN + 1];
    if (o->id)
        vd_strlcpy(id, o->id, sizeof id);
    else
        vd_id_new(id);
    op_token(q, S_ENQUEUE, o->id ? id : "", NULL, token);
    char pri[24], mr[24], to[24], delay[24], rb[24], rm[24], ttl[24];
    I64(pri, o->priority);
    I64(mr, o->max_retries);
    I64(to, o->timeout_ms);
    I64(delay, o->delay_ms);
    I64(rb, o->retry_base_ms > 0 ? o->retry_base_ms : 1000);
    I64(rm, o->retry_max_ms > 0 ? o->retry_max_ms : 300000);
    I64(ttl, o->result_ttl_ms == 0  ? 7 * 24 * 3600 * 1000LL
             : o->result_ttl_ms < 0 ? 0
                                    : o->result_ttl_ms);
    const char *args[] = {token, id, o->type, o->payload ? o->payload : "{}", pri, mr, to, delay,
                          rb,    rm, ttl};
    redisReply *r;
    vd_status st = eval(q, S_ENQUEUE, 11, args, NULL, &r, err);
    if (o->id) op_settled(q, S_ENQUEUE, id, NULL, token, st);
    if (st != VD_OK) return st;
    st = code_status(r, "enqueue", id, err);
    freeReplyObject(r);
    if (st == VD_OK && id_out) memcpy(id_out, id, VD_ID_LEN + 1);
    return st;
}

static vd_status rq_reserve(vd_queue *base, const char *worker_id, int64_t lease_ms,
                            const char *const *types, size_t ntypes, vd_job *job, vd_error *err)
{
    rqueue *q = (rqueue *)base;
    if (types && ntypes == 0) return vd_error_set(err, VD_ERR_EMPTY, "no job types to take");
    size_t nargs = 3 + (types ? ntypes : 0);
    const char **args = malloc(sizeof *args * nargs);
    if (!args) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    char token[VD_ID_LEN + 1], lease[24];
    op_token(q, S_RESERVE, "", worker_id, token); /* a reserve left unsure gets its job back */
    I64(lease, lease_ms);
    args[0] = token;
    args[1] = worker_id;
    args[2] = lease;
    for (size_t i = 0; types && i < ntypes; i++)
        args[3 + i] = types[i];
    redisReply *r;
    vd_status st = eval(q, S_RESERVE, (int)nargs, args, NULL, &r, err);
    op_settled(q, S_RESERVE, "", worker_id, token, st);
    free(args);
    if (st != VD_OK) return st;
    if (reply_is(r, 0, "empty"))
        st = vd_error_set(err, VD_ERR_EMPTY, "no job is ready");
    else if (reply_is(r, 0, "ok") && r->elements == 2)
        st = job_from_hash(r->element[1], job, err);
    else
        st = code_status(r, "reserve", "?", err);
    freeReplyObject(r);
    return st;
}

static vd_status simple_op(rqueue *q, int s, const char *op, const char *id, int nargs,
                           const char *const *args, const size_t *lens, vd_error *err)
{
    if (!id || !*id) return vd_error_set(err, VD_ERR_INVALID, "%s needs a job id", op);
    redisReply *r;
    vd_status st = eval(q, s, nargs, args, lens, &r, err);
    if (st != VD_OK) return st;
    st = code_status(r, op, id, err);
    freeReplyObject(r);
    return st;
}

static vd_status rq_heartbeat(vd_queue *base, const char *id, const char *worker_id,
                              int64_t lease_ms, vd_error *err)
{
    if (!worker_id || lease_ms <= 0)
        return vd_error_set(err, VD_ERR_INVALID, "heartbeat needs a worker id and a lease > 0");
    char lease[24];
    I64(lease, lease_ms);
    const char *args[] = {id, worker_id, lease};
    return simple_op((rqueue *)base, S_HEARTBEAT, "heartbeat", id, 3, args, NULL, err);
}

static vd_status rq_progress(vd_queue *base, const char *id, int64_t done, int64_t total,
                             vd_error *err)
{
    char d[24], t[24];
    I64(d, done);
    I64(t, total);
    const char *args[] = {id, d, t};
    return simple_op((rqueue *)base, S_PROGRESS, "record progress of", id, 3, args, NULL, err);
}

/* Runs a mutating script whose first two arguments are token and id, with
 * the token of an unsure earlier try of the same call (see rqueue.unsure). */
static vd_status token_op(rqueue *q, int s, const char *op, const char *id, const char *worker,
                          int nargs, const char **args, vd_error *err)
{
    if (!id || !*id) return vd_error_set(err, VD_ERR_INVALID, "%s needs a job id", op);
    char token[VD_ID_LEN + 1];
    op_token(q, s, id, worker, token);
    args[0] = token;
    redisReply *r;
    vd_status st = eval(q, s, nargs, args, NULL, &r, err);
    op_settled(q, s, id, worker, token, st);
    if (st != VD_OK) return st;
    st = code_status(r, op, id, err);
    freeReplyObject(r);
    return st;
}

static vd_status rq_complete(vd_queue *base, const char *id, const char *worker_id,
                             const char *result, vd_error *err)
{
    if (!worker_id) return vd_error_set(err, VD_ERR_INVALID, "complete needs a worker id");
    const char *args[] = {NULL, id, worker_id, result ? "1" : "0", result ? result : ""};
    return token_op((rqueue *)base, S_COMPLETE, "complete", id, worker_id, 5, args, err);
}

static vd_status rq_fail(vd_queue *base, const char *id, const char *worker_id, const char *message,
                         int retryable, vd_error *err)
{
    if (!worker_id) return vd_error_set(err, VD_ERR_INVALID, "fail needs a worker id");
    char unit[32];
    snprintf(unit, sizeof unit, "%.17g", vd_random_unit());
    const char *args[] = {NULL, id, worker_id, message, retryable ? "1" : "0", unit};
    return token_op((rqueue *)base, S_FAIL, "fail", id, worker_id, 6, args, err);
}

static vd_status rq_release(vd_queue *base, const char *id, const char *worker_id,
                            const char *reason, vd_error *err)
{
    if (!worker_id) return vd_error_set(err, VD_ERR_INVALID, "release needs a worker id");
    const char *args[] = {NULL, id, worker_id, reason};
    return token_op((rqueue *)base, S_RELEASE, "release", id, worker_id, 4, args, err);
}

static vd_status rq_cancel(vd_queue *base, const char *id, vd_error *err)
{
    const char *args[] = {NULL, id};
    return token_op((rqueue *)base, S_CANCEL, "cancel", id, NULL, 2, args, err);
}

static vd_status rq_requeue(vd_queue *base, const char *id, vd_error *err)
{
    const char *args[] = {NULL, id};
    return token_op((rqueue *)base, S_REQUEUE, "requeue", id, NULL, 2, args, err);
}

static vd_status rq_get(vd_queue *base, const char *id, vd_job *job, vd_error *err)
{
    rqueue *q = (rqueue *)base;
    if (!id || !*id) return vd_error_set(err, VD_ERR_INVALID, "get needs a job id");
    size_t klen = strlen(q->prefix) + 4 + strlen(id) + 1;
    char *key = malloc(klen);
    if (!key) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    snprintf(key, klen, "%sjob:%s", q->prefix, id);
    const char *argv[2] = {"HGETALL", key};
    redisReply *r;
    vd_status st = call(q, 2, argv, NULL, &r, err);
    free(key);
    if (st != VD_OK) return st;
    if (r->type == REDIS_REPLY_ERROR)
        st = vd_error_set(err, VD_ERR_DB, "redis HGETALL failed: %s", r->str);
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 0)
        st = vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    else
        st = job_from_hash(r, job, err);
    freeReplyObject(r);
    return st;
}

static vd_status rq_list(vd_queue *base, const vd_list_opts *o, vd_job **jobs, size_t *n,
                         vd_error *err)
{
    rqueue *q = (rqueue *)base;
    *jobs = NULL;
    *n = 0;
    if (o->state != -1 && (o->state < 0 || o->state >= VD_JOB__NSTATES))
        return vd_error_set(err, VD_ERR_INVALID, "unknown job state %d", o->state);
    if (o->limit > 100000 || o->offset > (size_t)1 << 40)
        return vd_error_set(err, VD_ERR_INVALID, "list limit must be <= 100000");
    char off[24], lim[24];
    I64(off, o->offset);
    I64(lim, o->limit);
    const char *args[] = {o->state == -1 ? "" : vd_job_state_name((vd_job_state)o->state),
                          o->type ? o->type : "", off, lim};
    redisReply *r;
    vd_status st = eval(q, S_LIST, 4, args, NULL, &r, err);
    if (st != VD_OK) return st;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return vd_error_set(err, VD_ERR_INTERNAL, "redis list script answered no array");
    }
    vd_job *out = r->elements ? calloc(r->elements, sizeof *out) : NULL;
    if (r->elements && !out) {
        freeReplyObject(r);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < r->elements && st == VD_OK; i++)
        if ((st = job_from_hash(r->element[i], &out[k], err)) == VD_OK) k++;
    freeReplyObject(r);
    if (st != VD_OK) {
        vd_job_list_free(out, k);
        return st;
    }
    *jobs = out;
    *n = k;
    return VD_OK;
}

static vd_status rq_counts(vd_queue *base, int64_t counts[VD_JOB__NSTATES], vd_error *err)
{
    rqueue *q = (rqueue *)base;
    redisReply *r;
    vd_status st = eval(q, S_COUNTS, 0, NULL, NULL, &r, err);
    if (st != VD_OK) return st;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != VD_JOB__NSTATES)
        st = vd_error_set(err, VD_ERR_INTERNAL, "redis counts script answered the wrong shape");
    else
        for (int i = 0; i < VD_JOB__NSTATES; i++)
            counts[i] = reply_int(r, (size_t)i);
    freeReplyObject(r);
    return st;
}

static vd_status rq_maintain(vd_queue *base, int *changed, vd_error *err)
{
    rqueue *q = (rqueue *)base;
    int64_t total = 0;
    char lim[24];
    I64(lim, BATCH);
    const char *args[] = {lim};
    for (;;) {
        redisReply *r;
        vd_status st = eval(q, S_MAINTAIN, 1, args, NULL, &r, err);
        if (st != VD_OK) return st;
        total += reply_int(r, 0);
        int more = reply_int(r, 1) != 0;
        freeReplyObject(r);
        if (!more) break;
    }
    if (changed) *changed = total > INT32_MAX ? INT32_MAX : (int)total;
    return VD_OK;
}

static vd_status rq_purge(vd_queue *base, int state, int64_t older_than_ms, int64_t *deleted,
                          vd_error *err)
{
    rqueue *q = (rqueue *)base;
    char older[24], lim[24];
    I64(older, older_than_ms);
    I64(lim, BATCH);
    const char *args[5] = {older, lim};
    int nargs = 2;
    if (state == -1) {
        args[nargs++] = "finished";
        args[nargs++] = "failed";
        args[nargs++] = "canceled";
    } else {
        args[nargs++] = vd_job_state_name((vd_job_state)state);
    }
    int64_t total = 0;
    for (;;) {
        redisReply *r;
        vd_status st = eval(q, S_PURGE, nargs, args, NULL, &r, err);
        if (st != VD_OK) {
            if (deleted) *deleted = total;
            return st;
        }
        total += reply_int(r, 0);
        int more = reply_int(r, 1) != 0;
        freeReplyObject(r);
        if (!more) break;
    }
    if (deleted) *deleted = total;
    return VD_OK;
}

static void rq_close(vd_queue *base)
{
    rqueue *q = (rqueue *)base;
    drop_connection(q);
    for (int s = 0; s < S__N; s++)
        free(q->src[s]);
    free(q->user);
    free(q->password);
    free(q);
}

static const vd_queue_ops redis_ops = {
    .name = "redis",
    .close = rq_close,
    .enqueue = rq_enqueue,
    .reserve = rq_reserve,
    .heartbeat = rq_heartbeat,
    .progress = rq_progress,
    .complete = rq_complete,
    .fail = rq_fail,
    .release = rq_release,
    .cancel = rq_cancel,
    .requeue = rq_requeue,
    .get = rq_get,
    .list = rq_list,
    .counts = rq_counts,
    .maintain = rq_maintain,
    .purge = rq_purge,
};

/* ---- URL and open --------------------------------------------------------------------------- */

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
    const char *hend;
    if (*p == '[') { /* [v6 address] */
        hend = memchr(p, ']', (size_t)(end - p));
        if (!hend) return vd_error_set(err, VD_ERR_INVALID, "redis url: unclosed '[' in host");
        if ((size_t)(hend - p - 1) >= sizeof q->host)
            return vd_error_set(err, VD_ERR_INVALID, "redis url: host too long");
        memcpy(q->host, p + 1, (size_t)(hend - p - 1));
        q->host[hend - p - 1] = '\0';
        hend++;
    } else {
        hend = memchr(p, ':', (size_t)(end - p));
        if (!hend) hend = end;
        if ((size_t)(hend - p) >= sizeof q->host)
            return vd_error_set(err, VD_ERR_INVALID, "redis url: host too long");
        memcpy(q->host, p, (size_t)(hend - p));
        q->host[hend - p] = '\0';
    }
    if (!q->host[0])
        return vd_error_set(err, VD_ERR_INVALID, "redis url: missing host in '%s'", shown);
    q->port = 6379;
    if (hend < end) {
        int64_t port;
        if (*hend != ':' || !parse_int64(hend + 1, (size_t)(end - hend - 1), 1, 65535, &port))
            return vd_error_set(err, VD_ERR_INVALID, "redis url: bad port in '%s'", shown);
        q->port = (int)port;
    }
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

vd_status vd_queue_redis_open(const char *url, vd_queue **out, vd_error *err)
{
    *out = NULL;
    if (!url || strncmp(url, "redis://", 8) != 0)
        return vd_error_set(err, VD_ERR_INVALID, "redis url must start with redis://");
    rqueue *q = calloc(1, sizeof *q);
    if (!q) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    q->base.ops = &redis_ops;
    q->unsure.script = -1;
    vd_status st = parse_url(q, url, err);
    for (int s = 0; st == VD_OK && s < S__N; s++) {
        size_t a = strlen(lua_prelude), b = strlen(scripts[s].src);
        if (!(q->src[s] = malloc(a + b + 1))) {
            st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(q->src[s], lua_prelude, a);
        memcpy(q->src[s] + a, scripts[s].src, b + 1);
    }
    for (int s = 0; st == VD_OK && s < S__N; s++)
        st = load_script(q, s, err);
    if (st != VD_OK) {
        rq_close(&q->base);
        return st;
    }
    *out = &q->base;
    return VD_OK;
}
