-- ARGV: P token worker lease_ms [type...]
return reserve_job(ARGV[2], ARGV[3], tonumber(ARGV[4]), 5)
