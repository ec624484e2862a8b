#!/bin/bash
# Issue 20 part 3: does removing U's duplicates of the test set change the student? The default pipeline (native
# kernels) with and without data.dedup_against: test, seeds 0-2. Seed 0 without dedup is runs/fm-native (already run);
# each dedup run shares its seed's cache, so only dedup, score and what follows rerun.
cd /work/main
R=/work/study/dedup-effect
mkdir -p $R
cp runs/fm-native/run.json $R/seed-0-plain.run.json
for seed in 0 1 2; do
  out=runs/dedup-study/seed-$seed; [ $seed = 0 ] && out=runs/fm-native
  if [ $seed != 0 ]; then
    ./streaming run pipelines/fashion-mnist.yaml --out $out --set seed=$seed > $R/seed-$seed-plain.log 2>&1
    cp $out/run.json $R/seed-$seed-plain.run.json
  fi
  ./streaming run pipelines/fashion-mnist.yaml --out $out --set seed=$seed --set data.dedup_against=test > $R/seed-$seed-dedup.log 2>&1
  cp $out/run.json $R/seed-$seed-dedup.run.json
done
echo finished > $R/DONE
