#!/usr/bin/env bash
# Runs every test binary given on the command line and prints one closing "N passed, N failed" line.
# A binary that crashes or exits non-zero without reporting a failure counts as one failed test.
set -u
passed=0; failed=0
for t in "$@"; do
    echo "== $(basename "$t")"
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v '^# passed'
    line=$(printf '%s\n' "$out" | grep '^# passed' | tail -n 1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | awk '{print $3}'); f=$(echo "$line" | awk '{print $5}')
        passed=$((passed + p)); failed=$((failed + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then failed=$((failed + 1)); echo "FAIL - $(basename "$t") exited $rc"; fi
    else
        failed=$((failed + 1)); echo "FAIL - $(basename "$t") exited $rc without a summary"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
