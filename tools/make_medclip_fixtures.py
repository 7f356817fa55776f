#!/usr/bin/env python3
"""Builds the tiny random MedCLIP fixture read by tests/it/medclip.rs.

Run from the repository root (offline, deterministic, float32, CPU):

    tools/.venv/bin/python tools/make_medclip_fixtures.py [--medclip-wheel MedCLIP-0.0.3-py3-none-any.whl]

MedCLIP (RyanWangZf/MedCLIP, medclip/modeling_medclip.py, PyPI `medclip` 0.0.3) is
`MedCLIPModel(vision_cls=MedCLIPVisionModelViT)`: a Swin-T image tower whose pooler output goes
through a bias-free `vision_model.projection_head`, a Bio_ClinicalBERT text tower
(`MedCLIPTextModel`: the mean over the sequence of hidden_states[1], [2] and [-1], padding
included, averaged, then a bias-free `text_model.projection_head`), both L2-normalised, and
logits `exp(clamp(logit_scale, 0, 4.6052)) · img · txtᵀ`.

Writes tests/fixtures/tiny-medclip/:
  pytorch_model.bin  torch.save of the state dict, MedCLIP's names (`vision_model.model.*`,
                     `vision_model.projection_head.weight`, `text_model.model.*` with the BERT
                     pooler and the int64 `embeddings.position_ids` buffer 4.x checkpoints hold,
                     `text_model.projection_head.weight`, `logit_scale` = 5.0, above the clamp).
  vocab.txt          a small cased WordPiece vocabulary (Bio_ClinicalBERT's hub folder holds only
                     vocab.txt, so transformers lower-cases and strips accents by default).
  config.json        {"model_type": "medclip", "vision_config": the tiny Swin's (as
                     tools/make_swin_fixtures.py builds it), "text_config": the tiny BERT's}; the
                     real MedCLIP folder has none (mvb then takes MedCLIP's fixed Swin-T/BERT).
  *.png              three images (grey 28x28 padded to 32, RGB 39x35 and 64x40 padded then resized).
  reference.json     MedCLIP's preprocessing (its MedCLIPFeatureExtractor, re-implemented with
                     Pillow: pad into a black 'L' square of side max(S, w, h), bicubic resize to S,
                     /255, (x - 0.5862785803043838) / 0.27950088968644304, one channel repeated to 3),
                     token ids (MedCLIPProcessor's tokenizer: model_max_length 77, padding to the
                     longest, truncation), image and text embeddings, logits and probabilities.

The forward pass is computed by a re-implementation written here; with --medclip-wheel (the
PyPI wheel, fetched with `pip download medclip==0.0.3 --no-deps`, never installed) MedCLIP's own
modeling_medclip.py is also imported from the wheel (hub loading replaced by the tiny models,
`.cuda()` made a no-op) and must agree to 1e-6 (relative).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import types
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import AutoTokenizer, BertConfig, BertModel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_swin_fixtures import build as build_swin  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "tiny-medclip"
MEAN, STD = 0.5862785803043838, 0.27950088968644304
MAX_LEN = 77
PROJ = 16

AWKWARD = [
    "a photo of pneumonia",
    "Ménétrier’s DISEASE of the Stomach",
    "CT   scan\tof the\nchest & “lungs”",
    "pneumonoultramicroscopicsilicovolcanoconiosis " * 3,
    "ﬁbrosis café naïve RÉSUMÉ Pneumonia",
    "an x-ray (PA view): normal? yes!",
    " ".join(["tumor"] * 100),
]
PROMPTS = ["a photo of pneumonia", "CT scan of the chest with NO finding", " ".join(["lung"] * 90)]
WORDS = (
    "a photo of the and with no normal pneumonia chest lung lungs ct scan x ray view yes disease stomach "
    "tumor fibrosis cafe naive resume finding pa Pneumonia CT Normal Photo"
).split()


def vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    punct = list(".,'\"-()&;:?!’“”")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return specials + letters + ["##" + c for c in letters] + punct + WORDS + ["men", "##et", "##rier", "pneum"]


def bert(vocab_size: int) -> BertModel:
    torch.manual_seed(1)
    cfg = BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=128, pad_token_id=0,
    )
    model = BertModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + torch.randn_like(p) * 0.1)
            elif name.endswith("bias"):
                p.copy_(torch.randn_like(p) * 0.05)
    return model


def images(folder: Path) -> list[str]:
    rng = np.random.default_rng(0)
    specs = [("grey_28.png", (28, 28)), ("rgb_39x35.png", (35, 39, 3)), ("wide_64x40.png", (40, 64, 3))]
    for name, shape in specs:
        Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(folder / name)
    return [n for n, _ in specs]


def preprocess(path: Path, side: int) -> torch.Tensor:
    """MedCLIPFeatureExtractor (medclip/dataset.py) with transformers 4.24's CLIPFeatureExtractor
    steps it calls, re-implemented: pad_img, resize (a square: to side x side, bicubic, skipped when
    already that size), centre crop (a no-op then), normalize (PIL -> float32 / 255, scalar mean/std)."""
    img = Image.open(path)
    x, y = img.size
    size = max(side, x, y)
    canvas = Image.new("L", (size, size), 0)
    canvas.paste(img, (int((size - x) / 2), int((size - y) / 2)))
    if size != side:
        canvas = canvas.resize((side, side), Image.BICUBIC)
    arr = np.asarray(canvas).astype(np.float32) * (1 / 255.0)
    arr = (arr - np.float32(MEAN)) / np.float32(STD)
    return torch.from_numpy(arr)[None].repeat(3, 1, 1)


def text_embeds(model: BertModel, head: torch.nn.Linear, ids, mask) -> torch.Tensor:
    """Layers 1, 2 and the last, each averaged over every position (padding too), averaged."""
    hs = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    pooled = (hs[1].mean(dim=1) + hs[2].mean(dim=1) + hs[-1].mean(dim=1)) / 3
    out = head(pooled)
    return out / out.norm(dim=-1, keepdim=True)


def flat(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.detach().to(torch.float64).reshape(-1)]


def with_real_medclip(wheel: str, swin, text, heads, tokenizer, state) -> object:
    """MedCLIPModel from the wheel's own modeling_medclip.py, on the tiny towers."""
    pkg = types.ModuleType("medclip")
    pkg.__path__ = [os.path.join(wheel, "medclip")]  # skips medclip/__init__.py (pandas, nltk)
    sys.modules["medclip"] = pkg
    mm = importlib.import_module("medclip.modeling_medclip")
    towers = {mm.constants.VIT_TYPE: swin, mm.constants.BERT_TYPE: text}

    def from_pretrained(name, **kw):  # the hub checkpoint's architecture, here tiny and random
        for key, value in kw.items():  # output_hidden_states=True for the text tower
            setattr(towers[name].config, key, value)
        return towers[name]

    mm.AutoModel = types.SimpleNamespace(from_pretrained=from_pretrained)
    mm.AutoTokenizer = types.SimpleNamespace(from_pretrained=lambda name, **kw: tokenizer)
    torch.Tensor.cuda = lambda self, *a, **k: self
    model = mm.MedCLIPModel(vision_cls=mm.MedCLIPVisionModelViT)
    model.vision_model.projection_head, model.text_model.projection_head = heads
    known = model.state_dict()  # transformers 5 no longer keeps position_ids in the state dict
    assert set(state) - set(known) == {"text_model.model.embeddings.position_ids"}, set(state) ^ set(known)
    model.load_state_dict({k: v for k, v in state.items() if k in known})
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--medclip-wheel", help="MedCLIP-0.0.3-py3-none-any.whl, to check against its own code")
    args = parser.parse_args()
    torch.set_num_threads(2)
    OUT.mkdir(parents=True, exist_ok=True)
    swin = build_swin()
    words = vocab()
    text = bert(len(words))
    torch.manual_seed(2)
    vhead = torch.nn.Linear(swin.config.hidden_size, PROJ, bias=False)
    thead = torch.nn.Linear(text.config.hidden_size, PROJ, bias=False)

    (OUT / "vocab.txt").write_text("\n".join(words) + "\n")
    with tempfile.TemporaryDirectory() as tmp:  # Bio_ClinicalBERT's hub layout: config.json + vocab.txt
        text.config.save_pretrained(tmp)
        (Path(tmp) / "vocab.txt").write_text("\n".join(words) + "\n")
        tokenizer = AutoTokenizer.from_pretrained(tmp)
    tokenizer.model_max_length = MAX_LEN  # MedCLIPProcessor.__init__

    state = {f"vision_model.model.{k}": v for k, v in swin.state_dict().items()}
    state["vision_model.projection_head.weight"] = vhead.weight.detach().clone()
    state.update({f"text_model.model.{k}": v for k, v in text.state_dict().items()})
    state["text_model.model.embeddings.position_ids"] = torch.arange(128).unsqueeze(0)
    state["text_model.projection_head.weight"] = thead.weight.detach().clone()
    state["logit_scale"] = torch.tensor(5.0)
    with tempfile.TemporaryDirectory() as tmp:  # the 4.x Swin names MedCLIP's checkpoint holds
        swin.save_pretrained(tmp)
        saved = {f"vision_model.model.{k}": v for k, v in load_file(Path(tmp) / "model.safetensors").items()}
    on_disk = {k: v for k, v in state.items() if not k.startswith("vision_model.model.")} | saved
    torch.save(on_disk, OUT / "pytorch_model.bin")
    config = {"model_type": "medclip", "vision_config": json.loads(swin.config.to_json_string()),
              "text_config": {k: getattr(text.config, k) for k in
                              ("hidden_size", "num_hidden_layers", "num_attention_heads", "hidden_act",
                               "layer_norm_eps", "max_position_embeddings")}}
    (OUT / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    names = images(OUT)
    side = swin.config.image_size
    pixels = torch.stack([preprocess(OUT / n, side) for n in names])
    enc = tokenizer(PROMPTS, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        img = vhead(swin(pixel_values=pixels).pooler_output)
        img = img / img.norm(dim=-1, keepdim=True)
        txt = text_embeds(text, thead, enc["input_ids"], enc["attention_mask"])
        scale = float(np.exp(np.clip(5.0, 0.0, 4.6052)))
        logits = scale * img @ txt.T
        probs = logits.softmax(dim=-1)
    source = "re-implementation (tools/make_medclip_fixtures.py)"
    if args.medclip_wheel:
        real = with_real_medclip(args.medclip_wheel, swin, text, (vhead, thead), tokenizer, state)
        with torch.no_grad():
            out = real(input_ids=enc["input_ids"], pixel_values=pixels, attention_mask=enc["attention_mask"])
        for what, mine, theirs in [("img", img, out["img_embeds"]), ("txt", txt, out["text_embeds"]),
                                   ("logits", logits, out["logits"])]:
            err = float((mine - theirs).abs().max() / theirs.abs().max())
            assert err < 1e-6, f"{what}: the re-implementation differs from MedCLIP's code by {err} (relative)"
        source += ", equal to MedCLIP 0.0.3's modeling_medclip.py within 1e-6 (relative)"
    ids = [tokenizer(t, truncation=True)["input_ids"] for t in AWKWARD + PROMPTS]
    ref = {
        "source": source,
        "images": names, "prompts": PROMPTS, "awkward": AWKWARD + PROMPTS, "awkward_ids": ids,
        "token_ids": enc["input_ids"].tolist(), "attention_mask": enc["attention_mask"].tolist(),
        "pixel_values": flat(pixels), "image_embeds": flat(img), "text_embeds": flat(txt),
        "logits": flat(logits), "probs": flat(probs), "logit_scale_exp": scale,
    }
    (OUT / "reference.json").write_text(json.dumps(ref) + "\n")
    print(f"wrote {OUT}: {source}; probs {probs.tolist()}")


if __name__ == "__main__":
    main()
