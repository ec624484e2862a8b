#!/usr/bin/env python3
"""resnet20 (CIFAR-style, 1x1 projection shortcuts: the same network as Streaming.Models' resnet20)
training and inference throughput in Debian's PyTorch, on random 1x28x28 inputs, 10 classes.

    /usr/bin/python3 perf/python/torch_resnet20_bench.py [--threads 2] [--batch 128] [--seconds 20]

Training = forward + cross-entropy + backward + SGD(momentum 0.9, wd 1e-4) step; inference = eval mode,
no_grad, batch 256. Prints images/s for each; compare with `Streaming.Perf model`.
"""
import argparse, time
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
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
model = ResNet20()
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
