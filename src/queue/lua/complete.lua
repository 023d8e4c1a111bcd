-- ARGV: P token id worker has_result result
return complete_job(ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
