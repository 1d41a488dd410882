-- wrk script of the soak's valid traffic: each request carries one of the
-- pre-minted valid tokens, each token used REPEATS times in a row, and
-- must reach the upstream (200). The thread stops after QUOTA responses.
-- wrk's main thread sleeps for its whole -d: the thread writes DONE_FILE at
-- its quota and the driver then stops wrk with SIGINT (which runs done()).
--   wrk -s valid.lua URL -- TOKENS_FILE QUOTA REPEATS DONE_FILE
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do
    if #line > 0 then tokens[#tokens + 1] = line end
  end
  quota, repeats, done_file = tonumber(args[2]), tonumber(args[3]), args[4]
  sent, got, ok, refused = 0, 0, 0, 0
end

function request()
  local token = tokens[(math.floor(sent / repeats) % #tokens) + 1]
  sent = sent + 1
  return wrk.format("GET", "/valid/" .. sent, { ["Authorization"] = "Bearer " .. token })
end

function response(status, headers, body)
  got = got + 1
  if status == 200 then ok = ok + 1 else refused = refused + 1 end
  if got == quota then
    local f = io.open(done_file, "w")
    if f then f:write(got, "\n"); f:close() end
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local t = { got = 0, ok = 0, refused = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format("SOAK valid responses=%d ok=%d refused=%d\n", t.got, t.ok, t.refused))
end
