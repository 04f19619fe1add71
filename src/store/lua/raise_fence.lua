-- Raising the fence is the whole write.
return { 'ok' }
