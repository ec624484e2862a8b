#!/usr/bin/env bash
# The perf suite: BenchmarkDotNet hot paths and decode, the end-to-end measurements the issues ask for, and
# the Python/PIL/PyTorch comparison rows where Python is there. Writes every output under perf/results/latest/
# and rewrites the "Latest run" section of perf/RESULTS.md (machine, date, commit, the numbers).
#
#   perf/run.sh          quick: about 15 minutes on 2 cores
#   perf/run.sh full     adds the 1B-row selection and the 30-minute daemon soak (about an hour more)
#
# Needs the Fashion-MNIST package for the scoring rows (apt-get install dataset-fashion-mnist); skips them without it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mode="${1:-quick}"
out=perf/results/latest
rm -rf "$out" && mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

dotnet build -c Release perf/Streaming.Perf -nologo -v q >/dev/null
./streaming --help >/dev/null   # builds the CLI (Release) for the end-to-end rows
perf() { dotnet run -c Release --no-build --project perf/Streaming.Perf -- "$@"; }
step() { echo "== $1"; }

step "hot paths (BenchmarkDotNet)"
perf hot --job short --inProcess --exporters github 2>&1 | tee "$out/hot.txt" | grep -E '^\|' || true
step "decode (BenchmarkDotNet)"
perf decode --job short --exporters github 2>&1 | tee "$out/decode.txt" | grep -E '^\|' || true
if /usr/bin/python3 -c 'import PIL, numpy' 2>/dev/null; then
  step "PIL reference"
  /usr/bin/python3 perf/python/pil_decode_bench.py --photos data-samples/photos --pngs data-samples/fashion-mnist-folder 2>&1 | tee "$out/pil.txt"
fi
step "selection core, 100M synthetic rows"
perf select 100000000 1000 16000 10 2>&1 | tee "$out/select.txt" | tail -3
if [ -d /usr/share/datasets/fashion-mnist ]; then
  step "model throughput (resnet20)"
  perf model 2 128 20 2>&1 | tee "$out/model.txt" | tail -3
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    { /usr/bin/python3 perf/python/torch_resnet20_bench.py --threads 2 --batch 128 --seconds 20
      /usr/bin/python3 perf/python/torch_resnet20_bench.py --threads 2 --batch 128 --seconds 20 --channels-last; } 2>&1 | tee "$out/torch.txt" | grep '^|' || true
  fi
  step "profile of the default pipeline's scoring, and the profiler's overhead"
  teacher=$(ls -d runs/fashion-mnist/cache/teacher-*/model.safetensors 2>/dev/null | head -1 || true)
  u=$(ls -d runs/fashion-mnist/cache/split-*/u 2>/dev/null | head -1 || true)
  if [ -n "$teacher" ] && [ -n "$u" ]; then
    ./streaming profile --stage score --teacher "$teacher" --data "$u" --duration 20 --out "$out/profile-fmnist" 2>&1 | tee "$out/profile.txt" | tail -12
    perf profile-overhead "$teacher" "$u" 15 3 2>&1 | tee "$out/profile-overhead.txt" | tail -1
  else
    echo "(no runs/fashion-mnist: run ./quickstart.sh first for the scoring rows)" | tee "$out/profile.txt"
  fi
fi
if [ "$mode" = full ]; then
  step "selection core, 1B synthetic rows"
  perf select 1000000000 1000 16000 10 2>&1 | tee "$out/select-1b.txt" | tail -3
  step "daemon soak: burst of 1000 shards, then 30 minutes of steady arrivals"
  perf daemon-soak 30 1000 6 "$out/daemon-soak" 2>&1 | tee "$out/daemon-soak.txt" | tail -4
fi

# Rewrite the generated section of RESULTS.md.
{
  echo "<!-- perf/run.sh:begin (generated; edit outside these markers) -->"
  echo "## Latest run of perf/run.sh ($mode)"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (with local changes)')"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB, $(. /etc/os-release; echo "$PRETTY_NAME"), .NET $(dotnet --version)"
  echo "- full outputs: perf/results/latest/ (not committed)"
  for f in hot decode; do
    if [ -s "$out/$f.txt" ]; then echo; echo "### $f (BenchmarkDotNet, short job)"; echo; grep -E '^\|' "$out/$f.txt" || true; fi
  done
  for f in pil select model torch profile profile-overhead select-1b daemon-soak; do
    if [ -s "$out/$f.txt" ]; then echo; echo "### $f"; echo; echo '```'; tail -12 "$out/$f.txt"; echo '```'; fi
  done
  echo "<!-- perf/run.sh:end -->"
} > "$out/section.md"
python3 - "$out/section.md" <<'PY'
import re, sys
section = open(sys.argv[1]).read().rstrip("\n")
path = "perf/RESULTS.md"
text = open(path).read()
pattern = re.compile(r"<!-- perf/run.sh:begin.*?<!-- perf/run.sh:end -->", re.S)
text = pattern.sub(lambda m: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
echo "perf/RESULTS.md updated (section 'Latest run of perf/run.sh')"
