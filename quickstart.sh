#!/usr/bin/env bash
# The main job on the default data.
# Today: ingest Fashion-MNIST (train 60,000 + test 10,000 images, 10 classes) into image shards,
# print each dataset's inventory and draw a contact sheet of the training set.
# Expected: out/fashion-mnist/train with 60,000 images (6,000 a class) in 6 shards, out/fashion-mnist/test with 10,000.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
FM=/usr/share/datasets/fashion-mnist
if [ ! -f "$FM/train-images-idx3-ubyte.gz" ]; then
  echo "Fashion-MNIST is not installed; installing Debian's dataset-fashion-mnist ..." >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq dataset-fashion-mnist
fi
OUT="${OUT:-out/fashion-mnist}"
./streaming ingest --source "$FM/train-images-idx3-ubyte.gz" --out "$OUT/train" --overwrite
./streaming ingest --source "$FM/t10k-images-idx3-ubyte.gz" --out "$OUT/test" --overwrite
./streaming inspect "$OUT/train" --sample 64 --out "$OUT/train-sheet.png"
./streaming inspect "$OUT/test"
