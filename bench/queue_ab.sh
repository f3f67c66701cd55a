#!/usr/bin/env bash
# bench/queue_ab.sh: the work queue's GPU test, then its A/B against one program per split, in one
# device call (docs/KERNELS.md, "The work queue"). Run from the repository root with a built tree:
#   bench/queue_ab.sh [BUILD_DIR] [OUT_DIR]
# Writes every run's text and JSON under OUT_DIR and prints the decode lines last. Times nothing
# unless tests/gpu/test_decode passes.
set -u
build=${1:-build} out=${2:-/tmp/queue_ab}
mkdir -p "$out"
nvidia-smi --query-gpu=name,clocks.max.sm --format=csv,noheader
"$build/tests/gpu/test_decode" >"$out/test_decode.txt" 2>&1
tail -n 1 "$out/test_decode.txt"
if ! grep -q ', 0 failed' "$out/test_decode.txt"; then
    grep -v '^ok' "$out/test_decode.txt" | tail -n 40
    echo "queue_ab: test_decode failed, nothing timed"
    exit 1
fi
grid() {  # name, queue, bench flags...
    local name=$1 q=$2
    shift 2
    "$build/seer" bench decode --dtype bf16 --graph 1 --iters 30 --queue "$q" "$@" \
        --json "$out/$name.json" >"$out/$name.txt" 2>&1 || echo "queue_ab: $name failed (rc $?)"
}
for round in 1 2; do  # the baseline in every round: the two machines' halves differ by a few %
    for q in 0 4 8 16 32; do
        grid "b16_q${q}_r$round" "$q" --batch 16 --cache 32k,64k,128k --sparsity 0,0.5,0.9
    done
    for q in 0 8; do
        grid "small_q${q}_r$round" "$q" --batch 1,2,4 --cache 8k,32k,128k --sparsity 0,0.9
    done
done
for f in "$out"/b16_q*.txt "$out"/small_q*.txt; do
    echo "== $(basename "$f" .txt)"
    sed 's/.*\r//' "$f" | grep -aE 'sparsity|failed|error' | cut -c1-100
done
