#!/usr/bin/env python3
"""Regenerate the small test/demo inputs under data-samples/.

Usage (from anywhere):
    python3 data-samples/make_samples.py [--fashion-mnist DIR] [--skimage-data DIR]

Needs: Python >= 3.9, numpy, Pillow; scikit-image only to locate its data folder
(or pass --skimage-data). Defaults: Fashion-MNIST idx files from
/usr/share/datasets/fashion-mnist/ (the four standard *-ubyte.gz files), photos
from the installed skimage package's data/ folder.

It writes (deleting and recreating each of these first, so reruns leave no stale
files; nothing else in data-samples/ is touched):
  fashion-mnist-mini/    first 300 train + first 100 test images/labels, as gzipped
                         idx files with the standard names (magic 0x803 images
                         n x 28 x 28, 0x801 labels; gzip mtime=0, no file name).
  fashion-mnist-mini.tar WebDataset tar of the same 300 train images, in order:
                         train-00000.png (PIL PNG, mode L) + train-00000.cls
                         (label as decimal ASCII, no newline), ... ; ustar format,
                         mtime 0, uid/gid 0, empty user/group names, mode 0644.
  fashion-mnist-folder/  first 200 train images as <ClassName>/train-NNNNN.png
                         (same PNG bytes as the tar; "/" in class names -> "_").
  photos/                real photos from skimage's data folder: PNG originals
                         re-encoded as JPEG quality 90, JPEG originals copied
                         byte-for-byte, camera.png copied as-is (grayscale PNG).
                         Any JPEG over ~1 MB would be scaled to shorter side 512.
  bad/                   malformed inputs for quarantine tests (see README.md).

Deterministic: no timestamps or randomness without a fixed seed. Byte-identical
output across machines also assumes the same zlib/libjpeg builds behind
Pillow (PNG/JPEG encoders); the idx, tar layout and bad/ files do not depend on them.
"""
import argparse
import gzip
import io
import os
import random
import shutil
import struct
import sys
import tarfile
import zlib

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))

N_TRAIN = 300        # mini idx + tar
N_TEST = 100         # mini idx
N_FOLDER = 200       # class-folder layout

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# (output name, skimage data file). PNG sources become JPEG q90; JPEG sources are copied.
PHOTOS = [
    ("astronaut.jpg", "astronaut.png"),          # NASA, public domain
    ("coffee.jpg", "coffee.png"),                # CC0 (Rachel Michetti)
    ("chelsea.jpg", "chelsea.png"),              # CC0 (Stefan van der Walt)
    ("rocket.jpg", "rocket.jpg"),                # SpaceX, public domain
    ("retina.jpg", "retina.jpg"),                # Wikimedia, CC0
    ("hubble_deep_field.jpg", "hubble_deep_field.jpg"),  # NASA, public domain
]
PNG_COPIES = [("camera.png", "camera.png")]      # CC0 (Lav Varshney), grayscale
MAX_JPEG_BYTES = 1_000_000
JPEG_QUALITY = 90

RANDOM_SEED = 20240601
HUGE_DIM = 200_000


# ---------------------------------------------------------------- idx helpers
def find_idx(src_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(src_dir, name)
        if os.path.exists(p):
            return p
    sys.exit(f"make_samples: cannot find {stem}[.gz] in {src_dir}")


def read_idx(path, count):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        if magic >> 8 != 0x08:  # 0x00000800 | ndim, unsigned byte data
            sys.exit(f"make_samples: {path}: not an unsigned-byte idx file (magic {magic:#010x})")
        ndim = magic & 0xFF
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        if dims[0] < count:
            sys.exit(f"make_samples: {path} has only {dims[0]} items, need {count}")
        item = int(np.prod(dims[1:], dtype=np.int64)) if ndim > 1 else 1
        data = np.frombuffer(f.read(count * item), dtype=np.uint8)
    return data.reshape((count,) + tuple(dims[1:]))


def write_idx_gz(path, arr):
    magic = 0x00000800 | arr.ndim
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with open(path, "wb") as raw:
        # filename="" keeps the output path out of the gzip header; mtime=0 for determinism.
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def png_bytes(img28):
    buf = io.BytesIO()
    im = Image.fromarray(np.ascontiguousarray(img28, dtype=np.uint8))  # 2-D uint8 -> mode L
    assert im.mode == "L"
    im.save(buf, format="PNG")
    return buf.getvalue()


def add_tar_member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    tar.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------- sections
def reset_dir(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)


def make_fashion(src_dir):
    train_x = read_idx(find_idx(src_dir, "train-images-idx3-ubyte"), N_TRAIN)
    train_y = read_idx(find_idx(src_dir, "train-labels-idx1-ubyte"), N_TRAIN)
    test_x = read_idx(find_idx(src_dir, "t10k-images-idx3-ubyte"), N_TEST)
    test_y = read_idx(find_idx(src_dir, "t10k-labels-idx1-ubyte"), N_TEST)
    assert train_x.shape == (N_TRAIN, 28, 28) and test_x.shape == (N_TEST, 28, 28)

    mini = os.path.join(HERE, "fashion-mnist-mini")
    reset_dir(mini)
    write_idx_gz(os.path.join(mini, "train-images-idx3-ubyte.gz"), train_x)
    write_idx_gz(os.path.join(mini, "train-labels-idx1-ubyte.gz"), train_y)
    write_idx_gz(os.path.join(mini, "t10k-images-idx3-ubyte.gz"), test_x)
    write_idx_gz(os.path.join(mini, "t10k-labels-idx1-ubyte.gz"), test_y)

    pngs = [png_bytes(train_x[i]) for i in range(N_TRAIN)]

    tar_path = os.path.join(HERE, "fashion-mnist-mini.tar")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(N_TRAIN):
            key = f"train-{i:05d}"
            add_tar_member(tar, key + ".png", pngs[i])
            add_tar_member(tar, key + ".cls", str(int(train_y[i])).encode("ascii"))
    with open(tar_path, "wb") as f:
        f.write(buf.getvalue())

    folder = os.path.join(HERE, "fashion-mnist-folder")
    reset_dir(folder)
    for name in CLASS_NAMES:
        os.makedirs(os.path.join(folder, name.replace("/", "_")))
    for i in range(N_FOLDER):
        cls = CLASS_NAMES[int(train_y[i])].replace("/", "_")
        with open(os.path.join(folder, cls, f"train-{i:05d}.png"), "wb") as f:
            f.write(pngs[i])

    hist = lambda y: {int(k): int(v) for k, v in zip(*np.unique(y, return_counts=True))}
    print(f"fashion-mnist: train[:{N_TRAIN}] labels {hist(train_y)}")
    print(f"fashion-mnist: test[:{N_TEST}] labels {hist(test_y)}")
    print(f"fashion-mnist: folder[:{N_FOLDER}] labels {hist(train_y[:N_FOLDER])}")


def encode_jpeg(im):
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def shrink_to_512(im):
    w, h = im.size
    s = 512 / min(w, h)
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)


def make_photos(sk_dir):
    out = os.path.join(HERE, "photos")
    reset_dir(out)
    for dst, src in PHOTOS:
        src_path = os.path.join(sk_dir, src)
        with open(src_path, "rb") as f:
            raw = f.read()
        if src.lower().endswith((".jpg", ".jpeg")) and len(raw) <= MAX_JPEG_BYTES:
            data = raw  # real-world JPEG: keep the original encoder's bytes
        else:
            with Image.open(src_path) as im:
                im = im.convert("RGB")
                data = encode_jpeg(im)
                if len(data) > MAX_JPEG_BYTES:
                    data = encode_jpeg(shrink_to_512(im))
        with open(os.path.join(out, dst), "wb") as f:
            f.write(data)
    for dst, src in PNG_COPIES:
        src_path = os.path.join(sk_dir, src)
        if os.path.getsize(src_path) >= 300_000:
            sys.exit(f"make_samples: {src_path} unexpectedly large")
        shutil.copyfile(src_path, os.path.join(out, dst))
    for name in sorted(os.listdir(out)):
        with Image.open(os.path.join(out, name)) as im:
            print(f"photos/{name}: {im.format} {im.mode} {im.size[0]}x{im.size[1]} "
                  f"{os.path.getsize(os.path.join(out, name))} bytes")


def png_chunk(ctype, data):
    return (struct.pack(">I", len(data)) + ctype + data
            + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF))


def make_bad(sk_dir):
    out = os.path.join(HERE, "bad")
    reset_dir(out)

    def put(name, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    put("empty.jpg", b"")

    rnd = random.Random(RANDOM_SEED).randbytes(4096)
    assert not rnd.startswith((b"\xff\xd8", b"\x89PNG", b"GIF8", b"BM", b"RIFF"))
    put("random-bytes.jpg", rnd)

    # skimage ships a 400-byte JPEG cut off inside its header segments.
    sk_trunc = os.path.join(sk_dir, "truncated.jpg")
    coffee = open(os.path.join(HERE, "photos", "coffee.jpg"), "rb").read()
    if os.path.exists(sk_trunc):
        shutil.copyfile(sk_trunc, os.path.join(out, "truncated.jpg"))
    else:
        put("truncated.jpg", coffee[: len(coffee) * 40 // 100])
    # Valid headers, entropy-coded scan cut off at 40%: decoders may return a partial image.
    put("truncated-midscan.jpg", coffee[: len(coffee) * 40 // 100])

    put("text-renamed.png",
        b"This is not a PNG image.\n"
        b"It is a plain-text file whose name ends in .png,\n"
        b"used to test that the pipeline sniffs content instead of trusting extensions.\n")

    # Valid signature + IHDR (correct CRC) claiming 200000 x 200000 8-bit RGB, then a
    # tiny IDAT (one filter byte + 3 zero bytes, far too short) and IEND. A decoder
    # that allocates from the header alone would ask for ~120 GB.
    ihdr = struct.pack(">IIBBBBB", HUGE_DIM, HUGE_DIM, 8, 2, 0, 0, 0)
    put("huge-header.png",
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 4, 9))
        + png_chunk(b"IEND", b""))
    for name in sorted(os.listdir(out)):
        print(f"bad/{name}: {os.path.getsize(os.path.join(out, name))} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fashion-mnist", default="/usr/share/datasets/fashion-mnist",
                    help="folder with the four Fashion-MNIST idx files (.gz or raw)")
    ap.add_argument("--skimage-data", default=None,
                    help="scikit-image data folder (default: from the installed skimage)")
    args = ap.parse_args()
    sk_dir = args.skimage_data
    if sk_dir is None:
        import skimage
        sk_dir = os.path.join(os.path.dirname(skimage.__file__), "data")

    make_fashion(args.fashion_mnist)
    make_photos(sk_dir)
    make_bad(sk_dir)  # after photos: truncated-midscan.jpg is cut from photos/coffee.jpg


if __name__ == "__main__":
    main()
