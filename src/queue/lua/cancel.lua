-- ARGV: P token id
local token, id = ARGV[2], ARGV[3]
local f = redis.call('HMGET', JK(id), 'state', 'last_op')
if not f[1] then return {'not_found'} end
if f[2] == token then return {'ok'} end
local st = f[1]
if st ~= 'queued' and st ~= 'scheduled' and st ~= 'started' then return {'state', st} end
if st == 'started' then redis.call('HSET', JK(id), 'cancel_requested', '1') end
redis.call('HSET', JK(id), 'last_op', token)
set_state(id, 'canceled', now_ms())
return {'ok'}
