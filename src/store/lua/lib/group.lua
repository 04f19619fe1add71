-- Prelude of every script on a group's keys. KEYS[1] is the group key
-- prefix "turnus:g:{<group>}:" (store/keys.rs).
local G = KEYS[1]
