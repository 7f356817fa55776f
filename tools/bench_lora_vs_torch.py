#!/usr/bin/env python3
"""FT-LoRA training throughput, mvb next to PyTorch + PEFT in one run (issue 13).

Both sides train the same thing on the CPU in f32: a random CLIP image tower at a real ViT shape
(ViT-B/32 by default), MedVLMBench's FT-LoRA (model/clip_base.py: PEFT LoraConfig(r=8,
lora_alpha=32, lora_dropout=0.05, bias="none") on every nn.Linear and nn.Embedding of the vision
model), a linear head on the projected image features, class-weighted cross-entropy, AdamW
lr 5e-5, batch 8. One step = forward, backward, optimizer step. Median seconds per step over
`--steps` steps after one warm-up; samples/s and the ratio mvb / PyTorch printed.

    tools/.venv/bin/python tools/bench_lora_vs_torch.py [--arch b32] [--threads 2] [--steps 3]

mvb runs as `target/release/mvb bench lora` (build it first: `cargo build --release`) with
RAYON_NUM_THREADS = --threads; PyTorch with torch.set_num_threads(--threads).
"""

import argparse
import os
import re
import statistics
import subprocess
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection  # noqa: E402

ARCHS = {"b32": 32, "b16": 16}


def torch_step_time(patch, batch, steps):
    cfg = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=patch, projection_dim=512, hidden_act="quick_gelu")
    torch.manual_seed(0)
    model = CLIPVisionModelWithProjection(cfg).float()
    for p in model.parameters():
        p.requires_grad_(False)
    vm = model.vision_model
    kinds = (torch.nn.Linear, torch.nn.Embedding)
    targets = [n for n, m in vm.named_modules() if isinstance(m, kinds)]
    pm = get_peft_model(vm, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, bias="none", target_modules=targets))
    pm.train()
    head = torch.nn.Linear(512, 2)
    params = [p for p in pm.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.0)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 1.0]))
    pixels = torch.randn(batch, 3, 224, 224)
    labels = torch.tensor([i % 2 for i in range(batch)])

    def step():
        opt.zero_grad()
        features = model.visual_projection(pm(pixel_values=pixels).pooler_output)
        loss = loss_fn(head(features), labels)
        loss.backward()
        opt.step()

    step()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def mvb_step_time(mvb, arch, batch, steps, threads):
    out = subprocess.run([mvb, "bench", "lora", "--arch", arch, "--batch", str(batch),
                          "--steps", str(steps)], check=True, capture_output=True, text=True,
                         env={"RAYON_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}).stdout
    return float(re.search(r"median ([\d.]+) s/step", out).group(1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", choices=sorted(ARCHS), default="b32")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--mvb", default="target/release/mvb", help="the mvb binary")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    import peft
    import transformers
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}; "
          f"{a.threads} threads, ViT-{a.arch.upper()}, batch {a.batch}, median of {a.steps} steps after a warm-up")
    t = torch_step_time(ARCHS[a.arch], a.batch, a.steps)
    m = mvb_step_time(a.mvb, a.arch, a.batch, a.steps, a.threads)
    print(f"FT-LoRA ViT-{a.arch.upper()} f32 batch {a.batch}: PyTorch+PEFT {t:.3f} s/step ({a.batch / t:.2f} samples/s), "
          f"mvb {m:.3f} s/step ({a.batch / m:.2f} samples/s), ratio mvb/PyTorch {t / m:.2f}x")


if __name__ == "__main__":
    main()
