#!/usr/bin/env bash
# Session start-to-exit latency and rate vs plain fork+exec, bwrap, firejail.
#   bench/session/run.sh [BUILD_DIR] [ITERATIONS] [SECONDS]
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
