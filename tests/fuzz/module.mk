fuzzers += fuzz_ws
