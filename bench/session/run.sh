#!/usr/bin/env bash
# Session start-to-exit latency and rate vs plain fork+exec, bwrap, firejail.
#   bench/session/run.sh [BUILD_DIR] [ITERATIONS] [SECONDS]
# As root nonod runs in system mode. NONO_BENCH_USER=NAME (a member of the
# nono group) then also runs the nono rows as that user, against the same
# daemon: its workers drop from root to that uid.
set -euo pipefail
build=${1:-build}
iters=${2:-300}
secs=${3:-3}
dir=$(mktemp -d /tmp/nono-bench-XXXXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
"$build/daemon/nonod" --socket "$dir/nonod.sock" --state-dir "$dir/state" 2>"$dir/nonod.log" &
pid=$!
for _ in $(seq 100); do [ -S "$dir/nonod.sock" ] && break; sleep 0.05; done
mkdir -p "$dir/ws"   # a project-like workspace of its own, as sessions normally have
NONO_BENCH_WORKSPACE="$dir/ws" "$build/bench/session/session-bench" "$dir/nonod.sock" "$iters" "$secs"
if [ -n "${NONO_BENCH_USER:-}" ]; then
	chmod 755 "$dir"
	mkdir -p "$dir/ws-user"
	chown "$NONO_BENCH_USER" "$dir/ws-user"
	echo
	echo "as $NONO_BENCH_USER (uid $(id -u "$NONO_BENCH_USER")), same daemon:"
	NONO_BENCH_KINDS=${NONO_BENCH_KINDS:-0,1,2} NONO_BENCH_WORKSPACE="$dir/ws-user" \
		setpriv --reuid="$NONO_BENCH_USER" --regid="$(id -g "$NONO_BENCH_USER")" --init-groups \
		"$build/bench/session/session-bench" "$dir/nonod.sock" "$iters" "$secs"
fi
# The floor under the targets, same run: what the kernel enforcement alone
# costs a start without any daemon (bench/sandbox/sandbox-cost.c).
if [ -x "$build/bench/sandbox/nono-sandbox-cost" ]; then
	echo
	echo "floor: the sandbox library alone, no daemon (median us):"
	"$build/bench/sandbox/nono-sandbox-cost" "$iters" | grep -E '^(fork\+exec|compile\+fork|\.\.\.)'
fi
# How the workers were started (a copy of nonod, or sharing its memory).
echo
echo "workers started: $(grep -c 'started pid' "$dir/nonod.log"), of which copies: $(grep 'started pid' "$dir/nonod.log" | grep -c '(copy)' || true)"
