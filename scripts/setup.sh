#!/usr/bin/env bash
# One command for a new user on Debian 12, as root: install the
# dependencies, build and install nono, and start nonod with its embedded
# defaults (system mode, socket /run/nono/nonod.sock).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh
[ -d build ] || meson setup build --prefix=/usr/local -Dtests=false
meson compile -C build
meson install -C build --quiet

getent group nono >/dev/null || groupadd --system nono

sock=/run/nono/nonod.sock
if nonoctl --socket "$sock" status >/dev/null 2>&1; then
  echo "nonod is already running on $sock"
else
  mkdir -p /var/log/nono
  # PID 1 may not be systemd (containers, CI): start it directly. Under
  # systemd use the installed units instead: systemctl enable --now nonod.socket
  nohup /usr/local/sbin/nonod >>/var/log/nono/nonod.log 2>&1 </dev/null &
  # Wait until it answers: a socket file left by an earlier run is not enough.
  for _ in $(seq 100); do
    nonoctl --socket "$sock" status >/dev/null 2>&1 && break
    sleep 0.1
  done
  nonoctl --socket "$sock" status >/dev/null || {
    echo "nonod did not start; see /var/log/nono/nonod.log" >&2
    exit 1
  }
fi
echo
echo "nonod is running; socket: $sock  (log: /var/log/nono/nonod.log)"
echo "try:  nonoctl status"
