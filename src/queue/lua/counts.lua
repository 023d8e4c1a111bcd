-- ARGV: P
local out = {}
for i, s in ipairs({'queued', 'scheduled', 'started', 'finished', 'failed', 'canceled'}) do
  out[i] = redis.call('ZCARD', K('state:' .. s))
end
return out
