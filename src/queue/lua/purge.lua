-- ARGV: P older_than_ms limit state... -> {deleted, more}
local lim = tonumber(ARGV[3])
local n, more = 0, 0
for i = 4, #ARGV do
  local ids = redis.call('ZRANGEBYSCORE', K('ended:' .. ARGV[i]), '-inf', '(' .. ARGV[2],
                         'LIMIT', 0, lim)
  for _, id in ipairs(ids) do delete_job(id) end
  n = n + #ids
  if #ids == lim then more = 1 end
end
return {n, more}
