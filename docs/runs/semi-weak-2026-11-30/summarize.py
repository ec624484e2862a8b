#!/usr/bin/env python3
"""Tables of the semi-weak study from the run records next to this file, in Markdown; +- is the sample standard
deviation over the seeds (README.md says which record is which).
  1. the first pass (seed-N.run.json), against the default pipeline of the same seeds
     (../dedup-effect-2026-11-30/seed-N-plain.run.json);
  2. the manifest as committed (seed-N-finetune-recipe.run.json), against the default pipeline with the same
     fine-tuning (plain-seed-N-finetune-recipe.run.json)."""
import json, os, statistics

here = os.path.dirname(os.path.abspath(__file__))
seeds = [0, 1, 2]

def load(pattern):
    return {s: json.load(open(os.path.join(here, pattern.format(s))))["metrics"] for s in seeds}

def pct(v): return f"{100 * v:.2f}%"

def print_table(rows, semi):
    print("| | " + " | ".join(f"seed {s}" for s in seeds) + " | mean +- sd |")
    print("| --- |" + " --- |" * (len(seeds) + 1))
    for name, f in rows:
        if f is None:
            print(f"| {name} | " + " | ".join(f"{pct(semi[s]['tag_precision'])} / {pct(semi[s]['tag_recall'])}" for s in seeds) + " | |")
            continue
        values = [f(s) for s in seeds]
        print(f"| {name} | " + " | ".join(pct(v) for v in values) + f" | **{100 * statistics.mean(values):.2f}%** +- {100 * statistics.stdev(values):.2f} |")

def print_differences(semi, plain):
    pairs = [
        ("semi-weak student - weakly supervised baseline (Table 6's claim)", lambda s: semi[s]["student_finetuned"], lambda s: semi[s]["weak_finetuned"]),
        ("semi-weak student - student of the teacher on D", lambda s: semi[s]["student_finetuned"], lambda s: plain[s]["student_finetuned"]),
        ("semi-weak teacher - teacher on D", lambda s: semi[s]["teacher"], lambda s: plain[s]["teacher"]),
        ("weakly supervised baseline - supervised baseline", lambda s: semi[s]["weak_finetuned"], lambda s: semi[s]["baseline"]),
        ("balanced-with-tags - semi-weak student (Table 5)", lambda s: semi[s]["tags_finetuned"], lambda s: semi[s]["student_finetuned"]),
        ("semi-weak student - equal-budget control", lambda s: semi[s]["student_finetuned"], lambda s: semi[s]["control"]),
    ]
    for name, a, b in pairs:
        d = [100 * (a(s) - b(s)) for s in seeds]
        print(f"- {name}: " + ", ".join(f"{x:+.2f}" for x in d) + f" -> **{statistics.mean(d):+.2f} +- {statistics.stdev(d):.2f}** points")

semi, plain = load("seed-{}.run.json"), load("../dedup-effect-2026-11-30/seed-{}-plain.run.json")
print_table([
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
], semi)
print()
print_differences(semi, plain)

semi, plain = load("seed-{}-finetune-recipe.run.json"), load("plain-seed-{}-finetune-recipe.run.json")
print("\n### With the teacher's and the baseline's own recipes for fine-tuning\n")
print_table([
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
], semi)
print()
print_differences(semi, plain)
