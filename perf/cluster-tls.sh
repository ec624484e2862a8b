#!/usr/bin/env bash
# Issue 30: what mutual TLS costs the cluster. Two clusters side by side on this machine, each PostgreSQL of its own
# and 2 worker processes (so that silo-to-silo traffic crosses TLS too): one without TLS (loopback), one with
# certificates from `streaming cluster certs`. In interleaved rounds the same job (Fashion-MNIST's 10,000 test images
# in 100 shards, a small cnn-small teacher, 1 thread a worker) is submitted to each; the submitter's wall time and the
# cluster's images/s are recorded. Then the coordination ceiling (Streaming.Perf's cluster-coord: a silo hosting the job
# grain and 3 worker processes with a zero-cost scorer leasing and committing 20,000 shards, PostgreSQL of its own each
# time), without and with mutual TLS, in the same number of interleaved rounds. Raw output under
# perf/results/cluster-tls/DATE/.
#
#   perf/cluster-tls.sh [ROUNDS=5]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
rounds="${1:-5}"
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/t10k-images-idx3-ubyte.gz" ] || { echo "needs Debian's Fashion-MNIST: apt-get install dataset-fashion-mnist" >&2; exit 2; }
out=perf/results/cluster-tls/$(date -u +%F)
mkdir -p "$out"
tmp=$(mktemp -d /tmp/cluster-tls.XXXXXX) && chmod 755 "$tmp"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; tools/pg-temp.sh stop "$tmp/pg-plain" >/dev/null 2>&1 || true; tools/pg-temp.sh stop "$tmp/pg-tls" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
./streaming --help >/dev/null   # build first, once
dotnet build -c Release perf/Streaming.Perf -nologo -v q >/dev/null
perf() { dotnet perf/Streaming.Perf/bin/Release/net10.0/linux-x64/Streaming.Perf.dll "$@"; }
S=src/Streaming.Cli/bin/Release/net10.0/linux-x64/streaming
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (dirty)')  date: $(date -u +%FT%TZ)"; } | tee "$out/machine.txt"

$S ingest --source "$fm/t10k-images-idx3-ubyte.gz" --out "$tmp/u" --shard-size 100 > "$tmp/ingest.log" 2>&1
$S train --data "$tmp/u" --arch cnn-small --images 2048 --batch 64 --threads 2 --out "$tmp/teacher" > "$tmp/teacher.log" 2>&1
$S cluster certs --out "$tmp/certs" --names w0,w1,submitter,node > /dev/null 2>&1

declare -A conn tls
for kind in plain tls; do
  port=$(tools/pg-temp.sh start "$tmp/pg-$kind")
  conn[$kind]="Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres"
done
tls[plain]=""
tls[tls]="--tls-cert $tmp/certs/NAME.pem --tls-key $tmp/certs/NAME.key --tls-ca $tmp/certs/ca.pem"
base=22000
for kind in plain tls; do
  for w in 0 1; do
    base=$((base + 2))
    # shellcheck disable=SC2086
    $S worker --cluster "${conn[$kind]}" ${tls[$kind]//NAME/w$w} --name "$kind-w$w" --silo-port $base --gateway-port $((base + 1)) \
      --decode-workers 1 > "$out/worker-$kind-w$w.log" 2>&1 &
    pids+=($!)
  done
done
for log in "$out"/worker-*.log; do for _ in $(seq 90); do grep -q ' ready ' "$log" && break; sleep 1; done; done

echo "| round | cluster | wall (s) | images/s over the cluster |" | tee "$out/summary.md"
echo "|---|---|---|---|" | tee -a "$out/summary.md"
for round in $(seq 1 "$rounds"); do
  for kind in plain tls; do
    # shellcheck disable=SC2086
    /usr/bin/time -f "wall %e s" $S score --cluster "${conn[$kind]}" ${tls[$kind]//NAME/submitter} --teacher "$tmp/teacher" --data "$tmp/u" \
      --out "$tmp/out-$kind-$round" --top-p 5 -k 200 -p 2 --threads 1 --batch 64 > "$out/score-$kind-round$round.txt" 2>&1
    wall=$(grep -o 'wall [0-9.]* s' "$out/score-$kind-round$round.txt" | grep -o '[0-9.]*')
    rate=$(grep -o '[0-9,]* images/s over' "$out/score-$kind-round$round.txt" | head -1 | grep -o '^[0-9,]*' | tr -d ,)
    echo "| $round | $kind | $wall | $rate |" | tee -a "$out/summary.md"
  done
  cmp "$tmp/out-plain-$round/selection/dhat.parquet" "$tmp/out-tls-$round/selection/dhat.parquet" && echo "round $round: D-hat identical" >> "$out/summary.md"
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()

echo | tee -a "$out/summary.md"
echo "| round | cluster | coordination ceiling, steady state (shards/s) | overall (shards/s) |" | tee -a "$out/summary.md"
echo "|---|---|---|---|" | tee -a "$out/summary.md"
for round in $(seq 1 "$rounds"); do
  for kind in plain tls; do
    tools/pg-temp.sh stop "$tmp/pg-$kind" >/dev/null 2>&1 || true   # stops it and deletes its folder: a fresh PostgreSQL each round
    port=$(tools/pg-temp.sh start "$tmp/pg-$kind")
    dir=""; [ "$kind" = tls ] && dir="$tmp/certs"
    perf cluster-coord "Host=127.0.0.1;Port=$port;Username=postgres;Database=postgres" 3 20000 4 $dir 2>/dev/null > "$out/coordination-$kind-round$round.txt"
    steady=$(grep -o 'steady state[^:]*: [0-9,]* shards/s' "$out/coordination-$kind-round$round.txt" | grep -o '[0-9,]* shards/s' | grep -o '^[0-9,]*' | tr -d ,)
    overall=$(grep -o '[0-9,]* shards/s overall' "$out/coordination-$kind-round$round.txt" | grep -o '^[0-9,]*' | tr -d ,)
    echo "| $round | $kind | $steady | $overall |" | tee -a "$out/summary.md"
  done
done

python3 - "$out/summary.md" <<'PY' | tee -a "$out/summary.md"
import sys, statistics
text = open(sys.argv[1]).read()
wall_part, _, coord_part = text.partition("coordination ceiling")
def table(part):
    rows = [l.split("|")[1:-1] for l in part.splitlines() if l.startswith("| ") and l.split("|")[2].strip() in ("plain", "tls")]
    return {k: [float(r[2]) for r in rows if r[1].strip() == k and r[2].strip()] for k in ("plain", "tls")}
def spread(v): return f"median {statistics.median(v):,.3f}, range {min(v):,.3f}-{max(v):,.3f}"
w = table(wall_part)
ratio = [t / p for p, t in zip(w["plain"], w["tls"])]
print(f"\nwall with TLS over without, per round: {', '.join(f'{r:.3f}' for r in ratio)}; {spread(ratio)}")
c = table(coord_part)
if c["plain"] and c["tls"]:
    ratio = [t / p for p, t in zip(c["plain"], c["tls"])]
    print(f"coordination ceiling (steady shards/s): without TLS median {statistics.median(c['plain']):,.0f} (range {min(c['plain']):,.0f}-{max(c['plain']):,.0f}), "
          f"with TLS median {statistics.median(c['tls']):,.0f} (range {min(c['tls']):,.0f}-{max(c['tls']):,.0f}); with over without, per round: "
          f"{', '.join(f'{r:.3f}' for r in ratio)}; {spread(ratio)}")
PY
echo "raw output: $out/"
