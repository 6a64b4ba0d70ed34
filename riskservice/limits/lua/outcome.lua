-- Record what happened to a share (common.lua is prepended): delivered,
-- opened and claimed counts. A share with claimed >= 1 is a success for the
-- success-rate rule, which counts the shares of its window (by share time)
-- that have an outcome.
--
-- KEYS[1] decision record   KEYS[2] device outcomes   KEYS[3] share events
-- ARGV[1] now ("" for server time), ARGV[2..4] delivered, opened, claimed,
-- ARGV[5] success-rate window ms, ARGV[6] outcome log cap, ARGV[7] event retention ms
--
-- Returns {status, record} (the record as stored, see load_record):
-- "ok", "replay" (the same counts again), "not_found",
-- "not_a_share" (blocked, or challenged and not passed, or passed while a ban
-- blocked the device, which counted nothing), "too_many" (more than
-- its recipients) or "decreased" (counts may only grow).

local rec = load_record(KEYS[1])
if not rec then return {'not_found', {}} end
local rec_id, rec_t, dec, cs, recipients = rec.id, rec.t, rec.dec, rec.cs, rec.r
if not (dec == 0 or (cs == 'passed' and rec.c == 1)) then return {'not_a_share', record_reply(KEYS[1], rec)} end
local dl, op, cl = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if recipients and recipients > 0 and dl > recipients then return {'too_many', record_reply(KEYS[1], rec)} end
local old = nil
if rec.o then
  local a, b, c = string.match(rec.o, '^(%d+),(%d+),(%d+)')
  old = {tonumber(a), tonumber(b), tonumber(c)}
  if old[1] == dl and old[2] == op and old[3] == cl then return {'replay', record_reply(KEYS[1], rec)} end
  if dl < old[1] or op < old[2] or cl < old[3] then return {'decreased', record_reply(KEYS[1], rec)} end
end
-- (The counts and the time are written as the strings they came as: formatting
-- a Lua number costs more than the rest of the line.)
local now, _, now_text = clock(ARGV[1])
rec.o = ARGV[2] .. ',' .. ARGV[3] .. ',' .. ARGV[4] .. ',' .. now_text
save_results(KEYS[1], rec)

-- The success-rate log: one entry per share with an outcome, found again by
-- its share time and a tag from its decision id.
local success = cl >= 1 and 1 or 0
local was = old and (old[3] >= 1 and 1 or 0) or -1
local win, cap = tonumber(ARGV[5]), tonumber(ARGV[6])
if success ~= was and now - rec_t < win then
  -- The tag: the previous release's ids began with 8 hex digits (their value)
  -- or a slot tag ("s<n>-": 0); this release's begin with random base64url
  -- characters, whose first 8 bytes are folded into 32 bits.
  local tag = (string.find(rec_id, '^%x%x%x%x%x%x%x%x') and tonumber(string.sub(rec_id, 1, 8), 16))
    or ((string.find(rec_id, '^s%d+%-') or #rec_id < 8) and 0)
    or bit.bxor((struct.unpack('>I4', rec_id)), (struct.unpack('>I4', rec_id, 5))) % 4294967296
  local log = redis.call('GET', KEYS[2]) or ''
  -- The share's entry is found by its time with a plain search in the packed
  -- log (an entry starts every 11 bytes) and changed in place, or appended;
  -- unpacking and packing every entry made a busy device's report cost more
  -- than two decisions. Entries are appended as reports come, mostly in share
  -- order: those that left the window are dropped from the front (the rule
  -- skips any left behind), and all of them once the log is full.
  local t6, tag4 = struct.pack('>I6', rec_t), struct.pack('>I4', tag)
  local at, from = nil, 1
  while true do
    at = string.find(log, t6, from, true)
    if not at or ((at - 1) % 11 == 0 and string.sub(log, at + 7, at + 10) == tag4) then break end
    from = at + 1
  end
  if at then
    log = string.sub(log, 1, at + 5) .. string.char(success) .. string.sub(log, at + 7)
  else
    log = log .. t6 .. string.char(success) .. tag4
  end
  local first = 1
  while first < #log and now - struct.unpack('>I6', log, first) >= win do first = first + 11 end
  log = string.sub(log, first)
  if #log > cap * 11 then
    local entries = {}
    for i = 1, #log, 11 do
      if now - struct.unpack('>I6', log, i) < win then entries[#entries + 1] = string.sub(log, i, i + 10) end
    end
    log = table.concat(entries, '', math.max(1, #entries - cap + 1), #entries)
  end
  redis.call('SET', KEYS[2], log, 'PX', win)
end
append_event(KEYS[3], now, ARGV[7], rec_id, 'k', 'outcome', 'id', logged_id(rec_id), 't', now_text,
             'dl', ARGV[2], 'op', ARGV[3], 'cl', ARGV[4])
return {'ok', record_reply(KEYS[1], rec)}
