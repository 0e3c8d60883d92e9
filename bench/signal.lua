-- wrk script: POST a SIGUSR1 to the benchmark's target processes, round
-- robin over the pids in SIGD_BENCH_PIDS (they ignore it: every request is
-- a real kill(2) that changes nothing).
local pids = {}
for pid in string.gmatch(os.getenv("SIGD_BENCH_PIDS"), "%d+") do
    pids[#pids + 1] = pid
end
local next = 0

request = function()
    next = next % #pids + 1
    return wrk.format("POST", "/api/v1/processes/" .. pids[next] .. "/signal",
        {["Content-Type"] = "application/json"}, '{"signal": 10}')
end
