#!/usr/bin/env bash
# Issue 32, item 0: dedup's precision and recall against the truth. On Fashion-MNIST, all 60,000 training images against
# the 10,000 test images:
#   - the exact reference: every pair's RMS pixel difference (a chunked matrix product, then exact integers), every pair
#     within RMS 25 in truth.csv;
#   - the detector before (the dHash alone) at several bit thresholds, and the variants tried (dHash candidates checked
#     by a thumbnail of 17 x 16, 14 x 14 or 8 x 8 cells);
#   - `dedup` as it runs now, perceptual kind over the cells' RMS and, with a model, embedding kind over the cosine.
# Recall: the share of the training images that have a test image within RMS 10 (visually identical) that are reported;
# precision: the share of reported pairs within RMS 25. Raw output, curves (csv) and curve.png under
# perf/results/dedup-truth/DATE/.
#
#   perf/dedup-truth.sh [TRAIN TEST [TEACHER]]   defaults: the default pipeline's ingested train and test sets and its
#                                                teacher under runs/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
train="${1:-$(ls -d runs/*/cache/ingest-train-* 2>/dev/null | head -1)}"
test="${2:-$(ls -d runs/*/cache/ingest-test-* 2>/dev/null | head -1)}"
teacher="${3:-$(ls runs/*/cache/teacher-*/model.safetensors 2>/dev/null | head -1)}"
[ -n "$train" ] && [ -n "$test" ] || { echo "no TRAIN/TEST given and none under runs/ (run the README's first command)" >&2; exit 2; }
out=perf/results/dedup-truth/$(date -u +%F)
mkdir -p "$out"
dotnet build -c Release perf/Streaming.Perf -nologo -v q >/dev/null
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src perf/Streaming.Perf || echo ' (dirty)')  date: $(date -u +%FT%TZ)"
  echo "train: $train  test: $test  teacher: ${teacher:-none}"; } | tee "$out/machine.txt"
/usr/bin/time -f "wall %e s, max RSS %M KB" dotnet perf/Streaming.Perf/bin/Release/net10.0/linux-x64/Streaming.Perf.dll dedup-truth "$train" "$test" "$out" $teacher 2>&1 \
  | tee "$out/dedup-truth.txt"
# The runs' pairs and summaries stay; their contact sheets and shard copies are not needed to read the figures.
rm -f "$out"/run-*/duplicates.png
echo "raw output: $out/"
