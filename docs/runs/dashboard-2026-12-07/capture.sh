#!/usr/bin/env bash
# The README's dashboard picture from a real run: the daemon scores Fashion-MNIST's 60,000 training images, dropped as 60
# shards of 1,000 into its inbox one every 3 seconds (about 3 minutes), with the default pipeline's resnet20 teacher and
# its selection settings (P' 10, K 2,000, P 1); then chromium, headless, shoots its page. Raw output (the daemon's log,
# /status and /metrics at the shot) beside the picture in this folder.
#
#   docs/runs/dashboard-2026-12-07/capture.sh TEACHER   (a default pipeline's cache/teacher-*/ folder)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
teacher="${1:?usage: capture.sh TEACHER (the cache/teacher-* folder of a default pipeline run)}"
here=docs/runs/dashboard-2026-12-07
export OMP_WAIT_POLICY=PASSIVE
./streaming --help >/dev/null
S=src/Streaming.Cli/bin/Release/net10.0/linux-x64/streaming
tmp=$(mktemp -d /tmp/dashboard.XXXXXX)
trap 'kill $daemon 2>/dev/null || true; rm -rf "$tmp"' EXIT
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (dirty)')  date: $(date -u +%FT%TZ)  teacher: $teacher"; } | tee "$here/machine.txt"
$S ingest --source /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz --out "$tmp/drops" --shard-size 1000 > "$tmp/ingest.log" 2>&1
mkdir -p "$tmp/inbox"
$S daemon --teacher "$teacher" --inbox "$tmp/inbox" --state "$tmp/state" --set scoring.top_p=10 --set scoring.k=2000 --set scoring.p=1 \
  --set threads=2 --set http.listen=127.0.0.1:0 --set log.format=text > "$here/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 120); do [ -f "$tmp/state/daemon.json" ] && break; sleep 0.5; done
address=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("address") or d.get("http") or d["listen"])' "$tmp/state/daemon.json")
case "$address" in http*) ;; *) address="http://$address" ;; esac
echo "daemon at $address"
for f in "$tmp"/drops/shard-*.parquet; do
  cp "$f" "$tmp/inbox/.$(basename "$f").part" && mv "$tmp/inbox/.$(basename "$f").part" "$tmp/inbox/$(basename "$f")"
  sleep 3
done
# Until every shard is in and the idle snapshot is out.
for _ in $(seq 300); do
  done_shards=$(curl -s "$address/status" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s.get("shards_done", s.get("done", 0)))' 2>/dev/null || echo 0)
  [ "$done_shards" -ge 60 ] 2>/dev/null && break; sleep 1
done
sleep 8
curl -s "$address/status" > "$here/status.json"
curl -s "$address/metrics" > "$here/metrics.txt"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1500 --virtual-time-budget=15000 \
  --screenshot="$here/dashboard.png" "$address/" > "$tmp/chromium.log" 2>&1
kill -TERM $daemon; wait $daemon || true
echo "-> $here/dashboard.png"
