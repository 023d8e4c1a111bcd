-- ARGV: P token worker lease_ms [type...]
local token, worker, lease = ARGV[2], ARGV[3], tonumber(ARGV[4])
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
local function less(a, b)
  for i = 1, 33, 8 do
    local x = tonumber(string.sub(a, i, i + 7), 16)
    local y = tonumber(string.sub(b, i, i + 7), 16)
    if x ~= y then return x < y end
  end
  return false
end
local best
if #ARGV < 5 then best = redis.call('ZRANGE', K('ready'), 0, 0)[1]
else
  for i = 5, #ARGV do
    local h = redis.call('ZRANGE', K('ready:' .. ARGV[i]), 0, 0)[1]
    if h and (not best or less(h, best)) then best = h end
  end
end
if not best then return {'empty'} end
local id = string.sub(best, 41)
local k = JK(id)
redis.call('HINCRBY', k, 'attempts', 1)
redis.call('HSET', k, 'worker', worker, 'started_ms', I(now), 'ended_ms', '0',
  'cancel_requested', '0', 'progress_done', '0', 'progress_total', '0')
set_state(id, 'started', now + lease)
redis.call('SET', rsv, id, 'PX', 60000)
return {'ok', redis.call('HGETALL', k)}
