-- Second half of lib/once.lua: the body ran as the function once_body();
-- its reply is kept under the client's key for ONCE_TTL_S, then returned.
local once_reply = once_body()
if ONCE_RECORD then
  redis.call('HSET', ONCE_RECORD, 'fingerprint', ONCE_FINGERPRINT, 'reply', cjson.encode(once_reply))
  redis.call('EXPIRE', ONCE_RECORD, ONCE_TTL_S)
end
return once_reply
