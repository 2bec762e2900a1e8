-- wrk script: GET /jwks.json, for reference: no database, no signing; the cost of HTTP alone.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "lib.lua")

wrk.method = "GET"
