#!/bin/sh
# Build the HTTP/1 parser fuzz target with clang (libFuzzer + ASan + UBSan)
# and run it for a bounded time (default 60 s) over the seed corpus.
# Usage: run.sh [SECONDS] [BUILD_DIR]
set -eu
secs=${1:-60}
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../../../daemon/proxy
out=${2:-${TMPDIR:-/tmp}/nono-fuzz-http1}
command -v clang >/dev/null || { echo "SKIP: clang not installed"; exit 77; }
mkdir -p "$out/corpus"
cp "$here"/corpus/* "$out/corpus/" 2>/dev/null || true
clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I"$src" \
	"$here/fuzz-http1.c" "$src/http1.c" -o "$out/fuzz-http1"
"$out/fuzz-http1" -max_total_time="$secs" -max_len=70000 "$out/corpus"
