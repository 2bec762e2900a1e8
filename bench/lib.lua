-- Shared by token.lua, introspect.lua and jwks.lua (loaded with dofile, not run by wrk itself).
--
-- Every response is counted by status in its wrk thread; `done` adds the threads up, prints the
-- summary and writes one key=value line to $BENCH_RESULT for run_wrk in bench/lib.sh. A run in
-- which any response was not 200 (or whose body lacks $BENCH_EXPECT), or with any socket error or
-- timeout, ends with "BENCH FAILED" on stderr, and the shell script then fails: a broken setup
-- must never produce a good-looking number.

local lib = {}

-- Environment variable `name`, or an error naming it.
function lib.env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set (run this script through bench/client-credentials.sh or bench/compare.sh)")
  end
  return value
end

local threads = {}
local expect = os.getenv("BENCH_EXPECT") -- a plain substring every 200 body must contain, if set

-- Main state: one call per wrk thread, before the run.
function setup(thread)
  table.insert(threads, thread)
end

-- Thread state: per-thread counters, read back in `done` with thread:get.
statuses = {}     -- status code -> count
unexpected = 0    -- 200 responses whose body lacked $BENCH_EXPECT
responses = 0

function response(status, headers, body)
  responses = responses + 1
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 and expect and not string.find(body, expect, 1, true) then
    unexpected = unexpected + 1
  end
end

-- Main state: after the run.
function done(summary, latency, requests)
  local total, ok, bad_body = 0, 0, 0
  local by_status = {}
  for _, thread in ipairs(threads) do
    total = total + (thread:get("responses") or 0)
    bad_body = bad_body + (thread:get("unexpected") or 0)
    for status, count in pairs(thread:get("statuses") or {}) do
      by_status[status] = (by_status[status] or 0) + count
    end
  end
  local codes = {}
  for status, count in pairs(by_status) do
    if status == 200 then ok = count else table.insert(codes, status) end
  end
  table.sort(codes)
  local non200, parts = 0, {}
  for _, status in ipairs(codes) do
    non200 = non200 + by_status[status]
    table.insert(parts, status .. ":" .. by_status[status])
  end
  if bad_body > 0 then table.insert(parts, "200-without-expected-body:" .. bad_body) end
  local e = summary.errors
  local socket_errors = e.connect + e.read + e.write + e.timeout
  local seconds = summary.duration / 1e6
  local rps = summary.requests / seconds

  local result = string.format(
    "requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d ok=%d non200=%d bad_body=%d"
      .. " statuses=%s connect=%d read=%d write=%d timeout=%d counted=%d",
    summary.requests, seconds, rps, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, ok, non200, bad_body, (#parts > 0 and table.concat(parts, ",") or "-"),
    e.connect, e.read, e.write, e.timeout, total)
  io.write("bench: " .. result .. "\n")

  local path = os.getenv("BENCH_RESULT")
  if path and path ~= "" then
    local f = assert(io.open(path, "w"))
    f:write(result, "\n")
    f:close()
  end

  if non200 > 0 or bad_body > 0 or socket_errors > 0 or summary.requests == 0 then
    io.stderr:write(string.format(
      "\nBENCH FAILED: %d of %d responses were not a good 200 (%s); socket errors: connect %d, read %d, write %d, timeout %d\n",
      non200 + bad_body, summary.requests, (#parts > 0 and table.concat(parts, ", ") or "none"),
      e.connect, e.read, e.write, e.timeout))
  end
end

return lib
