-- ARGV: P, then one group of 11 per job (one job for enqueue, up to VD_ENQUEUE_MANY_MAX for
-- enqueue_many): token id type payload priority max_retries timeout_ms delay_ms retry_base_ms
-- retry_max_ms result_ttl_ms
-- All or nothing: when an id is taken (by another enqueue), nothing is written and the answer
-- is {'exists', id}. A job whose hash carries this call's token was written by this very call
-- before its reply was lost (a retry): it is left as it is.
-- The batch costs one HSET per job and one ZADD per index set for all of its jobs (the jobs'
-- members gathered by set, then added 2,000 at a time), not one call per job and set: what
-- set_state would write for each new job, without its read-back (docs/queue-redis.md, "Bulk
-- enqueue"). Fields that start at 0 or '' (attempts, started_ms, ended_ms, lease_until_ms,
-- worker, progress_done, progress_total, cancel_requested) are not written: a missing field
-- reads as that default everywhere (HINCRBY, the client's job_from_hash), and reserve sets them.
local n = (#ARGV - 1) / 11
local keys = {}
for i = 1, n do keys[i] = JK(ARGV[(i - 1) * 11 + 3]) end
local taken = 0 -- one EXISTS of many keys: usually none exists, and no job needs a look
for j = 1, n, 4000 do
  taken = taken + redis.call('EXISTS', unpack(keys, j, math.min(j + 3999, n)))
end
local fresh, nfresh = {}, 0
for i = 1, n do
  local b = 1 + (i - 1) * 11
  if taken > 0 and redis.call('EXISTS', keys[i]) == 1 then
    if redis.call('HGET', keys[i], 'etoken') ~= ARGV[b + 1] then return {'exists', ARGV[b + 2]} end
  else
    nfresh = nfresh + 1
    fresh[nfresh] = b
  end
end
if nfresh == 0 then return {'ok'} end
local now = now_ms()
local seq = redis.call('INCRBY', K('seq'), nfresh) - nfresh
local sets = {} -- set name -> {n, score, member, score, member, ...}
local function set(name)
  local t = sets[name]
  if not t then t = {0}; sets[name] = t end
  return t
end
local function add(t, score, member)
  local m = t[1]
  t[m + 2], t[m + 3] = score, member
  t[1] = m + 2
end
-- per type and state, its four sets (looked up once, not per job); scores as strings, so
-- that Redis parses them without Lua formatting a number first
local by = {}
local nows, ready, all = I(now), set('ready'), set('all')
local call = redis.call
for j = 1, nfresh do
  local b = fresh[j]
  local token, id, typ = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local delay = tonumber(ARGV[b + 8])
  seq = seq + 1
  local seqs = I(seq)
  local state = delay > 0 and 'scheduled' or 'queued'
  local g = by[state .. ' ' .. typ]
  if not g then
    g = {set('type:' .. typ), set('state:' .. state), set('st:' .. state .. ':' .. typ),
         state == 'queued' and set('ready:' .. typ) or set('scheduled')}
    by[state .. ' ' .. typ] = g
  end
  local k = keys[(b - 1) / 11 + 1]
  if delay > 0 then
    local at = I(now + delay)
    add(g[4], at, id)
    call('HSET', k, 'id', id, 'type', typ, 'payload', ARGV[b + 4], 'priority', ARGV[b + 5],
      'max_retries', ARGV[b + 6], 'timeout_ms', ARGV[b + 7], 'retry_base_ms', ARGV[b + 9],
      'retry_max_ms', ARGV[b + 10], 'result_ttl_ms', ARGV[b + 11], 'created_ms', nows,
      'seq', seqs, 'etoken', token, 'state', 'scheduled', 'run_at_ms', at)
  else
    local rk = string.format('%08x%016x%016x', 2147483647 - tonumber(ARGV[b + 5]), now, seq)
    add(ready, '0', rk .. id)
    add(g[4], '0', rk .. id)
    call('HSET', k, 'id', id, 'type', typ, 'payload', ARGV[b + 4], 'priority', ARGV[b + 5],
      'max_retries', ARGV[b + 6], 'timeout_ms', ARGV[b + 7], 'retry_base_ms', ARGV[b + 9],
      'retry_max_ms', ARGV[b + 10], 'result_ttl_ms', ARGV[b + 11], 'created_ms', nows,
      'seq', seqs, 'etoken', token, 'state', 'queued', 'rk', rk, 'run_at_ms', nows)
  end
  add(all, seqs, id)
  add(g[1], seqs, id)
  add(g[2], seqs, id)
  add(g[3], seqs, id)
end
for name, t in pairs(sets) do
  local m = t[1]
  for j = 2, m + 1, 4000 do
    if m > 0 then call('ZADD', K(name), unpack(t, j, math.min(j + 3999, m + 1))) end
  end
end
return {'ok'}
