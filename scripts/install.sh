#!/bin/bash
# Sets hutch up on a fresh Debian 12 machine (as root) and starts the server with its embedded
# defaults: installs packages, builds, installs the binaries, builds the images (busybox in
# seconds, the default Debian image with debootstrap in a few minutes, once), installs CRIU 4.1
# into a private prefix when the installer is present, and starts hutchd.
#   HUTCH_NO_DEFAULT_IMAGE=1   skip the Debian image (only "busybox" will be available)
#   HUTCH_NO_START=1           install only
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "install.sh must run as root" >&2; exit 1; }
PREFIX=${PREFIX:-/usr/local}
DATA_DIR=${HUTCH_DATA_DIR:-/var/lib/hutch}
LOG=${HUTCH_LOG:-/var/log/hutchd.log}

step() { printf '\n==> %s\n' "$*"; }
step "installing packages"
scripts/deps.sh build runtime
step "building"
make -j"$(nproc)" all
step "installing binaries into $PREFIX"
install -d "$PREFIX/bin" "$PREFIX/lib/hutch"
install -m 0755 build/bin/hutchd build/bin/hutch "$PREFIX/bin/"
install -m 0755 build/bin/hutch-agent "$PREFIX/lib/hutch/hutch-agent"
if [ -x scripts/install-criu.sh ]; then
	step "installing CRIU 4.1 into a private prefix (memory snapshots and durable suspend)"
	scripts/install-criu.sh || echo "CRIU could not be installed: memory snapshots will answer MEMORY_SNAPSHOT_UNAVAILABLE"
fi
step "building images"
export HUTCH_DATA_DIR=$DATA_DIR
hutch image ls 2>/dev/null | grep -q '^busybox ' || hutch image build busybox
if [ -z "${HUTCH_NO_DEFAULT_IMAGE:-}" ]; then
	hutch image ls 2>/dev/null | grep -q '^default ' || hutch image build default
fi
hutch image ls
[ -n "${HUTCH_NO_START:-}" ] && exit 0

step "starting hutchd"
if curl -sf http://127.0.0.1:8900/health >/dev/null 2>&1; then
	echo "hutchd is already running (http://127.0.0.1:8900/health answers)"
elif [ -d /run/systemd/system ]; then
	cat >/etc/systemd/system/hutchd.service <<UNIT
[Unit]
Description=hutch sandbox server
After=network-online.target
[Service]
ExecStart=$PREFIX/bin/hutchd --data-dir $DATA_DIR --agent-path $PREFIX/lib/hutch/hutch-agent
KillMode=process
Restart=on-failure
[Install]
WantedBy=multi-user.target
UNIT
	systemctl daemon-reload && systemctl enable --now hutchd
else
	nohup "$PREFIX/bin/hutchd" --data-dir "$DATA_DIR" --agent-path "$PREFIX/lib/hutch/hutch-agent" \
		>>"$LOG" 2>&1 </dev/null &
	echo "hutchd started (pid $!, log $LOG)"
fi
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:8900/health >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf http://127.0.0.1:8900/health >/dev/null || { echo "hutchd did not come up; see $LOG" >&2; exit 1; }
cat <<MSG

hutch is running: api http://127.0.0.1:8900, proxy http://127.0.0.1:9443
The admin key is in $DATA_DIR/admin.key (the hutch CLI reads it from there when run as root).

Try:
  hutch create --image busybox demo
  hutch exec demo -- uname -a
  hutch terminate demo
MSG
