-- ARGV: P token id type payload priority max_retries timeout_ms delay_ms retry_base_ms
-- retry_max_ms result_ttl_ms
local token, id, typ = ARGV[2], ARGV[3], ARGV[4]
local k = JK(id)
if redis.call('EXISTS', k) == 1 then
  if redis.call('HGET', k, 'etoken') == token then return {'ok'} end
  return {'exists'}
end
local now = now_ms()
local delay = tonumber(ARGV[9])
local seq = redis.call('INCR', K('seq'))
redis.call('HSET', k, 'id', id, 'type', typ, 'payload', ARGV[5], 'priority', ARGV[6],
  'attempts', '0', 'max_retries', ARGV[7], 'timeout_ms', ARGV[8], 'retry_base_ms', ARGV[10],
  'retry_max_ms', ARGV[11], 'result_ttl_ms', ARGV[12], 'created_ms', I(now),
  'started_ms', '0', 'ended_ms', '0', 'lease_until_ms', '0', 'worker', '',
  'progress_done', '0', 'progress_total', '0', 'cancel_requested', '0', 'seq', I(seq),
  'etoken', token)
redis.call('ZADD', K('all'), seq, id)
redis.call('ZADD', K('type:' .. typ), seq, id)
if delay > 0 then
  set_state(id, 'scheduled', now + delay)
else
  set_state(id, 'queued', now)
end
return {'ok'}
