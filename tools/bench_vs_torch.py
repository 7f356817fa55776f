#!/usr/bin/env python3
"""Image-encoder throughput: mvb's CPU backend next to PyTorch, same machine, same threads,
same run, random weights at CLIP ViT-B/32 and ViT-B/16 shapes, batch 16, fp32.

Usage (needs the fixtures venv from tools/setup_venv.sh, and a release build of mvb):
    cargo build --release
    tools/.venv/bin/python tools/bench_vs_torch.py [--threads 2] [--iters 5] [--batch 16]

Prints one line per architecture with both medians and the ratio mvb / PyTorch (> 1 means mvb
is faster). CI never runs this: it needs torch.
"""
import argparse
import re
import statistics
import subprocess
import time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

ARCHS = {"b32": 32, "b16": 16}


def torch_ips(patch: int, batch: int, iters: int) -> float:
    cfg = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=patch, projection_dim=512, hidden_act="quick_gelu")
    torch.manual_seed(0)
    model = CLIPVisionModelWithProjection(cfg).eval()
    x = torch.randn(batch, 3, 224, 224)
    times = []
    with torch.inference_mode():
        for i in range(iters + 1):
            t = time.perf_counter()
            model(pixel_values=x).image_embeds
            if i:
                times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def mvb_ips(arch: str, batch: int, iters: int, threads: int) -> float:
    out = subprocess.run(["target/release/mvb", "bench", "encoder", "--arch", arch, "--batch", str(batch),
                          "--iters", str(iters)], check=True, capture_output=True, text=True,
                         env={"RAYON_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}).stdout
    return float(re.search(r"([\d.]+) img/s", out).group(1))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads, batch {a.batch}, fp32, median of {a.iters}")
    for arch, patch in ARCHS.items():
        t = torch_ips(patch, a.batch, a.iters)
        m = mvb_ips(arch, a.batch, a.iters, a.threads)
        print(f"ViT-{arch.upper()}: PyTorch {t:.2f} img/s, mvb {m:.2f} img/s, ratio mvb/PyTorch {m / t:.2f}x")


if __name__ == "__main__":
    main()
