-- ARGV: P id done total
local id = ARGV[2]
local st = redis.call('HGET', JK(id), 'state')
if not st then return {'not_found'} end
if st ~= 'started' then return {'state', st} end
redis.call('HSET', JK(id), 'progress_done', ARGV[3], 'progress_total', ARGV[4])
return {'ok'}
