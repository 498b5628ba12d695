-- GCRA for one key, run atomically by Redis. See doc.go.
--
-- KEYS[1]  the stored key; its value is the theoretical arrival time (TAT)
--          in unix microseconds, its TTL ends when the allowance is full.
-- ARGV[1]  "take", "refund" or "ping".
-- ARGV[2]  now in unix microseconds, or "" to read Redis's clock.
-- ARGV[3]  the rate's Every in microseconds (take, refund).
-- ARGV[4]  the tolerance, Every × (Burst-1), in microseconds (take).
--
-- Returns, for take, 0 when the attempt is allowed and spent, else the
-- microseconds until one would be; 0 otherwise.
--
-- Lua numbers are doubles: microseconds since 1970 (about 2^50) are exact,
-- and values are written with %.0f because tostring keeps only 14 digits.

local key = KEYS[1]
local op = ARGV[1]

local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function store(tat)
  redis.call('SET', key, string.format('%.0f', tat),
    'PX', string.format('%.0f', math.ceil((tat - now) / 1000)))
end

if op == 'ping' then
  -- A write, so that a read-only replica or an out-of-memory server fails
  -- the probe as it would fail a take.
  redis.call('SET', key, '1', 'PX', 1)
  return 0
end

local every = tonumber(ARGV[3])
local v = redis.call('GET', key)
local tat = v and tonumber(v)

if op == 'take' then
  local tolerance = tonumber(ARGV[4])
  if not tat or tat < now then
    tat = now
  end
  local wait = tat - now - tolerance
  if wait > 0 then
    return wait
  end
  store(tat + every)
  return 0
end

if op == 'refund' then
  if not tat then
    return 0
  end
  tat = tat - every
  if tat <= now then
    -- A full allowance is the same as no key.
    redis.call('DEL', key)
  else
    store(tat)
  end
  return 0
end

return redis.error_reply('latchkey gcra: unknown op ' .. tostring(op))
