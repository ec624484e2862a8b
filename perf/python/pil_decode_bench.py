#!/usr/bin/env python3
"""PIL (Pillow) + numpy reference timings for image decode / preprocessing, single thread.

It gives a "what does the usual Python stack do" baseline to set beside the .NET
decode path. Cases:

  (a)       decode + resize: open from in-memory bytes, resize the shorter side to 224
            (Pillow BILINEAR, which on downscaling widens its support, i.e. antialiases),
            center crop 224x224, convert("RGB"), then float32 CHW normalized with the
            ImageNet mean/std in numpy. Runs on every .jpg/.jpeg/.png in --photos.
  (a-draft) the same, but JPEGs first call Image.draft("RGB", (224, 224)). That lets
            libjpeg decode at a 1/2, 1/4 or 1/8 DCT scale, the smallest that stays
            >= 224 on both sides. JPEG files only.
  (b)       decode of small PNGs (the 28x28 Fashion-MNIST files under --pngs, recursive)
            to a numpy uint8 array.

File reads happen once, before timing, so no disk I/O is timed. Every case gets a
warm-up and then repeats until its time budget is used (time.perf_counter). The
report is the mean microseconds per image and images/s on one core (= 1e6 / mean).
For (a) the all-files row is the plain average of the per-file means, so every
photo counts equally.

Usage: python3 perf/python/pil_decode_bench.py [--photos DIR] [--pngs DIR]
                                               [--seconds S] [--cpu N]
Defaults: <repo>/data-samples/photos and <repo>/data-samples/fashion-mnist-folder.
"""
import os

# Keep numpy / any BLAS to one thread; set before numpy is imported.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import glob
import io
import platform
import sys
import time

import numpy as np
import PIL
from PIL import Image, features

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 1, 3)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 1, 3)
# Fold the /255 into the affine transform: (x/255 - mean)/std = x*scale + bias.
SCALE = (1.0 / (255.0 * STD)).astype(np.float32)
BIAS = (-MEAN / STD).astype(np.float32)


def preprocess(data, draft):
    im = Image.open(io.BytesIO(data))
    if draft and im.format == "JPEG":
        im.draft("RGB", (SIZE, SIZE))
    if im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    w, h = im.size
    s = SIZE / min(w, h)
    nw, nh = (SIZE, max(SIZE, round(h * s))) if w <= h else (max(SIZE, round(w * s)), SIZE)
    im = im.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - SIZE) // 2, (nh - SIZE) // 2
    im = im.crop((left, top, left + SIZE, top + SIZE)).convert("RGB")
    x = np.asarray(im, dtype=np.float32)          # HWC, 0..255
    x = x * SCALE + BIAS                          # normalized HWC
    return np.ascontiguousarray(x.transpose(2, 0, 1))  # CHW float32


def decode_png(data):
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im)  # forces decode; uint8 HxW for mode L


def bench(fn, items, budget_s, warmup_s):
    """Run fn over items round-robin; return (mean_us_per_item, n_items_timed)."""
    end = time.perf_counter() + warmup_s
    while True:
        for it in items:
            fn(it)
        if time.perf_counter() >= end:
            break
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + budget_s
    while True:
        for it in items:
            fn(it)
        n += len(items)
        t = time.perf_counter()
        if t >= deadline:
            break
    return (t - t0) * 1e6 / n, n


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def row(*cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", default=os.path.join(REPO, "data-samples", "photos"))
    ap.add_argument("--pngs", default=os.path.join(REPO, "data-samples", "fashion-mnist-folder"))
    ap.add_argument("--seconds", type=float, default=2.5,
                    help="timed budget per case (split across files for (a)); default 2.5")
    ap.add_argument("--warmup", type=float, default=0.2, help="warm-up seconds per measurement")
    ap.add_argument("--cpu", type=int, default=None, help="pin the process to this CPU (Linux)")
    args = ap.parse_args()

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    photo_paths = sorted(p for p in glob.glob(os.path.join(args.photos, "*"))
                         if p.lower().endswith((".jpg", ".jpeg", ".png")))
    png_paths = sorted(glob.glob(os.path.join(args.pngs, "**", "*.png"), recursive=True))
    if not photo_paths:
        sys.exit(f"no .jpg/.jpeg/.png files in {args.photos}")
    if not png_paths:
        sys.exit(f"no .png files under {args.pngs}")

    print(f"Python {platform.python_version()}, Pillow {PIL.__version__} "
          f"(libjpeg {features.version('jpg')}, turbo={features.check_feature('libjpeg_turbo')}, "
          f"zlib {features.version('zlib')}), numpy {np.__version__}")
    print(f"CPU: {cpu_model()}; single thread"
          + (f", pinned to cpu {args.cpu}" if args.cpu is not None else ""))
    print()

    photos = []
    for p in photo_paths:
        with open(p, "rb") as f:
            data = f.read()
        with Image.open(io.BytesIO(data)) as im:
            fmt, mode, (w, h) = im.format, im.mode, im.size
        out = preprocess(data, draft=False)
        assert out.shape == (3, SIZE, SIZE) and out.dtype == np.float32
        photos.append((os.path.basename(p), data, fmt, mode, w, h))

    per_file = max(0.25, args.seconds / len(photos))
    print(f"(a) decode + resize/crop {SIZE} + normalize to float32 CHW "
          f"({len(photos)} files, ~{per_file:.2f} s each per variant)")
    print()
    print(row("image", "format", "WxH", "bytes", "(a) µs/img", "(a) img/s",
              "(a-draft) µs/img", "(a-draft) img/s"))
    print(row("---", "---", "---", "---:", "---:", "---:", "---:", "---:"))
    plain_us, draft_us = [], []
    for name, data, fmt, mode, w, h in photos:
        us, _ = bench(lambda d: preprocess(d, False), [data], per_file, args.warmup)
        plain_us.append(us)
        if fmt == "JPEG":
            dus, _ = bench(lambda d: preprocess(d, True), [data], per_file, args.warmup)
            draft_us.append(dus)
            dcells = (f"{dus:,.0f}", f"{1e6 / dus:,.1f}")
        else:
            dcells = ("n/a", "n/a")
        print(row(name, f"{fmt} {mode}", f"{w}x{h}", f"{len(data):,}",
                  f"{us:,.0f}", f"{1e6 / us:,.1f}", *dcells))
    mp = float(np.mean(plain_us))
    mj = float(np.mean([u for u, ph in zip(plain_us, photos) if ph[2] == "JPEG"] or [float("nan")]))
    md = float(np.mean(draft_us)) if draft_us else float("nan")
    print(row("**all files (mean)**", "", "", "", f"{mp:,.0f}", f"{1e6 / mp:,.1f}", "", ""))
    print(row("**JPEGs only (mean)**", "", "", "", f"{mj:,.0f}", f"{1e6 / mj:,.1f}",
              f"{md:,.0f}", f"{1e6 / md:,.1f}"))
    print()

    pngs = []
    for p in png_paths:
        with open(p, "rb") as f:
            pngs.append(f.read())
    first = decode_png(pngs[0])
    print(f"(b) PNG decode to numpy uint8 ({len(pngs)} files, e.g. {first.shape} {first.dtype}, "
          f"mean {np.mean([len(d) for d in pngs]):.0f} bytes)")
    print()
    us, n = bench(decode_png, pngs, args.seconds, args.warmup)
    print(row("case", "images timed", "µs/img", "img/s per core"))
    print(row("---", "---:", "---:", "---:"))
    print(row("(b) 28x28 PNG decode", f"{n:,}", f"{us:,.1f}", f"{1e6 / us:,.0f}"))


if __name__ == "__main__":
    main()
