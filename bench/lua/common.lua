-- Shared by get.lua and post.lua: count each answer's status, and print one JSON line at the end
-- (parsed by bench/stats.py's parse_wrk). Latencies are wrk's own, in microseconds.
threads = {}
statuses = {}
unexpected = 0
wrapped = 0
expected = 200

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= expected then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local counts, bad, wraps = {}, 0, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses") or {}) do
      counts[status] = (counts[status] or 0) + n
    end
    bad = bad + (thread:get("unexpected") or 0)
    wraps = wraps + (thread:get("wrapped") or 0)
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d":%d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"statuses":{%s},"unexpected":%d,"wrapped":%d,'
      .. '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,'
      .. '"p50":%d,"p90":%d,"p95":%d,"p99":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ","), bad, wraps,
    latency.min, latency.max, latency.mean, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99)
  ))
end
