#!/usr/bin/env python3
"""Image-encoder throughput: mvb's CPU backend next to PyTorch, same machine, same threads,
same run, random weights at CLIP ViT-B/32 and ViT-B/16 shapes, batch 16, in fp32 and in bf16
(mvb: bf16 products with f32 accumulation; PyTorch: the model cast to bfloat16).

Usage (needs the fixtures venv from tools/setup_venv.sh, and a release build of mvb):
    cargo build --release
    tools/.venv/bin/python tools/bench_vs_torch.py [--threads 2] [--iters 5] [--batch 16]

Prints one line per architecture and precision with both medians and the ratio mvb / PyTorch
(> 1 means mvb is faster), plus mvb bf16 against PyTorch fp32. CI never runs this: it needs torch.
"""
import argparse
import os
import re
import statistics
import subprocess
import time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

ARCHS = {"b32": 32, "b16": 16}


def torch_ips(patch: int, batch: int, iters: int, dtype: torch.dtype) -> float:
    cfg = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=patch, projection_dim=512, hidden_act="quick_gelu")
    torch.manual_seed(0)
    model = CLIPVisionModelWithProjection(cfg).eval().to(dtype)
    x = torch.randn(batch, 3, 224, 224, dtype=dtype)
    times = []
    with torch.inference_mode():
        for i in range(iters + 1):
            t = time.perf_counter()
            model(pixel_values=x).image_embeds
            if i:
                times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


MVB = os.environ.get("MVB", "target/release/mvb")


def mvb_ips(arch: str, batch: int, iters: int, threads: int, precision: str) -> tuple[float, float]:
    """mvb's images/s and GFLOP per image."""
    out = subprocess.run([MVB, "bench", "encoder", "--arch", arch, "--batch", str(batch),
                          "--iters", str(iters), "--precision", precision], check=True, capture_output=True, text=True,
                         env={"RAYON_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}).stdout
    ips = float(re.search(r"([\d.]+) img/s", out).group(1))
    return ips, float(re.search(r"([\d.]+) GFLOP/s", out).group(1)) / ips


def peak_gflops(threads: int) -> float:
    """This CPU's measured f32 FMA peak over `threads` threads (`mvb bench peak`)."""
    out = subprocess.run([MVB, "bench", "peak"], check=True, capture_output=True, text=True,
                         env={"RAYON_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}).stdout
    return float(re.search(r"([\d.]+) GFLOP/s", out).group(1))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    peak = peak_gflops(a.threads)
    print(f"torch {torch.__version__}, {a.threads} threads, batch {a.batch}, median of {a.iters}; "
          f"measured f32 FMA peak {peak:.1f} GFLOP/s")
    for arch, patch in ARCHS.items():
        rates = {}
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            t = torch_ips(patch, a.batch, a.iters, dtype)
            m, gflop = mvb_ips(arch, a.batch, a.iters, a.threads, "f32" if name == "fp32" else "bf16")
            rates[name] = (t, m)
            print(f"ViT-{arch.upper()} {name}: PyTorch {t:.2f} img/s ({100 * t * gflop / peak:.0f}% of peak), "
                  f"mvb {m:.2f} img/s ({100 * m * gflop / peak:.0f}% of peak), ratio mvb/PyTorch {m / t:.2f}x")
        print(f"ViT-{arch.upper()}: mvb bf16 / PyTorch fp32 {rates['bf16'][1] / rates['fp32'][0]:.2f}x, "
              f"mvb bf16 / mvb fp32 {rates['bf16'][1] / rates['fp32'][1]:.2f}x")


if __name__ == "__main__":
    main()
