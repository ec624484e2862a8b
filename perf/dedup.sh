#!/usr/bin/env bash
# Dedup's figures (issue 20, part 3), raw output under perf/results/dedup/DATE/:
#   1. hashing (SHA-256 of bytes and of decoded pixels, and a dHash), U and the test set together
#      (goal: at least 50,000 images/s on 2 cores);
#   2. embedding dedup of U (59,000) against the test set (10,000) with the resnet20 teacher, features included
#      (goal: under 60 s);
#   3. what it finds on Fashion-MNIST: U against the test set, and all 60,000 training images against it.
#
#   perf/dedup.sh [U TEST TEACHER TRAIN]   defaults: the default pipeline's U, test set, teacher and train set under runs/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
u="${1:-$(ls -d runs/*/cache/split-*/u 2>/dev/null | head -1)}"
test="${2:-$(ls -d runs/*/cache/ingest-test-* 2>/dev/null | head -1)}"
teacher="${3:-$(ls runs/*/cache/teacher-*/model.safetensors 2>/dev/null | head -1)}"
train="${4:-$(ls -d runs/*/cache/ingest-train-* 2>/dev/null | head -1)}"
[ -n "$u" ] && [ -n "$test" ] && [ -n "$teacher" ] && [ -n "$train" ] || { echo "no U/TEST/TEACHER/TRAIN given and none under runs/ (run the README's first command)" >&2; exit 2; }
out=perf/results/dedup/$(date -u +%F)
mkdir -p "$out"
./streaming --help >/dev/null
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "commit: $(git rev-parse --short HEAD)  date: $(date -u +%FT%TZ)"; echo "u: $u  test: $test  teacher: $teacher  train: $train"; } | tee "$out/machine.txt"

echo "== 1 and 2: U against the test set, hashes and the teacher's features"
/usr/bin/time -f "wall %e s, max RSS %M KB" ./streaming dedup --data "$u" --against "$test" --model "$teacher" --out "$out/u-vs-test" --threads 2 2>&1 \
  | tee "$out/u-vs-test.txt"
echo "== 3: all of train against the test set (hashes and features)"
/usr/bin/time -f "wall %e s, max RSS %M KB" ./streaming dedup --data "$train" --against "$test" --model "$teacher" --out "$out/train-vs-test" --threads 2 2>&1 \
  | tee "$out/train-vs-test.txt"
rm -f "$out"/*/duplicates.parquet.tmp* 2>/dev/null || true
jq '{hash_images_per_second, features_seconds, search_seconds, embedding_total_s: (.features_seconds + .search_seconds), kinds}' "$out/u-vs-test/summary.json" | tee "$out/goals.json"
