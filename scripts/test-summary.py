#!/usr/bin/env python3
"""Summarize a meson testlog.json: skipped tests with their reasons, and the
counts of individual test cases where a test program reports them (Check's
"Checks: N, Failures: N, Errors: N" and our e2e "N passed, N failed, N skipped")."""
import json
import re
import sys

path, label = sys.argv[1], sys.argv[2]
passed = failed = skipped = 0
for line in open(path):
    t = json.loads(line)
    out = t.get("stdout") or ""
    res = t["result"]
    m = re.findall(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", out, re.M)
    c = re.findall(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)", out)
    if res == "SKIP":
        reason = next((l[6:] for l in out.splitlines() if l.startswith("SKIP: ")), "no reason given")
        print(f"[{label}] skipped {t['name']}: {reason}")
        skipped += int(m[-1][0]) + int(m[-1][2]) if m else 1
    elif m:
        for name, why in re.findall(r"^(\S+) \(.*\) \.\.\. skipped '(.*)'$", out + (t.get("stderr") or ""), re.M):
            print(f"[{label}] skipped {t['name']}/{name}: {why}")
        passed += sum(int(x[0]) for x in m)
        failed += sum(int(x[1]) for x in m)
        skipped += sum(int(x[2]) for x in m)
        if res != "OK" and not any(int(x[1]) for x in m):
            failed += 1
    elif c:
        n = sum(int(x[0]) for x in c)
        bad = sum(int(x[1]) + int(x[2]) for x in c)
        passed += n - bad
        failed += bad or (res != "OK")
    elif res == "OK":
        passed += 1
    else:
        failed += 1
        print(f"[{label}] FAILED {t['name']}: {res}")
print(f"total {passed} {failed} {skipped}")
