#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, builds a
# normal and an ASan+UBSan configuration, runs every test in both, runs the
# multi-threaded proxy's tests under ThreadSanitizer, and prints one
# summary line with the pass/fail/skip counts.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

./scripts/deps.sh || exit 1

status=0
summary=()
for cfg in release asan; do
  dir=$root/build-test-$cfg
  opts=()
  [ "$cfg" = asan ] && opts=(-Db_sanitize=address,undefined -Db_lundef=false)
  if [ ! -d "$dir" ]; then
    meson setup "$dir" "${opts[@]}" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; exit 1; }
  fi
  meson compile -C "$dir" || exit 1
  mult=1
  [ "$cfg" = asan ] && mult=3
  echo "== tests ($cfg)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C "$dir" --print-errorlogs --timeout-multiplier "$mult" --num-processes 2 \
    || status=1
  summary+=("$(python3 "$root/scripts/test-summary.py" "$dir/meson-logs/testlog.json" "$cfg")")
done

# ThreadSanitizer over the code that runs on several threads at once: the
# proxy's loop threads (proxy-testd) and nonod's render path from those
# loops into the vault (the network e2e). A reported race fails the test.
dir=$root/build-test-tsan
if [ ! -d "$dir" ]; then
  meson setup "$dir" -Db_sanitize=thread -Db_lundef=false >"$dir.setup.log" 2>&1 ||
    { cat "$dir.setup.log"; exit 1; }
fi
meson compile -C "$dir" tests/unit/proxy/proxy-testd tests/unit/proxy/tls-keyupdate \
  tests/unit/proxy/test-proxy-http1 tests/unit/proxy/test-proxy-rules \
  daemon/nonod client/nonoctl/nonoctl || exit 1
echo "== tests (tsan: proxy threads)"
TSAN_OPTIONS=halt_on_error=1:exitcode=66:report_signal_unsafe=0:suppressions=$root/tests/tsan.supp \
  meson test -C "$dir" --no-rebuild --print-errorlogs --timeout-multiplier 3 \
  proxy-http1 proxy-rules proxy-e2e e2e-network || status=1
summary+=("$(python3 "$root/scripts/test-summary.py" "$dir/meson-logs/testlog.json" tsan)")

echo
echo "== summary"
printf '%s\n' "${summary[@]}" | sed '/^total /d'
printf '%s\n' "${summary[@]}" | python3 -c '
import sys
p = f = s = 0
for line in sys.stdin:
    if line.startswith("total "):
        a, b, c = map(int, line.split()[1:4])
        p += a; f += b; s += c
print(f"{p} passed, {f} failed, {s} skipped")'
exit $status
