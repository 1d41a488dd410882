-- wrk script of the soak's invalid traffic: bad tokens of every kind
-- (from INVALID_FILE: `kind token` lines), no credentials, and a Basic
-- header the bearer-only config refuses. Nothing may reach the upstream:
-- every response must be the filter's 401. Stops after QUOTA responses.
-- At its quota it writes DONE_FILE (see valid.lua).
--   wrk -s invalid.lua URL -- INVALID_FILE QUOTA DONE_FILE
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do
    local token = line:match("^%S+ (.*)$")
    if token then tokens[#tokens + 1] = token end
  end
  quota, done_file = tonumber(args[2]), args[3]
  sent, got, passed, denied, other = 0, 0, 0, 0, 0
end

function request()
  sent = sent + 1
  local headers = {}
  local k = sent % 10
  if k == 0 then
    -- no credentials at all
  elseif k == 1 then
    headers["Authorization"] = "Basic c29hazpub3BlCg=="
  else
    headers["Authorization"] = "Bearer " .. tokens[(sent % #tokens) + 1]
  end
  return wrk.format("GET", "/invalid/" .. sent, headers)
end

function response(status, headers, body)
  got = got + 1
  if status == 200 then
    passed = passed + 1
  elseif status == 401 then
    denied = denied + 1
  else
    other = other + 1
  end
  if got == quota then
    local f = io.open(done_file, "w")
    if f then f:write(got, "\n"); f:close() end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local t = { got = 0, passed = 0, denied = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format("SOAK invalid responses=%d passed=%d denied=%d other=%d\n",
    t.got, t.passed, t.denied, t.other))
end
