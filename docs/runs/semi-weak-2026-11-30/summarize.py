#!/usr/bin/env python3
"""Table of the semi-weak study from the run records next to this file (seed-N.run.json) and the default pipeline's
records of the same seeds (../dedup-effect-2026-11-30/seed-N-plain.run.json). Prints Markdown; +- is the sample
standard deviation over the seeds."""
import json, os, statistics, sys

here = os.path.dirname(os.path.abspath(__file__))
seeds = [0, 1, 2]
semi = {s: json.load(open(os.path.join(here, f"seed-{s}.run.json")))["metrics"] for s in seeds}
plain = {s: json.load(open(os.path.join(here, "..", "dedup-effect-2026-11-30", f"seed-{s}-plain.run.json")))["metrics"] for s in seeds}

def pct(v): return f"{100 * v:.2f}%"
def mean_sd(values):
    return f"**{100 * statistics.mean(values):.2f}%** +- {100 * statistics.stdev(values):.2f}"

rows = [
    ("supervised baseline (cnn-small on D, 30k images)", lambda s: semi[s]["baseline"]),
    ("equal-budget control (cnn-small on D, 130k images)", lambda s: semi[s]["control"]),
    ("teacher on D only (resnet20, default pipeline)", lambda s: plain[s]["teacher"]),
    ("teacher pre-trained on W's tags only", lambda s: semi[s]["teacher_weak"]),
    ("semi-weak teacher (W's tags, then D)", lambda s: semi[s]["teacher"]),
    ("pseudo-label precision, teacher on D (K = 2,000)", lambda s: plain[s]["pseudo_label_precision"]),
    ("pseudo-label precision, semi-weak teacher", lambda s: semi[s]["pseudo_label_precision"]),
    ("student of the teacher on D, fine-tuned (default pipeline)", lambda s: plain[s]["student_finetuned"]),
    ("**semi-weak student**, fine-tuned", lambda s: semi[s]["student_finetuned"]),
    ("**weakly supervised baseline** (cnn-small, W's tags, then D)", lambda s: semi[s]["weak_finetuned"]),
    ("balanced-with-tags student, fine-tuned", lambda s: semi[s]["tags_finetuned"]),
    ("label precision of balanced-with-tags", lambda s: semi[s]["tags_dhat_precision"]),
    ("tag precision / recall on U", None),
]
print("| | " + " | ".join(f"seed {s}" for s in seeds) + " | mean +- sd |")
print("| --- |" + " --- |" * (len(seeds) + 1))
for name, f in rows:
    if f is None:
        print(f"| {name} | " + " | ".join(f"{pct(semi[s]['tag_precision'])} / {pct(semi[s]['tag_recall'])}" for s in seeds) + " | |")
        continue
    values = [f(s) for s in seeds]
    print(f"| {name} | " + " | ".join(pct(v) for v in values) + f" | {mean_sd(values)} |")

def diff(name, a, b):
    d = [100 * (a(s) - b(s)) for s in seeds]
    print(f"- {name}: " + ", ".join(f"{x:+.2f}" for x in d) + f" -> **{statistics.mean(d):+.2f} +- {statistics.stdev(d):.2f}** points")
print()
diff("semi-weak student - weakly supervised baseline (Table 6's claim)", lambda s: semi[s]["student_finetuned"], lambda s: semi[s]["weak_finetuned"])
diff("semi-weak student - student of the teacher on D", lambda s: semi[s]["student_finetuned"], lambda s: plain[s]["student_finetuned"])
diff("semi-weak teacher - teacher on D", lambda s: semi[s]["teacher"], lambda s: plain[s]["teacher"])
diff("weakly supervised baseline - supervised baseline", lambda s: semi[s]["weak_finetuned"], lambda s: semi[s]["baseline"])
diff("balanced-with-tags - semi-weak student (Table 5)", lambda s: semi[s]["tags_finetuned"], lambda s: semi[s]["student_finetuned"])
diff("semi-weak student - equal-budget control", lambda s: semi[s]["student_finetuned"], lambda s: semi[s]["control"])

# The same study with the teacher fine-tuned on D by the D-only teacher's recipe (55,000 images, cosine, lr 0.2) and
# every fine-tuning on D by the supervised baseline's (cosine, lr 0.1): seed-N-finetune-recipe.run.json, and the
# default pipeline with that fine-tuning, plain-seed-N-finetune-recipe.run.json.
paths = [os.path.join(here, f"{kind}seed-{s}-finetune-recipe.run.json") for s in seeds for kind in ("", "plain-")]
if all(os.path.exists(p) for p in paths):
    semi = {s: json.load(open(os.path.join(here, f"seed-{s}-finetune-recipe.run.json")))["metrics"] for s in seeds}
    plain = {s: json.load(open(os.path.join(here, f"plain-seed-{s}-finetune-recipe.run.json")))["metrics"] for s in seeds}
    print("\n### With the teacher's and the baseline's own recipes for fine-tuning\n")
    rows = [
        ("supervised baseline (cnn-small on D, 30k images)", lambda s: semi[s]["baseline"]),
        ("equal-budget control (cnn-small on D, 130k images)", lambda s: semi[s]["control"]),
        ("teacher on D only (resnet20, default pipeline)", lambda s: plain[s]["teacher"]),
        ("semi-weak teacher (W's tags, then D for 55k images, cosine, lr 0.2)", lambda s: semi[s]["teacher"]),
        ("pseudo-label precision, teacher on D", lambda s: plain[s]["pseudo_label_precision"]),
        ("pseudo-label precision, semi-weak teacher", lambda s: semi[s]["pseudo_label_precision"]),
        ("student of the teacher on D, fine-tuned (cosine, lr 0.1)", lambda s: plain[s]["student_finetuned"]),
        ("**semi-weak student**, fine-tuned (cosine, lr 0.1)", lambda s: semi[s]["student_finetuned"]),
        ("**weakly supervised baseline**, fine-tuned (cosine, lr 0.1)", lambda s: semi[s]["weak_finetuned"]),
        ("balanced-with-tags student, fine-tuned (cosine, lr 0.1)", lambda s: semi[s]["tags_finetuned"]),
    ]
    print("| | " + " | ".join(f"seed {s}" for s in seeds) + " | mean +- sd |")
    print("| --- |" + " --- |" * (len(seeds) + 1))
    for name, f in rows:
        values = [f(s) for s in seeds]
        print(f"| {name} | " + " | ".join(pct(v) for v in values) + f" | {mean_sd(values)} |")
    print()
    diff("semi-weak student - weakly supervised baseline (Table 6's claim)", lambda s: semi[s]["student_finetuned"], lambda s: semi[s]["weak_finetuned"])
    diff("semi-weak student - student of the teacher on D", lambda s: semi[s]["student_finetuned"], lambda s: plain[s]["student_finetuned"])
    diff("semi-weak teacher - teacher on D", lambda s: semi[s]["teacher"], lambda s: plain[s]["teacher"])
    diff("weakly supervised baseline - supervised baseline", lambda s: semi[s]["weak_finetuned"], lambda s: semi[s]["baseline"])
    diff("balanced-with-tags - semi-weak student (Table 5)", lambda s: semi[s]["tags_finetuned"], lambda s: semi[s]["student_finetuned"])
    diff("semi-weak student - equal-budget control", lambda s: semi[s]["student_finetuned"], lambda s: semi[s]["control"])
