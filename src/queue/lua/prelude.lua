-- Shared by every script (prepended to each when a handle loads them). ARGV[1] is
-- always the key prefix. set_state(id, to, at) moves a job to state `to` and keeps
-- every index right; `at` is the run_at (queued, scheduled), the lease end (started)
-- or the end time (finished, failed, canceled).
local P = ARGV[1]
if redis.replicate_commands then redis.replicate_commands() end
local LEASE_LOST_MSG = 'lease expired: worker lost'
local function K(s) return P .. s end
local function JK(id) return P .. 'job:' .. id end
local function I(x) return string.format('%d', x) end
local NOW -- one script is one instant: TIME is asked once
local function now_ms()
  if not NOW then
    local t = redis.call('TIME')
    NOW = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return NOW
end
-- A queued job's member in the ready sets is its rk (priority, run_at, tie-break: 40 hex
-- digits) followed by its id. The hash keeps only those 40 digits in its field 'rk', so that
-- every field stays under 64 bytes and Redis keeps the hash as a compact listpack; jobs written
-- before that keep the whole member there (longer than 40).
local function rk_member(id, rk)
  if #rk == 40 then return rk .. id end
  return rk
end
-- leave(id, from, typ, rk, h): takes the job out of state `from`'s indexes; the hash fields
-- that change with it are appended to h (field, value, ...) for the caller's one HSET. rk is
-- the hash's 'rk' field (read by the caller's HMGET). Calls into Redis cost more than the
-- commands themselves (docs/queue-redis.md, "Calls per job"), hence the gathered writes.
local function leave(id, from, typ, rk, h)
  if not from then return end
  if from == 'queued' then
    if rk then
      rk = rk_member(id, rk)
      redis.call('ZREM', K('ready'), rk)
      redis.call('ZREM', K('ready:' .. typ), rk)
      redis.call('HDEL', JK(id), 'rk')
    end
  elseif from == 'scheduled' then
    redis.call('ZREM', K('scheduled'), id)
  elseif from == 'started' then
    redis.call('ZREM', K('leases'), id)
    h[#h + 1], h[#h + 2] = 'lease_until_ms', '0'
  else
    redis.call('ZREM', K('ended:' .. from), id)
    if from == 'finished' then redis.call('ZREM', K('expires'), id) end
  end
  redis.call('ZREM', K('state:' .. from), id)
  redis.call('ZREM', K('st:' .. from .. ':' .. typ), id)
end
-- set_state(id, to, at, tie, extra): extra (may be nil) is more field, value pairs for the
-- job's hash, written in the same HSET as the state.
local function set_state(id, to, at, tie, extra)
  local k = JK(id)
  local f = redis.call('HMGET', k, 'state', 'type', 'seq', 'priority', 'result_ttl_ms', 'rk')
  local typ, seq = f[2], tonumber(f[3])
  tie = tie or seq
  local h = {'state', to}
  leave(id, f[1], typ, f[6], h)
  redis.call('ZADD', K('state:' .. to), seq, id)
  redis.call('ZADD', K('st:' .. to .. ':' .. typ), seq, id)
  if to == 'queued' then
    local rk = string.format('%08x%016x%016x', 2147483647 - tonumber(f[4]), at, tie)
    redis.call('ZADD', K('ready'), 0, rk .. id)
    redis.call('ZADD', K('ready:' .. typ), 0, rk .. id)
    h[#h + 1], h[#h + 2], h[#h + 3], h[#h + 4] = 'rk', rk, 'run_at_ms', I(at)
  elseif to == 'scheduled' then
    redis.call('ZADD', K('scheduled'), at, id)
    h[#h + 1], h[#h + 2] = 'run_at_ms', I(at)
  elseif to == 'started' then
    redis.call('ZADD', K('leases'), at, id)
    h[#h + 1], h[#h + 2] = 'lease_until_ms', I(at)
  else
    redis.call('ZADD', K('ended:' .. to), at, id)
    h[#h + 1], h[#h + 2] = 'ended_ms', I(at)
    local ttl = tonumber(f[5]) or 0
    if to == 'finished' and ttl > 0 then
      redis.call('ZADD', K('expires'), at + ttl, id)
    end
  end
  if extra then
    for i = 1, #extra do h[#h + 1] = extra[i] end
  end
  redis.call('HSET', k, unpack(h))
end
local function delete_job(id)
  local f = redis.call('HMGET', JK(id), 'state', 'type', 'rk')
  leave(id, f[1], f[2], f[3], {}) -- the hash goes: its field changes are not written
  if f[2] then
    redis.call('ZREM', K('all'), id)
    redis.call('ZREM', K('type:' .. f[2]), id)
  end
  redis.call('DEL', JK(id))
end
-- lapsed leases: back to queued (run_at = now), or failed when no attempt is left
local function reclaim(now, limit)
  local ids = redis.call('ZRANGEBYSCORE', K('leases'), '-inf', '(' .. I(now),
                         'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', JK(id), 'state', 'attempts', 'max_retries')
    if f[1] ~= 'started' then
      redis.call('ZREM', K('leases'), id)
    else
      redis.call('HSET', JK(id), 'error', LEASE_LOST_MSG)
      if tonumber(f[2]) >= 1 + tonumber(f[3]) then
        set_state(id, 'failed', now)
      else
        set_state(id, 'queued', now)
      end
    end
  end
  return #ids
end
-- due scheduled jobs: queued, keeping their run_at
local function promote(now, limit)
  local ids = redis.call('ZRANGEBYSCORE', K('scheduled'), '-inf', I(now),
                         'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', JK(id), 'state', 'run_at_ms')
    if f[1] ~= 'scheduled' then
      redis.call('ZREM', K('scheduled'), id)
    else
      set_state(id, 'queued', tonumber(f[2]))
    end
  end
  return #ids
end
-- complete_job: the job's holder records its result (has_result '1': result, else none).
-- Returns {'ok'} or {code} (not_found, lease_lost, canceled). A repeat (same token, or the
-- same worker completing a job it finished) is 'ok' and changes nothing.
local function complete_job(token, id, worker, has_result, result)
  local f = redis.call('HMGET', JK(id), 'state', 'worker', 'cancel_requested', 'last_op')
  if not f[1] then return {'not_found'} end
  if f[4] == token then return {'ok'} end
  if f[1] == 'finished' and f[2] == worker then return {'ok'} end
  if f[2] ~= worker then return {'lease_lost'} end
  if f[1] == 'canceled' and f[3] == '1' then return {'canceled'} end
  if f[1] ~= 'started' then return {'lease_lost'} end
  local extra = {'last_op', token}
  if has_result == '1' then extra[3], extra[4] = 'result', result
  else redis.call('HDEL', JK(id), 'result') end
  set_state(id, 'finished', now_ms(), nil, extra)
  return {'ok'}
end
-- The ready member a is before b (priority, run_at, tie-break: 5 groups of 8 hex digits).
local function ready_before(a, b)
  for i = 1, 33, 8 do
    local x = tonumber(string.sub(a, i, i + 7), 16)
    local y = tonumber(string.sub(b, i, i + 7), 16)
    if x ~= y then return x < y end
  end
  return false
end
-- The first ready member of the types ARGV[first..] (any type when there is none), or nil.
-- With more than two types the head of the shared ready set is looked at first: the first of
-- its members whose job has one of the types is the answer (the sets share one order), which
-- costs two calls where asking each type's set costs one per type. When its first HEAD
-- members are all of other types, each type's set is asked.
local HEAD = 4
local function first_ready(first)
  if #ARGV < first then return redis.call('ZRANGE', K('ready'), 0, 0)[1] end
  if #ARGV - first + 1 > 2 then
    local heads = redis.call('ZRANGE', K('ready'), 0, HEAD - 1)
    local want = {}
    for i = first, #ARGV do want[ARGV[i]] = true end
    for _, m in ipairs(heads) do
      if want[redis.call('HGET', JK(string.sub(m, 41)), 'type')] then return m end
    end
    if #heads < HEAD then return nil end
  end
  local best
  for i = first, #ARGV do
    local h = redis.call('ZRANGE', K('ready:' .. ARGV[i]), 0, 0)[1]
    if h and (not best or ready_before(h, best)) then best = h end
  end
  return best
end
-- reserve_job: takes the first ready job (of the types ARGV[first..], or any when there is no
-- ARGV[first]) for worker under a lease of lease ms. Returns {'ok', hash} or {'empty'}. The
-- token makes a repeat return the job the first call took (rsv:TOKEN, for 60 s).
local function reserve_job(token, worker, lease, first)
  local rsv = K('rsv:' .. token)
  local prev = redis.call('GET', rsv)
  if prev then
    local f = redis.call('HMGET', JK(prev), 'state', 'worker')
    if f[1] == 'started' and f[2] == worker then
      return {'ok', redis.call('HGETALL', JK(prev))}
    end
    return {'empty'}
  end
  local now = now_ms()
  reclaim(now, 1000)
  promote(now, 1000)
  local best = first_ready(first)
  if not best then return {'empty'} end
  local id = string.sub(best, 41)
  local k = JK(id)
  redis.call('HINCRBY', k, 'attempts', 1)
  set_state(id, 'started', now + lease, nil, {'worker', worker, 'started_ms', I(now),
    'ended_ms', '0', 'cancel_requested', '0', 'progress_done', '0', 'progress_total', '0'})
  redis.call('SET', rsv, id, 'PX', 60000)
  return {'ok', redis.call('HGETALL', k)}
end
