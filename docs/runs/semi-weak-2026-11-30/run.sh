#!/bin/bash
# Issue 20 part 2: the semi-weakly supervised setting, pipelines/fashion-mnist-semi-weak.yaml, seeds 0-2 (native kernels),
# as run on 2026-11-30. Each seed reuses the default pipeline's stages of that seed (ingest, split and baseline: seeds 1
# and 2 share its run folder, seed 0 got hard-linked copies of runs/fm-native's), so the plain pipeline's rows compare
# with the same D, U and baseline. STREAMING: the command
# (default ./streaming; the study ran a snapshot of the build, so that edits made meanwhile could not touch the binary
# it ran). summarize.py prints the tables of docs/results.md from the records; README.md says which file is which.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
export OMP_WAIT_POLICY=PASSIVE
S=${STREAMING:-./streaming}
R=docs/runs/semi-weak-2026-11-30
out_of() { if [ $1 = 0 ]; then echo runs/semi-weak/seed-0; else echo runs/dedup-study/seed-$1; fi; }
plain_out() { if [ $1 = 0 ]; then echo runs/fm-native; else echo runs/dedup-study/seed-$1; fi; }
# 1. First pass: every fine-tuning on D as the default pipeline's (three 0.1 drops from lr 0.02, 30,000 images),
#    the teacher's included (the manifest's first version).
SHORT="--set teacher.images=30000 --set teacher.lr=0.02 --set teacher.schedule=finetune --set finetune.lr=0.02 --set finetune.schedule=finetune"
for seed in ${SEEDS:-0 1 2}; do
  $S run pipelines/fashion-mnist-semi-weak.yaml --out $(out_of $seed) --set seed=$seed $SHORT > $R/seed-$seed.log 2>&1
  cp $(out_of $seed)/run.json $R/seed-$seed.run.json
done
# 2. Seed 0: only the teacher fine-tuned by the D-only teacher's own recipe (55,000 images, cosine, lr 0.2).
$S run pipelines/fashion-mnist-semi-weak.yaml --out $(out_of 0) --set finetune.lr=0.02 --set finetune.schedule=finetune > $R/seed-0-teacher-recipe.log 2>&1
cp $(out_of 0)/run.json $R/seed-0-teacher-recipe.run.json
# 3. The manifest as it is now: that teacher recipe, and every other fine-tuning on D by the supervised baseline's
#    recipe (cosine, lr 0.1); and the default pipeline with that fine-tuning (only its finetune stage reruns).
for seed in ${SEEDS:-0 1 2}; do
  $S run pipelines/fashion-mnist-semi-weak.yaml --out $(out_of $seed) --set seed=$seed > $R/seed-$seed-finetune-recipe.log 2>&1
  cp $(out_of $seed)/run.json $R/seed-$seed-finetune-recipe.run.json
  $S run pipelines/fashion-mnist.yaml --out $(plain_out $seed) --set seed=$seed --set finetune.lr=0.1 --set finetune.schedule=cosine > $R/plain-seed-$seed-finetune-recipe.log 2>&1
  cp $(plain_out $seed)/run.json $R/plain-seed-$seed-finetune-recipe.run.json
done
python3 $R/summarize.py > $R/summary.md
