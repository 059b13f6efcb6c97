#!/bin/bash
# hutch CLI: port expose|ls|rm (read-modify-write of exposed_ports; expose makes the ports
# public like `tl sbx port expose`, rm makes them private when none is left), then a request to
# an exposed port through the proxy with Host: {port}-{id}.local. User ports need sandbox
# networking: a 502/503 from the proxy because the sandbox has no address SKIPs that check.
. "$(dirname "$0")/lib.sh"
need_root; need_cmd jq; need_cmd curl
hutchd_start
H=$HUTCH_BIN/hutch
id=$($H create --image busybox portbox)
ports() { $H describe portbox --json | jq -c '[.exposed_ports, .allow_unauthenticated_access]'; }

out=$($H port expose portbox 8080 8000)
expect_eq "expose: sorted and public" "$(ports)" '[[8000,8080],true]'
expect_match "expose prints each port's address" "$out" "8000 +public +http://127\.0\.0\.1:[0-9]+ \(Host: 8000-$id\.local\)"
$H port expose portbox 8000 3000 >/dev/null
expect_eq "expose again: the union" "$(ports)" '[[3000,8000,8080],true]'
j=$($H port ls portbox --json)
expect_eq "ls --json" "$(jq -c '[.exposed_ports,.allow_unauthenticated_access]' <<<"$j")" '[[3000,8000,8080],true]'
expect_eq "ls --json urls" "$(jq -r '.urls["3000"]' <<<"$j")" "$PROXY (Host: 3000-$id.local)"
expect_match "ls table" "$($H port ls portbox)" '^PORT +ACCESS +URL'
$H port rm portbox 3000 8080 >/dev/null
expect_eq "rm keeps the rest and the access mode" "$(ports)" '[[8000],true]'
$H port rm portbox 8000 >/dev/null
expect_eq "rm of the last port makes access private" "$(ports)" '[[],false]'
$H port expose portbox 9501 2>/dev/null; expect_eq "9501 is reserved" $? 2
$H port expose portbox 70000 2>/dev/null; expect_eq "out of range" $? 2
$H port expose portbox 5000 --private >/dev/null
expect_eq "--private exposes without making it public" "$(ports)" '[[5000],false]'
$H port rm portbox 5000 >/dev/null
$H port ls nope-nope >/dev/null 2>&1; expect_eq "unknown sandbox" $? 1

# a real request to a user port through the proxy
$H exec portbox -- sh -c 'mkdir -p /www && echo from-port-8000 > /www/index.html'
$H exec -d portbox -- httpd -f -p 8000 -h /www >/dev/null
wait_for $H exec portbox -- sh -c 'netstat -ltn | grep -q :8000'
req() { curl -s -o /tmp/hutch-port.$$ -w '%{http_code}' -H "Host: 8000-$id.local" "$@" "$PROXY/index.html"; }
expect_eq "an unexposed port is 403" "$(req -H "$AUTH")" 403
$H port expose portbox 8000 --private >/dev/null
expect_eq "a private port without a key is 401" "$(req)" 401
code=$(req -H "$AUTH")
if [ "$code" = 502 ] || [ "$code" = 503 ]; then
	echo "SKIP: request to the exposed port through the proxy: the proxy answers $code ($(cat /tmp/hutch-port.$$)); the sandbox has no network address yet"
else
	expect_eq "a private port with the key reaches the server" "$code" 200
	expect_eq "… and its page" "$(cat /tmp/hutch-port.$$)" from-port-8000
	$H port expose portbox 8000 >/dev/null
	expect_eq "a public port without a key" "$(req)" 200
	expect_eq "… and its page" "$(cat /tmp/hutch-port.$$)" from-port-8000
	$H port rm portbox 8000 >/dev/null
	expect_eq "after rm the port is closed again" "$(req -H "$AUTH")" 403
fi
rm -f /tmp/hutch-port.$$
t_done
