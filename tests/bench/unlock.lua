-- wrk script: unlock a link (POST the right password), for tests/bench/bench.py.
-- The password comes from $SP_BENCH_PASSWORD (letters, digits and '-' only).
wrk.method = "POST"
wrk.body = "password=" .. os.getenv("SP_BENCH_PASSWORD")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
