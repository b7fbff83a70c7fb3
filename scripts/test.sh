#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, builds a
# normal and an ASan+UBSan configuration, runs every test in both, and
# prints one summary line with the pass/fail/skip counts.
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
