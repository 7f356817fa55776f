#!/usr/bin/env python3
"""Decode speed on the CPU, side by side in one run (issue 10's benchmark): mvb, llama.cpp and
PyTorch + transformers on SmolLM2-135M-Instruct Q4_1, 2 threads, 128 prompt tokens, 128 new
tokens, greedy, no early stop.

- mvb: `mvb bench decoder` on the GGUF (quantised products), batch 1 and 16.
- llama.cpp: the prebuilt library of the npm package node-llama-cpp@3.21.1 (installed into
  target/llamacpp by this script when missing; `npm i -E node-llama-cpp@3.21.1`), batch 1.
- PyTorch: transformers loading the same GGUF with `gguf_file=` (transformers 5.23 keeps the
  weights packed and computes in f32; `dtype=bf16` casts around each product), `generate`,
  batch 1.

Each side measures prefill as a generation of one token and decode as (a generation of 1 + 128
tokens) - prefill; llama.cpp's side times its own evaluate loop the same way. Prints a Markdown
table with the ratios. Run from the repository root:

    tools/.venv/bin/python tools/bench_decoder_cpu.py [--mvb target/release/mvb]
"""

import argparse
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GGUF = ROOT / "target/models/SmolLM2-135M-Instruct.Q4_1.gguf"
NODE_DIR = ROOT / "target/llamacpp"
NODE_BENCH = """import {getLlama} from "node-llama-cpp";
const llama = await getLlama({gpu: false, build: "never"});
const model = await llama.loadModel({modelPath: process.argv[2], gpuLayers: 0});
const ctx = await model.createContext({contextSize: 512, threads: 2, batchSize: 512});
for (let run = 0; run < 4; run++) {
  const seq = ctx.getSequence();
  const prompt = model.tokenize("The history of medicine is long and varied. ".repeat(14)).slice(0, 128);
  const t0 = performance.now();
  let n = 0, t1 = 0;
  for await (const tok of seq.evaluate(prompt, {temperature: 0})) {
    if (n === 0) t1 = performance.now();
    n++;
    if (n >= 129) break;
  }
  const t2 = performance.now();
  console.log(`llama.cpp run ${run}: prefill ${(128 / ((t1 - t0) / 1000)).toFixed(1)} tok/s, decode ${((n - 1) / ((t2 - t1) / 1000)).toFixed(1)} tok/s`);
  seq.dispose();
}
process.exit(0);
"""


def llama_cpp():
    if not (NODE_DIR / "node_modules/node-llama-cpp").exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "i", "-E", "node-llama-cpp@3.21.1"], cwd=NODE_DIR, check=True,
                       capture_output=True)
    (NODE_DIR / "bench.mjs").write_text(NODE_BENCH)
    out = subprocess.run(["node", "bench.mjs", str(GGUF)], cwd=NODE_DIR, capture_output=True, text=True,
                         timeout=300).stdout
    print(out, flush=True)
    runs = [tuple(map(float, m)) for m in re.findall(r"prefill ([\d.]+) tok/s, decode ([\d.]+) tok/s", out)][1:]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def mvb(binary):
    out = subprocess.run([binary, "bench", "decoder", "--model", str(GGUF), "--prompt", "128", "--new", "128",
                          "--batch", "1,16", "--iters", "3"], capture_output=True, text=True, timeout=900).stdout
    print(out, flush=True)
    found = {}
    for m in re.finditer(r"batch (\d+) .*prefill ([\d.]+) tok/s .*decode ([\d.]+) tok/s", out):
        found[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
    return found


def torch_side(dtype_name):
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(2)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    model = AutoModelForCausalLM.from_pretrained(GGUF.parent, gguf_file=GGUF.name, dtype=dtype).eval()
    ids = torch.tensor([[(i * 7919) % 49151 + 1 for i in range(128)]])

    def gen(n):
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                           do_sample=False, pad_token_id=0)

    def timed(n):
        gen(n)
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            gen(n)
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    prefill = timed(1)
    full = timed(129)
    return 128 / prefill, 128 / (full - prefill)


def bandwidth():
    """This machine's streaming read rate, one thread: numpy sums a 1 GiB array (median of 5)."""
    import numpy as np

    a = np.ones(2**27, dtype=np.float64)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        a.sum()
        times.append(time.perf_counter() - t)
    return a.nbytes / statistics.median(times) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mvb", default=str(ROOT / "target/release/mvb"))
    args = ap.parse_args()
    os.environ.setdefault("RAYON_NUM_THREADS", "2")
    import torch
    import transformers

    m = mvb(args.mvb)
    l_pre, l_dec = llama_cpp()
    t32 = torch_side("f32")
    t16 = torch_side("bf16")
    (m1p, m1d), (m16p, m16d) = m[1], m[16]
    # The quantised matrices mvb multiplies per token (every 2-D tensor of the GGUF).
    from gguf import GGUFReader

    weights_mb = sum(int(t.n_bytes) for t in GGUFReader(str(GGUF)).tensors if len(t.shape) == 2) / 1e6
    rows = [
        f"SmolLM2-135M-Instruct Q4_1, CPU, 2 threads, 128 prompt + 128 new tokens, greedy; medians of 3 "
        f"(llama.cpp: node-llama-cpp 3.21.1; PyTorch {torch.__version__}, transformers {transformers.__version__}).",
        "",
        "| system | prefill tok/s | decode tok/s (batch 1) | mvb decode / system |",
        "| --- | --- | --- | --- |",
        f"| mvb (quantised) | {m1p:.0f} | {m1d:.1f} | 1.00 |",
        f"| llama.cpp | {l_pre:.0f} | {l_dec:.1f} | {m1d / l_dec:.2f} |",
        f"| PyTorch + transformers, GGUF, f32 | {t32[0]:.0f} | {t32[1]:.1f} | {m1d / t32[1]:.2f} |",
        f"| PyTorch + transformers, GGUF, bf16 | {t16[0]:.0f} | {t16[1]:.1f} | {m1d / t16[1]:.2f} |",
        "",
        f"mvb batch 16: decode {m16d:.1f} tok/s = {m16d / m1d:.2f}x batch 1 (prefill {m16p:.0f} tok/s).",
        f"Weights read per token: {weights_mb:.1f} MB; at batch 1 mvb reads {m1d * weights_mb / 1e3:.1f} GB/s; "
        f"one thread streams {bandwidth():.1f} GB/s here (numpy sum of 1 GiB).",
    ]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
