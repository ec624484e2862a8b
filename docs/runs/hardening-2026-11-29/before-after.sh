#!/usr/bin/env bash
# (managed heap capped at 1 GB, so that a runaway allocation fails fast instead of taking the machine)
# The same hostile inputs through the command line before issue 18 (9a5e330) and after; 30 s limit each.
cd /tmp/ba
for who in before after; do
  cli=$([ $who = before ] && echo /work/old/src/Streaming.Cli/bin/Release/net10.0/linux-x64/streaming || echo /work/main/src/Streaming.Cli/bin/Release/net10.0/linux-x64/streaming)
  echo "===== $who ($cli)"
  for case in "labels.tar" "piped" "corrupt-footer.parquet"; do
    rm -rf out-$who-$case
    echo "--- ingest --source $case"
    start=$(date +%s.%N)
    DOTNET_GCHeapHardLimit=0x40000000 timeout -s KILL 30 $cli ingest --source $case --out out-$who-$case 2>&1 | tail -3 | cut -c1-300
    rc=${PIPESTATUS[0]}
    echo "exit $rc after $(echo "$(date +%s.%N) - $start" | bc | cut -c1-5) s$([ $rc = 137 ] && echo ' (killed at the 30 s limit: it hung)')"
  done
done
