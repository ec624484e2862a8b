#!/usr/bin/env bash
# The scoring graph's speed goals (issue 17), side by side on one machine:
#   - `score` over Fashion-MNIST U (59,000 PNGs in 6 shards, resnet20 teacher, batch 256, 2 threads) against bare
#     inference of the same teacher over the same images decoded beforehand, in the same process, interleaved shard by
#     shard (goal: >= 0.97x);
#   - the managed memory `score` allocates an image in steady state, GC.GetTotalAllocatedBytes between 20% and 90% of
#     the images (goal: < 256 bytes);
#   - with --before, the same two measurements of the engine before the redesign (commit d750dfd, built in a temporary
#     git worktree with perf/results/score-throughput/before-d750dfd.cs as its benchmark), interleaved round by round;
#     with --before=REF, of commit REF built with its own benchmark (e.g. --before=3d4a873, before the renovation);
#   - the plain PyTorch peer (Debian's python3-torch over pre-decoded tensors, same threads and batch), for the
#     record, with the BLAS and CPU capability it uses.
# Raw output under perf/results/score-throughput/<date>/, a table on stdout and in summary.md there.
#
#   perf/score-throughput.sh RUN_DIR [--before[=REF]] [ROUNDS=2]   (ROUNDS: bare/score pairs a shard)
#   PAIRS=N perf/score-throughput.sh ... --before   interleaves the two engines N times (default 2)
#
# RUN_DIR: a run of pipelines/fashion-mnist.yaml (its split's U and its resnet20 teacher). About 4 minutes an engine
# on 2 cores with 2 rounds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
run="${1:?usage: perf/score-throughput.sh RUN_DIR [--before] [ROUNDS] (RUN_DIR: a run of pipelines/fashion-mnist.yaml)}"
before=no; rounds=2; ref=d750dfd
for a in "${@:2}"; do
  case "$a" in
    --before) before=yes ;;
    --before=*) before=yes; ref="${a#--before=}" ;;
    [0-9]*) rounds="$a" ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
u=$(ls -d "$run"/cache/split-*/u 2>/dev/null | head -1 || true)
teacher=$(ls -d "$run"/cache/teacher-*/model.safetensors 2>/dev/null | head -1 || true)
[ -n "$u" ] && [ -n "$teacher" ] || { echo "$run: no cache/split-*/u or cache/teacher-*/model.safetensors (run pipelines/fashion-mnist.yaml there first)" >&2; exit 2; }
out="perf/results/score-throughput/$(date -u +%Y-%m-%d)"
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
tmp=$(mktemp -d)
cleanup() { [ -d "$tmp/before" ] && git worktree remove --force "$tmp/before" >/dev/null 2>&1; rm -rf "$tmp"; }
trap cleanup EXIT

dotnet build -c Release perf/Streaming.Perf -nologo -v q >/dev/null
./streaming env > "$out/env.txt" 2>&1
{ echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')"
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "teacher: $teacher"; echo "data: $u"; } >> "$out/env.txt"
if [ "$before" = yes ]; then
  git worktree add --detach "$tmp/before" "$ref" >/dev/null 2>&1
  [ "$ref" = d750dfd ] && cp perf/results/score-throughput/before-d750dfd.cs "$tmp/before/perf/Streaming.Perf/ScoringThroughput.cs"
  dotnet build -c Release "$tmp/before/perf/Streaming.Perf" -nologo -v q >/dev/null
fi
bench() { dotnet run -c Release --no-build --project "$1/perf/Streaming.Perf" -- score "$teacher" "$u" 256 1 2 "$rounds"; }
if [ "$before" = yes ]; then
  # Engines interleaved: this commit, then REF, PAIRS times (default 2), each with ROUNDS bare/score pairs a shard.
  for r in $(seq 1 "${PAIRS:-2}"); do
    echo "== this engine, round $r"
    bench . 2>&1 | tee "$out/after-$r.txt" | grep -E '^whole|^interleaved|^bottleneck'
    echo "== before ($ref), round $r"
    bench "$tmp/before" 2>&1 | tee "$out/before-$r.txt" | grep -E '^whole|^interleaved|^bottleneck'
  done
else
  echo "== this engine"
  bench . 2>&1 | tee "$out/after.txt" | grep -E '^whole|^interleaved|^bottleneck'
fi
if /usr/bin/python3 -c 'import torch' 2>/dev/null && [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "== PyTorch peer"
  /usr/bin/python3 perf/python/torch_resnet20_bench.py --threads 2 --score-fmnist 59000 2>&1 | tee "$out/torch.txt"
fi

field() { grep -oE "$2" "$1" | head -1 | grep -oE '[0-9][0-9,.]*' | tail -1 | tr -d ,; }  # the last number of the first match
{
  echo "| engine | score, whole U, warm (images/s) | allocated a steady-state image, cold pass (bytes) | warm pass (bytes) | interleaved: bare inference (images/s) | interleaved: score (images/s) | score / bare |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for f in "$out"/after*.txt "$out"/before*.txt; do
    [ -f "$f" ] || continue
    kind=$(basename "$f" .txt)
    name=$([ "${kind%%-*}" = after ] && echo "this commit ($(git rev-parse --short HEAD))" || echo "$ref (before)")
    [ "$kind" != "${kind%%-*}" ] && name="$name, round ${kind#*-}"
    echo "| $name | $(field "$f" 'warm: score [0-9,]+ images in [0-9.]+ s = [0-9,]+') | $(field "$f" 'cold: managed allocation in steady state: [0-9,]+') | $(field "$f" 'warm: managed allocation in steady state: [0-9,]+') | $(field "$f" 'interleaved: bare inference [0-9,]+') | $(field "$f" ', score [0-9,]+ images/s, score /') | $(field "$f" 'score / bare = [0-9.]+') |"
  done
  [ -f "$out/torch.txt" ] && grep '^|' "$out/torch.txt" | sed 's/^/PyTorch peer: /' || true
} | tee "$out/summary.md"
