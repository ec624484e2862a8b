#!/usr/bin/env bash
# What pinning the kernel ISA costs (docs/cpu-kernels.md): `train` and `score` under each ISA this CPU has, against
# native, on the default pipeline's data. Raw output under perf/results/isa-cost/<date>/, a table on stdout.
#
#   perf/isa-cost.sh RUN_DIR      RUN_DIR: a run of pipelines/fashion-mnist.yaml (for D, U and its teacher)
#
# Each ISA trains resnet20 on D for 25,600 images (batch 128) and scores U (59,000 images, batch 256), twice,
# interleaved, 2 threads. About 12 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
run="${1:?usage: perf/isa-cost.sh RUN_DIR (a run of pipelines/fashion-mnist.yaml)}"
split=$(ls -d "$run"/cache/split-* | head -1)
teacher=$(ls -d "$run"/cache/teacher-*/model.safetensors | head -1)
out="perf/results/isa-cost/$(date -u +%Y-%m-%d)"
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE
./streaming --help >/dev/null
isas=(native)
for isa in avx512_core avx2; do
  ./streaming env --isa "$isa" >/dev/null 2>&1 && isas+=("$isa")
done
./streaming env > "$out/env.txt" 2>/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for round in 1 2; do
  for isa in "${isas[@]}"; do
    # (the schedule, lr, weight decay and augmentation these figures were first measured with, not train's recipe)
    ./streaming train --data "$split/d" --arch resnet20 --images 25600 --batch 128 --threads 2 --isa "$isa" \
      --schedule pretrain --lr 0.1 --weight-decay 0.0001 --augment \
      --out "$tmp/train-$isa-$round" --overwrite > "$out/train-$isa-$round.txt" 2>&1
    ./streaming score --teacher "$teacher" --data "$split/u" --batch 256 --threads 2 --isa "$isa" \
      --out "$tmp/score-$isa-$round" > "$out/score-$isa-$round.txt" 2>&1
  done
done
rate() { grep -oE '[0-9,]+ images/s' "$1" | tail -1 | tr -d ', images/s'; }
echo "| isa | train resnet20 (images/s) | vs native | score U (images/s) | vs native |" | tee "$out/summary.md"
echo "| --- | ---: | ---: | ---: | ---: |" | tee -a "$out/summary.md"
nt=0; ns=0
for isa in "${isas[@]}"; do
  t=$(( ($(rate "$out/train-$isa-1.txt") + $(rate "$out/train-$isa-2.txt")) / 2 ))
  s=$(( ($(rate "$out/score-$isa-1.txt") + $(rate "$out/score-$isa-2.txt")) / 2 ))
  [ "$isa" = native ] && { nt=$t; ns=$s; }
  printf '| %s | %s (%s, %s) | %s | %s (%s, %s) | %s |\n' "$isa" "$t" "$(rate "$out/train-$isa-1.txt")" "$(rate "$out/train-$isa-2.txt")" \
    "$(awk -v a="$t" -v b="$nt" 'BEGIN{printf "%.2f", a/b}')" "$s" "$(rate "$out/score-$isa-1.txt")" "$(rate "$out/score-$isa-2.txt")" \
    "$(awk -v a="$s" -v b="$ns" 'BEGIN{printf "%.2f", a/b}')" | tee -a "$out/summary.md"
done
