#!/bin/bash
# Builds the proxy test helpers (store_tool, proxyd) against the libraries of $HUTCH_BUILD, with
# the sanitizers when that is a sanitizer build. Prints the output directory.
set -e
root=${HUTCH_ROOT:?}
b=${HUTCH_BUILD:?}
out=$b/tests/helpers/proxy
mkdir -p "$out"
flags="-std=gnu11 -O1 -g -D_GNU_SOURCE -I$root/lib -I$root/src/hutchd -DHUTCH_VERSION=\"test\""
case $(basename "$b") in
*san*) flags="$flags -fsanitize=address,undefined -fno-omit-frame-pointer" ;;
esac
libs="$b/lib/libhutch_proxy.a $b/lib/libhutch_ws.a $b/lib/libhutch_auth.a $b/lib/libhutch_store.a $b/lib/libhutch_http.a $b/lib/libhutch_base.a"
ldlibs="-luv -lhttp_parser -lsqlite3 $(pkg-config --libs libpq) -lcrypto"
src=$root/tests/integration/helpers/proxy
newer() { [ ! -e "$1" ] || [ -n "$(find "${@:2}" -newer "$1" 2>/dev/null | head -n 1)" ]; }
if newer "$out/store_tool" "$src/store_tool.c" $libs; then
	cc $flags -o "$out/store_tool" "$src/store_tool.c" $libs $ldlibs
fi
if newer "$out/proxyd" "$src/proxyd.c" "$root/src/hutchd/config.c" "$root/src/hutchd/proxy_main.c" $libs; then
	cc $flags -o "$out/proxyd" "$src/proxyd.c" "$root/src/hutchd/config.c" \
		"$root/src/hutchd/proxy_main.c" $libs $ldlibs
fi
echo "$out"
