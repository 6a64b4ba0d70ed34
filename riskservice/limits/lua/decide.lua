-- One atomic check-and-record of every stateful rule of one share decision
-- (common.lua is prepended). All windows of a decision are read, judged and
-- updated, and the decision recorded, in one round trip that no concurrent
-- request can interleave with.
--
-- KEYS[1]  decision record   risk:{d:<device>}:ev:<event>   string (JSON), also the idempotency record
-- KEYS[2]  device state      risk:{d:<device>}:state        share log and users seen (common.lua)
-- KEYS[3]  device ban        risk:{d:<device>}:ban          hash {until, reason, actor, at, code}
-- KEYS[4]  user share log    risk:{u:<user>}:log
-- KEYS[5]  user ban          risk:{u:<user>}:ban
-- KEYS[6]  ip ban            risk:{ip:<ip>}:ban
-- KEYS[7]  device outcomes   risk:{d:<device>}:outcomes     packed (6-byte share ms, success byte, 4-byte tag)
-- KEYS[8]  device position   risk:{d:<device>}:geo          packed (6-byte ms, lat double, lon double)
-- KEYS[9]  decision pointer  risk:{dec:<decision id>}       where the record is (ARGV[14])
-- KEYS[10] share events      risk:events                    stream
-- KEYS[11] graph scores      risk:graph:v<N>:fast           hash d:<device>/u:<user> -> "anomaly,kol"
-- KEYS[12] allowlist         risk:{d:<device>}:allow        hash {reason, actor, at}
-- KEYS[13] refusal counts    risk:{d:<device>}:flags        hash code -> count, _points, _first, _last
-- KEYS[14] review queue      risk:review:queue              zset device -> priority (open devices)
-- KEYS[15] review status     risk:{d:<device>}:review       hash {status, label, ...}
--
-- ARGV[1] now in ms, or "" for the Redis server clock
-- ARGV[2] request fingerprint (a replay with another body is a conflict)
-- ARGV[3] decision id to use if this event is new
-- ARGV[4] user id
-- ARGV[5] plan (JSON, compiled once per policy and merchant):
--         w: windows [code, source, limit, window_ms, severity, shadow, challenge, extra]
--            source: 1 device log, 2 user log, 3 distinct users on the device,
--            4 success rate (limit: min samples, extra: threshold),
--            5 travel (limit: max km/h, extra: min km),
--            6 graph anomaly (limit: threshold)
--         b: bans [code, key index, severity, shadow, challenge]
--         cd: the cool-down rule [severity, shadow, challenge] for bans with code challenge_failures
--         dcap/dkeep, ucap/ukeep, scap/skeep: entries and ms each store keeps
--         rv: refusal points (block 2, challenge 1) that put a device in the review queue
--         pv: policy version
-- ARGV[6]  findings of the stateless rules (JSON list of
--          [code, severity, shadow, challenge, observed, limit, window_s, retry_ms])
-- ARGV[7]  decision record ttl in ms
-- ARGV[8]  the request (JSON) for the share-event stream
-- ARGV[9]  latitude, ARGV[10] longitude ("" when the share has no position)
-- ARGV[11] merchant id, ARGV[12] recipients, ARGV[13] event retention ms
-- ARGV[14] what the decision pointer holds (JSON: record key, merchant, user log key)
-- ARGV[15] device id
-- ARGV[16] per-device shadow flags of the plan's rules, windows then bans
--          ("0"/"1" each; "" to use the plan's): gray rollout
--
-- Returns {status, record}: status is "new", "replay" or "conflict"; record is
-- the stored JSON {id, t, dec, ch, f, n, pv, c, fp, u, m, r, g}; n maps each count
-- window to {count after this decision, ms until its oldest entry leaves}; g is
-- {anomaly, kol} from the latest graph scores (null: not scored).

local prior = earlier(KEYS[1], ARGV[2])
if prior then return prior end

local now = clock(ARGV[1])
local plan = cjson.decode(ARGV[5])
local user = ARGV[4]
local fired = {}
if ARGV[6] ~= '[]' then fired = cjson.decode(ARGV[6]) end

local dlog, seen = read_state(KEYS[2])
local ulog = unpack_log(redis.call('GET', KEYS[4]))
local lat, lon = tonumber(ARGV[9]), tonumber(ARGV[10])

-- Graph scores of the device and the sharer: the anomaly is the worse of
-- the two, the KOL score the sharer's.
local graph = cjson.null
local scored = redis.call('HMGET', KEYS[11], 'd:' .. ARGV[15], 'u:' .. user)
if scored[1] or scored[2] then
  local da, _ = string.match(scored[1] or '0,0', '([^,]+),([^,]+)')
  local ua, uk = string.match(scored[2] or '0,0', '([^,]+),([^,]+)')
  graph = {math.max(tonumber(da), tonumber(ua)), tonumber(uk)}
end

local function haversine_km(lat1, lon1, lat2, lon2)
  local r = math.pi / 180
  local dlat, dlon = (lat2 - lat1) * r, (lon2 - lon1) * r
  local a = math.sin(dlat / 2) ^ 2 + math.cos(lat1 * r) * math.cos(lat2 * r) * math.sin(dlon / 2) ^ 2
  return 2 * 6371.0088 * math.asin(math.min(1, math.sqrt(a)))
end

-- counts[code] = {entries counted, ms until the oldest leaves, source, window}
local counts = {}
local user_seen = false
local arms = ARGV[16] or ''
for i, w in ipairs(plan.w) do
  local code, source, limit, win, sev, shadow, challenge, extra = w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]
  if arms ~= '' then shadow = tonumber(string.sub(arms, i, i)) end
  if source <= 3 then
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
      count, retry, reset = judge(others, now, limit, win)
      over = not user_seen and count >= limit
      if user_seen then count = count + 1 end
    else
      count, retry, reset = judge(source == 1 and dlog or ulog, now, limit, win)
      over = count >= limit
    end
    if over then
      -- Observed: what the count would be with this share.
      fired[#fired + 1] = {code, sev, shadow, challenge, count + 1, limit, win / 1000, retry}
    end
    counts[code] = {count, reset, source, win}
  elseif source == 4 then
    -- Success rate over the shares of the window that have an outcome.
    local raw = redis.call('GET', KEYS[7])
    local samples, successes = 0, 0
    if raw then
      for i = 1, #raw, 11 do
        local t, ok = struct.unpack('>I6B', raw, i)
        if now - t < win then
          samples = samples + 1
          successes = successes + ok
        end
      end
    end
    if samples >= limit and successes < extra * samples then
      local rate = math.floor(successes / samples * 1000 + 0.5) / 1000
      fired[#fired + 1] = {code, sev, shadow, challenge, rate, extra, win / 1000, 0, samples}
    end
  elseif source == 6 then
    if graph ~= cjson.null and graph[1] >= limit then
      fired[#fired + 1] = {code, sev, shadow, challenge, graph[1], limit, cjson.null, 0}
    end
  elseif source == 5 and lat then
    local last = redis.call('GET', KEYS[8])
    if last then
      local t, plat, plon = struct.unpack('>I6dd', last)
      local km = haversine_km(plat, plon, lat, lon)
      -- At least a second apart, so that two shares in the same ms are not infinitely fast.
      local kmh = km / (math.max(now - t, 1000) / 3600000)
      if km >= extra and kmh > limit then
        fired[#fired + 1] = {code, sev, shadow, challenge, math.floor(kmh + 0.5), limit, cjson.null, 0,
                             math.floor(km * 10 + 0.5) / 10}
      end
    end
  end
end
if lat then redis.call('SET', KEYS[8], struct.pack('>I6dd', now, lat, lon), 'PX', 86400000) end

for j, b in ipairs(plan.b) do
  local code, key_index, sev, shadow, challenge = b[1], b[2], b[3], b[4], b[5]
  if arms ~= '' then shadow = tonumber(string.sub(arms, #plan.w + j, #plan.w + j)) end
  local ban = redis.call('HMGET', KEYS[key_index], 'until', 'reason', 'code')
  if ban[1] or ban[2] then
    local untl = tonumber(ban[1] or '0') or 0
    if untl == 0 or untl > now then
      local retry = 0
      if untl > 0 then retry = untl - now end
      if ban[3] == 'challenge_failures' then
        code, sev, shadow, challenge = ban[3], plan.cd[1], plan.cd[2], plan.cd[3]
      end
      fired[#fired + 1] = {code, sev, shadow, challenge, ban[2] or '', cjson.null, cjson.null, retry}
    end
  end
end

-- An allowlisted device skips challenge rules: they are reported under
-- shadow instead. Blocks (daily caps, blocklists, bad copy) still apply.
if redis.call('EXISTS', KEYS[12]) == 1 then
  for _, f in ipairs(fired) do
    if f[2] == 1 then f[3] = 1 end
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
  admit(plan, now, KEYS[2], KEYS[4], user, dlog, ulog, seen)
else
  -- Evidence for analysts: refusals by rule; past the policy's threshold an
  -- open device enters the review queue, worst (most refusal points) first.
  for _, f in ipairs(fired) do
    if f[3] == 0 then redis.call('HINCRBY', KEYS[13], f[1], 1) end
  end
  local points = redis.call('HINCRBY', KEYS[13], '_points', decision)
  redis.call('HSETNX', KEYS[13], '_first', now)
  redis.call('HSET', KEYS[13], '_last', now)
  redis.call('PEXPIRE', KEYS[13], 30 * 86400000)
  local status = redis.call('HGET', KEYS[15], 'status')
  if points >= plan.rv and (not status or status == 'open') then
    -- GT: a higher priority from the graph scores is not lowered by points.
    redis.call('ZADD', KEYS[14], 'GT', points, ARGV[15])
  end
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
                          pv = plan.pv, c = consumed, fp = ARGV[2], u = user, m = ARGV[11],
                          r = tonumber(ARGV[12]), g = graph})
local ttl = tonumber(ARGV[7])
redis.call('SET', KEYS[1], rec, 'PX', ttl)
redis.call('SET', KEYS[9], ARGV[14], 'PX', ttl)
local codes = {}
for _, f in ipairs(fired) do codes[#codes + 1] = f[1] .. (f[3] == 1 and ':shadow' or '') end
append_event(KEYS[10], now, tonumber(ARGV[13]), 'k', 'decision', 'id', ARGV[3], 't', now,
             'dec', decision, 'rc', table.concat(codes, ','), 'req', ARGV[8])
return {'new', rec}
