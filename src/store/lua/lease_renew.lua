-- Extend the lease if we still hold it (compare, then PEXPIRE).
-- KEYS[1]: group prefix. ARGV: "node|epoch", ttl ms. Returns 1 or 0.
if redis.call('GET', G .. 'lease') == ARGV[1] then
  redis.call('PEXPIRE', G .. 'lease', ARGV[2])
  return 1
end
return 0
