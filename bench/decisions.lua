-- Headers for every request; the key comes from the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "")

-- wrk script: a stream of distinct share events over many devices and users,
-- so decisions are real (not replays) and most are allowed.
-- BENCH_DEVICES (default 50 000) bounds the devices: a few hundred fill their
-- windows within seconds, so most decisions judge full logs (busy devices).
local devices = tonumber(os.getenv("BENCH_DEVICES") or "50000")
-- BENCH_RUN names this run of wrk: its event ids and draws differ from every
-- other run's, so no round replays an earlier round's events (a replay only
-- reads the stored answer, far cheaper than a decision).
local run = tonumber(os.getenv("BENCH_RUN") or "0")
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tid * 7919 + run * 104729 + 17)
end

request = function()
  counter = counter + 1
  local device = math.random(1, devices)
  local body = string.format(
    '{"event_id":"w%d-%d-%d","device_id":"dev-%d","user_id":"user-%d","coupon_id":"cp-%d",' ..
    '"merchant_id":"m-%d","channel":"group","recipients":["r1","r2","r3"],"ip":"203.0.113.%d",' ..
    '"geo":{"lat":31.23,"lon":121.47},"text":"邀请好友同步优惠"}',
    run, tid, counter, device, device * 3 % 70000, counter % 97, device % 7, device % 250)
  return wrk.format("POST", "/v1/decisions", nil, body)
end
