#!/usr/bin/env bash
# Issue 20, part 5: `train` with only --data and --arch (the recipe picks budget, schedule, lr, weight decay and
# augmentation), resnet20, 3 seeds each, then `eval` on the 10,000 test images:
#   1k:  on the default pipeline's D (1,000 labels)   goals: mean >= 83%, every seed >= 82%, each run within 5 minutes
#   60k: on all 60,000 training images                 goals: >= 92% within 20 minutes
# Raw output (each run's log with its timing, eval JSON, resolved config.json) under docs/runs/defaults-DATE/.
#
#   perf/defaults.sh [1k|60k|all] [D TRAIN TEST]    defaults: the default pipeline's D, train and test sets under runs/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
which="${1:-all}"
d="${2:-$(ls -d runs/*/cache/split-*/d 2>/dev/null | head -1)}"
train="${3:-$(ls -d runs/*/cache/ingest-train-* 2>/dev/null | head -1)}"
test="${4:-$(ls -d runs/*/cache/ingest-test-* 2>/dev/null | head -1)}"
[ -n "$d" ] && [ -n "$train" ] && [ -n "$test" ] || { echo "no D/TRAIN/TEST given and none under runs/ (run the README's first command)" >&2; exit 2; }
out=docs/runs/defaults-$(date -u +%F)
work=$(mktemp -d /tmp/defaults.XXXXXX)
trap 'rm -rf "$work"' EXIT
./streaming --help >/dev/null
study() {  # NAME DATA
  mkdir -p "$out/resnet20-$1"
  for seed in 0 1 2; do
    { /usr/bin/time -f "wall %e s, max rss %M KB" ./streaming train --data "$2" --arch resnet20 --out "$work/$1-$seed" --seed $seed; } > "$out/resnet20-$1/train-seed-$seed.txt" 2>&1
    ./streaming eval --model "$work/$1-$seed" --data "$test" --out "$out/resnet20-$1/eval-seed-$seed.json" > "$out/resnet20-$1/eval-seed-$seed.txt" 2>&1
    cp "$work/$1-$seed/config.json" "$out/resnet20-$1/config-seed-$seed.json"
    echo "$1 seed $seed: $(head -1 "$out/resnet20-$1/eval-seed-$seed.txt"); $(grep '^wall' "$out/resnet20-$1/train-seed-$seed.txt")"
  done
}
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"; echo "commit: $(git rev-parse --short HEAD)  date: $(date -u +%FT%TZ)"; } > "$out/machine-$which.txt"
case "$which" in
  1k) study 1k "$d" ;;
  60k) study 60k "$train" ;;
  all) study 1k "$d"; study 60k "$train" ;;
  *) echo "usage: perf/defaults.sh [1k|60k|all] [D TRAIN TEST]" >&2; exit 2 ;;
esac
