#!/usr/bin/env bash
# Control-socket benchmark: starts a private nonod (temp socket, state and
# config; nothing outside the temp dir is touched), runs nono-rpc-bench
# against it, stops it; then runs the same round-trip phases against
# nono-rpc-baseline (a server that answers every line with a canned reply:
# the transport's ceiling on this machine). Prints the numbers, the ratio
# to the targets, and nonod's share of the baseline.
#
# usage: bench/rpc/run.sh [BUILDDIR] [nono-rpc-bench options...]
#   BUILDDIR defaults to ./build; it must contain daemon/nonod,
#   bench/rpc/nono-rpc-bench and bench/rpc/nono-rpc-baseline.
# Targets (2 cores): >= 50,000 daemon.status round trips/s over 50
# connections; idle RSS < 8 MiB; < 4 KiB more per idle connection.
set -euo pipefail

builddir=${1:-build}
shift || true
nonod=$builddir/daemon/nonod
bench=$builddir/bench/rpc/nono-rpc-bench
baseline=$builddir/bench/rpc/nono-rpc-baseline
for f in "$nonod" "$bench" "$baseline"; do
	[[ -x $f ]] || { echo "run.sh: $f not built (ninja -C $builddir)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/nono-rpc-bench.XXXXXX)
pid=
bpid=
cleanup() {
	for p in $pid $bpid; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -m 0700 "$tmp/home" "$tmp/run" "$tmp/state"
# 1,000 idle clients plus the bench's own connections, all from one uid.
cat >"$tmp/nonod.conf" <<CONF
max_clients = 4096
max_clients_per_user = 2048
log_level = warn
CONF

sock=$tmp/nonod.sock
(
	ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	exec env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID -u NONO_SOCKET \
		HOME="$tmp/home" XDG_RUNTIME_DIR="$tmp/run" \
		"$nonod" --user --socket "$sock" --state-dir "$tmp/state" \
		--config "$tmp/nonod.conf"
) 2>"$tmp/nonod.log" &
pid=$!

# wait_sock PATH PID LOG: until PATH is a socket (or PID died).
wait_sock() {
	for _ in $(seq 300); do
		[[ -S $1 ]] && return 0
		kill -0 "$2" 2>/dev/null || { cat "$3" >&2; exit 1; }
		sleep 0.1
	done
	echo "run.sh: $1 did not appear" >&2
	exit 1
}
wait_sock "$sock" "$pid" "$tmp/nonod.log"

echo "# $("$nonod" --version 2>/dev/null | head -1), $(nproc) cores, $(uname -r)"
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg): round-trip rates are only" \
     "meaningful on an idle machine; CPU per round trip much less affected"
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
"$bench" --socket "$sock" --pid "$pid" "$@" | tee "$tmp/out"

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[[ $rc -eq 0 ]] || { echo "run.sh: nonod exited $rc after SIGTERM" >&2; cat "$tmp/nonod.log" >&2; exit 1; }

echo "# baseline: canned replies of the same size, no parsing (same client, same machine)"
reply_bytes=$(awk '/^status_reply_bytes/ { print $2 }' "$tmp/out")
"$baseline" "$tmp/baseline.sock" "${reply_bytes:-256}" 2>"$tmp/baseline.log" &
bpid=$!
wait_sock "$tmp/baseline.sock" "$bpid" "$tmp/baseline.log"
"$bench" --socket "$tmp/baseline.sock" "$@" --pid "$bpid" --idle 0 |
	sed 's/^/baseline_/' | tee -a "$tmp/out"
kill -TERM "$bpid"
wait "$bpid" 2>/dev/null || true
bpid=

echo "# summary"
awk '
/^rss_idle_kib/              { printf "idle RSS: %.2f MiB (target < 8 MiB): %.2fx of budget\n", $2/1024, $2/1024/8 }
/^rss_per_idle_client_bytes/ { printf "per idle client: %.0f B (target < 4096 B): %.2fx of budget\n", $2, $2/4096 }
/^rt_per_sec_1_conn/         { printf "1 connection: %.0f round trips/s\n", $2 }
/^rt_per_sec_[0-9]+_conns/   { printf "%s: %.0f round trips/s (target >= 50000): %.2fx of target\n", $1, $2, $2/50000 }
/^server_cpu_us_per_rt/      { printf "nonod CPU per round trip (%s): %.2f us, i.e. at most %.0f/s per core\n", substr($1, 22), $2, 1e6/$2 }
/^baseline_server_cpu_us/    { printf "baseline CPU per round trip (%s): %.2f us\n", substr($1, 31), $2 }
/^rt_per_sec/                { nonod[$1] = $2 }
/^baseline_rt_per_sec/       { k = substr($1, 10); if (k in nonod && $2 > 0)
                                   printf "%s: nonod reaches %.0f%% of the baseline (%.0f/s)\n", k, 100*nonod[k]/$2, $2 }
' "$tmp/out"
