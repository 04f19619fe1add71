-- A leader-only no-op: succeeds exactly when a real fenced write would.
return { 'ok' }
