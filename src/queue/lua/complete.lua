-- ARGV: P token id worker has_result result
local token, id, worker = ARGV[2], ARGV[3], ARGV[4]
local f = redis.call('HMGET', JK(id), 'state', 'worker', 'cancel_requested', 'last_op')
if not f[1] then return {'not_found'} end
if f[4] == token then return {'ok'} end
-- a repeated complete by the worker that finished it succeeds and changes nothing
if f[1] == 'finished' and f[2] == worker then return {'ok'} end
if f[2] ~= worker then return {'lease_lost'} end
if f[1] == 'canceled' and f[3] == '1' then return {'canceled'} end
if f[1] ~= 'started' then return {'lease_lost'} end
if ARGV[5] == '1' then redis.call('HSET', JK(id), 'result', ARGV[6])
else redis.call('HDEL', JK(id), 'result') end
redis.call('HSET', JK(id), 'last_op', token)
set_state(id, 'finished', now_ms())
return {'ok'}
