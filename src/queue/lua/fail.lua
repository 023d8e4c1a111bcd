-- ARGV: P token id worker message retryable unit
local token, id, worker = ARGV[2], ARGV[3], ARGV[4]
local f = redis.call('HMGET', JK(id), 'state', 'worker', 'cancel_requested', 'last_op',
  'attempts', 'max_retries', 'retry_base_ms', 'retry_max_ms')
if not f[1] then return {'not_found'} end
if f[4] == token then return {'ok'} end
if f[2] ~= worker then return {'lease_lost'} end
if f[1] == 'canceled' and f[3] == '1' then return {'canceled'} end
if f[1] ~= 'started' then return {'lease_lost'} end
local now = now_ms()
local attempts, max_retries = tonumber(f[5]), tonumber(f[6])
redis.call('HSET', JK(id), 'error', ARGV[5], 'last_op', token)
if ARGV[6] == '1' and attempts < 1 + max_retries then
-- the same formula as vd_queue_backoff_ms
  local base, cap = tonumber(f[7]), tonumber(f[8])
  if base <= 0 then base = 1000 end
  if cap <= 0 then cap = 300000 end
  local n = attempts
  if n < 1 then n = 1 end
  local e = n - 1
  if n > 40 then e = 40 end
  local d = base * 2 ^ e
  if d > cap then d = cap end
  if d > 1e15 then d = 1e15 end
  d = math.floor(d * (0.5 + 0.5 * tonumber(ARGV[7])))
  set_state(id, 'scheduled', now + d)
  return {'ok', 'scheduled'}
end
set_state(id, 'failed', now)
return {'ok', 'failed'}
