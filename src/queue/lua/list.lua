-- ARGV: P state type offset limit ("" = any)
local st, typ = ARGV[2], ARGV[3]
local idx
if st ~= '' and typ ~= '' then idx = K('st:' .. st .. ':' .. typ)
elseif st ~= '' then idx = K('state:' .. st)
elseif typ ~= '' then idx = K('type:' .. typ)
else idx = K('all') end
local off, lim = tonumber(ARGV[4]), tonumber(ARGV[5])
local ids = redis.call('ZREVRANGE', idx, off, off + lim - 1)
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', JK(id))
  if #h > 0 then out[#out + 1] = h end
end
return out
