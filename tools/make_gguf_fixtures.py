#!/usr/bin/env python3
"""Writes the GGUF test fixtures of mvb (tests/fixtures/): a small synthetic GGUF with metadata of
every value type and one tensor per supported ggml type, and expected.json with the python `gguf`
package's dequantisation (f32 bit patterns) of those tensors, checksums and samples of tensors of
the real SmolLM2-135M-Instruct Q4_1 file, and the token ids of transformers' GGUF tokenizer.

Usage: python tools/make_gguf_fixtures.py MODEL.gguf OUT_DIR
Needs: gguf==0.19.0 numpy transformers==4.57.6 (no torch).
"""
import json
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

ROWS, COLS = 3, 512
rng = np.random.default_rng(1234)


def bits(a: np.ndarray) -> list:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).ravel().tolist()


def checksum(a: np.ndarray) -> str:
    b = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).ravel().astype(np.uint64)
    w = np.arange(1, b.size + 1, dtype=np.uint64)
    return str(int(np.sum(b * w, dtype=np.uint64)))


def f16_scales(n: int, lo: float, hi: float) -> np.ndarray:
    return rng.uniform(lo, hi, size=n).astype(np.float16).view(np.uint8).reshape(n, 2)


def raw_kquant(ty: T) -> np.ndarray:
    """Random K-quant blocks with finite f16 scales (gguf has no K-quant quantiser)."""
    nblk = ROWS * COLS // 256
    if ty == T.Q4_K:
        body = rng.integers(0, 256, size=(nblk, 140), dtype=np.uint8)
        blocks = np.concatenate([f16_scales(nblk, 0.001, 0.05), f16_scales(nblk, 0.0, 0.02), body], axis=1)
    else:  # Q6_K: ql[128] qh[64] scales[16] d
        body = rng.integers(0, 256, size=(nblk, 208), dtype=np.uint8)
        blocks = np.concatenate([body, f16_scales(nblk, 0.0005, 0.01)], axis=1)
    return blocks.reshape(ROWS, -1)


def synthetic(out_dir: Path) -> dict:
    w = gguf.GGUFWriter(out_dir / "synthetic.gguf", arch="llama")
    w.data_alignment = 64
    w.add_uint32("general.alignment", 64)
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 1.5)
    w.add_uint64("test.u64", 1 << 60)
    w.add_int64("test.i64", -(1 << 60))
    w.add_float64("test.f64", 2.25)
    w.add_bool("test.bool", True)
    w.add_string("test.str", "héllo")
    w.add_array("test.arr_str", ["a", "", "<|im_start|>"])
    w.add_array("test.arr_i32", [1, -2, 3])
    expected = {}
    x = rng.standard_normal((ROWS, COLS)).astype(np.float32)
    for ty in [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1, T.Q4_K, T.Q6_K]:
        name = f"t.{ty.name.lower()}"
        if ty == T.F32:
            data, raw = x, None
        elif ty == T.F16:
            data, raw = x.astype(np.float16), None
        elif ty in (T.Q4_K, T.Q6_K):
            data, raw = raw_kquant(ty), ty
        else:
            data, raw = quantize(x, ty), ty
        w.add_tensor(name, data, raw_dtype=raw)
        deq = x if ty == T.F32 else dequantize(np.asarray(data).view(np.uint8), ty).reshape(ROWS, COLS)
        expected[name] = {"type": ty.name, "shape": [ROWS, COLS], "bits": bits(deq)}
    vec = rng.standard_normal(7).astype(np.float32)
    w.add_tensor("t.vec", vec)
    expected["t.vec"] = {"type": "F32", "shape": [7], "bits": bits(vec)}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return expected


def real(model: Path) -> dict:
    r = gguf.GGUFReader(model)
    by = {t.name: t for t in r.tensors}
    out = {}
    for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight", "output_norm.weight"]:
        t = by[name]
        deq = dequantize(t.data, t.tensor_type).astype(np.float32).ravel()
        idx = np.linspace(0, deq.size - 1, 64).astype(np.int64)
        out[name] = {"type": t.tensor_type.name, "shape": [int(d) for d in reversed(t.shape.tolist())],
                     "checksum": checksum(deq), "sample_index": idx.tolist(), "sample_bits": bits(deq[idx])}
    return out


TEXTS = [
    "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n<|im_start|>user\nWhat is pneumonia?<|im_end|>\n<|im_start|>assistant\n",
    "  Hello,  world!!  ",
    "Punctuation: (a), [b]; {c}... 'quoted' \"double\" -- end?!",
    "12345 3.14159 a1b22 2026-11-30",
    "naïve café — 日本語 🙂 Ünïcödé",
    "\n\n  leading spaces\tand tabs\n",
    "I'm sure they'll've done it; we'd say it's fine",
]


def tokenizer_ids(model: Path) -> list:
    import transformers.modeling_gguf_pytorch_utils as m

    m.is_torch_available = lambda: True  # tokenizer-only load; no tensors are converted
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model.parent), gguf_file=model.name)
    return [{"text": s, "ids": tok.encode(s, add_special_tokens=False)} for s in TEXTS]


def main() -> None:
    model, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    expected = {"synthetic": synthetic(out_dir), "real": real(model), "tokenizer": tokenizer_ids(model)}
    (out_dir / "expected.json").write_text(json.dumps(expected, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
