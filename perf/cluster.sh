#!/usr/bin/env bash
# The cluster's figures (issue 19), raw output under perf/results/cluster/DATE/:
#   1. coordination ceiling: leases + commits a second, 3 worker processes with a zero-cost scorer against a silo
#      hosting the job grain, PostgreSQL membership and grain state (goal: 500 shards/s);
#   2. overhead: `score --cluster` with one worker against a one-machine `score`, same data, teacher, batch and
#      threads (goal: at least 0.95 of its throughput), and the bytes of both compared;
#   3. merge: 100 synthetic partial selectors at C = 1,000 and K = 16,000 through the per-class merge grains
#      (goal: under 60 s), time and memory.
#
#   perf/cluster.sh [DATA TEACHER]    DATA, TEACHER default to the default pipeline's U and teacher under runs/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
data="${1:-$(ls -d runs/*/cache/split-*/u 2>/dev/null | head -1)}"
teacher="${2:-$(ls runs/*/cache/teacher-*/model.safetensors 2>/dev/null | head -1)}"
[ -n "$data" ] && [ -n "$teacher" ] || { echo "no DATA/TEACHER given and none under runs/ (run the README's first command)" >&2; exit 2; }
out=perf/results/cluster/$(date -u +%F)
mkdir -p "$out"
tmp=$(mktemp -d /tmp/cluster-bench.XXXXXX) && chmod 755 "$tmp"   # PostgreSQL runs as its own user under it
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; tools/pg-temp.sh stop "$tmp/pg1" >/dev/null 2>&1 || true; tools/pg-temp.sh stop "$tmp/pg2" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT

dotnet build -c Release perf/Streaming.Perf -nologo -v q >/dev/null
./streaming --help >/dev/null
perf() { dotnet perf/Streaming.Perf/bin/Release/net10.0/linux-x64/Streaming.Perf.dll "$@"; }
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "commit: $(git rev-parse --short HEAD)  date: $(date -u +%FT%TZ)"; echo "data: $data  teacher: $teacher"; } | tee "$out/machine.txt"

echo "== 1. coordination ceiling"
port=$(tools/pg-temp.sh start "$tmp/pg1")
perf cluster-coord "Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres" 3 20000 4 2>/dev/null | tee "$out/coordination.txt"
tools/pg-temp.sh stop "$tmp/pg1" >/dev/null

echo "== 2. overhead: one worker against one machine"
args=(--teacher "$teacher" --data "$data" --top-p 10 --batch 128 --threads 2 -k 1000 -p 10)
/usr/bin/time -f "wall %e s, max RSS %M KB" ./streaming score "${args[@]}" --out "$tmp/local" 2>&1 | tee "$out/overhead-local.txt" | grep -E '^scored|^wall|D-hat'
port=$(tools/pg-temp.sh start "$tmp/pg2")
conn="Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
./streaming worker --cluster "$conn" --name bench-worker --silo-port 21917 --gateway-port 30017 > "$out/overhead-worker.log" 2>&1 &
pids+=($!)
for _ in $(seq 60); do grep -q ' ready ' "$out/overhead-worker.log" && break; sleep 1; done
/usr/bin/time -f "wall %e s, max RSS %M KB" ./streaming score "${args[@]}" --out "$tmp/cluster" --cluster "$conn" 2>&1 | tee "$out/overhead-cluster.txt" | grep -E '^scored|^wall|D-hat|bench-worker'
kill -TERM "${pids[0]}"; wait "${pids[0]}" || true; pids=()
same=0; differ=0
for f in "$tmp"/local/scores/*.parquet; do if cmp -s "$f" "$tmp/cluster/scores/$(basename "$f")"; then same=$((same+1)); else differ=$((differ+1)); fi; done
cmp -s "$tmp/local/selection/dhat.parquet" "$tmp/cluster/selection/dhat.parquet" && dhat=identical || dhat=DIFFERENT
echo "score shards identical: $same, different: $differ; D-hat: $dhat" | tee "$out/overhead-bytes.txt"
tools/pg-temp.sh stop "$tmp/pg2" >/dev/null

echo "== 3. merge: 100 partials, C = 1,000, K = 16,000"
/usr/bin/time -f "wall %e s, max RSS %M KB" dotnet perf/Streaming.Perf/bin/Release/net10.0/linux-x64/Streaming.Perf.dll cluster-merge "$tmp/merge" 100 1000 16000 1600 2>&1 | grep -v ' warn: ' | tee "$out/merge.txt"
echo "raw output in $out"
