-- wrk: POST one chat sample as JSON (the /evaluate body); API key from RK_BENCH_KEY if set.
wrk.method = "POST"
wrk.body = '{"messages":[{"role":"user","content":"2+2?"},{"role":"assistant","content":"4"}],"ground_truth":"4"}'
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("RK_BENCH_KEY")
if key then
  wrk.headers["Authorization"] = "Bearer " .. key
end
