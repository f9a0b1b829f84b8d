-- The rating-submission phase: every request POSTs the next line of a file of
-- "path<TAB>form body" lines, each a slot of its own (session, scale, rater) with its own
-- idempotency key. Arguments after `--`: expected status, the file, the number of wrk threads.
-- A thread that runs out of lines starts again from its first (counted as "wrapped": those are
-- replays, answered 200 instead of 201, so the file should be long enough not to wrap).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local posts = {}
local index = 0

function init(args)
  expected = tonumber(args[1] or "201")
  local nthreads = tonumber(args[3] or "1")
  local n = 0
  for line in io.lines(args[2]) do
    if n % nthreads == id then
      local tab = line:find("\t", 1, true)
      table.insert(posts, { line:sub(1, tab - 1), line:sub(tab + 1) })
    end
    n = n + 1
  end
end

function request()
  index = index + 1
  if index > #posts then
    index = 1
    wrapped = wrapped + 1
  end
  return wrk.format("POST", posts[index][1], nil, posts[index][2])
end
