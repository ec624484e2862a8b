#!/usr/bin/env bash
# Issue 30: the cluster under faults, with real processes. Each round: PostgreSQL of its own, 3 `streaming worker`
# processes and a submitter (`score --cluster`, leases of 4 s) score Fashion-MNIST's 10,000 test images in 100 shards
# with a small resnet56 teacher (slow enough that the job outlasts the events). Once the job is under way, these happen in a random order with random gaps of 1-4 s
# (seeded; the seed is printed):
#   - kill -9 of worker w0;
#   - an immediate restart of PostgreSQL (connections cut);
#   - SIGSTOP for 15 s (past its 4-s leases), then SIGCONT, of w1 or w2, whichever does not host the job's grain (a
#     frozen host freezes the job itself): its late commits must be refused (fenced), and its log says so;
#   - kill -9 of the submitter, and at once a new one with the same command, which attaches;
#   - a worker w3 that joins late.
# The round passes when the job completes and every score shard and D-hat are byte-identical to a one-machine `score`.
# Reported per round: the events with their times, the seconds from the last event to the job's end, and w1's fencing
# lines. Raw output under perf/results/cluster-chaos/DATE/ (or $CHAOS_OUT). Exit 1 if any round fails.
#
#   perf/cluster-chaos.sh [ROUNDS=20] [SEED=random]
#   STREAMING_DLL=path/streaming.dll runs that build instead of the Release one (the tests do this)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
rounds="${1:-20}"; seed="${2:-$(( $(date +%s) % 100000 ))}"
fm=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
[ -f "$fm" ] || { echo "needs Debian's Fashion-MNIST: apt-get install dataset-fashion-mnist" >&2; exit 2; }
if [ -n "${STREAMING_DLL:-}" ]; then S=(dotnet exec "$STREAMING_DLL"); else ./streaming --help >/dev/null; S=(src/Streaming.Cli/bin/Release/net10.0/linux-x64/streaming); fi
out="${CHAOS_OUT:-perf/results/cluster-chaos/$(date -u +%F)}"
mkdir -p "$out"
tmp=$(mktemp -d /tmp/cluster-chaos.XXXXXX) && chmod 755 "$tmp"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done; for d in "$tmp"/pg-*; do [ -d "$d" ] && tools/pg-temp.sh stop "$d" >/dev/null 2>&1 || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (dirty)')  date: $(date -u +%FT%TZ)  seed: $seed  rounds: $rounds"; } | tee "$out/machine.txt"

"${S[@]}" ingest --source "$fm" --out "$tmp/u" --shard-size 100 > "$tmp/prepare.log" 2>&1
"${S[@]}" train --data "$tmp/u" --arch resnet56 --images 256 --batch 64 --threads 2 --out "$tmp/teacher" >> "$tmp/prepare.log" 2>&1
score=(score --teacher "$tmp/teacher" --data "$tmp/u" --top-p 5 --batch 16 --threads 1 -k 50 -p 2)
"${S[@]}" "${score[@]}" --out "$tmp/reference" >> "$tmp/prepare.log" 2>&1
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
ready() { for _ in $(seq 120); do grep -q ' ready ' "$1" 2>/dev/null && return 0; sleep 0.5; done; echo "$1 never got ready" >&2; return 1; }
worker() { # NAME LOG: starts it; its pid in $started
  "${S[@]}" worker --cluster "file:$tmp/conn-$round" --name "$1" --silo-port "$(port)" --gateway-port "$(port)" \
    --decode-workers 1 --prefetch 2 --partial-every 8 > "$2" 2>&1 &
  started=$!; pids+=("$started"); disown "$started"   # no job-control notice when it is killed
}
echo "| round | events (seconds after the job got going) | last event to end (s) | byte-identical | the frozen worker's fencing lines |" > "$out/summary.md"
echo "|---|---|---:|---|---:|" >> "$out/summary.md"
RANDOM=$seed
passed=0; finish=()
for round in $(seq 1 "$rounds"); do
  r="$out/round-$round"; mkdir -p "$r"
  pg="$tmp/pg-$round"; pgport=$(tools/pg-temp.sh start "$pg")
  echo "Host=127.0.0.1;Port=$pgport;Username=postgres;Database=postgres;Timeout=5;Command Timeout=30" > "$tmp/conn-$round"
  worker w0 "$r/w0.log"; w0=$started; worker w1 "$r/w1.log"; w1=$started; worker w2 "$r/w2.log"; w2=$started
  ready "$r/w0.log"; ready "$r/w1.log"; ready "$r/w2.log"
  job="$tmp/out-$round"
  "${S[@]}" "${score[@]}" --out "$job" --cluster "file:$tmp/conn-$round" --lease-seconds 4 > "$r/submitter-1.log" 2>&1 &
  submitter=$!; pids+=("$submitter")
  for _ in $(seq 240); do [ "$(ls "$job/scores/"*.parquet 2>/dev/null | wc -l)" -ge 5 ] && break; sleep 0.25; done
  start=$(date +%s.%N); events=""
  stamp() { python3 -c "import sys;print(f'{float(sys.argv[1])-float(sys.argv[2]):.1f}')" "$(date +%s.%N)" "$start"; }
  order=(kill-worker restart-postgres freeze-worker kill-submitter late-worker)
  for i in 4 3 2 1; do j=$((RANDOM % (i + 1))); t=${order[$i]}; order[$i]=${order[$j]}; order[$j]=$t; done
  attach=1; thaw=""; frozen=w1
  for e in "${order[@]}"; do
    sleep $((1 + RANDOM % 4))
    case $e in
      kill-worker) kill -9 "$w0" ;;
      restart-postgres) tools/pg-temp.sh restart-now "$pg" ;;
      freeze-worker)
        # The worker whose silo does not host the job grain (the one whose log has its lines least recently).
        frozen=w1; fpid=$w1
        last1=$(grep -h 'Streaming.Cluster.JobGrain' "$r/w1.log" | tail -1 | cut -c1-19 || true)
        last2=$(grep -h 'Streaming.Cluster.JobGrain' "$r/w2.log" | tail -1 | cut -c1-19 || true)
        [[ "$last1" > "$last2" ]] && { frozen=w2; fpid=$w2; }
        kill -STOP "$fpid"; ( sleep 15; kill -CONT "$fpid" ) & thaw=$! ;;
      kill-submitter) kill -9 "$submitter"; wait "$submitter" 2>/dev/null || true; attach=$((attach + 1))
        "${S[@]}" "${score[@]}" --out "$job" --cluster "file:$tmp/conn-$round" --lease-seconds 4 > "$r/submitter-$attach.log" 2>&1 &
        submitter=$!; pids+=("$submitter") ;;
      late-worker) worker w3 "$r/w3.log" ;;
    esac
    events="$events$e $(stamp); "
  done
  last=$(date +%s.%N); code=0
  wait "$submitter" || code=$?
  [ -n "$thaw" ] && wait "$thaw"  # the SIGCONT
  took=$(python3 -c "import sys;print(f'{float(sys.argv[1])-float(sys.argv[2]):.1f}')" "$(date +%s.%N)" "$last")
  same=yes
  [ "$code" = 0 ] || same="no (submitter exit $code)"
  if [ "$same" = yes ]; then
    for f in "$tmp/reference/scores/"*.parquet "$tmp/reference/selection/dhat.parquet"; do
      cmp -s "$f" "$job/${f#"$tmp/reference/"}" || { same="no (${f#"$tmp/reference/"} differs)"; break; }
    done
  fi
  fenced=$(grep -cE 'commit refused|lease on shard [0-9]+ was lost' "$r/$frozen.log" || true)
  echo "round $round: $frozen was frozen; $fenced fencing lines in its log"
  echo "| $round | ${events% } | $took | $same | $fenced |" | tee -a "$out/summary.md"
  [ "$same" = yes ] && passed=$((passed + 1)) && finish+=("$took")
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done; pids=()
  sleep 0.5
  tools/pg-temp.sh stop "$pg" >/dev/null 2>&1 || true
  rm -rf "$job"
done
{ echo; echo "$passed of $rounds rounds byte-identical (seed $seed)"
  [ ${#finish[@]} -gt 0 ] && python3 -c "import sys,statistics as s;v=sorted(map(float,sys.argv[1:]));print(f'last event to the job\'s end: min {v[0]:.1f} s, median {s.median(v):.1f} s, max {v[-1]:.1f} s')" "${finish[@]}"; } | tee -a "$out/summary.md"
[ "$passed" = "$rounds" ]
