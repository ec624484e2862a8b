#!/usr/bin/env python3
"""Issue 29, scale on paper: data-parallel ResNet-50 on 8, 64 and 512 GPUs at 25 and 100 Gb/s.

The bytes a step come from this engine's own measurement (perf/distributed.sh's resnet50 log: the gradient bytes
every rank allreduces a step, 10 classes), corrected to ImageNet's 1,000-class head. The per-GPU compute time of a
step comes from published single-GPU training throughput (NVIDIA DeepLearningExamples, PyTorch ResNet-50 v1.5
README, "Training performance results", pytorch-21.03 container):
  A100 80GB mixed precision 2,470 img/s; A100 TF32 938 img/s; V100 16GB mixed precision 1,200 img/s;
  V100 16GB FP32 367 img/s; at 256 images a GPU a step (112 for V100 FP32, which its memory needs).
Model: ring allreduce, each GPU sends and receives 2(N-1)/N of the gradient bytes over its own link at the given
bandwidth, plus 2(N-1) hops of 5 microseconds. Without overlap (this engine: the allreduce follows backward) a step
takes compute + communication. With overlap (gradient hooks bucketing during backward, as PyTorch DDP and Horovod do)
only the part of the communication longer than backward (taken as 2/3 of the step's compute) adds to it.

    perf/distributed-scale.py perf/results/distributed/resnet50-b8-2x1-round1.txt
"""
import re
import sys

log = open(sys.argv[1]).read()
measured = float(re.search(r"([0-9.]+) MB a step", log).group(1)) * 1e6
head_10 = (2048 * 10 + 10) * 4
head_1000 = (2048 * 1000 + 1000) * 4
grad = measured - head_10 + head_1000
gpus = {  # name: (images/s on one GPU, images a GPU a step)
    "A100 mixed precision": (2470, 256),
    "A100 TF32": (938, 256),
    "V100 mixed precision": (1200, 256),
    "V100 FP32": (367, 112),
}
hop = 5e-6
print(f"gradient bytes a step: {measured / 1e6:.2f} MB measured (10 classes) -> {grad / 1e6:.2f} MB with a 1,000-class head")
print()
print("| GPU | step compute (ms) | N | link | allreduce (ms) | efficiency, allreduce after backward | efficiency, overlapped with backward | what limits |")
print("|---|---:|---:|---|---:|---:|---:|---|")
for name, (rate, batch) in gpus.items():
    compute = batch / rate
    for n in (8, 64, 512):
        for gbps in (25, 100):
            bw = gbps * 1e9 / 8
            comm = 2 * (n - 1) / n * grad / bw + 2 * (n - 1) * hop
            after = compute / (compute + comm)
            exposed = max(0.0, comm - compute * 2 / 3)
            overlap = compute / (compute + exposed)
            limit = "network bandwidth" if comm > compute * 2 / 3 else "compute (the network hides behind backward)"
            if 2 * (n - 1) * hop > 0.1 * comm:
                limit += "; ring latency is over a tenth of the allreduce"
            print(f"| {name} | {compute * 1e3:.1f} | {n} | {gbps} Gb/s | {comm * 1e3:.1f} | {after:.3f} | {overlap:.3f} | {limit} |")
