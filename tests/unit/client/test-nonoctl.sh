#!/bin/sh
# nonoctl against a fake one-connection daemon: output, --json, exit codes
# (0, 1, 2, 69), NONO_SOCKET, error messages, and sanitized daemon strings.
# usage: test-nonoctl.sh NONOCTL FAKE_NONOD
set -u
nonoctl=$1 fake=$2
dir=$(mktemp -d /tmp/nonoctl-test.XXXXXX)
fakepid=
cleanup() {
	[ -n "$fakepid" ] && kill "$fakepid" 2>/dev/null && wait "$fakepid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect RC CMD...: run CMD, stdout to $dir/out, stderr to $dir/err.
expect() {
	want=$1; shift
	"$@" >"$dir/out" 2>"$dir/err"; rc=$?
	[ "$rc" -eq "$want" ] || fail "'$*' exited $rc, want $want: $(cat "$dir/err")"
}
contains() { grep -qF -- "$2" "$dir/$1" || fail "$1 lacks '$2': $(cat "$dir/$1")"; }

start_fake() {
	rm -f "$dir/s.sock"
	"$fake" "$dir/s.sock" "$1" & fakepid=$!
	i=0
	while [ ! -S "$dir/s.sock" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
}
stop_fake() { wait "$fakepid" 2>/dev/null; fakepid=; }

# Usage and help: no daemon needed.
expect 2 "$nonoctl"
contains err "Usage: nonoctl"
expect 0 "$nonoctl" --help
contains out "69   the daemon is not reachable"
contains out "status"
expect 0 "$nonoctl" --version
contains out "nonoctl "
expect 2 "$nonoctl" --bogus
contains err "unknown option '--bogus'"
expect 2 "$nonoctl" frobnicate
contains err "unknown command 'frobnicate'"
expect 2 "$nonoctl" --socket
expect 0 "$nonoctl" --socket /nonexistent status --help
expect 2 "$nonoctl" --socket /nonexistent status extra
contains err "unexpected argument 'extra'"

# Unreachable daemon: 69 and a message naming the socket.
expect 69 "$nonoctl" --socket "$dir/none.sock" status
contains err "nonoctl: cannot connect to $dir/none.sock: No such file or directory (is nonod running?)"
NONO_SOCKET="$dir/env.sock" expect 69 "$nonoctl" status
contains err "$dir/env.sock"

# Human output.
start_fake ok
expect 0 "$nonoctl" --socket "$dir/s.sock" status
stop_fake
contains out "daemon version:       0.0.1-fake"
contains out "mode:                 user"
contains out "pid:                  4242"
contains out "uptime:               1h 2m 3s"
contains out "state dir:            /fake/state"
contains out "clients:              2"
contains out "  landlock_abi:       7"
contains out "  seccomp:            yes"
contains out "  namespaces:         net=no ids=1,2"

# --json, via NONO_SOCKET.
start_fake ok
NONO_SOCKET="$dir/s.sock" expect 0 "$nonoctl" --json status
stop_fake
contains out '"uptime_ms": 3723000'
contains out '"landlock_abi": 7'

# The daemon returns an error: exit 1 with its kind.
start_fake error
expect 1 "$nonoctl" --socket "$dir/s.sock" status
stop_fake
contains err "nonoctl: status: admins only (permission_denied)"

# Garbage from the daemon: exit 1, a protocol error.
start_fake garbage
expect 1 "$nonoctl" --socket "$dir/s.sock" status
stop_fake
contains err "protocol error from daemon"

# Escape sequences from the daemon never reach the terminal.
start_fake hostile
expect 0 "$nonoctl" --socket "$dir/s.sock" status
stop_fake
if LC_ALL=C grep -q "$(printf '\033')" "$dir/out" "$dir/err"; then fail "ESC reached the output"; fi
if LC_ALL=C grep -q "$(printf '\r')" "$dir/out"; then fail "CR reached the output"; fi
contains out "?]0;pwned?"

# A daemon that never answers: --timeout turns the wait into exit 69.
expect 2 "$nonoctl" --timeout 0 status
expect 2 "$nonoctl" --timeout abc status
start_fake hang
expect 69 "$nonoctl" --socket "$dir/s.sock" --timeout 1 status
stop_fake
contains err "nonoctl: no reply from nonod to daemon.status within 1000 ms"

[ "$fails" -eq 0 ] && echo "ok" && exit 0
exit 1
