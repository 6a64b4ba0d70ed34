-- Count a share that was allowed while Redis was unreachable (common.lua is
-- prepended; see riskservice/limits/outage.py). Idempotent by its record:
-- a share already recorded is left alone.
--
-- KEYS and ARGV are decide.lua's (the same DecisionKeys and DecideArgv);
-- the call's now is when the share was allowed, on the server's clock. With
-- user_side "split" (Redis Cluster) the user's log is in another slot and not
-- touched here: the caller records it there.
--
-- A share sent with a position places the device there (impossible travel is
-- judged from it), unless a later counted share already did.
--
-- Returns "counted" or "exists".

local k_event, k_device_state, k_device_ban, k_user_log, k_user_ban, k_ip_ban, k_device_outcomes, k_device_geo,
      k_events, k_graph, k_allowlist, k_flags, k_queue, k_review = unpack(KEYS)
local a_plan, a_call, a_record, a_request, a_user_side = unpack(ARGV)

if redis.call('EXISTS', k_event) == 1 then return 'exists' end
local now, _, ttl_ms, retention_ms, _, _, _, _, _, position = struct.unpack('>' .. DECIDE_CALL_FORMAT, a_call)
local now_s = string.format('%d', now)
local _, decision_id, user = struct.unpack('>Hc0Hc0Hc0', a_record)
local plan = read_plan(a_plan)
local dlog, users = read_state(k_device_state)
local split = a_user_side == 'split'
local ulog = split and '' or (redis.call('GET', k_user_log) or '')
admit(plan, now, k_device_state, (not split) and k_user_log or nil, user, dlog, ulog, users)
-- A counted share places the device, as an admitted one does in decide.lua.
if #position == 16 then place_device(k_device_geo, now, struct.unpack('>dd', position)) end
-- Allowed, consumed, flagged "reconciled" (2), no windows, findings or scores.
redis.call('SET', k_event, a_record .. struct.pack('>' .. RECORD_DECIDED_FORMAT, now, 0, 0, 1, 2, 0, '', 0, '', 0, ''),
           'PX', ttl_ms)
append_event(k_events, now, retention_ms, decision_id, 'k', 'decision', 'id', logged_id(decision_id),
             't', now_s, 'dec', '0', 'rc', '', 'req', a_request, 'degraded', '1')
return 'counted'
