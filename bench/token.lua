-- wrk script: client-credentials token issuance (POST /token, client_secret_basic).
-- Set by client-credentials.sh: BENCH_AUTHORIZATION ("Basic ..."), BENCH_RESOURCE (the audience).
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
