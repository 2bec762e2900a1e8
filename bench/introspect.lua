-- wrk script: token introspection (POST /introspect, RFC 7662) of one valid token, for reference.
-- Set by client-credentials.sh and compare.sh: BENCH_AUTHORIZATION ("Basic ..."), BENCH_TOKEN
-- (an access token).
-- Each request: client authentication, signature verification, one revocation lookup; no write.
-- BENCH_EXPECT='"active":true' makes an inactive answer count as a failure.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lib = dofile(here .. "lib.lua")

wrk.method = "POST"
wrk.headers["Authorization"] = lib.env("BENCH_AUTHORIZATION")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "token=" .. lib.env("BENCH_TOKEN")
