-- Shared by the scripts. Each "@piece" below is prepended to a script when
-- the script (or a piece it takes) names what the piece defines
-- (riskservice/limits/scripts.py), so a call builds only the functions and
-- tables its script uses. The sliding-window algorithm is the one of
-- riskservice/limits/sliding.py: a log of admitted share times, counted
-- exactly per window; here it is stored packed, 6-byte big-endian ms each,
-- oldest first.

-- The contract with Python (riskservice/limits/contract.py; a test holds the
-- two to the same tables and formats).
-- @piece Stateful rules by id:
local CODES = {'device_velocity', 'device_daily_cap', 'user_daily_cap', 'device_many_users',
               'low_success_rate', 'impossible_travel', 'graph_anomaly',
               'device_blocklist', 'user_blocklist', 'ip_blocklist',
               -- BEGIN real-time signals (issue 10)
               'device_rotation', 'lockstep', 'sink_feeder', 'dead_recipients', 'coupon_repeat'
               -- END real-time signals
               }
-- @piece
local CHALLENGES = {[0] = '', 'captcha', 'sms'}
-- @piece The plan: per rule (RULE_FORMAT) enabled, limit, window ms, severity,
-- shadow, challenge, extra; then PLAN_HEADER_FORMAT.
local RULE_FORMAT = 'BdIBBBd'
local PLAN_HEADER_FORMAT = 'HIHIHIHBBBHII'
-- A rule's fields sit at fixed offsets of its 24 bytes; the scripts read
-- the fields they use where they are (a table of the whole plan cost more to
-- build than its reads saved).
-- The field names are their offsets in the rule.
local RULE_SIZE, RULE_COUNT = 24, 15
local F_ENABLED, F_LIMIT, F_WINDOW, F_SEVERITY, F_SHADOW, F_CHALLENGE, F_EXTRA = 1, 2, 10, 14, 15, 16, 17
-- The header after the rules, by position (PLAN_HEADER_FORMAT).
local H_DCAP, H_DKEEP, H_UCAP, H_UKEEP, H_SCAP, H_SKEEP, H_REVIEW = 1, 2, 3, 4, 5, 6, 7
local H_CD_SEVERITY, H_CD_SHADOW, H_CD_CHALLENGE, H_CF_LIMIT, H_CF_WINDOW, H_CF_COOLDOWN = 8, 9, 10, 11, 12, 13

-- @piece Findings packed one after another (contract.FINDING_FORMAT): cjson
-- encoding them cost a refused decision more than its window arithmetic.
local NONE = 0 / 0
local function pack_findings(fired)
  local parts, kind_of, pack = {}, type, struct.pack  -- (registers: cheaper than globals in the loop)
  for i = 1, #fired do
    local f = fired[i]
    local observed, limit, win, detail = f[5], f[6], f[7], f[9]
    local kind, number, text = 0, NONE, ''
    local t = kind_of(observed)
    if t == 'string' then kind, text = 1, observed
    elseif t == 'number' then number = observed end
    if kind_of(limit) ~= 'number' then limit = NONE end
    if kind_of(win) ~= 'number' then win = NONE end
    if kind_of(detail) ~= 'number' then detail = NONE end
    local challenge = f[4] == 'captcha' and 1 or (f[4] == 'sms' and 2 or 0)
    parts[i] = pack('>Bc0BBBBdHc0dddd', #f[1], f[1], f[2], f[3], challenge, kind, number,
                    #text, text, limit, win, f[8], detail)
  end
  return table.concat(parts)
end

-- @piece Findings packed elsewhere (on Redis Cluster, the user side's, from
-- reserve.lua and the ip's ban), from byte `pos` of `s`, as fire() makes
-- them: none (NaN) is cjson.null, a missing detail nil.
local function unpack_findings(s, pos)
  local out, sunpack = {}, struct.unpack
  local function none(x) if x ~= x then return cjson.null end return x end
  while pos <= #s do
    local code, severity, shadow, challenge, kind, number, text, limit, win, retry, detail, at =
      sunpack('>Bc0BBBBdHc0dddd', s, pos)
    local f = {code, severity, shadow, CHALLENGES[challenge], kind == 1 and text or number, none(limit),
               none(win), retry}
    if detail == detail then f[9] = detail end
    out[#out + 1] = f
    pos = at
  end
  return out
end

-- @piece The plan: the packed string (plan.s) and its header values (plan[H_*]).
local function read_plan(packed)
  local p = {struct.unpack('>' .. PLAN_HEADER_FORMAT, packed, RULE_COUNT * RULE_SIZE + 1)}
  p.s = packed
  return p
end

-- @piece A rule's field (F_*): the one-byte ones read with string.byte, which
-- costs far less than struct.unpack.
local function rule(plan, id, f)
  local at = (id - 1) * RULE_SIZE + f
  if f == F_LIMIT or f == F_EXTRA then return (struct.unpack('>d', plan.s, at)) end
  if f == F_WINDOW then return (struct.unpack('>I', plan.s, at)) end
  return string.byte(plan.s, at)
end

-- @piece decide.lua's small arguments, packed into one (contract.DecideCall).
local DECIDE_CALL_FORMAT = 'I6I6I6I6BBHc0Hc0Hc0Hc0'

-- @piece Decision records (contract.RECORD_*_FORMAT): one string, written with one
-- SET: the caller's part as sent, the script's part, then results; a
-- challenged share's position after them (flag RECORD_POSITION). Records
-- the previous release wrote are hashes (contract.RECORD_FIELDS): they are
-- read, and updated in their own form, until their TTL ends them.
local RECORD_STATIC_FORMAT = 'Hc0Hc0Hc0Hc0Hc0IIc0'
local RECORD_DECIDED_FORMAT = 'I6BBBBHc0Hc0Hc0'
local RECORD_RESULT_FORMAT = 'BI6Hc0'
local RECORD_RESULTS = {[0] = '', 'passed', 'failed'}
local RECORD_POSITION_FORMAT = 'dd'
local RECORD_POSITION = 4
-- A pass reported while a ban blocked the device is recorded, not counted: a
-- flag bit names the ban, by the code a decision it blocks carries (an
-- analyst's or operator's ban, or a rule's cool-down).
local HELD_BITS = {device_blocklist = 8, challenge_failures = 16}

-- @piece Place the device at a counted share's position (decide.lua's k_device_geo:
-- 6-byte ms, lat, lon; a day) unless a later counted share already placed it: a
-- share counted after the fact (a passed challenge, a share allowed in an outage)
-- happened at its decision's time t, and must not move the device back in time.
local function place_device(key, t, lat, lon)
  local last = redis.call('GET', key)
  local held = last and #last >= 6 and struct.unpack('>I6', last) or nil
  if not held or held <= t then
    redis.call('SET', key, struct.pack('>I6dd', t, lat, lon), 'PX', '86400000')
  end
end

-- @piece A ban (decide.lua's rules 8-10, the device's challenge cool-down) in
-- force at `now`: its end (0 for none), reason ('' if none) and code; nil if
-- the key holds no ban or its end has passed. decide.lua and challenge.lua
-- both judge a ban with it, so a pass is held exactly when a decision is refused.
local function ban_in_force(key, now)
  local ban = redis.call('HMGET', key, 'until', 'reason', 'code')
  if not (ban[1] or ban[2]) then return nil end
  local untl = tonumber(ban[1] or '0') or 0
  if untl ~= 0 and untl <= now then return nil end
  return untl, ban[2] or '', ban[3]
end
-- @piece An answer already recorded under an idempotency key: {"replay", record}
-- for the same request, {"conflict", record} for another one; nil if none.
-- The record is the stored string, or a hash's HGETALL list.
local function earlier(key, fingerprint)
  local stored = redis.pcall('GET', key)
  if not stored then return nil end
  if type(stored) == 'table' then  -- a hash (WRONGTYPE): the previous release's form
    local fp = redis.call('HGET', key, 'fp')
    if not fp then return nil end
    return {fp == fingerprint and 'replay' or 'conflict', redis.call('HGETALL', key)}
  end
  local fp = struct.unpack('>Hc0', stored)
  return {fp == fingerprint and 'replay' or 'conflict', stored}
end

-- @piece A stored record's fields that the scripts after a decision use
-- (id, u, r, t, dec, ch, c, cs, ct, o; lat and lon of a challenged share;
-- nil if none), in either form.
local function load_record(key)
  local s = redis.pcall('GET', key)
  if not s then return nil end
  if type(s) == 'table' then
    local f = redis.call('HMGET', key, 'id', 'u', 'r', 't', 'dec', 'ch', 'c', 'cs', 'ct', 'o')
    if not f[1] then return nil end
    return {hash = true, id = f[1], u = f[2], r = tonumber(f[3]), t = tonumber(f[4]), dec = tonumber(f[5]),
            ch = f[6] or '', c = tonumber(f[7]), cs = f[8] or nil, ct = tonumber(f[9]), o = f[10] or nil}
  end
  local _, id, u, _, _, r, _, at = struct.unpack('>' .. RECORD_STATIC_FORMAT, s)
  local t, dec, ch, c, flags, _, _, _, after = struct.unpack('>' .. RECORD_DECIDED_FORMAT, s, at)
  -- (tail: where what follows the results starts; kept as it is when the results change)
  local rec = {s = s, id = id, u = u, r = r, t = t, dec = dec, ch = CHALLENGES[ch], c = c, decided = at,
               results = after, tail = #s + 1}
  if after <= #s then
    local cs, ct, o, tail = struct.unpack('>' .. RECORD_RESULT_FORMAT, s, after)
    if cs > 0 then rec.cs, rec.ct = RECORD_RESULTS[cs], ct end
    if o ~= '' then rec.o = o end
    rec.tail = tail
    -- (an older process that recorded a result dropped the position and kept the flag)
    if flags % (2 * RECORD_POSITION) >= RECORD_POSITION and tail + 15 <= #s then
      rec.lat, rec.lon = struct.unpack('>' .. RECORD_POSITION_FORMAT, s, tail)
    end
  end
  return rec
end

-- @piece Store a record's results (rec.cs, rec.ct, rec.o; consumed: the share now
-- counts; held: the code of the ban that kept a pass from counting, or nil),
-- keeping its TTL and what follows the results (a position).
local function save_results(key, rec, consumed, held)
  if rec.hash then
    local f = {}
    if rec.cs then f[#f + 1], f[#f + 2], f[#f + 3], f[#f + 4] = 'cs', rec.cs, 'ct', rec.ct end
    if rec.o then f[#f + 1], f[#f + 2] = 'o', rec.o end
    if consumed then f[#f + 1], f[#f + 2] = 'c', 1 end
    if held then f[#f + 1], f[#f + 2] = 'held', held end
    redis.call('HSET', key, unpack(f))
    return
  end
  local head = string.sub(rec.s, 1, rec.results - 1)
  if consumed then  -- the consumed byte: after the time (6), decision and challenge
    head = string.sub(head, 1, rec.decided + 7) .. '\1' .. string.sub(head, rec.decided + 9)
  end
  if held then  -- the flags byte, after the consumed one (a result is recorded once: the bit is not set yet)
    local flags = string.byte(head, rec.decided + 9) + HELD_BITS[held]
    head = string.sub(head, 1, rec.decided + 8) .. string.char(flags) .. string.sub(head, rec.decided + 10)
  end
  local o = rec.o or ''
  local index = rec.cs == 'passed' and 1 or (rec.cs == 'failed' and 2 or 0)
  local tail = string.sub(rec.s, rec.tail)
  rec.s = head .. struct.pack('>' .. RECORD_RESULT_FORMAT, index, rec.ct or 0, #o, o)
  rec.tail = #rec.s + 1
  rec.s = rec.s .. tail
  redis.call('SET', key, rec.s, 'KEEPTTL')
end

-- @piece A record as the scripts return it: the string, or a hash's HGETALL list.
local function record_reply(key, rec)
  if rec.hash then return redis.call('HGETALL', key) end
  return rec.s
end

-- @piece The same for records stored as one JSON string (reward checks).
local function earlier_json(key, fingerprint)
  local stored = redis.call('GET', key)
  if not stored then return nil end
  if cjson.decode(stored).fp ~= fingerprint then return {'conflict', stored} end
  return {'replay', stored}
end

-- @piece The Redis server clock in ms, as a number and as the string the scripts
-- write (built from TIME's digits: formatting a Lua number costs more).
local function server_ms()
  local t = redis.call('TIME')
  local micros = t[2]
  local ms = t[1] .. string.sub(string.rep('0', 6 - #micros) .. micros, 1, 3)
  return tonumber(ms), ms
end

-- @piece The judging time: given (tests, backtests) or the Redis server clock, one
-- clock for every app server. With a deadline (server ms), also whether the
-- call arrived after it: the caller was answered without it, so it must
-- change nothing. One TIME call at most.
local function clock(arg, deadline)
  local server, text = nil, nil
  if arg == '' or (deadline and deadline ~= '') then server, text = server_ms() end
  local late = deadline and deadline ~= '' and server > tonumber(deadline)
  if arg ~= '' then return tonumber(arg), late, arg end
  return server, late, text
end

-- @piece
local function unpack_log(s)
  if not s or #s == 0 then return {} end
  local n = #s / 6
  local vals = {struct.unpack('>' .. string.rep('I6', n), s)}
  vals[n + 1] = nil -- struct.unpack also returns the next position
  return vals
end

-- @piece
local function pack_log(log)
  return struct.pack('>' .. string.rep('I6', #log), unpack(log))
end

-- @piece Append an admitted share to a sorted log and keep only what a window can
-- still need: entries inside the longest window, at most cap of them, so
-- memory is bounded by the policy. (Sorting is needed only when the clock
-- stepped back.)
local function record(log, now, cap, keep)
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

-- @piece Judge a sorted list of times against a window: how many are inside it;
-- when the limit is reached, the ms until enough of them age out for one
-- more share to fit; and the ms until the oldest inside ages out (the
-- window's reset, for headers). Inside entries are a suffix of the list.
local function judge(times, now, limit, win)
  local n = #times
  local first = n + 1
  while first > 1 and now - times[first - 1] < win do first = first - 1 end
  local count = n - first + 1
  local retry, reset = 0, 0
  if count >= limit then retry = times[first + count - limit] + win - now end
  if count > 0 then reset = times[first] + win - now end
  return count, retry, reset
end

-- @piece Packed logs are worked on as strings: judging binary-searches the window's
-- start and reads the two entries it needs, recording drops a prefix and
-- appends, so a full log is never unpacked into a table (most of a
-- decision's Lua time went to that).
local function log_at(s, i)
  return (struct.unpack('>I6', s, i * 6 - 5))
end

-- @piece judge() on a packed, sorted log.
local function judge_log(s, now, limit, win)
  local n = #s / 6
  local lo, hi, bound = 1, n + 1, now - win
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if log_at(s, mid) > bound then hi = mid else lo = mid + 1 end
  end
  local count = n - lo + 1
  local retry, reset = 0, 0
  if count >= limit then retry = log_at(s, lo + count - limit) + win - now end
  if count > 0 then reset = log_at(s, lo) + win - now end
  return count, retry, reset
end

-- @piece record() on a packed, sorted log.
local function record_log(s, now, cap, keep)
  local n = #s / 6
  if n > 0 and log_at(s, n) > now then
    return pack_log(record(unpack_log(s), now, cap, keep)) -- the clock stepped back
  end
  local first = n + 2 - cap
  if first < 1 then first = 1 end
  while first <= n and now - log_at(s, first) >= keep do first = first + 1 end
  return string.sub(s, first * 6 - 5) .. struct.pack('>I6', now)
end

-- @piece Device state: the share log, then the users seen on the device, the most
-- recently seen first (uint16 n, n x 6-byte ms; then per user: 6-byte last
-- admitted ms, uint16 length, id). One key, read with one GET and written
-- with one SET: every call a script makes costs time on the single-threaded
-- server, and a packed string is the smallest form. Returns the log and the
-- users' part, both packed: they are walked in place, never unpacked into
-- tables (building tables was most of an admitted share's cost).
local function read_state(key)
  local state = redis.call('GET', key)
  if not state then return '', '' end
  local pos = 3 + 6 * struct.unpack('>H', state)
  return string.sub(state, 3, pos - 1), string.sub(state, pos)
end

-- @piece The users' part as a table id -> last admitted ms.
local function seen_of(block)
  local seen, pos = {}, 1
  while pos <= #block do
    local t, len
    t, len, pos = struct.unpack('>I6H', block, pos)
    seen[string.sub(block, pos, pos + len - 1)] = t
    pos = pos + len
  end
  return seen
end

-- @piece The users' part after `user` shares at `now`: kept inside the longest
-- window, the most recently seen first, up to the cap (ties: the larger id
-- first, as the reference does). The new entry goes first and the others
-- keep their order, so the part is cut and joined, not sorted; only when
-- another user was seen at `now` or later (a clock step) is it rebuilt.
local function users_after(plan, now, user, block)
  local cap, keep = plan[H_SCAP], plan[H_SKEEP]
  if cap >= 1 and (#block == 0 or struct.unpack('>I6', block) < now) then
    -- The entries kept are those walked, but for the user's own earlier one:
    -- at most two slices of the part, joined behind the new entry at once.
    local count, pos, n, own, own_end = 1, 1, #block, nil, nil
    while pos <= n and count < cap do
      local t, len, at = struct.unpack('>I6H', block, pos)
      if now - t >= keep then break end
      local nxt = at + len
      if len == #user and string.sub(block, at, nxt - 1) == user then own, own_end = pos, nxt
      else count = count + 1 end
      pos = nxt
    end
    if own then
      return struct.pack('>I6Hc0', now, #user, user) .. string.sub(block, 1, own - 1) ..
             string.sub(block, own_end, pos - 1)
    end
    return struct.pack('>I6Hc0', now, #user, user) .. string.sub(block, 1, pos - 1)
  end
  local seen = seen_of(block)
  seen[user] = now
  local users = {}
  for u, t in pairs(seen) do
    if now - t < keep then users[#users + 1] = {t, u} end
  end
  table.sort(users, function(a, b) return a[1] > b[1] or (a[1] == b[1] and a[2] > b[2]) end)
  local parts = {}
  for i = 1, math.min(#users, cap) do
    parts[i] = struct.pack('>I6H', users[i][1], #users[i][2]) .. users[i][2]
  end
  return table.concat(parts)
end

-- @piece Count an admitted share: the device log, the user's log and the users seen
-- (all packed).
local function admit(plan, now, state_key, ulog_key, user, dlog, ulog, users)
  local kept = record_log(dlog, now, plan[H_DCAP], plan[H_DKEEP])
  redis.call('SET', state_key, struct.pack('>H', #kept / 6) .. kept .. users_after(plan, now, user, users),
             'PX', math.max(plan[H_DKEEP], plan[H_SKEEP]))
  if ulog_key then  -- (nil: the user's slot records it, on Redis Cluster)
    redis.call('SET', ulog_key, record_log(ulog, now, plan[H_UCAP], plan[H_UKEEP]), 'PX', plan[H_UKEEP])
  end
end

-- @piece The id a decision's share events carry (keys.logged_id): the first 32
-- characters of an id longer than 39, older ids whole.
local function logged_id(id)
  return #id > 39 and string.sub(id, 1, 32) or id
end

-- @piece Append to the share-event stream. Trimming what is older than retention
-- costs about a third of an append, so about one append in 20 trims for the
-- others: those whose decision id starts with one of '0', 'P', 'p' (the
-- byte a multiple of 16; the first character is random, keys.new_decision_id;
-- one in 16 for the previous release's hex ids).
local function append_event(stream, now, retention, id, ...)
  -- (nothing can be older than retention before the clock has run that long:
  -- a negative MINID is refused)
  if string.byte(id, 1) % 16 == 0 and tonumber(now) > tonumber(retention) then
    redis.call('XADD', stream, 'MINID', '~', tostring(now - tonumber(retention)), '*', ...)
  else
    redis.call('XADD', stream, '*', ...)
  end
end
