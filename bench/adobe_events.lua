-- wrk script for P2 (PERFORMANCE.md): Adobe Media Collection events,
-- `POST /api/v1/sessions/{sid}/events`, spread over many sessions.
--
-- Usage: wrk -t1 -c64 -d20s -s bench/adobe_events.lua http://HOST:PORT -- SIDS_FILE
--
-- SIDS_FILE holds one sid per line (`open-sessions --protocol adobe
-- --sids-out`), session j on line j + 1. Requests go to the sessions in
-- turn, so with many sessions a session's events are far apart and never in
-- flight together. The k-th event (k = 0, 1, ...) of session j is a `play`
-- when k is a multiple of 10, else a `ping`, 10 s of player time after the
-- previous one, with the player's params and QoE: about 300 bytes. It is
-- byte-for-byte `playhead_bench::adobe::event` (bench/tools/src/adobe.rs),
-- which the P3 generator sends; keep the two in step.

local format = string.format
local bxor = bit.bxor
local BITRATES = { 800000, 1600000, 2500000, 4500000 }

local sids, counters = {}, {}
local base_ts
local n = 0

function init(args)
  local path = args[1] or error("usage: -- SIDS_FILE")
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if #line > 0 then
      sids[#sids + 1] = line
      counters[#sids] = 0
    end
  end
  f:close()
  assert(#sids > 0, "no sids in " .. path)
  base_ts = os.time() * 1000
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
end

-- adobe::visitor_id (j < 2^24).
local function visitor(j)
  return format("%08x%08x%08x%08x", j, bxor(j, 0x5bd1e995), j * 31, j * 131)
end

function request()
  n = n % #sids + 1
  local j = n - 1
  local k = counters[n]
  counters[n] = k + 1
  local kind = (k % 10 == 0) and "play" or "ping"
  local body = format(
    '{"playerTime":{"playhead":%d.%03d,"ts":%.0f},"eventType":"%s",' ..
    '"params":{"media.playerName":"html5-player","media.channel":"web",' ..
    '"analytics.visitorId":"%s"},' ..
    '"qoeData":{"media.qoe.bitrate":%d,"media.qoe.droppedFrames":%d,' ..
    '"media.qoe.framesPerSecond":29.97}}',
    (k + 1) * 10, j % 1000, base_ts + (k + 1) * 10000, kind,
    visitor(j), BITRATES[j % 4 + 1], k * 2)
  return wrk.format("POST", "/api/v1/sessions/" .. sids[n] .. "/events", nil, body)
end
