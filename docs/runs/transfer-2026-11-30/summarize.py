#!/usr/bin/env python3
"""Table of the transfer study from results.tsv next to this file (one line a training, written by run.sh), and the
distractor run's D-hat counts from distractors.run.json. Prints Markdown; +- is the sample standard deviation over
the seeds."""
import csv, json, os, statistics

here = os.path.dirname(os.path.abspath(__file__))
rows = list(csv.DictReader(open(os.path.join(here, "results.tsv")), delimiter="\t"))
models = [("baseline", "supervised baseline on Fashion-MNIST's D (1,000 labels)"),
          ("student", "semi-supervised student (D-hat, then D)"),
          ("supervised", "fully supervised on all 60,000 Fashion-MNIST images")]
cols = [(n, m) for n in ("10", "100") for m in ("fc", "full", "full-cosine")]
mode_names = {"fc": "fc only", "full": "full, lr 0.02 drops", "full-cosine": "full, lr 0.1 cosine"}

def cell(model, n, mode):
    v = [100 * float(r["top1"]) for r in rows if r["model"] == model and r["labels_per_digit"] == n and r["mode"] == mode]
    if not v: return "-"
    return f"{statistics.mean(v):.2f} +- {statistics.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"

print("| start from | " + " | ".join(f"{n} a digit, {mode_names[m]}" for n, m in cols) + " |")
print("| --- |" + " --- |" * len(cols))
for key, name in models:
    print(f"| {name} | " + " | ".join(cell(key, n, m) for n, m in cols) + " |")
print(f"| no transfer: cnn-small on the digits alone (the train command's recipe: cosine, lr 0.2, wd 5e-4, augmentation) | "
      + " | ".join(cell("scratch", n, "full") if m == "full-cosine" else "" for n, m in cols) + " |")
n_runs = len(rows)
print(f"\n{n_runs} trainings, top-1 % on the 5,000 held-out digits, mean +- sd over seeds "
      f"({', '.join(sorted({r['seed'] for r in rows}))}); wall time a training {min(float(r['wall_s']) for r in rows):.0f}-{max(float(r['wall_s']) for r in rows):.0f} s.")
p = os.path.join(here, "distractors.run.json")
if os.path.exists(p):
    m = json.load(open(p))["metrics"]
    print(f"\nDigits in U: {int(m['unlabeled']):,} images in U, {int(m['dhat_unlabeled_source_rows']):,} of D-hat's {int(m['dhat_rows']):,} rows are digits "
          f"({100 * m['dhat_unlabeled_source_share']:.2f}%); pseudo-label precision {100 * m['pseudo_label_precision']:.2f}%, "
          f"student fine-tuned {100 * m['student_finetuned']:.2f}%, teacher {100 * m['teacher']:.2f}%, baseline {100 * m['baseline']:.2f}%.")
