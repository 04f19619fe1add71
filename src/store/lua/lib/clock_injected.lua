-- TEST-ONLY clock, used instead of clock.lua by the differential tests:
-- "now" in microseconds since the Unix epoch is passed as the LAST argument
-- and removed here, so the script body sees exactly the ARGV it sees in
-- production. Never loaded by a node.
local INJECTED_NOW_US = tonumber(table.remove(ARGV))
local function now()
  local us = INJECTED_NOW_US
  return math.floor(us / 1000000), math.floor(us / 1000), us
end

local function now_ms()
  local _, ms = now()
  return ms
end
