#!/usr/bin/env bash
# Issue 30: what mutual TLS costs the cluster. Two clusters side by side on this machine, each PostgreSQL of its own
# and 2 worker processes (so that silo-to-silo traffic crosses TLS too): one without TLS (loopback), one with
# certificates from `streaming cluster certs`. In interleaved rounds the same job (Fashion-MNIST's 10,000 test images
# in 100 shards, a small cnn-small teacher, 1 thread a worker) is submitted to each; the submitter's wall time and the
# cluster's images/s are recorded. Raw output under perf/results/cluster-tls/DATE/.
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
S=src/Streaming.Cli/bin/Release/net10.0/linux-x64/streaming
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (dirty)')  date: $(date -u +%FT%TZ)"; } | tee "$out/machine.txt"

$S ingest --source "$fm/t10k-images-idx3-ubyte.gz" --out "$tmp/u" --shard-size 100 > "$tmp/ingest.log" 2>&1
$S train --data "$tmp/u" --arch cnn-small --images 2048 --batch 64 --threads 2 --out "$tmp/teacher" > "$tmp/teacher.log" 2>&1
$S cluster certs --out "$tmp/certs" --names w0,w1,submitter > /dev/null 2>&1

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
python3 - "$out/summary.md" <<'PY' | tee -a "$out/summary.md"
import sys, statistics
rows = [l.split("|")[1:-1] for l in open(sys.argv[1]) if l.startswith("| ") and l.split("|")[2].strip() in ("plain", "tls")]
w = {k: [float(r[2]) for r in rows if r[1].strip() == k] for k in ("plain", "tls")}
ratio = [t / p for p, t in zip(w["plain"], w["tls"])]
print(f"\nwall with TLS over without, per round: {', '.join(f'{r:.3f}' for r in ratio)}; median {statistics.median(ratio):.3f}, range {min(ratio):.3f}-{max(ratio):.3f}")
PY
echo "raw output: $out/"
