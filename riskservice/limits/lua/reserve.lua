-- Redis Cluster, step 1 of a decision, on the user's slot (common.lua is
-- prepended): judge the user's ban and daily window, and when the user side
-- allows the share, reserve its place in the window until settle.lua
-- confirms or drops it. A reservation counts against the window at once, so
-- concurrent shares of one user from any number of devices can never pass
-- the limit; one whose settle never arrives expires after the hold.
--
-- KEYS: user_log, user_ban, user_pending (hash event -> "ms,expires ms")
-- ARGV: now ("" for the server clock), deadline (server ms, ""), event
-- (digest of the event id), plan (contract.Plan), hold_ms, arms (as decide.lua)
--
-- Returns {status, findings, reserved}: status "ok" or "late" (nothing
-- changed); findings packed (contract.FINDING_FORMAT, "" when none); reserved 1 when this call took a place, 2 when an earlier call of
-- the same event holds one (a replay), 0 when the user side refused.

local k_user_log, k_user_ban, k_user_pending = unpack(KEYS)
local a_now, a_deadline, a_event, a_plan, a_hold_ms, a_arms = unpack(ARGV)

local now, late = clock(a_now, a_deadline)
if late then return {'late', '', 0} end
local plan = read_plan(a_plan)

-- Reservations still held (expired ones are dropped), and this event's own.
local pending, own = {}, nil
local raw = redis.call('HGETALL', k_user_pending)
local expired = {}
for i = 1, #raw, 2 do
  local t, expires = string.match(raw[i + 1], '^(%d+),(%d+)$')
  t, expires = tonumber(t), tonumber(expires)
  if expires <= now then
    expired[#expired + 1] = raw[i]
  elseif raw[i] == a_event then
    own = t
  else
    pending[#pending + 1] = t
  end
end
if #expired > 0 then redis.call('HDEL', k_user_pending, unpack(expired)) end

local fired = {}
local function shadow_of(id)
  if a_arms ~= '' then return tonumber(string.sub(a_arms, id, id)) end
  return rule(plan, id, F_SHADOW)
end
local function fire(id, observed, limit, window_s, retry)
  fired[#fired + 1] = {CODES[id], rule(plan, id, F_SEVERITY), shadow_of(id),
                       CHALLENGES[rule(plan, id, F_CHALLENGE)], observed, limit, window_s, retry}
end

if rule(plan, 9, F_ENABLED) == 1 then
  local untl, reason = ban_in_force(k_user_ban, now)
  if untl then fire(9, reason, cjson.null, cjson.null, untl > 0 and untl - now or 0) end
end
if rule(plan, 3, F_ENABLED) == 1 and not own then
  -- The window counts admitted shares and the places other shares hold. The
  -- log is sorted: its part inside the window is found by a binary search in
  -- the packed string (unpacking and sorting it cost more than the rest of
  -- the script); the times are unpacked only to say when a refused share
  -- may retry.
  local limit, win = rule(plan, 3, F_LIMIT), rule(plan, 3, F_WINDOW)
  local log = redis.call('GET', k_user_log) or ''
  local n, bound = #log / 6, now - win
  local lo, hi = 1, n + 1
  while lo < hi do
    local mid = (lo + hi - (lo + hi) % 2) / 2
    if struct.unpack('>I6', log, mid * 6 - 5) > bound then hi = mid else lo = mid + 1 end
  end
  local count = n - lo + 1
  for _, t in ipairs(pending) do
    if now - t < win then count = count + 1 end
  end
  if count >= limit then
    local times = unpack_log(log)
    for _, t in ipairs(pending) do times[#times + 1] = t end
    table.sort(times)
    local retry
    count, retry = judge(times, now, limit, win)
    fire(3, count + 1, limit, win / 1000, retry)
  end
end

local blocked = false
for _, f in ipairs(fired) do
  if f[3] == 0 and f[2] > 0 then blocked = true end
end
local reserved = 0
if own then
  reserved = 2  -- a replay: the earlier call holds the place and settles it
elseif not blocked then
  redis.call('HSET', k_user_pending, a_event, now .. ',' .. (now + tonumber(a_hold_ms)))
  redis.call('PEXPIRE', k_user_pending, math.max(tonumber(a_hold_ms), plan[H_UKEEP]))
  reserved = 1
end
return {'ok', #fired > 0 and pack_findings(fired) or '', reserved}
