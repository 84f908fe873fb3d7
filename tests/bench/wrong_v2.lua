-- wrk script: wrong passwords on link v2 as the viewer sees them
-- (tests/bench/bench_link_v2.py).  Each attempt is a pair on one connection:
-- POST /v2/<id>/evaluate with a random blinded element (the viewer counts the
-- attempt and evaluates the OPRF), then POST /v2/<id>/unlock with that
-- attempt and a proof that does not verify (403 wrong-password: the attempt
-- becomes a failure).  Run with as many connections as threads (-tN -cN), so
-- that each response belongs to the request before it.  Each pair comes from
-- its own X-Forwarded-For address (the viewer trusts loopback proxies): the
-- per-client backoff stays out of the figure, as for an attacker with many
-- addresses.
--   SP_BENCH_V2_LINKS    file: one link id (22 base64url characters) a line
--   SP_BENCH_V2_BLINDED  file: one blinded element (base64url) a line
--   SP_BENCH_V2_PROOF    a 64-byte proof (base64url) that verifies for no link

local function lines(path)
  local t = {}
  for l in io.lines(path) do if #l > 0 then t[#t + 1] = l end end
  return t
end

local links = lines(os.getenv("SP_BENCH_V2_LINKS"))
local blinded = lines(os.getenv("SP_BENCH_V2_BLINDED"))
local proof = os.getenv("SP_BENCH_V2_PROOF")
local threads = {}
local counter = 1

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  n = 0            -- attempts started by this thread
  pending = nil    -- attempt id waiting for its unlock
  link = nil
  xff = nil
  kind = nil
  eval_ok, eval_other, wrong, unlock_other = 0, 0, 0, 0
end

function request()
  if pending then
    local body = '{"attempt":"' .. pending .. '","proof":"' .. proof .. '"}'
    pending = nil
    kind = "unlock"
    return wrk.format("POST", "/v2/" .. link .. "/unlock",
                      {["Content-Type"] = "application/json", ["X-Forwarded-For"] = xff}, body)
  end
  n = n + 1
  local i = (tid * 7919 + n) 
  link = links[(i % #links) + 1]
  local b = blinded[((tid * 104729 + n) % #blinded) + 1]
  xff = string.format("10.%d.%d.%d", tid, math.floor(n / 250) % 250, n % 250 + 1)
  kind = "evaluate"
  return wrk.format("POST", "/v2/" .. link .. "/evaluate",
                    {["Content-Type"] = "application/json", ["X-Forwarded-For"] = xff},
                    '{"blinded":"' .. b .. '"}')
end

function response(status, headers, body)
  if kind == "evaluate" then
    if status == 200 then
      eval_ok = eval_ok + 1
      pending = body:match('"attempt"%s*:%s*"([A-Za-z0-9_-]+)"')
    else
      eval_other = eval_other + 1
    end
  else
    if status == 403 and body:find("wrong%-password") then
      wrong = wrong + 1
    else
      unlock_other = unlock_other + 1
    end
  end
end

function done(summary, latency, requests)
  local e, eo, w, uo = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    e = e + t:get("eval_ok")
    eo = eo + t:get("eval_other")
    w = w + t:get("wrong")
    uo = uo + t:get("unlock_other")
  end
  io.write(string.format("SPV2 evaluate_ok=%d evaluate_other=%d wrong=%d unlock_other=%d duration_us=%d\n",
                         e, eo, w, uo, summary.duration))
end
