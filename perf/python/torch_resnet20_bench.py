#!/usr/bin/env python3
"""resnet20 (CIFAR-style, 1x1 projection shortcuts: the same network as Streaming.Models' resnet20)
training and inference throughput in Debian's PyTorch, on random 1x28x28 inputs, 10 classes.

    /usr/bin/python3 perf/python/torch_resnet20_bench.py [--threads 2] [--batch 128] [--seconds 20]

Training = forward + cross-entropy + backward + SGD(momentum 0.9, wd 1e-4) step; inference = eval mode,
no_grad, batch 256. Prints images/s for each; compare with `Streaming.Perf model`.

    /usr/bin/python3 perf/python/torch_resnet20_bench.py --score-fmnist 59000 [--threads 2]

The scoring peer of `score` (perf/score-throughput.sh): the first N Fashion-MNIST training images, decoded and
normalized before the clock starts (pre-decoded tensors), then batches of 256 through the model, softmax and top-10,
as the engine's infer stage does. Prints the BLAS and the CPU capability PyTorch uses, for the record.
"""
import argparse, gzip, os, subprocess, time
import torch
import torch.nn as nn
import torch.nn.functional as F

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + idt)

class ResNet20(nn.Module):
    def __init__(self, classes=10, cin=1, n=3, w=1):
        super().__init__()
        c = 16 * w
        self.conv1 = nn.Conv2d(cin, c, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(c)
        layers, inp = [], c
        for planes, stride in ((c, 1), (2 * c, 2), (4 * c, 2)):
            blocks = []
            for i in range(n):
                blocks.append(Block(inp, planes, stride if i == 0 else 1)); inp = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(4 * c, classes)
    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

def timed(step, seconds, batch):
    for _ in range(3): step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step(); n += batch
    return n / (time.perf_counter() - t0)

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2); ap.add_argument("--batch", type=int, default=128)
ap.add_argument("--seconds", type=float, default=20)
ap.add_argument("--channels-last", action="store_true", help="NHWC layout for the model and the inputs, as the engine uses")
ap.add_argument("--score-fmnist", type=int, metavar="N", help="time scoring N pre-decoded Fashion-MNIST images instead")
ap.add_argument("--fmnist", default="/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
model = ResNet20()
if a.score_fmnist:
    config = torch.__config__.show()
    capability = next((l.split(":", 1)[1].strip() for l in config.splitlines() if "CPU capability" in l), "unknown")
    blas_info = next((p.split("=", 1)[1] for p in config.replace(",", " ").split() if p.startswith("BLAS_INFO=")), "unknown")
    try:  # BLAS_INFO=generic means whatever libblas.so.3 the alternatives system points to.
        blas = subprocess.run(["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"], capture_output=True, text=True).stdout
        blas = next((l.split(":", 1)[1].strip() for l in blas.splitlines() if l.startswith("Value:")), "unknown")
    except OSError:
        blas = "unknown"
    onednn = next((l.strip(" -") for l in config.splitlines() if "MKL-DNN" in l or "oneDNN" in l), "no oneDNN")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU capability {capability}, {onednn}, BLAS_INFO={blas_info}, libblas.so.3 -> {blas}")
    with gzip.open(a.fmnist, "rb") as f:
        raw = f.read()
    n = a.score_fmnist
    pixels = torch.frombuffer(bytearray(raw[16:16 + n * 784]), dtype=torch.uint8).reshape(n, 1, 28, 28)
    x = ((pixels.float() / 255 - 0.2860) / 0.3530).contiguous()  # decoded and normalized before the clock starts
    model.eval()
    with torch.no_grad():
        for _ in range(3): model(x[:256])
        t0 = time.perf_counter()
        for i in range(0, n, 256):
            p, c = torch.softmax(model(x[i:i + 256]), 1).topk(10, 1)
        dt = time.perf_counter() - t0
    print(f"| PyTorch {torch.__version__} ({capability}), pre-decoded tensors | {a.threads} | score {n:,} images, batch 256, softmax + top-10 | {n / dt:,.0f} images/s |")
    raise SystemExit(0)
fmt = torch.channels_last if a.channels_last else torch.contiguous_format
model = model.to(memory_format=fmt)
layout = "channels-last" if a.channels_last else "NCHW"
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, params {sum(p.numel() for p in model.parameters()):,}, {layout}")
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
x, y = torch.randn(a.batch, 1, 28, 28).to(memory_format=fmt), torch.randint(0, 10, (a.batch,))
def train():
    opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
model.train(); tr = timed(train, a.seconds, a.batch)
xi = torch.randn(256, 1, 28, 28).to(memory_format=fmt)
model.eval()
def infer():
    with torch.no_grad(): model(xi)
inf = timed(infer, a.seconds, 256)
print(f"| PyTorch {torch.__version__}, {layout} | {a.threads} | train batch {a.batch} | {tr:,.0f} images/s |")
print(f"| PyTorch {torch.__version__}, {layout} | {a.threads} | inference batch 256 | {inf:,.0f} images/s |")
