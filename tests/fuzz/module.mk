fuzzers += fuzz_ws
fuzzers += fuzz_route
fuzzers += fuzz_api_body
fuzzers += fuzz_http_request
fuzzers += fuzz_netpol
fuzzers += fuzz_dns
