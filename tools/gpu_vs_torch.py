#!/usr/bin/env python3
"""mvb against PyTorch + transformers on the same GPU, in the same run (run by gpu_check.sh).

Random-weight checkpoints at real shapes, made here with transformers and read by both:
- decoders (SmolLM2-135M, Llama-3.2-1B and Llama-2-7B shapes, bf16): prefill and decode tokens/s at batch 1
  and 16, greedy, 128 prompt tokens, 128 new tokens, no early stop. Both sides measure the same
  way: prefill = a generation of one token; decode = (a generation of 1 + new tokens) - prefill.
- the CLIP ViT-B/16 image tower, bf16, images/s at batch 64.

Medians of `--iters` timed runs after one warm-up. Prints a Markdown table with the ratio
mvb / PyTorch and writes it to `--out`.
"""

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import torch

DECODERS = {
    "SmolLM2-135M": dict(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, rope_theta=100000.0,
    ),
    "Llama-3.2-1B": dict(
        hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0,
    ),
    "Llama-2-7B": dict(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32, vocab_size=32000, tie_word_embeddings=False, rope_theta=10000.0,
    ),
}


def median_time(fn, iters):
    fn()
    times = []
    for _ in range(iters):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def make_decoder(name, shape, root, tokenizer_dir):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(max_position_embeddings=4096, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
                      pad_token_id=0, **shape)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.eval()
    folder = Path(root) / name
    model.save_pretrained(folder, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(tokenizer_dir) / f, folder / f)
    return model, folder


def torch_decoder(model, vocab, batch, prompt, new, iters):
    ids = torch.tensor([[(i * 7919 + b * 104729) % (vocab - 1) + 1 for i in range(prompt)] for b in range(batch)],
                       device="cuda")
    mask = torch.ones_like(ids)

    def gen(n):
        with torch.inference_mode():
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                           do_sample=False, pad_token_id=0)

    prefill = median_time(lambda: gen(1), iters)
    full = median_time(lambda: gen(new + 1), iters)
    return batch * prompt / prefill, batch * new / max(full - prefill, 1e-9)


def mvb_decoder(mvb, folder, batches, prompt, new, iters, attention="fused", shares=None):
    """Prefill and decode tokens/s per batch; `shares` (a dict) gets the attention kernels' share
    of decode time per batch."""
    cmd = [mvb, "bench", "decoder", "--model", str(folder), "--device", "cuda", "--precision", "bf16",
           "--batch", ",".join(map(str, batches)), "--prompt", str(prompt), "--new", str(new),
           "--iters", str(iters), "--attention", attention]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    print(out.stdout + out.stderr, flush=True)
    found = {}
    for line in out.stdout.splitlines():
        m = re.search(r"batch (\d+) .*prefill ([\d.]+) tok/s .*decode ([\d.]+) tok/s", line)
        if m:
            found[int(m.group(1))] = (float(m.group(2)), float(m.group(3)))
        m = re.search(r"attention .*batch (\d+), attention .*\(([\d.]+)%\)", line)
        if m and shares is not None:
            shares[int(m.group(1))] = float(m.group(2))
    return found


def encoder_rows(mvb, batch, iters):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    cfg = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                           num_attention_heads=12, image_size=224, patch_size=16, projection_dim=512)
    with torch.device("cuda"):
        model = CLIPVisionModelWithProjection(cfg).to(torch.bfloat16).eval()
    pixels = torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.bfloat16)

    def fwd():
        with torch.inference_mode():
            model(pixel_values=pixels)

    torch_ips = batch / median_time(fwd, iters)
    cmd = [mvb, "bench", "encoder", "--arch", "b16", "--device", "cuda", "--precision", "bf16",
           "--batch", str(batch), "--iters", str(iters)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    print(out.stdout + out.stderr, flush=True)
    m = re.search(r"([\d.]+) img/s", out.stdout)
    mvb_ips = float(m.group(1)) if m else float("nan")
    return [f"| CLIP ViT-B/16 image tower, bf16, batch {batch} | images/s | {mvb_ips:.1f} | {torch_ips:.1f} "
            f"| {mvb_ips / torch_ips:.2f} |"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mvb", required=True)
    ap.add_argument("--tokenizer", default="tests/fixtures/decoder/tokenizer")
    ap.add_argument("--out", required=True)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--models", default="SmolLM2-135M,Llama-3.2-1B")
    ap.add_argument("--no-encoder", action="store_true")
    ap.add_argument("--unfused", default="Llama-2-7B",
                    help="models also timed with mvb's unfused cuBLAS-only attention (comma-separated)")
    args = ap.parse_args()
    import transformers

    rows = [f"PyTorch {torch.__version__}, transformers {transformers.__version__}, "
            f"{torch.cuda.get_device_name()}; medians of {args.iters} runs after a warm-up.", "",
            "| what | unit | mvb | PyTorch | mvb / PyTorch |", "| --- | --- | --- | --- | --- |"]

    attention_rows = []

    def flush():
        extra = []
        if attention_rows:
            extra = ["", "mvb decode (bf16, tokens/s) with the fused attention kernel next to the unfused cuBLAS-only "
                     "path, and attention's share of decode GPU time (CUDA events around each call, one extra run):",
                     "", "| model | fused | cuBLAS-only | fused / cuBLAS-only | attention share, fused "
                     "| attention share, cuBLAS-only |", "| --- | --- | --- | --- | --- | --- |"] + attention_rows
        Path(args.out).write_text("\n".join(rows + extra) + "\n")
        print("\n".join(rows + extra), flush=True)

    try:
        if not args.no_encoder:
            rows += encoder_rows(args.mvb, 64, args.iters)
    except Exception as e:  # one failed section must not lose the others
        rows.append(f"| CLIP ViT-B/16 | failed: {type(e).__name__}: {e} | | | |")
    flush()
    with tempfile.TemporaryDirectory() as root:
        for name in filter(None, args.models.split(",")):
            try:
                model, folder = make_decoder(name, DECODERS[name], root, args.tokenizer)
                shares = {}
                got = mvb_decoder(args.mvb, folder, [1, 16], args.prompt, args.new, args.iters, shares=shares)
                if name in args.unfused.split(","):
                    unfused_shares = {}
                    unfused = mvb_decoder(args.mvb, folder, [1, 16], args.prompt, args.new, args.iters,
                                          attention="unfused", shares=unfused_shares)
                    for batch in (1, 16):
                        fd, ud = got.get(batch, (0, float("nan")))[1], unfused.get(batch, (0, float("nan")))[1]
                        attention_rows.append(
                            f"| {name}, batch {batch} | {fd:.1f} | {ud:.1f} | {fd / ud:.2f} "
                            f"| {shares.get(batch, float('nan')):.1f}% | {unfused_shares.get(batch, float('nan')):.1f}% |")
                for batch in (1, 16):
                    tp, td = torch_decoder(model, DECODERS[name]["vocab_size"], batch, args.prompt, args.new,
                                           args.iters)
                    mp, md = got.get(batch, (float("nan"), float("nan")))
                    rows.append(f"| {name} prefill, bf16, batch {batch}, {args.prompt} tokens | tokens/s "
                                f"| {mp:.0f} | {tp:.0f} | {mp / tp:.2f} |")
                    rows.append(f"| {name} decode, bf16, batch {batch}, {args.new} new tokens | tokens/s "
                                f"| {md:.1f} | {td:.1f} | {md / td:.2f} |")
                del model
                torch.cuda.empty_cache()
                shutil.rmtree(folder, ignore_errors=True)
            except Exception as e:
                rows.append(f"| {name} | failed: {type(e).__name__}: {e} | | | |")
            flush()


if __name__ == "__main__":
    main()
