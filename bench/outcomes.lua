-- wrk script: every decision is followed by an outcome report for it, as the
-- issuance service does once a share is delivered (one outcome per decision).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "")

local counter = 0
local threads = {}
local pending = nil

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tid * 7919 + 17)
end

request = function()
  if pending then
    local body = string.format('{"decision_id":"%s","delivered":3,"opened":2,"claimed":%d}',
                               pending, math.random(0, 1))
    pending = nil
    return wrk.format("POST", "/v1/outcomes", nil, body)
  end
  counter = counter + 1
  local device = math.random(1, 50000)
  local body = string.format(
    '{"event_id":"o%d-%d","device_id":"dev-%d","user_id":"user-%d","coupon_id":"cp-%d",' ..
    '"merchant_id":"m-%d","channel":"group","recipients":["r1","r2","r3"],"ip":"203.0.113.%d",' ..
    '"geo":{"lat":31.23,"lon":121.47},"text":"邀请好友同步优惠"}',
    tid, counter, device, device * 3 % 70000, counter % 97, device % 7, device % 250)
  return wrk.format("POST", "/v1/decisions", nil, body)
end

response = function(status, headers, body)
  local id = string.match(body, '"decision_id":"(%x+)"')
  local allowed = string.find(body, '"decision":"allow"', 1, true)
  if id and allowed then pending = id end
end
