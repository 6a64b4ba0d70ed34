-- Redis Cluster, step 3 of a decision, on the user's slot (common.lua is
-- prepended): the device's slot decided, so the place reserve.lua held is
-- either taken into the user's log (the share was counted) or released.
-- Idempotent: a place already settled, or expired, is left alone.
--
-- KEYS: user_log, user_pending[, once]
-- ARGV: event (digest of the event id), counted ("1"/"0"), plan (contract.Plan)[, place]
--
-- With a place ("<at ms>,<until ms>") and the key `once`, a share counted on
-- its device's slot after the fact (a passed challenge, a share allowed during
-- an outage) is placed and taken in one step, at most once: `once` is set
-- (for ONCE_MS) by the first call, and a call that finds it changes nothing.
-- So a retry whose first attempt ran (its reply was lost) cannot count the
-- share twice.
--
-- Returns "taken", "released" or "none".

local k_user_log, k_user_pending, k_once = unpack(KEYS)
local a_event, a_counted, a_plan, a_place = unpack(ARGV)
local ONCE_MS = 600000  -- far longer than a write is retried (riskservice/limits/settles.py)

if k_once then
  if not redis.call('SET', k_once, '1', 'NX', 'PX', ONCE_MS) then return 'none' end
  redis.call('HSET', k_user_pending, a_event, a_place)
end
local held = redis.call('HGET', k_user_pending, a_event)
if not held then return 'none' end
redis.call('HDEL', k_user_pending, a_event)
if a_counted ~= '1' then return 'released' end
local plan = read_plan(a_plan)
local t = tonumber(string.match(held, '^(%d+),'))
local log = record_log(redis.call('GET', k_user_log) or '', t, plan[H_UCAP], plan[H_UKEEP])
redis.call('SET', k_user_log, log, 'PX', plan[H_UKEEP])
return 'taken'
