#!/usr/bin/env python3
"""Builds the PyTorch `.bin` (torch.save zip) fixtures read by tests/it/torch_bin.rs.

Run from the repository root:

    tools/.venv/bin/python tools/make_torch_bin_fixtures.py

Writes tests/fixtures/torch-bin/ (all with torch.save, the way transformers 4.x wrote
`pytorch_model.bin` when saving with safe_serialization=False):

clip/pytorch_model.bin      tests/fixtures/tiny-clip's weights, except that the token embedding
                            is an `as_strided` view (row i = storage[i : i + 32]) of a
                            deterministic storage, EMB_LEN values v[k] = ((k * 7919) % 1000 - 500)
                            / 20000 (in float64, then float32), so the file stays small; the
                            test builds the safetensors twin from tiny-clip with the same
                            formula. To exercise the reader, the vision q/k/v projections of
                            layer 0 are views into one fused storage (storage offsets), layer
                            0's fc1 weight is a transposed view (non-contiguous strides), and
                            an int64 `text_model.embeddings.position_ids` buffer is included as
                            older transformers saved it. Checked here: transformers loads the
                            assembled folder and gives the same features as the twin.
small.bin, small_p4.bin     a state dict of every layout the reader handles (offsets, a
                            transposed view, f16, bf16, f64, int64, a 0-d scalar, an empty
                            tensor, an nn.Parameter), protocol 2 (torch's default) and 4
                            (FRAME, MEMOIZE, STACK_GLOBAL); expected values in small.json.
sharded/                    small's tensors split over two shards + pytorch_model.bin.index.json.
hostile.bin, hostile_p4.bin a state dict holding an object whose __reduce__ calls os.system
                            (GLOBAL `posix system`, protocol 2; STACK_GLOBAL, protocol 4): the
                            reader must refuse it and run nothing.
legacy.bin                  torch.save(..., _use_new_zipfile_serialization=False): refused.

torch.save stores a random serialization id, so regenerated files differ in those bytes only.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mvb_common as C  # noqa: E402  (sets HF offline variables first)

import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

FIX = C.REPO / "tests" / "fixtures"
OUT = FIX / "torch-bin"
TINY = FIX / "tiny-clip"
EMB = "text_model.embeddings.token_embedding.weight"
MARKER = "/tmp/mvb-torch-bin-pwned"


def emb_storage(rows: int, width: int) -> torch.Tensor:
    k = np.arange(rows + width - 1, dtype=np.int64)
    return torch.from_numpy((((k * 7919) % 1000 - 500) / 20000.0).astype(np.float32))


def clip_state() -> tuple[collections.OrderedDict, dict]:
    """tiny-clip's weights as views (the .bin), and the same values contiguous (the twin)."""
    twin = load_file(str(TINY / "model.safetensors"))
    rows, width = twin[EMB].shape
    emb = torch.as_strided(emb_storage(rows, width), (rows, width), (1, 1))
    twin[EMB] = emb.contiguous()
    sd = collections.OrderedDict((k, v.clone()) for k, v in sorted(twin.items()))
    sd[EMB] = emb
    p = "vision_model.encoder.layers.0"
    qkv = torch.cat([twin[f"{p}.self_attn.{x}_proj.weight"] for x in "qkv"])
    for i, x in enumerate("qkv"):
        sd[f"{p}.self_attn.{x}_proj.weight"] = qkv[i * 64 : (i + 1) * 64]
    sd[f"{p}.mlp.fc1.weight"] = twin[f"{p}.mlp.fc1.weight"].t().contiguous().t()
    assert not sd[f"{p}.mlp.fc1.weight"].is_contiguous()
    sd["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    for k, v in twin.items():
        assert torch.equal(sd[k], v), k
    return sd, twin


def check_with_transformers(bin_dir: Path, twin: dict) -> None:
    from transformers import CLIPModel

    with tempfile.TemporaryDirectory() as tmp:
        st_dir = Path(tmp) / "st"
        shutil.copytree(bin_dir, st_dir)
        (st_dir / "pytorch_model.bin").unlink()
        save_file({k: v.contiguous() for k, v in twin.items()}, str(st_dir / "model.safetensors"))
        ids = torch.tensor([[49406, 320, 1125, 539, 49407]])
        px = torch.linspace(-1, 1, 3 * 32 * 32).reshape(1, 3, 32, 32)
        outs = []
        for d in (bin_dir, st_dir):
            m = CLIPModel.from_pretrained(str(d)).eval()
            with torch.no_grad():
                outs.append((m.get_image_features(pixel_values=px), m.get_text_features(input_ids=ids)))
        for a, b in zip(outs[0], outs[1]):
            a = getattr(a, "pooler_output", a)
            b = getattr(b, "pooler_output", b)
            diff = (a - b).abs().max().item()
            # Equal weights; a strided weight may take another matmul path (last-bit differences).
            assert diff <= 1e-6, f"transformers reads the .bin differently from its twin ({diff})"


def small_state() -> collections.OrderedDict:
    base = torch.arange(12, dtype=torch.float32) / 4 - 1
    sd = collections.OrderedDict()
    sd["offset"] = base[2:8].view(2, 3)
    sd["transposed"] = base.view(3, 4).t()
    sd["half"] = torch.tensor([0.5, -1.25, 3.0], dtype=torch.float16)
    sd["bf16"] = torch.tensor([[1.5, -2.0], [0.25, 8.0]], dtype=torch.bfloat16)
    sd["double"] = torch.tensor([1.0 / 3, -7.5], dtype=torch.float64)
    sd["ids"] = torch.arange(5)
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 4)
    sd["param"] = torch.nn.Parameter(torch.tensor([4.0, 5.0, 6.0]))
    sd._metadata = collections.OrderedDict({"": {"version": 1}})
    return sd


def expected(sd: dict) -> dict:
    return {
        k: {"dtype": str(v.dtype).removeprefix("torch."), "shape": list(v.shape),
            "data": v.detach().double().flatten().tolist()}
        for k, v in sd.items()
    }


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def main() -> None:
    torch.manual_seed(0)
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "clip").mkdir(parents=True)
    sd, twin = clip_state()
    torch.save(sd, OUT / "clip" / "pytorch_model.bin")
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir = Path(tmp) / "bin"
        shutil.copytree(TINY, bin_dir, ignore=shutil.ignore_patterns("model.safetensors"))
        shutil.copy(OUT / "clip" / "pytorch_model.bin", bin_dir)
        check_with_transformers(bin_dir, twin)

    small = small_state()
    torch.save(small, OUT / "small.bin")
    torch.save(small, OUT / "small_p4.bin", pickle_protocol=4)
    (OUT / "small.json").write_text(json.dumps(expected(small), indent=1) + "\n")
    for name in ("small.bin", "small_p4.bin"):
        back = torch.load(OUT / name, weights_only=False)  # our own file; torch's safe loader lacks FRAME
        assert all(torch.equal(back[k], v) for k, v in small.items()), name

    (OUT / "sharded").mkdir()
    names = list(small)
    shards = {"pytorch_model-00001-of-00002.bin": names[:4], "pytorch_model-00002-of-00002.bin": names[4:]}
    weight_map = {}
    for file, keys in shards.items():
        torch.save(collections.OrderedDict((k, small[k]) for k in keys), OUT / "sharded" / file)
        weight_map.update({k: file for k in keys})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (OUT / "sharded" / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2) + "\n")

    hostile = {"weight": torch.ones(2), "evil": Evil()}
    torch.save(hostile, OUT / "hostile.bin")
    torch.save(hostile, OUT / "hostile_p4.bin", pickle_protocol=4)
    assert not os.path.exists(MARKER)
    torch.save({"weight": torch.ones(2)}, OUT / "legacy.bin", _use_new_zipfile_serialization=False)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
