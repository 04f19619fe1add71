-- Idempotency-Key (API.md "Retries") of a ticket or counter request, after
-- branch.lua. ARGV[1] is the client's key ('' when it sent none) and ARGV[2]
-- the request's fingerprint (operation and arguments); both are removed
-- here, so the body sees its own arguments from ARGV[1].
-- The first run stores its reply under the key (see lib/once_end.lua), in
-- this same atomic script; a later run with the key, from any node of the
-- group, returns that reply and changes nothing. There is no window between
-- a check and the change in which a retry could run a second time.
local ONCE_KEY = table.remove(ARGV, 1)
local ONCE_FINGERPRINT = table.remove(ARGV, 1)
local ONCE_RECORD = nil
if ONCE_KEY ~= '' then
  ONCE_RECORD = P .. 'once:' .. ONCE_KEY
  local seen = redis.call('HMGET', ONCE_RECORD, 'fingerprint', 'reply')
  if seen[1] then
    if seen[1] ~= ONCE_FINGERPRINT then
      return redis.error_reply('IDEMPOTENCY_KEY_REUSED ' .. seen[1])
    end
    -- A write, so that a WAIT after this replay (durability replicated)
    -- covers the first run's change too, whichever node made it.
    redis.call('HINCRBY', ONCE_RECORD, 'replays', 1)
    return cjson.decode(seen[2])
  end
end
