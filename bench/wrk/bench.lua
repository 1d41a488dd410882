-- wrk script for every scenario. Env AUTH_FILE: a file of header values
-- (Authorization, or the header HEADER names, e.g. Cookie), one a line. One line: sent on every request (wrk's static
-- request, no Lua per request). Several: each request takes the next, in
-- a cycle starting at line START_AT (bench.py moves it on by the requests
-- of the previous run), so with more lines than the filter's token cache
-- (token_cache_size, 4096 by default) every request carries a token the filter has not verified yet.
-- At the end prints one JSON line: requests, req/s, latency percentiles (µs),
-- and how many answers were not 2xx/3xx.

local header = os.getenv("HEADER")
if not header or header == "" then header = "Authorization" end
local values = {}
local file = os.getenv("AUTH_FILE")
if file and file ~= "" then
  for line in io.lines(file) do
    if line ~= "" then values[#values + 1] = line end
  end
end

if #values == 1 then
  wrk.headers[header] = values[1]
end

local i = tonumber(os.getenv("START_AT") or "0") or 0
if #values > 1 then
  function request()
    i = i % #values + 1
    wrk.headers[header] = values[i]
    return wrk.format(nil, nil, wrk.headers)
  end
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format(
    '{"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
