#!/usr/bin/env bash
# The main job on the default data: the teacher/student method on Fashion-MNIST, end to end, as the
# default pipeline (pipelines/fashion-mnist.yaml):
#   ingest train (60,000) and test (10,000); split train into D (100 images a class) and U (59,000,
#   labels withheld); train the supervised baseline and the teacher on D; score U; select D-hat
#   (top-K a class); pre-train the student on D-hat; fine-tune it on D; evaluate each on the test set;
#   then draw the report (contact sheets by rank, class balance, K sweep) and print the result table.
# About 12 minutes on 2 cores. Stages are cached under runs/fashion-mnist/cache: a second run reuses
# them, and `./streaming run pipelines/fashion-mnist.yaml --set scoring.k=4000` reruns only select,
# the student and fine-tuning.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
FM=/usr/share/datasets/fashion-mnist
if [ ! -f "$FM/train-images-idx3-ubyte.gz" ]; then
  echo "Fashion-MNIST is not installed; installing Debian's dataset-fashion-mnist ..." >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
fi
OUT="${OUT:-runs/fashion-mnist}"
./streaming run pipelines/fashion-mnist.yaml --out "$OUT" "$@"
./streaming report "$OUT"
