-- ARGV: P token id
local token, id = ARGV[2], ARGV[3]
local f = redis.call('HMGET', JK(id), 'state', 'last_op')
if not f[1] then return {'not_found'} end
if f[2] == token then return {'ok'} end
if f[1] ~= 'failed' and f[1] ~= 'canceled' then return {'state', f[1]} end
redis.call('HSET', JK(id), 'attempts', '0', 'cancel_requested', '0', 'ended_ms', '0',
  'progress_done', '0', 'progress_total', '0', 'last_op', token)
redis.call('HDEL', JK(id), 'result')
-- a fresh tie-breaker: behind every job already waiting at its priority, even one
-- enqueued in the same millisecond
set_state(id, 'queued', now_ms(), redis.call('INCR', K('seq')))
return {'ok'}
