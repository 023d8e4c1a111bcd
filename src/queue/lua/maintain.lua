-- ARGV: P limit -> {touched, more}
local lim = tonumber(ARGV[2])
local now = now_ms()
local a = reclaim(now, lim)
local b = promote(now, lim)
local ids = redis.call('ZRANGEBYSCORE', K('expires'), '-inf', I(now), 'LIMIT', 0, lim)
for _, id in ipairs(ids) do delete_job(id) end
local more = 0
if a == lim or b == lim or #ids == lim then more = 1 end
return {a + b + #ids, more}
