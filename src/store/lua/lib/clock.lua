-- The Redis clock, so times measured on different nodes share one clock.
-- now(): seconds, milliseconds and microseconds since the Unix epoch.
local function now()
  local t = redis.call('TIME')
  local s, us = tonumber(t[1]), tonumber(t[2])
  return s, s * 1000 + math.floor(us / 1000), s * 1000000 + us
end

local function now_ms()
  local _, ms = now()
  return ms
end
