-- One GET phase: the URL and headers (Cookie) come from wrk's command line; no request()
-- function, so wrk sends its one pre-built request. Argument after `--`: the expected status.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function init(args)
  expected = tonumber(args[1] or "200")
end
