#!/usr/bin/env bash
# Issue 31, part 2: where the method pays off on Fashion-MNIST, against the equal-budget control. Each cell is the
# default pipeline (pipelines/fashion-mnist.yaml) with:
#   data.labeled_per_class L   in 10 100 500                 (D; U is the rest of the 60,000 training images)
#   teacher.arch T, teacher.recipe true   in resnet20 resnet56  (each teacher by train's own recipe for its D)
#   student.arch S               in cnn-small resnet20
#   scoring.k K                  two values a regime (KS below)
# The stages are cached in one run folder, so a teacher is trained once per (L, T, seed) and shared by its cells.
# Every cell's run.json and log go to OUT. Cost: one cell is the default pipeline's length or more (17 min on 2 cores at
# L = 100 with resnet20; resnet56 teachers take about 3 times as long), so the 24-cell screen is about 8 hours a seed on
# 2 cores. Not yet run (issue 31's notes).
#
#   perf/regime.sh OUT SEEDS [CELLS...]    SEEDS: e.g. "0 1 2"; CELLS: L:T:S:K, e.g. 100:resnet20:cnn-small:4000 (default: every cell)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out="${1:?OUT}"; seeds="${2:-0}"; shift 2 || true
mkdir -p "$out"
ks() { case "$1" in 10) echo "1000 4000" ;; 100) echo "1000 4000" ;; 500) echo "1000 4000" ;; esac; }
cells=("$@")
if [ ${#cells[@]} -eq 0 ]; then
  for l in 10 100 500; do for t in resnet20 resnet56; do for s in cnn-small resnet20; do for k in $(ks $l); do cells+=("$l:$t:$s:$k"); done; done; done; done
fi
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"; echo "commit: $(git rev-parse --short HEAD)  date: $(date -u +%FT%TZ)"; } > "$out/machine.txt"
for seed in $seeds; do
  for cell in "${cells[@]}"; do
    IFS=: read -r l t s k <<< "$cell"
    name="L$l-$t-$s-K$k-seed$seed"
    [ -f "$out/$name.json" ] && { echo "$name: done before"; continue; }
    start=$(date +%s)
    ./streaming run pipelines/fashion-mnist.yaml --out runs/regime --set seed="$seed" --set data.labeled_per_class="$l" \
      --set teacher.arch="$t" --set teacher.recipe=true --set student.arch="$s" --set scoring.k="$k" > "$out/$name.log" 2>&1
    cp runs/regime/run.json "$out/$name.json"
    echo "$name: $(( $(date +%s) - start )) s; $(grep -E '^(student, fine-tuned|control)' "$out/$name.log" | tr -s ' ' | tr '\n' ';')"
  done
done
