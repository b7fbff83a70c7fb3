#!/bin/sh
# Runs test-vault-sss against a real gnome-keyring-daemon on a private
# session bus (dbus-run-session), with items stored by secret-tool.
# Exit 77 (skip) only when the tools are missing or the keyring cannot start.
set -eu
bin="$1"

if [ "${NONO_SSS_INNER:-}" != 1 ]; then
	for t in dbus-run-session dbus-send gnome-keyring-daemon secret-tool; do
		if ! command -v "$t" >/dev/null 2>&1; then
			echo "SKIP: $t not installed (apt-get install dbus gnome-keyring libsecret-tools)"
			exit 77
		fi
	done
	NONO_SSS_INNER=1 exec dbus-run-session -- sh "$0" "$bin"
fi

tmp=$(mktemp -d /tmp/nono-sss-test.XXXXXX)
gk=""
cleanup() {
	if [ -n "$gk" ]; then kill "$gk" 2>/dev/null || true; wait "$gk" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
export HOME="$tmp" XDG_DATA_HOME="$tmp/data" XDG_CONFIG_HOME="$tmp/config"
export XDG_RUNTIME_DIR="$tmp/run" XDG_CACHE_HOME="$tmp/cache"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

# --unlock reads the login keyring's password from stdin and creates it.
printf 'test-password' | gnome-keyring-daemon --foreground --unlock --components=secrets \
	>"$tmp/gk.out" 2>"$tmp/gk.err" &
gk=$!

has_owner() {
	dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
		org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
		grep -q 'boolean true'
}
tries=0
until has_owner; do
	tries=$((tries + 1))
	if [ "$tries" -gt 200 ] || ! kill -0 "$gk" 2>/dev/null; then
		echo "SKIP: gnome-keyring-daemon did not come up on the private bus:"
		cat "$tmp/gk.err"
		exit 77
	fi
	sleep 0.05
done

store() { # name value [target]
	printf '%s' "$2" | secret-tool store --label="nono $1" service nono username "$1" \
		target "${3:-default}"
}
store gh 'ss-value-1'
store both 'from-secret-service'
store tgt 'other-target-value' other
store crlf "$(printf 'a\r\nInjected: 1')"
store 'bad name' 'unaddressable'
# Control: the item is really there for other clients.
[ "$(secret-tool lookup service nono username gh target default)" = ss-value-1 ]

NONO_SSS_TEST=unlocked "$bin"

# Lock the collection (no prompt needed to lock): items are then reported as locked.
dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
	org.freedesktop.Secret.Service.Lock \
	array:objpath:/org/freedesktop/secrets/collection/login >/dev/null
NONO_SSS_TEST=locked "$bin"
