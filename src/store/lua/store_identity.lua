-- The group store's identity (store/memory.rs). ARGV: the identity the node
-- remembers ('' when none), a fresh candidate, mode ('check' or 'adopt').
-- check: no identity and none remembered → the candidate becomes it (a new
--   store); the remembered one → ok; gone → lost; another → ok only if it
--   was adopted in place of the remembered one, else changed.
-- adopt: keep (or create) the current identity and record that it replaces
--   the remembered one, so every node that remembers that one follows.
-- Returns {'ok'|'lost'|'changed', current identity or ''}.
local key, replaced = G .. 'store-id', G .. 'store-replaced'
local remembered, candidate, mode = ARGV[1], ARGV[2], ARGV[3]
local id = redis.call('GET', key)
if mode == 'adopt' then
  if not id then
    id = candidate
    redis.call('SET', key, id)
  end
  if remembered ~= '' and remembered ~= id then redis.call('SADD', replaced, remembered) end
  return { 'ok', id }
end
if not id then
  if remembered ~= '' then return { 'lost', '' } end
  redis.call('SET', key, candidate)
  return { 'ok', candidate }
end
if remembered == '' or remembered == id then return { 'ok', id } end
if redis.call('SISMEMBER', replaced, remembered) == 1 then return { 'ok', id } end
return { 'changed', id }
