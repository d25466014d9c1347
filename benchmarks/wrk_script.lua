-- wrk script for the scopegate benchmarks.
--   BENCH_WRK_SECRETS   file of secrets, one a line: each request sends the next one
--                       as "authorization: Key <secret>" (otherwise the -H headers are used)
--   BENCH_WRK_DELAY_MS  pause each connection this long between requests (paced flood)
-- At the end it prints one line "BENCHJSON {...}" with the totals the harness reads.

local secrets = nil
local index = 0
local secrets_file = os.getenv("BENCH_WRK_SECRETS")
if secrets_file and secrets_file ~= "" then
  secrets = {}
  for line in io.lines(secrets_file) do
    if line ~= "" then secrets[#secrets + 1] = line end
  end
  math.randomseed(os.time())
  index = math.random(#secrets)
end

request = function()
  if secrets then
    index = index % #secrets + 1
    wrk.headers["authorization"] = "Key " .. secrets[index]
  end
  return wrk.format()
end

local delay_ms = tonumber(os.getenv("BENCH_WRK_DELAY_MS") or "0") or 0
if delay_ms > 0 then
  delay = function()
    return delay_ms
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "non2xx": %d, ' ..
    '"socket_errors": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
