-- ARGV: P token id worker has_result result lease_ms [type...]
-- complete, then reserve, in one script (one round trip; vd_queue_complete_reserve): returns
-- complete's code when it is not 'ok' (nothing reserved), else {'ok', 'ok', hash} or
-- {'ok', 'empty'}. One token serves both: complete keeps it in the job's last_op, reserve in
-- rsv:TOKEN, so a repeat after a lost reply changes nothing and returns the same job.
local c = complete_job(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if c[1] ~= 'ok' then return c end
local r = reserve_job(ARGV[2], ARGV[4], tonumber(ARGV[7]), 8)
return {'ok', r[1], r[2]}
