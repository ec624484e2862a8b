#!/usr/bin/env bash
# Issue 29, part 6: data-parallel training over MPI on this machine. For cnn-small and resnet20 on Fashion-MNIST (60,000
# training images), and resnet50 at 224 px with a small batch, in interleaved rounds:
#   1 rank x 2 threads   (one process, every core)
#   2 ranks x 1 thread   (mpirun -np 2: the global batch split in two, gradients averaged by allreduce)
# Reported per round: images/s of each, efficiency (2-rank images/s over 1-rank images/s; goal >= 0.9), and the
# allreduce's share of the 2-rank run's time with its bytes a step. Raw logs and a summary under perf/results/distributed/.
#
#   perf/distributed.sh [ROUNDS=3] [TRAIN]     TRAIN: an ingested Fashion-MNIST train set (default: the default pipeline's)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
rounds="${1:-3}"
train="${2:-$(ls -d runs/*/cache/ingest-train-* 2>/dev/null | head -1)}"
[ -n "$train" ] || { echo "no TRAIN given and none under runs/ (run the README's first command)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "mpirun not found: apt-get install openmpi-bin" >&2; exit 2; }
out=perf/results/distributed
work=$(mktemp -d /tmp/distributed.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
./streaming --help >/dev/null   # build first, once
bin=src/Streaming.Cli/bin/Release/net10.0/linux-x64/streaming
root=(); [ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (dirty)')  date: $(date -u +%FT%TZ)  $(mpirun --version | head -1)"; } > "$out/machine.txt"
cat "$out/machine.txt"

# ARCH IMAGES BATCH EXTRA...: one round of both configurations, one log each
pair() {
  local arch=$1 images=$2 batch=$3 round=$4; shift 4
  local common=(--data "$train" --arch "$arch" --images "$images" --batch "$batch" --lr 0.1 --schedule cosine --seed 1 --no-augment --overwrite "$@")
  local name="${arch//[:]/_}-b$batch"
  "$bin" train "${common[@]}" --threads 2 --out "$work/one" > "$out/$name-1x2-round$round.txt" 2>&1
  mpirun "${root[@]}" --oversubscribe --bind-to none -np 2 "$bin" train "${common[@]}" --threads 1 --out "$work/two" > "$out/$name-2x1-round$round.txt" 2>&1
  local one two share bytes
  one=$(grep -o 'in [0-9.]* min, [0-9,]* images/s' "$out/$name-1x2-round$round.txt" | grep -o '[0-9,]* images/s' | tr -d ', images/s')
  two=$(grep -o 'in [0-9.]* min, [0-9,]* images/s' "$out/$name-2x1-round$round.txt" | grep -o '[0-9,]* images/s' | tr -d ', images/s')
  share=$(grep -o 'allreduce [0-9.]* %' "$out/$name-2x1-round$round.txt" | grep -o '[0-9.]*')
  bytes=$(grep -o '[0-9.]* MB a step in [0-9]* calls' "$out/$name-2x1-round$round.txt")
  echo "| $arch | $batch | $round | $one | $two | $(python3 -c "print(f'{$two/$one:.3f}')") | $share % | $bytes |" | tee -a "$out/summary.md"
}

echo "| model | global batch | round | 1 rank x 2 threads (images/s) | 2 ranks x 1 thread (images/s) | efficiency | allreduce share (2 ranks) | allreduce a step |" > "$out/summary.md"
echo "|---|---|---|---|---|---|---|---|" >> "$out/summary.md"
for round in $(seq 1 "$rounds"); do
  pair cnn-small 20480 128 "$round"
  pair resnet20 10240 128 "$round"
  pair resnet50 64 8 "$round" --image-size 224
done
echo "raw output: $out/"
