fuzzers += fuzz_ws
fuzzers += fuzz_route
