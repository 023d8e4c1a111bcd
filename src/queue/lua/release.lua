-- ARGV: P token id worker reason. Back to queued at the job's own run_at (its
-- place in line), the attempt not counted.
local token, id, worker = ARGV[2], ARGV[3], ARGV[4]
local f = redis.call('HMGET', JK(id), 'state', 'worker', 'cancel_requested', 'last_op',
  'attempts', 'run_at_ms')
if not f[1] then return {'not_found'} end
if f[4] == token then return {'ok'} end
if f[2] ~= worker then return {'lease_lost'} end
if f[1] == 'canceled' and f[3] == '1' then return {'canceled'} end
if f[1] ~= 'started' then return {'lease_lost'} end
local attempts = tonumber(f[5]) - 1
if attempts < 0 then attempts = 0 end
redis.call('HSET', JK(id), 'attempts', I(attempts), 'error', ARGV[5], 'last_op', token)
set_state(id, 'queued', tonumber(f[6]))
return {'ok'}
