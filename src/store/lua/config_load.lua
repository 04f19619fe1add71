-- The group's configuration at one version. KEYS[1]: group prefix.
-- Returns {version, {branch, document, ...}}.
return { tonumber(redis.call('GET', G .. 'version') or '0'), redis.call('HGETALL', G .. 'branches') }
