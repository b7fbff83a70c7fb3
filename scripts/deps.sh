#!/usr/bin/env bash
# Installs everything nono needs to build and to run its whole test suite
# (Debian 12, as root). Idempotent: skips apt when all packages are present.
set -euo pipefail

BUILD_DEPS=(
  build-essential meson ninja-build pkg-config
  libevent-dev libssl-dev libjson-c-dev libsqlite3-dev libsystemd-dev
  libyaml-dev check libzstd-dev
)
# Real peers the tests talk to: no mocks where the real thing runs here.
TEST_DEPS=(
  python3 openssl curl git socat procps util-linux iproute2 sqlite3
  systemd libcap2-bin make passwd
  dbus-daemon gnome-keyring libsecret-tools   # the Secret Service test, against a real keyring
)

missing=()
for p in "${BUILD_DEPS[@]}" "${TEST_DEPS[@]}" ${NONO_EXTRA_DEPS:-}; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "nono: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "nono: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
