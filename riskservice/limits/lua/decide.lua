-- One atomic check-and-record of every stateful rule of one share decision
-- (common.lua is prepended). All windows of a decision are read, judged and
-- updated, and the decision recorded, in one round trip that no concurrent
-- request can interleave with.
--
-- KEYS and ARGV are named by the two `unpack` lines below, in the order of
-- riskservice/limits/keys.py:DecisionKeys and riskservice/limits/contract.py:
-- DecideArgv, and the call's fields those of contract.DecideCall (a test holds
-- them equal). What each key holds is in
-- docs/architecture.md (Redis keys).
--
-- ARGV: plan (contract.Plan, packed); call (contract.DecideCall, packed: the
-- small arguments, unpacked below into c_<name>: now, ms, 0 for the Redis
-- server clock; deadline, server ms after which the call must change
-- nothing, 0 for none; ttl_ms of the record; retention_ms of share events;
-- static_block, 1 when an enforced stateless finding blocks;
-- static_challenge, the strongest enforced stateless challenge, 0 none,
-- 1 captcha, 2 sms; device_id; arms, per rule id "0"/"1": shadow under a
-- gray rollout, "" to use the plan's; static_codes, the stateless findings'
-- codes for the share event, comma separated, ":shadow" after a shadow one,
-- "?" after an enforced challenge, which the allowlist turns into shadow;
-- position, lat and lon as two doubles, "" without one); record (the
-- caller's part of the record, contract.RecordStatic: fingerprint, decision
-- id, user id, ...; stored as-is); request (JSON, for the share event);
-- user_side (absent or "" on one
-- Redis: the user's window and ban are judged here; on Redis Cluster "S"
-- then the packed findings of reserve.lua, which judged them on the user's
-- slot, and of the ip's ban (contract.user_side): the user keys are then not
-- touched); user_graph (Redis Cluster: the user's
-- "anomaly,kol,reach" of the current scores, read on the user's slot; absent
-- on one Redis, where k_graph holds both).
--
-- Returns, for a new decision, the script's part of the record (a string:
-- the caller sent the rest; for a challenged share with a position, empty
-- results and the position follow it); otherwise {status, record}: status "replay",
-- "conflict" or "late" (past the deadline: nothing changed), record the stored
-- string (contract.RECORD_*_FORMAT; a hash's HGETALL list for a record of the
-- previous release).

local k_event, k_device_state, k_device_ban, k_user_log, k_user_ban, k_ip_ban, k_device_outcomes, k_device_geo,
      k_events, k_graph, k_allowlist, k_flags, k_queue, k_review, k_signals = unpack(KEYS)
local a_plan, a_call, a_record, a_request, a_user_side, a_user_graph = unpack(ARGV)
local c_now, c_deadline, c_ttl_ms, c_retention_ms, c_static_block, c_static_challenge, c_device_id, c_arms,
      c_static_codes, c_position = struct.unpack('>' .. DECIDE_CALL_FORMAT, a_call)

local now, late, now_s = clock(c_now > 0 and string.format('%d', c_now) or '', c_deadline > 0 and c_deadline or nil)
if late then return {'late', {}} end
local fingerprint, decision_id, user = struct.unpack('>Hc0Hc0Hc0', a_record)
local prior = earlier(k_event, fingerprint)
if prior then return prior end

local plan = read_plan(a_plan)
local fired = {}

-- (A rule's one-byte fields read in place: severity, shadow, challenge.)
local function fire(id, observed, limit, window_s, retry, detail)
  local at = (id - 1) * RULE_SIZE
  local severity, shadow, challenge = string.byte(a_plan, at + F_SEVERITY, at + F_CHALLENGE)
  if c_arms ~= '' then shadow = string.byte(c_arms, id) - 48 end
  fired[#fired + 1] = {CODES[id], severity, shadow, CHALLENGES[challenge], observed, limit, window_s, retry, detail}
end

local function haversine_km(lat1, lon1, lat2, lon2)
  local sin, cos, r = math.sin, math.cos, math.pi / 180
  local dlat, dlon = (lat2 - lat1) * r, (lon2 - lon1) * r
  local a = sin(dlat / 2) ^ 2 + cos(lat1 * r) * cos(lat2 * r) * sin(dlon / 2) ^ 2
  return 2 * 6371.0088 * math.asin(math.min(1, math.sqrt(a)))
end

local split = a_user_side and a_user_side ~= ''
local dlog, users = read_state(k_device_state)
local ulog = ''
if not split then ulog = redis.call('GET', k_user_log) or '' end
if split and #a_user_side > 1 then fired = unpack_findings(a_user_side, 2) end
local lat, lon
if #c_position == 16 then lat, lon = struct.unpack('>dd', c_position) end

-- Count windows (rules 1-4): counted[id] entries, the oldest leaves in reset_in[id] ms.
local counted, reset_in = {}, {}
local user_seen = false
-- (The hot loops are written out here rather than calling common.lua's
-- judge_log: in Redis' Lua a function call, a global lookup and a struct
-- format cost more than the arithmetic; the locals below are registers.)
local sunpack = struct.unpack
for id = 1, 4 do
  local at = (id - 1) * RULE_SIZE
  if string.byte(a_plan, at + F_ENABLED) == 1 and not (split and id == 3) then
    local limit, win = sunpack('>dI', a_plan, at + F_LIMIT)  -- (the window follows the limit)
    local count, retry, reset, over
    if id == 4 then
      -- Distinct users: the share's own user, if seen in the window, is not new.
      local others = {}
      local pos, nb = 1, #users
      while pos <= nb do
        local t, len, at = struct.unpack('>I6H', users, pos)
        pos = at + len
        if now - t < win then
          if len == #user and string.sub(users, at, pos - 1) == user then user_seen = true
          else others[#others + 1] = t end
        end
      end
      table.sort(others)
      count, retry, reset = judge(others, now, limit, win)
      over = not user_seen and count >= limit
      if user_seen then count = count + 1 end
    else
      -- judge_log(): binary search for the window's start in the packed, sorted log.
      local s = id == 3 and ulog or dlog
      local n = #s / 6
      local lo, hi, bound = 1, n + 1, now - win
      if n > 0 and sunpack('>I6', s, 1) > bound then hi = 1 end  -- all of it inside (a day's window, mostly)
      while lo < hi do
        local mid = (lo + hi - (lo + hi) % 2) / 2
        if sunpack('>I6', s, mid * 6 - 5) > bound then hi = mid else lo = mid + 1 end
      end
      count, retry, reset = n - lo + 1, 0, 0
      if count >= limit then retry = sunpack('>I6', s, (lo + count - limit) * 6 - 5) + win - now end
      if count > 0 then reset = sunpack('>I6', s, lo * 6 - 5) + win - now end
      over = count >= limit
    end
    -- Observed: what the count would be with this share.
    if over then fire(id, count + 1, limit, win / 1000, retry) end
    counted[id], reset_in[id] = count, reset
  end
end

-- Success rate over the shares of the window that have an outcome.
if rule(plan, 5, F_ENABLED) == 1 then
  local raw = redis.call('GET', k_device_outcomes)
  if raw then
    local win, min_samples, threshold = rule(plan, 5, F_WINDOW), rule(plan, 5, F_LIMIT), rule(plan, 5, F_EXTRA)
    local samples, successes = 0, 0
    for i = 1, #raw, 11 do
      local t, ok = struct.unpack('>I6B', raw, i)
      if now - t < win then
        samples = samples + 1
        successes = successes + ok
      end
    end
    if samples >= min_samples and successes < threshold * samples then
      fire(5, math.floor(successes / samples * 1000 + 0.5) / 1000, threshold, win / 1000, 0, samples)
    end
  end
end

-- Impossible travel from the position of the device's last counted share
-- (written below, once this share is admitted, or by challenge.lua when a
-- challenge of it is passed: a refused attempt does not move the device, or
-- a retry from the far place would pass).
if lat and rule(plan, 6, F_ENABLED) == 1 then
  local last = redis.call('GET', k_device_geo)
  if last then
    local t, plat, plon = struct.unpack('>I6dd', last)
    local km = haversine_km(plat, plon, lat, lon)
    -- At least a second apart, so that two shares in the same ms are not infinitely fast.
    local kmh = km / (math.max(now - t, 1000) / 3600000)
    if km >= rule(plan, 6, F_EXTRA) and kmh > rule(plan, 6, F_LIMIT) then
      fire(6, math.floor(kmh + 0.5), rule(plan, 6, F_LIMIT), cjson.null, 0, math.floor(km * 10 + 0.5) / 10)
    end
  end
end

-- Graph scores of the device and the sharer: the anomaly is the worse of
-- the two, the KOL score the sharer's.
local graph = ''
local scored = redis.call('HMGET', k_graph, 'd:' .. c_device_id, 'u:' .. user)
if a_user_graph and a_user_graph ~= '' then scored[2] = a_user_graph end  -- Redis Cluster
if scored[1] or scored[2] then
  local da = string.match(scored[1] or '0,0', '^([^,]+),')
  local ua, uk = string.match(scored[2] or '0,0', '^([^,]+),([^,]+)')
  local anomaly = math.max(tonumber(da), tonumber(ua))
  graph = anomaly .. ',' .. uk
  if rule(plan, 7, F_ENABLED) == 1 and anomaly >= rule(plan, 7, F_LIMIT) then
    fire(7, anomaly, rule(plan, 7, F_LIMIT), cjson.null, 0)
  end
end

-- BEGIN real-time signals (issue 10): rules 11-15 judge the values the
-- signal consumer (riskservice/signals/) wrote into the device's `:sig`
-- hash: field contract.SIGNAL_FIELDS, the sharer's own as "<field>|<user>",
-- value "<observed>@<until ms>".
-- One HMGET in the device's slot, after an EXISTS (most devices have no
-- signals, and the EXISTS costs far less than the HMGET and the parsing of
-- its five empty fields). A signal and the batch's graph anomaly are one
-- explanation: only the stronger (observed / limit) is given.
if k_signals and k_signals ~= '' and redis.call('EXISTS', k_signals) == 1 then
  local sig = redis.call('HMGET', k_signals, 'r', 'l|' .. user, 'f|' .. user, 'd|' .. user, 'c|' .. user)
  local first = #fired + 1
  for i = 1, 5 do
    -- "<value>@<until ms>": past `until` its evidence has aged out.
    local value, untl = string.match(sig[i] or '', '^([^@]+)@(%d+)$')
    local observed, id = tonumber(value), 10 + i
    if observed and now < tonumber(untl) and rule(plan, id, F_ENABLED) == 1
       and observed >= rule(plan, id, F_LIMIT) then
      local win = rule(plan, id, F_WINDOW)
      fire(id, observed, rule(plan, id, F_LIMIT), win > 0 and win / 1000 or cjson.null, 0)
    end
  end
  local g = nil
  for i = 1, first - 1 do if fired[i][1] == 'graph_anomaly' then g = i end end
  if g and #fired >= first then
    local gshadow, gstrength, best = fired[g][3], fired[g][5] / fired[g][6], -1
    for i = first, #fired do
      if fired[i][3] == gshadow then best = math.max(best, fired[i][5] / fired[i][6]) end
    end
    if best >= 0 then
      local kept = {}
      for i, f in ipairs(fired) do
        local signal = i >= first and f[3] == gshadow
        if not ((i == g and best > gstrength) or (signal and best <= gstrength)) then kept[#kept + 1] = f end
      end
      fired = kept
    end
  end
end
-- END real-time signals

-- Bans (rules 8-10) and the allowlist: one EXISTS says whether any of their
-- keys is there (most devices, users and ips have none); only then are they
-- read. A ban with the code challenge_failures is the cool-down after failed
-- challenges, reported as its own rule.
local allowlisted = false
if redis.call('EXISTS', k_allowlist, k_device_ban, k_user_ban, k_ip_ban) > 0 then
  local ban_keys = {k_device_ban, k_user_ban, k_ip_ban}
  for id = 8, 10 do
    if rule(plan, id, F_ENABLED) == 1 and not (split and id >= 9) then
      local untl, reason, code = ban_in_force(ban_keys[id - 7], now)
      if untl then
        local retry = 0
        if untl > 0 then retry = untl - now end
        if code == 'challenge_failures' then
          fired[#fired + 1] = {'challenge_failures', plan[H_CD_SEVERITY], plan[H_CD_SHADOW],
                               CHALLENGES[plan[H_CD_CHALLENGE]], reason, cjson.null, cjson.null, retry}
        else
          fire(id, reason, cjson.null, cjson.null, retry)
        end
      end
    end
  end
  -- An allowlisted device skips challenge rules: they are reported under
  -- shadow instead (the stateless ones by the reader, from the record's `al`).
  -- Blocks (daily caps, blocklists, bad copy) still apply.
  allowlisted = redis.call('EXISTS', k_allowlist) == 1
end
if allowlisted then
  for _, f in ipairs(fired) do
    if f[2] == 1 then f[3] = 1 end
  end
end

-- Severity: block (2) > challenge (1) > allow (0); among challenges sms > captcha.
local decision, chal = 0, 0
local static_codes = c_static_codes
if c_static_block == 1 then decision = 2 end
if not allowlisted and c_static_challenge ~= 0 then
  if decision < 1 then decision = 1 end
  chal = c_static_challenge
end
for _, f in ipairs(fired) do
  if f[3] == 0 then
    if f[2] > decision then decision = f[2] end
    if f[2] == 1 then
      local rank = f[4] == 'sms' and 2 or (f[4] == 'captcha' and 1 or 0)
      if rank > chal then chal = rank end
    end
  end
end
if decision ~= 1 then chal = 0 end

local consumed = 0
if decision == 0 then
  consumed = 1
  admit(plan, now, k_device_state, (not split) and k_user_log or nil, user, dlog, ulog, users)
  if lat then redis.call('SET', k_device_geo, struct.pack('>I6dd', now, lat, lon), 'PX', '86400000') end
else
  -- Evidence for analysts: refusals by rule; past the policy's threshold an
  -- open device enters the review queue, worst (most refusal points) first.
  for entry in string.gmatch(static_codes, '[^,]+') do
    if not string.find(entry, ':shadow', 1, true) then
      local code, challenge = string.match(entry, '^(.-)(%??)$')
      if challenge == '' or not allowlisted then redis.call('HINCRBY', k_flags, code, '1') end
    end
  end
  for _, f in ipairs(fired) do
    if f[3] == 0 then redis.call('HINCRBY', k_flags, f[1], '1') end
  end
  local points = redis.call('HINCRBY', k_flags, '_points', decision)
  if points == decision then  -- the first refusal the hash holds
    redis.call('HSET', k_flags, '_first', now_s, '_last', now_s)
  else
    redis.call('HSET', k_flags, '_last', now_s)
  end
  redis.call('PEXPIRE', k_flags, '2592000000') -- 30 days
  if points >= plan[H_REVIEW] then
    local status = redis.call('HGET', k_review, 'status')
    if not status or status == 'open' then
      -- GT: a higher priority from the graph scores is not lowered by points.
      redis.call('ZADD', k_queue, 'GT', points, c_device_id)
    end
  end
end

-- Window counts after this decision, packed (contract.decode_windows).
local n = {}
for id = 1, 4 do
  local count, reset = counted[id], reset_in[id]
  if count then
    if consumed == 1 and (id ~= 4 or not user_seen) then
      count = count + 1
      if reset == 0 then reset = rule(plan, id, F_WINDOW) end
    end
    n[#n + 1] = struct.pack('>BII', id, count, reset)
  end
end
local windows = table.concat(n)
local findings = #fired > 0 and pack_findings(fired) or ''

-- The record: the caller's part as sent, then the script's. A challenged
-- share keeps its position, after empty results (contract.RECORD_POSITION_FORMAT):
-- a passed challenge counts the share and moves the device there (challenge.lua).
local flags = allowlisted and 1 or 0
local position = ''
if lat and decision == 1 then
  flags = flags + RECORD_POSITION
  position = struct.pack('>' .. RECORD_RESULT_FORMAT .. RECORD_POSITION_FORMAT, 0, 0, 0, '', lat, lon)
end
local decided = struct.pack('>' .. RECORD_DECIDED_FORMAT, now, decision, chal, consumed, flags,
                            #windows, windows, #findings, findings, #graph, graph) .. position
redis.call('SET', k_event, a_record .. decided, 'PX', c_ttl_ms)
local codes = {}
if static_codes ~= '' then codes[1] = string.gsub(static_codes, '%?', allowlisted and ':shadow' or '') end
for _, f in ipairs(fired) do codes[#codes + 1] = f[1] .. (f[3] == 1 and ':shadow' or '') end
append_event(k_events, now, c_retention_ms, decision_id, 'k', 'decision', 'id', logged_id(decision_id),
             't', now_s, 'dec', decision == 0 and '0' or (decision == 1 and '1' or '2'), 'rc', table.concat(codes, ','), 'req', a_request)
-- Only what the caller does not already know (it sent the rest), as a bare
-- string: a reply of one string costs less than a table.
return decided