-- wrk script: every allowed decision is followed by an outcome report for it,
-- as the issuance service does once a share is delivered. The decisions are
-- those of decisions.lua (loaded from BENCH_LUA_DIR).
dofile((os.getenv("BENCH_LUA_DIR") or "bench") .. "/decisions.lua")

local decision_request = request
local pending = nil

request = function()
  if pending then
    local body = string.format('{"decision_id":"%s","delivered":3,"opened":2,"claimed":%d}',
                               pending, math.random(0, 1))
    pending = nil
    return wrk.format("POST", "/v1/outcomes", nil, body)
  end
  return decision_request()
end

response = function(status, headers, body)
  local id = string.match(body, '"decision_id":"(%x+)"')
  if id and string.find(body, '"decision":"allow"', 1, true) then pending = id end
end
