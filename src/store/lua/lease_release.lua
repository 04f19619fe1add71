-- Give the lease up if we still hold it (compare-and-delete), so a standby
-- takes over at once. KEYS[1]: group prefix. ARGV: "node|epoch". Returns 1 or 0.
if redis.call('GET', G .. 'lease') == ARGV[1] then
  redis.call('DEL', G .. 'lease')
  return 1
end
return 0
