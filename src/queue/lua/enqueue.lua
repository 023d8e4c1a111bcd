-- ARGV: P, then one group of 11 per job (one job for enqueue, up to VD_ENQUEUE_MANY_MAX for
-- enqueue_many): token id type payload priority max_retries timeout_ms delay_ms retry_base_ms
-- retry_max_ms result_ttl_ms
-- All or nothing: when an id is taken (by another enqueue), nothing is written and the answer
-- is {'exists', id}. A job whose hash carries this call's token was written by this very call
-- before its reply was lost (a retry): it is left as it is.
-- The batch costs one HSET per job and one ZADD per index set for all of its jobs (the jobs'
-- members gathered by set, then added 2,000 at a time), not one call per job and set: what
-- set_state would write for each new job, without its read-back (docs/queue-redis.md, "Bulk
-- enqueue").
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
local sets, lens = {}, {}
local function add(set, score, member)
  local t, m = sets[set], lens[set]
  if not t then t, m = {}, 0; sets[set] = t end
  t[m + 1], t[m + 2] = score, member
  lens[set] = m + 2
end
for j = 1, nfresh do
  local b = fresh[j]
  local token, id, typ = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local delay = tonumber(ARGV[b + 8])
  seq = seq + 1
  local state, extra
  if delay > 0 then
    state = 'scheduled'
    extra = {'run_at_ms', I(now + delay)}
    add('scheduled', now + delay, id)
  else
    state = 'queued'
    local rk = string.format('%08x%016x%016x', 2147483647 - tonumber(ARGV[b + 5]), now, seq) .. id
    extra = {'rk', rk, 'run_at_ms', I(now)}
    add('ready', 0, rk)
    add('ready:' .. typ, 0, rk)
  end
  redis.call('HSET', keys[(b - 1) / 11 + 1], 'id', id, 'type', typ, 'payload', ARGV[b + 4], 'priority', ARGV[b + 5],
    'attempts', '0', 'max_retries', ARGV[b + 6], 'timeout_ms', ARGV[b + 7],
    'retry_base_ms', ARGV[b + 9], 'retry_max_ms', ARGV[b + 10], 'result_ttl_ms', ARGV[b + 11],
    'created_ms', I(now), 'started_ms', '0', 'ended_ms', '0', 'lease_until_ms', '0',
    'worker', '', 'progress_done', '0', 'progress_total', '0', 'cancel_requested', '0',
    'seq', I(seq), 'etoken', token, 'state', state, unpack(extra))
  add('all', seq, id)
  add('type:' .. typ, seq, id)
  add('state:' .. state, seq, id)
  add('st:' .. state .. ':' .. typ, seq, id)
end
for set, t in pairs(sets) do
  local m = lens[set]
  for j = 1, m, 4000 do
    redis.call('ZADD', K(set), unpack(t, j, math.min(j + 3999, m)))
  end
end
return {'ok'}
