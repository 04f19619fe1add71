-- Prelude of every script on one branch's keys. KEYS[1] is the branch key
-- prefix "turnus:b:{<branch>}:" (store/keys.rs); its hash tag puts every key
-- of the branch in one slot, so the scripts also run on Redis Cluster.
-- Uses the constants and the clock the builder puts before it.
local P = KEYS[1]

local function ticket_table(id)
  local h = redis.call('HGETALL', P .. 't:' .. id)
  if #h == 0 then return nil end
  local t = { id = id }
  for i = 1, #h, 2 do t[h[i]] = h[i + 1] end
  return t
end

-- The event document (domain::TicketEvent); nil fields are left out.
-- `extra` adds what only statistics need (first_call, from_* of a transfer).
local function event_json(kind, t, at_ms, extra)
  local doc = {
    type = kind, id = t.id, service = t.service, number = t.number, status = t.status,
    issued_ms = tonumber(t.issued_ms), called_ms = tonumber(t.called_ms),
    finished_ms = tonumber(t.finished_ms), counter = t.counter, ts_ms = at_ms,
    seq_day = tonumber(t.day), seq_nth = tonumber(t.nth),
  }
  if extra then
    for k, v in pairs(extra) do doc[k] = v end
  end
  return cjson.encode(doc)
end

-- Every state change goes to the branch's outbox (shipped to statistics)
-- and to live displays, in the same atomic script as the change itself.
local function emit(kind, t, at_ms, extra)
  local json = event_json(kind, t, at_ms, extra)
  redis.call('XADD', P .. 'outbox', '*', 'e', json)
  redis.call('PUBLISH', P .. 'events', json)
  return json
end

local function show_on_display(id)
  local d = P .. 'display'
  redis.call('LREM', d, 0, id)
  redis.call('LPUSH', d, id)
  redis.call('LTRIM', d, 0, DISPLAY_LENGTH - 1)
end

-- The moving average of service times (domain::estimate::ewma).
local function ewma(previous, sample)
  if not previous then return sample end
  return previous + EWMA_ALPHA * (sample - previous)
end

-- Ends a called ticket as served or no_show; returns the event, or nil when
-- the ticket is not called (already ended).
local function finish_ticket(id, status, kind, at_ms)
  local tk = P .. 't:' .. id
  if redis.call('HGET', tk, 'status') ~= 'called' then return nil end
  redis.call('HSET', tk, 'status', status, 'finished_ms', at_ms)
  redis.call('EXPIRE', tk, FINISHED_TTL_S)
  local t = ticket_table(id)
  if status == 'served' then
    local took_s = (at_ms - tonumber(t.called_ms)) / 1000
    local prev = tonumber(redis.call('HGET', P .. 'service-time', t.service))
    redis.call('HSET', P .. 'service-time', t.service, tostring(ewma(prev, took_s)))
  end
  return emit(kind, t, at_ms)
end

-- What the waiting-time estimate needs, read in the same script.
local function queue_context(ticket_id, service)
  local rank = -1
  if ticket_id then
    local r = redis.call('ZRANK', P .. 'q:' .. service, ticket_id)
    if r then rank = r end
  end
  return rank, redis.call('HGETALL', P .. 'service-time'), redis.call('HGETALL', P .. 'seen')
end

-- Counter idle time (domain::counter_idle): `free` holds when each counter
-- last became free (a ticket of it ended, or a call found nothing), and
-- `waiting-since` since when each service's queue has been non-empty
-- without a break. A call event carries both, so statistics can tell how
-- long the counter was free while its services had tickets waiting.
local function counter_free(counter, at_ms)
  redis.call('HSET', P .. 'free', counter, at_ms)
end

-- A ticket joined a service's queue: the queue is non-empty from now on,
-- unless it already was.
local function queue_joined(service, at_ms)
  redis.call('HSETNX', P .. 'waiting-since', service, at_ms)
end

-- A ticket left a service's queue: an empty queue waits since no time.
local function queue_left(service)
  if redis.call('ZCARD', P .. 'q:' .. service) == 0 then
    redis.call('HDEL', P .. 'waiting-since', service)
  end
end

-- Finishes the counter's current ticket as served (if any) and notes when
-- the counter last called; appends the events to out. Returns when the
-- counter became free: now if it was serving, else what `free` holds (nil
-- if nothing is known). The counter is free from now on until a call
-- gives it a ticket.
local function finish_current(counter, at_ms, out)
  local current = P .. 'current'
  local cur = redis.call('HGET', current, counter)
  local free_ms = tonumber(redis.call('HGET', P .. 'free', counter))
  if cur then
    local ev = finish_ticket(cur, 'served', 'ticket-served', at_ms)
    if ev then table.insert(out, ev) end
    redis.call('HDEL', current, counter)
    free_ms = at_ms
  end
  redis.call('HSET', P .. 'seen', counter, at_ms)
  counter_free(counter, at_ms)
  return free_ms
end

-- Calls a waiting ticket to the counter. The ZREM runs in the same script
-- that chose the ticket: no other counter can take it. `services` are the
-- counter's row; `free_ms` when the counter became free (finish_current).
local function call_ticket(id, service, counter, at_ms, out, services, free_ms)
  -- Since when a ticket of the counter's services has waited: the earliest
  -- start of a non-empty stretch of one of its queues still running, read
  -- before this call takes the ticket.
  local waiting_since
  for _, since in ipairs(redis.call('HMGET', P .. 'waiting-since', unpack(services))) do
    local ms = tonumber(since)
    if ms and (not waiting_since or ms < waiting_since) then waiting_since = ms end
  end
  redis.call('ZREM', P .. 'q:' .. service, id)
  queue_left(service)
  redis.call('HSET', P .. 't:' .. id, 'status', 'called', 'called_ms', at_ms,
    'announced_ms', at_ms, 'counter', counter)
  redis.call('HSET', P .. 'current', counter, id)
  show_on_display(id)
  -- Statistics count the wait at the first call only, not at a call after
  -- a transfer: the ticket remembers that it was called.
  local first = redis.call('HSETNX', P .. 't:' .. id, 'first_called_ms', at_ms) == 1
  table.insert(out, emit('ticket-called', ticket_table(id), at_ms,
    { first_call = first or nil, counter_free_ms = free_ms, waiting_since_ms = waiting_since }))
end
