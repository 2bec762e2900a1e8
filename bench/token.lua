-- wrk script: client-credentials token issuance (POST /token, client_secret_basic).
-- Set by client-credentials.sh and compare.sh: BENCH_AUTHORIZATION ("Basic ..."), BENCH_RESOURCE
-- (the audience), and optionally BENCH_SCOPE (sent as `scope`; unset, the server's default applies).
-- Each request is one issuance: client authentication, an ES256 signature and a committed audit row.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

wrk.method = "POST"
wrk.headers["Authorization"] = lib.env("BENCH_AUTHORIZATION")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "grant_type=client_credentials&resource=" .. urlencode(lib.env("BENCH_RESOURCE"))
local scope = os.getenv("BENCH_SCOPE")
if scope and scope ~= "" then
  wrk.body = wrk.body .. "&scope=" .. urlencode(scope)
end

-- Optional pacing (bench/soak.sh): BENCH_DELAY_MS milliseconds between a connection's requests.
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause and pause > 0 then
  function delay()
    return pause
  end
end
