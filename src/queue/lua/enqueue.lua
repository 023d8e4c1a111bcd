-- ARGV: P, then one group of 11 per job (one job for enqueue, up to VD_ENQUEUE_MANY_MAX for
-- enqueue_many): token id type payload priority max_retries timeout_ms delay_ms retry_base_ms
-- retry_max_ms result_ttl_ms
-- All or nothing: when an id is taken (by another enqueue), nothing is written and the answer
-- is {'exists', id}. A job whose hash carries this call's token was written by this very call
-- before its reply was lost (a retry): it is left as it is.
local n = (#ARGV - 1) / 11
for i = 0, n - 1 do
  local b = 1 + i * 11
  local k = JK(ARGV[b + 2])
  if redis.call('EXISTS', k) == 1 and redis.call('HGET', k, 'etoken') ~= ARGV[b + 1] then
    return {'exists', ARGV[b + 2]}
  end
end
local now = now_ms()
for i = 0, n - 1 do
  local b = 1 + i * 11
  local token, id, typ = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local k = JK(id)
  if redis.call('EXISTS', k) == 0 then
    local delay = tonumber(ARGV[b + 8])
    local seq = redis.call('INCR', K('seq'))
    redis.call('HSET', k, 'id', id, 'type', typ, 'payload', ARGV[b + 4], 'priority', ARGV[b + 5],
      'attempts', '0', 'max_retries', ARGV[b + 6], 'timeout_ms', ARGV[b + 7],
      'retry_base_ms', ARGV[b + 9], 'retry_max_ms', ARGV[b + 10], 'result_ttl_ms', ARGV[b + 11],
      'created_ms', I(now), 'started_ms', '0', 'ended_ms', '0', 'lease_until_ms', '0',
      'worker', '', 'progress_done', '0', 'progress_total', '0', 'cancel_requested', '0',
      'seq', I(seq), 'etoken', token)
    redis.call('ZADD', K('all'), seq, id)
    redis.call('ZADD', K('type:' .. typ), seq, id)
    if delay > 0 then
      set_state(id, 'scheduled', now + delay)
    else
      set_state(id, 'queued', now)
    end
  end
end
return {'ok'}
