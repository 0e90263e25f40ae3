-- wrk script for P1 (PERFORMANCE.md): pixel beacons, mostly
-- `GET /icon.gif?type=check&...`, as an audience of Panda-style players
-- sends them (spec/protocols.md §1).
--
-- Usage: wrk -t1 -c64 -d10s -s bench/pixel_check.lua http://HOST:PORT -- [AUDIENCE]
--
-- The audience is a queue of sessions (p, v, u). Each request takes a
-- session that is due and sends its next beacon: `view`, 1-3 s later
-- `play`, at once the forced `check` at `current_time=0`, then a `check`
-- with `current_time` 5, 10, … until the session's length, sometimes with a
-- seek (a jump). A playing session is due again 6 s (wall clock, 1-s
-- resolution) after its last check, so the server sees checks 5 s of
-- position apart about 5-7 s apart, which it credits as playing time. New
-- viewers keep arriving (a `view` instead of a due beacon, 3 % of requests),
-- and when no session is due a new one starts too, so the audience grows to
-- what the server's rate needs.
--
-- AUDIENCE sessions (default 100000) are already watching when the run
-- starts, at random positions, due over the first 6 s, so a short run is
-- not all views while the queue fills. Size it at about 6 × the expected
-- requests/s.
--
-- Viewers (`u`) come from a pool of 10,000 UUIDs and videos (`v`) from 200,
-- both skewed (a few are popular), so viewers come back and unique viewers
-- stay far below views. All beacons are GETs (the `<img>` form; the player's
-- `navigator.sendBeacon` POSTs go through the same decoder).

local PULLZONE = "vz-a06a6f7b-986"
local VIEWERS = 10000
local VIDEOS = 200
local DUE_AFTER_S = 6
-- Share of requests that start a new session although one is due.
local ARRIVALS = 0.03

local referrers = {
  "", "",
  "https%3A%2F%2Fwww.google.com%2F",
  "https%3A%2F%2Fescola.example.com.br%2Fcurso%2Freact",
  "https%3A%2F%2Fwww.facebook.com%2F",
  "https%3A%2F%2Fblog.example.org%2Freceitas%2Fmassa",
}
local campaigns = {
  "&utm_source=newsletter&utm_campaign=black_friday",
  "&utm_source=instagram&utm_campaign=course_promo",
}

local random = math.random
local format = string.format
local time = os.time

local function uuid()
  return format("%08x-%04x-4%03x-%04x-%06x%06x",
    random(0, 0x7fffffff), random(0, 0xffff), random(0, 0xfff),
    random(0x8000, 0xbfff), random(0, 0xffffff), random(0, 0xffffff))
end

-- A skewed pick in 1..n: low indices are drawn more often.
local function skewed(n)
  local x = random()
  return math.floor(x * x * n) + 1
end

local viewers, videos = {}, {}
-- Two FIFO queues of sessions, each ordered by due time: `soon` for the
-- short waits (view -> play, play -> the first check), `playing` for checks.
local function queue() return { first = 1, last = 0 } end
local soon, playing = queue(), queue()
counts = { view = 0, play = 0, check = 0, started = 0, audience = 0 }

local function new_session(position)
  local length = 30 + math.floor(random() ^ 2 * 1200)
  local s = {
    -- Everything but `type` and `current_time`, built once per session.
    ids = format("&v=%s&p=%s&u=%s&referrer=%s&visibily=true%s",
      videos[skewed(VIDEOS)], PULLZONE, viewers[skewed(VIEWERS)],
      referrers[random(#referrers)],
      random() < 0.15 and campaigns[random(#campaigns)] or ""),
    length = length,
  }
  if position then
    s.pos = math.min(position, length)
    s.stage = "check"
  else
    s.stage = "view"
  end
  return s
end

local function push(q, s, due)
  s.due = due
  q.last = q.last + 1
  q[q.last] = s
end

-- The session at the front of `q` if it is due, taken off the queue.
local function take_due(q, now)
  local s = q[q.first]
  if s and s.due <= now then
    q[q.first] = nil
    q.first = q.first + 1
    return s
  end
end

function init(args)
  math.randomseed(tonumber(args[2] or "") or 42)
  for i = 1, VIEWERS do viewers[i] = uuid() end
  for i = 1, VIDEOS do videos[i] = uuid() end
  wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
  local audience = tonumber(args[1] or "") or 100000
  local now = time()
  for i = 1, audience do
    -- Due over the first DUE_AFTER_S seconds, in order.
    push(playing, new_session(5 * random(0, 60)), now + math.floor((i - 1) * DUE_AFTER_S / audience))
  end
  counts.audience = audience
end

function request()
  local now = time()
  local s = take_due(soon, now)
  if not s and random() >= ARRIVALS then s = take_due(playing, now) end
  if not s then
    s = new_session(nil)
    counts.started = counts.started + 1
  end
  local kind, query = s.stage, nil
  if kind == "view" then
    query = "type=view" .. s.ids
    s.stage = "play"
    push(soon, s, now + random(1, 3))
  elseif kind == "play" then
    -- With the play, the player's forced check at 0.
    query = "type=play" .. s.ids
    s.stage = "check"
    s.pos = 0
    push(soon, s, now)
  else
    query = format("type=check%s&current_time=%d", s.ids, s.pos)
    if random() < 0.03 then
      -- A seek: the next check jumps.
      s.pos = s.pos + 5 * random(2, 24)
    else
      s.pos = s.pos + 5
    end
    if s.pos <= s.length then push(playing, s, now + DUE_AFTER_S) end
  end
  counts[kind] = counts[kind] + 1
  return wrk.format("GET", "/icon.gif?" .. query)
end

-- The mix each thread sent, printed after wrk's summary.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    io.write(format("beacons: view %d, play %d, check %d; audience %d at start, %d sessions started\n",
      c.view, c.play, c.check, c.audience, c.started))
  end
end
