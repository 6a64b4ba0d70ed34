-- One atomic reward check (common.lua is prepended): bans, the sliding sum of
-- rewards a user was paid, the batch anomaly score, and the KOL bonus.
--
-- KEYS[1] reward record   risk:{u:<user>}:rw:<event>      string (JSON), the idempotency record
-- KEYS[2] user rewards    risk:{u:<user>}:rewards         packed (6-byte ms, 4-byte cents), oldest first
-- KEYS[3] device ban      KEYS[4] user ban                 hashes {until, reason, ...}
-- KEYS[5] graph scores    risk:graph:v<N>:fast             u:<user> -> "anomaly,kol,reach", d:<device> -> "anomaly,kol"
-- ARGV[1] now ("" for server time), ARGV[2] fingerprint, ARGV[3] amount (cents),
-- ARGV[4] cap (cents), ARGV[5] window ms, ARGV[6] anomaly threshold,
-- ARGV[7] user id, ARGV[8] device id, ARGV[9] KOL tiers (JSON [[name, min reach, bonus %]], best first),
-- ARGV[10] record ttl ms, ARGV[11] reward id, ARGV[12] on Redis Cluster the
-- device's side read from its slot, JSON [ban until, ban reason, "anomaly,kol"]
-- ("" for absent; KEYS[3] is then unused and KEYS[5] the user's own scores);
-- "" on one Redis
--
-- Returns {status, record}: "new", "replay" or "conflict"; the record is
-- {id, t, dec, ch, f, amount, bonus, tier, reach, anomaly, fp}.

local prior = earlier_json(KEYS[1], ARGV[2])
if prior then return prior end
local now = clock(ARGV[1])
local amount, cap, win = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

local device_side = ARGV[12] and ARGV[12] ~= '' and cjson.decode(ARGV[12]) or nil
local function given(v) if v == '' then return false end return v end
local scored = redis.call('HMGET', KEYS[5], 'u:' .. ARGV[7], 'd:' .. ARGV[8])
if device_side then scored[2] = given(device_side[3]) end  -- Redis Cluster
local ua, _, reach = string.match(scored[1] or '0,0,0', '([^,]+),([^,]+),?([^,]*)')
local da = string.match(scored[2] or '0,0', '([^,]+)')
local anomaly = cjson.null
if scored[1] or scored[2] then anomaly = math.max(tonumber(ua) or 0, tonumber(da) or 0) end
reach = tonumber(reach) or 0

-- The KOL tier: the first (best) one whose reach the user exceeds.
local tier, bonus = cjson.null, 0
for _, t in ipairs(cjson.decode(ARGV[9])) do
  if reach > t[2] then
    tier, bonus = t[1], math.floor(amount * t[3] / 100)
    break
  end
end
local paid = amount + bonus

local fired = {}
for i, code in ipairs({'device_blocklist', 'user_blocklist'}) do
  local ban
  if i == 1 and device_side then
    ban = {given(device_side[1]), given(device_side[2])}
  else
    ban = redis.call('HMGET', KEYS[2 + i], 'until', 'reason')
  end
  if ban[1] or ban[2] then
    local untl = tonumber(ban[1] or '0') or 0
    if untl == 0 or untl > now then
      fired[#fired + 1] = {code, 2, 0, '', ban[2] or '', cjson.null, cjson.null, untl > 0 and untl - now or 0}
    end
  end
end

-- The sliding sum: entries inside the window, oldest first.
local raw = redis.call('GET', KEYS[2]) or ''
local entries, total = {}, 0
for i = 1, #raw, 10 do
  local t, cents = struct.unpack('>I6I4', raw, i)
  if now - t < win then
    entries[#entries + 1] = {t, cents}
    total = total + cents
  end
end
if total + paid > cap then
  -- Retry when enough of the oldest rewards have left the window.
  local retry, left = 0, total
  for _, e in ipairs(entries) do
    left = left - e[2]
    if left + paid <= cap then retry = e[1] + win - now break end
  end
  fired[#fired + 1] = {'reward_daily_cap', 2, 0, '', total + paid, cap, win / 1000, retry}
end
if anomaly ~= cjson.null and anomaly >= tonumber(ARGV[6]) then
  fired[#fired + 1] = {'reward_graph_anomaly', 1, 0, 'captcha', anomaly, tonumber(ARGV[6]), cjson.null, 0}
end

local decision, challenge = 0, ''
for _, f in ipairs(fired) do
  if f[2] > decision then decision = f[2] end
end
if decision == 1 then challenge = 'captcha' end
if decision == 0 then
  entries[#entries + 1] = {now, paid}
  local parts = {}
  for _, e in ipairs(entries) do parts[#parts + 1] = struct.pack('>I6I4', e[1], e[2]) end
  redis.call('SET', KEYS[2], table.concat(parts), 'PX', win)
end
local rec = cjson.encode({id = ARGV[11], t = now, dec = decision, ch = challenge, f = fired, amount = amount,
                          bonus = decision == 0 and bonus or 0, tier = tier, reach = reach, anomaly = anomaly,
                          fp = ARGV[2]})
redis.call('SET', KEYS[1], rec, 'PX', tonumber(ARGV[10]))
return {'new', rec}
