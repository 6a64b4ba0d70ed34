-- One atomic check-and-record of every stateful rule of one share decision.
--
-- The sliding-window algorithm is the one of riskservice/limits/sliding.py
-- (a log of admitted share times, counted exactly per window); this script is
-- its Redis storage, so that all windows of a decision are read, judged and
-- updated in one round trip that no concurrent request can interleave with.
-- A device's windows live in one packed string, read with one GET and
-- written with one SET, because every Redis call a script makes costs time on
-- the single-threaded server, and a packed string is the smallest form.
--
-- KEYS[1] idempotency record  risk:{d:<device>}:ev:<event>  string (JSON)
-- KEYS[2] device state        risk:{d:<device>}:state       string: share log, then users
--         (uint16 n, n x 6-byte ms; then per user: 6-byte last admitted ms, uint16 length, id)
-- KEYS[3] device ban          risk:{d:<device>}:ban         hash {until, reason, actor, at}
-- KEYS[4] user share log      risk:{u:<user>}:log           string
-- KEYS[5] user ban            risk:{u:<user>}:ban
-- KEYS[6] ip ban              risk:{ip:<ip>}:ban
-- A share log is packed 6-byte big-endian ms timestamps, oldest first.
--
-- ARGV[1] now in ms, or "" to use the Redis server clock (one clock for every app server)
-- ARGV[2] request fingerprint (a replay with another body is a conflict)
-- ARGV[3] decision id to use if this event is new
-- ARGV[4] user id
-- ARGV[5] plan (JSON, compiled once per policy and merchant):
--         w: windows [code, source, limit, window_ms, severity, shadow, challenge]
--            source: 1 device log, 2 user log, 3 distinct users on the device
--         b: bans [code, key index, severity, shadow, challenge]
--         dcap/dkeep, ucap/ukeep, scap/skeep: entries and ms each store keeps
--         pv: policy version
-- ARGV[6] findings of the stateless rules (JSON list of
--         [code, severity, shadow, challenge, observed, limit, window_s, retry_ms])
-- ARGV[7] idempotency record ttl in ms
--
-- Returns {status, record}: status is "new", "replay" or "conflict"; record is
-- the stored JSON {id, t, dec, ch, f, n, pv, c, fp}; n maps each window rule to
-- {count after this decision, ms until its oldest entry leaves}.

local stored = redis.call('GET', KEYS[1])
if stored then
  local rec = cjson.decode(stored)
  if rec.fp ~= ARGV[2] then return {'conflict', stored} end
  return {'replay', stored}
end

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local plan = cjson.decode(ARGV[5])
local findings = cjson.decode(ARGV[6])
local user = ARGV[4]

local function unpack_log(s)
  if not s or #s == 0 then return {} end
  local n = #s / 6
  local vals = {struct.unpack('>' .. string.rep('I6', n), s)}
  vals[n + 1] = nil -- struct.unpack also returns the next position
  return vals
end

-- Keep entries still inside the longest window, and at most cap of them:
-- enough to judge every window exactly, so memory is bounded by policy.
-- Sorted, so that a clock stepping back cannot disorder the log.
-- Append an admitted share to a sorted log and keep only what a window can
-- still need: entries inside the longest window, at most cap of them. So
-- memory is bounded by the policy. (Sorting is needed only when the clock
-- stepped back.)
local function record(log, cap, keep)
  local n = #log
  log[n + 1] = now
  if n > 0 and log[n] > now then table.sort(log) end
  n = n + 1
  local first = n - cap + 1
  if first < 1 then first = 1 end
  while first <= n and now - log[first] >= keep do first = first + 1 end
  local kept = {}
  for i = first, n do kept[#kept + 1] = log[i] end
  return kept
end

local function pack_log(log)
  return struct.pack('>' .. string.rep('I6', #log), unpack(log))
end

-- Device state: the log and the users seen, in one read.
local dlog, seen = {}, {}
local state = redis.call('GET', KEYS[2])
if state then
  local n, pos = struct.unpack('>H', state)
  if n > 0 then
    dlog = {struct.unpack('>' .. string.rep('I6', n), state, pos)}
    pos = dlog[n + 1]
    dlog[n + 1] = nil
  end
  while pos <= #state do
    local t, len
    t, len, pos = struct.unpack('>I6H', state, pos)
    seen[string.sub(state, pos, pos + len - 1)] = t
    pos = pos + len
  end
end
local ulog = unpack_log(redis.call('GET', KEYS[4]))

-- Judge a sorted list of times against a window: how many are inside it;
-- when the limit is reached, the ms until enough of them age out for one
-- more share to fit; and the ms until the oldest inside ages out (the
-- window's reset, for headers). Inside entries are a suffix of the list.
local function judge(times, limit, win)
  local n = #times
  local first = n + 1
  while first > 1 and now - times[first - 1] < win do first = first - 1 end
  local count = n - first + 1
  local retry, reset = 0, 0
  if count >= limit then retry = times[first + count - limit] + win - now end
  if count > 0 then reset = times[first] + win - now end
  return count, retry, reset
end

local fired = {}
for _, f in ipairs(findings) do fired[#fired + 1] = f end

-- counts[code] = {entries counted, ms until the oldest leaves, source, window}
local counts = {}
local user_seen = false
for _, w in ipairs(plan.w) do
  local code, source, limit, win, sev, shadow, challenge = w[1], w[2], w[3], w[4], w[5], w[6], w[7]
  local count, retry, reset, over
  if source == 3 then
    -- Distinct users: the share's own user, if seen in the window, is not new.
    local others = {}
    for u, t in pairs(seen) do
      if now - t < win then
        if u == user then user_seen = true else others[#others + 1] = t end
      end
    end
    table.sort(others)
    count, retry, reset = judge(others, limit, win)
    over = not user_seen and count >= limit
    if user_seen then count = count + 1 end
  else
    count, retry, reset = judge(source == 1 and dlog or ulog, limit, win)
    over = count >= limit
  end
  if over then
    -- Observed: what the count would be with this share.
    fired[#fired + 1] = {code, sev, shadow, challenge, count + 1, limit, win / 1000, retry}
  end
  counts[code] = {count, reset, source, win}
end

for _, b in ipairs(plan.b) do
  local code, key_index, sev, shadow, challenge = b[1], b[2], b[3], b[4], b[5]
  local ban = redis.call('HMGET', KEYS[key_index], 'until', 'reason')
  if ban[1] or ban[2] then
    local untl = tonumber(ban[1] or '0') or 0
    if untl == 0 or untl > now then
      local retry = 0
      if untl > 0 then retry = untl - now end
      fired[#fired + 1] = {code, sev, shadow, challenge, ban[2] or '', cjson.null, cjson.null, retry}
    end
  end
end

-- Severity: block (2) > challenge (1) > allow (0); among challenges sms > captcha.
local decision, challenge = 0, ''
for _, f in ipairs(fired) do
  if f[3] == 0 then
    if f[2] > decision then decision, challenge = f[2], '' end
    if f[2] == 1 and decision == 1 and (challenge == '' or f[4] == 'sms') then challenge = f[4] end
  end
end

local consumed = 0
if decision == 0 then
  consumed = 1
  seen[user] = now
  -- Users: keep those inside the longest window, the most recently seen
  -- first, up to the cap (ties: the larger id first, as the reference does).
  local users = {}
  for u, t in pairs(seen) do
    if now - t < plan.skeep then users[#users + 1] = {t, u} end
  end
  table.sort(users, function(a, b) return a[1] > b[1] or (a[1] == b[1] and a[2] > b[2]) end)
  local kept = record(dlog, plan.dcap, plan.dkeep)
  local parts = {struct.pack('>H', #kept), pack_log(kept)}
  for i = 1, math.min(#users, plan.scap) do
    parts[#parts + 1] = struct.pack('>I6H', users[i][1], #users[i][2]) .. users[i][2]
  end
  redis.call('SET', KEYS[2], table.concat(parts), 'PX', math.max(plan.dkeep, plan.skeep))
  redis.call('SET', KEYS[4], pack_log(record(ulog, plan.ucap, plan.ukeep)), 'PX', plan.ukeep)
end

local n = {}
for code, c in pairs(counts) do
  local count, reset, source, win = c[1], c[2], c[3], c[4]
  if consumed == 1 and (source ~= 3 or not user_seen) then
    count = count + 1
    if reset == 0 then reset = win end
  end
  n[code] = {count, reset}
end
if next(n) == nil then n = cjson.null end

-- (cjson writes an empty list as {}; the reader treats both alike)
local rec = cjson.encode({id = ARGV[3], t = now, dec = decision, ch = challenge, f = fired, n = n,
                          pv = plan.pv, c = consumed, fp = ARGV[2]})
redis.call('SET', KEYS[1], rec, 'PX', tonumber(ARGV[7]))
return {'new', rec}
