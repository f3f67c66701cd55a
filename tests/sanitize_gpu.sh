#!/usr/bin/env bash
# Runs the GPU tests under compute-sanitizer (needs a GPU and a runtime that lets the sanitizer in):
# memcheck on every test binary given, racecheck and synccheck on those named in RACE (the kernels
# with hand-written shared-memory synchronisation). Prints one line per run and a closing count;
# exits non-zero if any run reports an error. Usage: tests/sanitize_gpu.sh build/tests/gpu/test_*
set -u
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
[ -n "$CS" ] || { echo "sanitize_gpu.sh: compute-sanitizer not found"; exit 1; }
RACE=${RACE:-"test_decode test_select"}
log=$(mktemp -d)
bad=0; runs=0
check() {  # tool binary
    local out="$log/$1_$(basename "$2").log"
    timeout 600 "$CS" --tool "$1" --print-limit 8 "$2" > "$out" 2>&1
    local rc=$? summary
    summary=$(grep -E "(ERROR|RACECHECK) SUMMARY" "$out" | tail -n 1 | sed 's/^=* *//')
    runs=$((runs + 1))
    if [ $rc -ne 0 ] || ! echo "$summary" | grep -qE "(^ERROR SUMMARY: 0 errors|0 hazards displayed \(0 errors)"; then
        bad=$((bad + 1)); echo "FAIL - $1 $(basename "$2") (exit $rc): ${summary:-no summary}; log $out"
    else
        echo "ok - $1 $(basename "$2"): $summary"
    fi
}
for t in "$@"; do
    check memcheck "$t"
    case " $RACE " in *" $(basename "$t") "*) check racecheck "$t"; check synccheck "$t" ;; esac
done
echo "$((runs - bad)) clean, $bad with errors"
[ $bad -eq 0 ]
