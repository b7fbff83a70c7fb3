#!/bin/bash
# Snapshot store benchmark: nono's store side by side with git, restic and a
# tar read of the same workspace, in the same run, on the same disk.
#
#   bench/snap/bench.sh [BUILD_DIR]        (default /work/build-snap)
#   BENCH_DIR=/var/tmp/x  where the data goes (default /var/tmp/nono-snap-bench,
#                          a real disk: tmpfs would hide the cost of syncfs)
#   BENCH_MILLION=1       also time a 1,000,000-file tree (slow to generate)
#   BENCH_BASE=BUILD2     also run BUILD2's snapbench (e.g. the previous code)
#                          on a store of its own right after each nono step:
#                          an A/B in the same run (column "base")
#
# Needs restic (apt-get install restic), git, python3. Not a test: numbers
# depend on the machine; the targets are in the table's last column.
set -euo pipefail

BUILD=${1:-/work/build-snap}
SB="$BUILD/bench/snap/snapbench"
BASE_SB=${BENCH_BASE:+$BENCH_BASE/bench/snap/snapbench}
HERE=$(cd "$(dirname "$0")" && pwd)
W=${BENCH_DIR:-/var/tmp/nono-snap-bench}
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$W/restic-cache"
export GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b

[ -x "$SB" ] && [ -x "$BUILD/bench/snap/statwalk" ] ||
	{ echo "build first: ninja -C $BUILD bench/snap/snapbench bench/snap/statwalk" >&2; exit 1; }
command -v restic >/dev/null || { echo "restic missing: apt-get install restic" >&2; exit 1; }

cleanup() { rm -rf "$W"; }
trap cleanup EXIT
rm -rf "$W"
mkdir -p "$W"
chmod 700 "$W"

now() { date +%s%N; }
# t CMD...: run, print elapsed ms (wall, includes process start)
t() { local a b; a=$(now); "$@" >/dev/null 2>&1 || true; b=$(now); echo $(((b - a) / 1000000)); }
touch10() { # append one line to 10 source files
	for i in 3 777 1500 4242 9000 12345 17000 21000 25555 29000; do
		f=$(printf "%s/pkg%02d/mod%02d/f%05d.c" "$1" $((i % 60)) $(((i / 60) % 25)) "$i")
		echo "/* edit $2 */" >>"$f"
	done
}
nono_create() { "$SB" "$W/store" create "$1" "${2:-}" 2>"$W/nono.err"; }
base_create() { "$BASE_SB" "$W/store-base" create "$1" "${2:-}" 2>"$W/base.err"; }
op_ms() { sed -n 's/op_ms=//p' "$1"; }
git_commit() { git --git-dir="$W/git" --work-tree="$1" add -A && git --git-dir="$W/git" --work-tree="$1" commit -qm x; }
restic_backup() { restic -q -r "$W/restic" backup "$1"; }

echo "generating workspaces in $W ..."
python3 "$HERE/gen.py" src "$W/src"
python3 "$HERE/gen.py" many "$W/many"
sync
sleep 1.1 # ctimes must be older than a walk's start to be cached

git init -q --bare "$W/git" 2>/dev/null || git init -q "$W/git"
git --git-dir="$W/git" config core.bare false
git --git-dir="$W/git" config gc.auto 0 # no background repack during the timings
restic -q -r "$W/restic" init >/dev/null

declare -A R
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
# first snapshot
R[tar_read]=$(t sh -c "tar -cf - -C '$W' src | cat >/dev/null")
R[tar_read]=$(t sh -c "tar -cf - -C '$W' src | cat >/dev/null") # warm
R[nono_first]=$(t nono_create "$W/src" first)
[ -n "$BASE_SB" ] && R[base_first]=$(t base_create "$W/src" first)
R[git_first]=$(t git_commit "$W/src")
R[restic_first]=$(t restic_backup "$W/src")
# no change
R[nono_nochange]=$(t nono_create "$W/src" nochange)
[ -n "$BASE_SB" ] && R[base_nochange]=$(t base_create "$W/src" nochange)
R[git_nochange]=$(t git_commit "$W/src")
R[restic_nochange]=$(t restic_backup "$W/src")
# the floor under the 10-file targets: a getdents64 + fstatat walk, nothing else
R[statwalk]=$("$BUILD/bench/snap/statwalk" "$W/src" 2 7 | sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p')
# 10 files changed
touch10 "$W/src" 1
R[nono_inc10]=$(t nono_create "$W/src" inc10)
R[nono_inc10_op]=$(op_ms "$W/nono.err")
if [ -n "$BASE_SB" ]; then
	R[base_inc10]=$(t base_create "$W/src" inc10)
	R[base_inc10_op]=$(op_ms "$W/base.err")
	BID=$(base_create "$W/src" base-for-restore)
fi
ID=$(nono_create "$W/src" base-for-restore)
R[git_inc10]=$(t git_commit "$W/src")
R[restic_inc10]=$(t restic_backup "$W/src")
# restore after 10 files changed
touch10 "$W/src" 2
a=$(now); "$SB" "$W/store" restore "$ID" >/dev/null 2>"$W/nono.err"; b=$(now)
R[nono_restore]=$(((b - a) / 1000000))
R[nono_restore_op]=$(op_ms "$W/nono.err")
if [ -n "$BASE_SB" ]; then
	touch10 "$W/src" 2b
	a=$(now); "$BASE_SB" "$W/store-base" restore "$BID" >/dev/null 2>"$W/base.err"; b=$(now)
	R[base_restore]=$(((b - a) / 1000000))
	R[base_restore_op]=$(op_ms "$W/base.err")
fi
touch10 "$W/src" 3
R[git_restore]=$(t git --git-dir="$W/git" --work-tree="$W/src" reset -q --hard)
R[restic_restore]=$(t restic -q -r "$W/restic" restore latest --target "$W/restic-out")
# sizes
du_k() { du -sk "$@" | awk '{print $1}'; }
R[src_kb]=$(du_k "$W/src")
R[nono_kb]=$(du_k "$W/store")
R[nono_app_kb]=$(du_k --apparent-size "$W/store")
[ -n "$BASE_SB" ] && R[base_kb]=$(du_k "$W/store-base")
R[git_kb]=$(du_k "$W/git")
R[restic_kb]=$(du_k "$W/restic")
R[restic_app_kb]=$(du_k --apparent-size "$W/restic")
R[nono_verify]=$("$SB" "$W/store" verify 2>/dev/null)
# 100k tree
R[nono_many_first]=$(t nono_create "$W/many" many1)
R[nono_many_nochange]=$(t nono_create "$W/many" many2)
R[nono_many_nochange_op]=$(op_ms "$W/nono.err")
if [ -n "$BASE_SB" ]; then
	R[base_many_first]=$(t base_create "$W/many" many1)
	R[base_many_nochange]=$(t base_create "$W/many" many2)
	R[base_many_nochange_op]=$(op_ms "$W/base.err")
fi
R[git_many_first]=$(t git --git-dir="$W/git-many" init -q)
git --git-dir="$W/git-many" config core.bare false
git --git-dir="$W/git-many" config gc.auto 0
R[git_many_first]=$(t git --git-dir="$W/git-many" --work-tree="$W/many" add -A)
git --git-dir="$W/git-many" --work-tree="$W/many" commit -qm x
R[git_many_nochange]=$(t sh -c "git --git-dir='$W/git-many' --work-tree='$W/many' add -A && git --git-dir='$W/git-many' --work-tree='$W/many' commit -qm y")
R[restic_many_first]=$(t restic_backup "$W/many")
R[restic_many_nochange]=$(t restic_backup "$W/many")

if [ "${BENCH_MILLION:-0}" = 1 ]; then
	echo "generating 1,000,000 files ..."
	python3 - "$W/million" <<'PY'
import os, sys
for i in range(1000):
    d = os.path.join(sys.argv[1], "d%03d" % i)
    os.makedirs(d)
    for j in range(1000):
        with open(os.path.join(d, "f%03d" % j), "wb") as f:
            f.write(b"%d %d\n" % (i, j))
PY
	sleep 1.1
	R[nono_million_first]=$(t nono_create "$W/million" m1)
	R[nono_million_nochange]=$(t nono_create "$W/million" m2)
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "== snapshot store benchmark ($(nproc) cores, $(uname -r), load average at start: $LOAD0, now: $(cut -d' ' -f1-3 /proc/loadavg)) =="
echo "workspace: $(find "$W/src" -type f | wc -l) files, ${R[src_kb]} KiB on disk"
printf "%-36s %9s %9s %9s %9s  %s\n" "measure (ms)" nono git restic tar "ratios / target"
printf "%-36s %9s %9s %9s %9s  nono/restic=%s (target <=0.5) nono/tar=%s (<=1.5)\n" "first snapshot, 30k files" \
	"${R[nono_first]}" "${R[git_first]}" "${R[restic_first]}" "${R[tar_read]}" \
	"$(ratio "${R[nono_first]}" "${R[restic_first]}")" "$(ratio "${R[nono_first]}" "${R[tar_read]}")"
printf "%-36s %9s %9s %9s %9s\n" "no-change snapshot, 30k files" "${R[nono_nochange]}" "${R[git_nochange]}" "${R[restic_nochange]}" -
printf "%-36s %9s %9s %9s %9s  in-library op %s ms (target <=50)\n" "snapshot after 10 files changed" \
	"${R[nono_inc10]}" "${R[git_inc10]}" "${R[restic_inc10]}" - "${R[nono_inc10_op]}"
printf "%-36s %9s %9s %9s %9s  in-library op %s ms (target <=50); restic: full restore to an empty dir\n" \
	"restore after 10 files changed" "${R[nono_restore]}" "${R[git_restore]}" "${R[restic_restore]}" - "${R[nono_restore_op]}"
printf "%-36s %9s %9s %9s %9s  getdents64+fstatat only, 2 threads (bench/snap/statwalk.c)\n" \
	"floor: stat walk of the 30k tree" "${R[statwalk]}" - - -
printf "%-36s %9s %9s %9s %9s\n" "first snapshot, 100k small files" "${R[nono_many_first]}" "${R[git_many_first]}" "${R[restic_many_first]}" -
printf "%-36s %9s %9s %9s %9s  in-library op %s ms (target <=300)\n" "no-change snapshot, 100k files" \
	"${R[nono_many_nochange]}" "${R[git_many_nochange]}" "${R[restic_many_nochange]}" - "${R[nono_many_nochange_op]}"
printf "%-36s %9s %9s %9s %9s  nono/restic=%s (target <=1.05)\n" "store KiB (du, 30k tree, 4 snapshots)" \
	"${R[nono_kb]}" "${R[git_kb]}" "${R[restic_kb]}" - "$(ratio "${R[nono_kb]}" "${R[restic_kb]}")"
printf "%-36s %9s %9s %9s %9s  nono/restic=%s\n" "store KiB (apparent size)" \
	"${R[nono_app_kb]}" - "${R[restic_app_kb]}" - "$(ratio "${R[nono_app_kb]}" "${R[restic_app_kb]}")"
if [ -n "${R[nono_million_first]:-}" ]; then
	printf "%-36s %9s\n%-36s %9s\n" "first snapshot, 1M files" "${R[nono_million_first]}" \
		"no-change snapshot, 1M files" "${R[nono_million_nochange]}"
fi
if [ -n "$BASE_SB" ]; then
	echo "base ($BENCH_BASE), same run, right after each nono step:"
	printf "  first %s, no change %s, after 10 changed %s (op %s), restore %s (op %s),\n" \
		"${R[base_first]}" "${R[base_nochange]}" "${R[base_inc10]}" "${R[base_inc10_op]}" \
		"${R[base_restore]}" "${R[base_restore_op]}"
	printf "  100k first %s, 100k no change %s (op %s), store %s KiB\n" \
		"${R[base_many_first]}" "${R[base_many_nochange]}" "${R[base_many_nochange_op]}" "${R[base_kb]}"
fi
echo "nono verify: ${R[nono_verify]}"
echo
openssl speed -seconds 1 -evp sha256 2>/dev/null | tail -2
