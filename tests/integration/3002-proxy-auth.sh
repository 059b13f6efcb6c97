#!/bin/bash
# Proxy authorization (reference 6.2) through the real proxy: agent / exposed / unexposed port x
# public or not x no key, a bad key, the owner's key and another namespace's key; names looked up
# in the caller's namespace or unique across namespaces; --auth none.
source "$(dirname "$0")/lib.sh"
source "$HUTCH_ROOT/tests/integration/helpers/proxy/lib.sh"
proxy_env_init

PRIV=$(sandbox_id 1) # team-a, exposes UPORT, not public
PUB=$(sandbox_id 2)  # team-a, exposes UPORT, allow_unauthenticated_access
sbx "$PRIV" team-a priv running "[$UPORT]" 0
sbx "$PUB" team-a pub running "[$UPORT]" 1
BAD=hk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
proxy_start

# matrix: sandbox, port, credential -> status
try() {
	local id=$1 port=$2 cred=$3 want=$4 h=()
	case $cred in
	none) ;;
	bad) h=(-H "Authorization: Bearer $BAD") ;;
	owner) h=(-H "Authorization: Bearer $KEY_A") ;;
	other) h=(-H "Authorization: Bearer $KEY_B") ;;
	garbage) h=(-H "Authorization: Basic dXNlcjpwYXNz") ;;
	esac
	local host=$id.sandbox.test
	[ "$port" = 9501 ] || host=$port-$id.sandbox.test
	expect_eq "$4 for $cred on port $port of $( [ "$id" = "$PUB" ] && echo public || echo private) sandbox" \
		"$(code "${h[@]}" -H "Host: $host" "$P:$PPORT/echo")" "$want"
}
for id in "$PRIV" "$PUB"; do
	try "$id" 9501 none 401
	try "$id" 9501 bad 401
	try "$id" 9501 garbage 401
	try "$id" 9501 other 404
	try "$id" 9501 owner 200
done
try "$PRIV" "$UPORT" none 401
try "$PRIV" "$UPORT" bad 401
try "$PRIV" "$UPORT" other 404
try "$PRIV" "$UPORT" owner 200
try "$PUB" "$UPORT" none 200
try "$PUB" "$UPORT" bad 200
try "$PUB" "$UPORT" other 200
try "$PUB" "$UPORT" owner 200
try "$PRIV" "$UPORT2" none 401
try "$PRIV" "$UPORT2" bad 401
try "$PRIV" "$UPORT2" other 404
try "$PRIV" "$UPORT2" owner 403
try "$PUB" "$UPORT2" none 403
try "$PUB" "$UPORT2" bad 403
try "$PUB" "$UPORT2" other 404
try "$PUB" "$UPORT2" owner 403

expect_match "401 body" "$(body -H "Host: $PRIV.local" "$P:$PPORT/")" '"code":"UNAUTHENTICATED"'
expect_match "403 body" "$(body -H "Authorization: Bearer $KEY_A" -H "Host: $UPORT2-$PRIV.sandbox.test" "$P:$PPORT/")" '"code":"PORT_NOT_EXPOSED"'
expect_match "404 body for another namespace" "$(body -H "Authorization: Bearer $KEY_B" -H "Host: $PRIV.local" "$P:$PPORT/")" '"code":"SANDBOX_NOT_FOUND"'
expect_eq "an anonymous caller gets 401 on the agent even for an unknown sandbox" \
	"$(code -H "Host: $(sandbox_id 77).local" "$P:$PPORT/")" 401

# names: the caller's namespace first, then unique across namespaces (for public ports)
OTHER=$(sandbox_id 3)
sbx "$OTHER" team-b pub running "[$UPORT2]" 1
expect_eq "a name resolves in the caller's namespace (team-b's pub)" \
	"$(body -H "Authorization: Bearer $KEY_B" -H "Host: $UPORT2-pub.sandbox.test" "$P:$PPORT/echo" | grep -o "tcp:$UPORT2")" "tcp:$UPORT2"
expect_eq "... and for team-a to its own pub" \
	"$(code -H "Authorization: Bearer $KEY_A" -H "Host: $UPORT-pub.sandbox.test" "$P:$PPORT/echo")" 200
expect_eq "without a key a name shared by two namespaces is not found" \
	"$(code -H "Host: $UPORT-pub.sandbox.test" "$P:$PPORT/echo")" 404
expect_eq "without a key a unique name resolves (priv needs a key: 401)" \
	"$(code -H "Host: $UPORT-priv.sandbox.test" "$P:$PPORT/echo")" 401
"$ST" "$DB" set "$OTHER" name other-pub
expect_eq "... (now unique) pub resolves anonymously" \
	"$(code -H "Host: $UPORT-pub.sandbox.test" "$P:$PPORT/echo")" 200
expect_eq "a key of another namespace reaches a public port by its unique name" \
	"$(code -H "Authorization: Bearer $KEY_B" -H "Host: $UPORT-pub.sandbox.test" "$P:$PPORT/echo")" 200
expect_eq "... but not the agent" \
	"$(code -H "Authorization: Bearer $KEY_B" -H "Host: pub.local" "$P:$PPORT/echo")" 404
proxy_stop

# --auth none: every request is namespace default
DEF=$(sandbox_id 4)
sbx "$DEF" default dev running "[]" 0
proxy_start --auth none
expect_eq "auth none: the agent of a default sandbox without a key" "$(code -H "Host: $DEF.local" "$P:$PPORT/echo")" 200
expect_eq "auth none: a key is not needed nor checked" "$(code -H "Authorization: Bearer $BAD" -H "Host: dev.local" "$P:$PPORT/echo")" 200
expect_eq "auth none: other namespaces stay hidden" "$(code -H "Host: $PRIV.local" "$P:$PPORT/echo")" 404
expect_eq "auth none: their public ports stay public" "$(code -H "Host: $UPORT-$PUB.sandbox.test" "$P:$PPORT/echo")" 200
hdrs=$(body -H "Authorization: Bearer $BAD" -H "Host: $DEF.local" "$P:$PPORT/echo")
[[ "$hdrs" == *authorization* ]] && fail "auth none: Authorization passed on" || pass "auth none: Authorization still stripped"
proxy_stop
t_done
