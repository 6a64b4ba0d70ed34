-- Record the result of a challenge (common.lua is prepended). A passed
-- challenge counts the share then: it consumes quota like an allowed share,
-- and moves the device to the share's position as decide.lua does on
-- admission (impossible travel is judged from there on). A failed one is an
-- attempt, which moves nothing; repeated failures put the device in a
-- cool-down (a ban with an end and the code challenge_failures). A pass
-- reported while a ban blocks the device's decisions (an analyst's or
-- operator's ban, or the cool-down, in force and enforced as a block) is
-- recorded but counts nothing: the ban's very next decision is blocked, and
-- a challenge issued before it must not let a share through. The record's
-- flags name that ban (HELD_BITS).
--
-- KEYS (keys.ChallengeKeys): the decision record, the device's state, the
-- user's log, the device's failures (packed log), the device's ban, the share
-- events, the device's last position (decide.lua's k_device_geo)
-- ARGV[1] now ("" for server time), ARGV[2] passed (1/0), ARGV[3] kind,
-- ARGV[4] plan (the decision's merchant's, contract.Plan),
-- ARGV[5] event retention ms, ARGV[6] "1" on Redis Cluster: the user's log
-- is in another slot (k_user_log is then unused; the caller records it there)
--
-- Returns {status, record (as stored, see load_record), cooled}: status "ok", "replay", "not_found",
-- "not_challenged", "kind_mismatch" or "conflict" (another result was recorded).

local k_record, k_device_state, k_user_log, k_device_failures, k_device_ban, k_events, k_device_geo = unpack(KEYS)
local rec = load_record(k_record)
if not rec then return {'not_found', {}, 0} end
local rec_id, dec, ch, cs, user = rec.id, rec.dec, rec.ch, rec.cs, rec.u
if dec ~= 1 then return {'not_challenged', record_reply(k_record, rec), 0} end
if ch ~= ARGV[3] then return {'kind_mismatch', record_reply(k_record, rec), 0} end
local passed = ARGV[2] == '1'
local result = passed and 'passed' or 'failed'
if cs then
  if cs ~= result then return {'conflict', record_reply(k_record, rec), 0} end
  -- A failure's replay says whether it started the cool-down still in place
  -- (whose ban names the decision it was started by), as its first answer did.
  local cooled = 0
  if not passed then
    local ban = redis.call('HMGET', k_device_ban, 'code', 'decision')
    if ban[1] == 'challenge_failures' and ban[2] == rec_id then cooled = 1 end
  end
  return {'replay', record_reply(k_record, rec), cooled}
end
local now = clock(ARGV[1])
local plan = read_plan(ARGV[4])
local cooled = 0

-- The code of the device's ban that blocks its decisions now, as decide.lua
-- judges it (no end or an end ahead; rule 8 enabled; the finding a block and
-- not shadow), or nil. (Under a gray rollout the caller passes the plan as
-- the device's decisions apply it: device_blocklist in shadow outside the
-- enforced share, lifecycle.device_plan.)
local function blocking_ban()
  if rule(plan, 8, F_ENABLED) ~= 1 then return nil end
  local untl, _, code = ban_in_force(k_device_ban, now)
  if not untl then return nil end
  if code == 'challenge_failures' then
    if plan[H_CD_SEVERITY] == 2 and plan[H_CD_SHADOW] == 0 then return 'challenge_failures' end
  elseif rule(plan, 8, F_SEVERITY) == 2 and rule(plan, 8, F_SHADOW) == 0 then
    return 'device_blocklist'
  end
  return nil
end

local held = passed and blocking_ban() or nil
if held then
  rec.cs, rec.ct = result, now
  save_results(k_record, rec, false, held)
elseif passed then
  local dlog, users = read_state(k_device_state)
  local ukey = ARGV[6] ~= '1' and k_user_log or nil
  local ulog = ukey and (redis.call('GET', ukey) or '') or ''
  admit(plan, now, k_device_state, ukey, user, dlog, ulog, users)
  if rec.lat and k_device_geo then place_device(k_device_geo, rec.t, rec.lat, rec.lon) end
  rec.cs, rec.ct = result, now
  save_results(k_record, rec, true)
else
  local limit, win, cooldown = plan[H_CF_LIMIT], plan[H_CF_WINDOW], plan[H_CF_COOLDOWN]
  local fails = record_log(redis.call('GET', k_device_failures) or '', now, math.max(limit, 1), win)
  redis.call('SET', k_device_failures, fails, 'PX', win)
  -- Never shorten or replace a ban an analyst or operator set.
  -- (in force as decide.lua judges it: no end, or an end still ahead; an
  -- ended ban's key lives a day longer and must not hold off the cool-down)
  local in_force, _, code = ban_in_force(k_device_ban, now)
  local banned_by_hand = in_force and code ~= 'challenge_failures'
  if limit > 0 and #fails / 6 >= limit and not banned_by_hand then
    cooled = 1
    redis.call('DEL', k_device_ban)
    redis.call('HSET', k_device_ban, 'until', now + cooldown, 'code', 'challenge_failures', 'actor', 'rule',
               'at', now, 'decision', rec_id,
               'reason', #fails / 6 .. ' failed challenges in ' .. math.floor(win / 1000) .. ' s')
    redis.call('PEXPIRE', k_device_ban, cooldown + 86400000)
    redis.call('DEL', k_device_failures)
  end
  rec.cs, rec.ct = result, now
  save_results(k_record, rec)
end
local fields = {'k', 'challenge', 'id', logged_id(rec_id), 't', now, 'passed', passed and 1 or 0, 'kind', ARGV[3],
                'cool', cooled}
-- (a pass that a ban held: the export says so, and readers do not take it for a counted share)
if held then fields[#fields + 1], fields[#fields + 2] = 'held', held end
append_event(k_events, now, ARGV[5], rec_id, unpack(fields))
return {'ok', record_reply(k_record, rec), cooled}
