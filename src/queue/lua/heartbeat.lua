-- ARGV: P id worker lease_ms
local id, worker = ARGV[2], ARGV[3]
local f = redis.call('HMGET', JK(id), 'state', 'worker', 'cancel_requested')
if not f[1] then return {'not_found'} end
if f[2] ~= worker then return {'lease_lost'} end
if f[1] == 'canceled' and f[3] == '1' then return {'canceled'} end
if f[1] ~= 'started' then return {'lease_lost'} end
local until_ms = now_ms() + tonumber(ARGV[4])
redis.call('ZADD', K('leases'), until_ms, id)
redis.call('HSET', JK(id), 'lease_until_ms', I(until_ms))
return {'ok'}
