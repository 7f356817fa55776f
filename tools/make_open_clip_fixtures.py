"""Tiny random open_clip checkpoints and open_clip's own outputs on them, for tests/it/open_clip.rs.

Run with tools/.venv/bin/python (open_clip 3.3.0, timm, transformers); never downloads:

    tools/.venv/bin/python tools/make_open_clip_fixtures.py

Writes, under tests/fixtures/:
  open-clip-biomed/  BiomedCLIP's layout (open_clip CustomTextCLIP): a tiny timm ViT
                     (`vit_tiny_patch8_32`, registered here: width 96, 3 heads, depth 2, 32 px,
                     patches of 8) and a tiny BERT (width 128, 2 heads, 2 layers, 256 positions)
                     with a small uncased WordPiece vocabulary written here, open_clip's
                     HFTextEncoder pooling (cls_last_hidden_state_pooler) and mlp projection,
                     context 256, open_clip_pytorch_model.bin (torch.save of the state dict).
  open-clip-vit/     open_clip's own CLIP (the ViT-B-32 family, quick_gelu): width 64 / 2 heads,
                     text width 32 / 2 heads, 2 layers each, 32 px, patches of 8, a character-level
                     CLIP byte-level BPE tokenizer (514 tokens), open_clip_model.safetensors.
  each with reference.json: open_clip's preprocessed pixels, token ids, image and text
  features and zero-shot probabilities (softmax of exp(logit_scale)·cos) for three images and
  three prompts (one longer than the context, truncated), and token ids of awkward prompts.
  open-clip-vit/clip_bpe_tokens.json: open_clip's SimpleTokenizer ids (the real 49,408-token
  CLIP BPE) on awkward prompts, to compare with mvb on data/models/demo-specialist's tokenizer.json.
"""

import json
import pathlib
import tempfile

import numpy as np
import open_clip
import timm  # noqa: F401  (registers models)
import torch
from PIL import Image
from safetensors.torch import save_file
from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer
from transformers import BertConfig, BertTokenizerFast, CLIPTokenizerFast
from open_clip.tokenizer import bytes_to_unicode

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures"
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

AWKWARD = [
    "a photo of pneumonia",
    "Ménétrier’s DISEASE of the Stomach",
    "CT   scan\tof the\nchest &amp; “lungs”",
    "pneumonoultramicroscopicsilicovolcanoconiosis " * 3,
    "ﬁbrosis ＣＴ café naïve RÉSUMÉ",
    "an x-ray (PA view): normal? yes!",
    " ".join(["tumor"] * 300),
]


@register_model
def vit_tiny_patch8_32(pretrained=False, **kwargs):
    """A tiny timm ViT with the tiny size's 3 heads (64-wide heads scaled down to 32)."""
    kwargs = {k: v for k, v in kwargs.items() if k not in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")}
    model = VisionTransformer(img_size=32, patch_size=8, embed_dim=96, depth=2, num_heads=3, mlp_ratio=1.0, **kwargs)
    model.pretrained_cfg = model.default_cfg = {}
    return model


def perturb(model, seed):
    """Random weights everywhere (norms included), so every tensor matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "logit_scale":
                p.fill_(float(np.log(20.0)))
            elif p.ndim == 1 and ("norm" in name.lower() or "ln_" in name):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if name.endswith("weight") else 0.0))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    model.eval()


def images(folder):
    """Three test images: odd-sized RGB (crop offsets rounded half to even), grey, wide."""
    rng = np.random.default_rng(0)
    specs = [("rgb_39x35.png", (35, 39, 3)), ("grey_28.png", (28, 28)), ("wide_64x40.png", (40, 64, 3))]
    out = []
    for name, shape in specs:
        arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
        Image.fromarray(arr).save(folder / name)
        out.append(name)
    return out


def tensor(t):
    t = t.detach().to(torch.float64)
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1)]}


def unpadded(ids, pad=0):
    rows = []
    for row in ids.tolist():
        while row and row[-1] == pad:
            row.pop()
        rows.append(row)
    return rows


def reference(model, folder, names, tokenizer, prompts, preprocess):
    pixels = torch.stack([preprocess(Image.open(folder / n)) for n in names])
    ids = tokenizer(prompts)
    with torch.no_grad():
        img = model.encode_image(pixels)
        txt = model.encode_text(ids)
        scale = model.logit_scale.exp()
        logits = scale * torch.nn.functional.normalize(img, dim=-1) @ torch.nn.functional.normalize(txt, dim=-1).T
        probs = logits.softmax(dim=-1)
    ref = {
        "images": names,
        "prompts": prompts,
        "token_ids": unpadded(ids),
        "awkward": AWKWARD,
        "awkward_ids": unpadded(tokenizer(AWKWARD)),
        "pixel_values": tensor(pixels),
        "image_features": tensor(img),
        "text_features": tensor(txt),
        "logits": tensor(logits),
        "probs": tensor(probs),
        "logit_scale_exp": float(scale),
    }
    (folder / "reference.json").write_text(json.dumps(ref))


def write_config(folder, model_cfg, preprocess_cfg):
    cfg = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    (folder / "open_clip_config.json").write_text(json.dumps(cfg, indent=2) + "\n")


WORDS = (
    "a photo of the and with no normal pneumonia chest lung lungs ct scan x ray view yes disease stomach "
    "tumor fibrosis cafe naive resume image finding benign malignant pa"
).split()


def biomed():
    folder = FIX / "open-clip-biomed"
    folder.mkdir(parents=True, exist_ok=True)
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    punct = list(".,'\"-()&;:?!")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + letters + ["##" + c for c in letters] + punct + WORDS
    vocab += ["men", "##et", "##rier", "pneum", "##ono"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True).save_pretrained(folder)
        bert = tmp / "bert"
        BertConfig(
            vocab_size=len(vocab), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=128, max_position_embeddings=256, pad_token_id=0,
        ).save_pretrained(bert)
        vision_cfg = {"timm_model_name": "vit_tiny_patch8_32", "timm_model_pretrained": False, "timm_pool": "",
                      "timm_proj": "linear", "image_size": 32}
        text_cfg = {"hf_model_name": str(bert), "hf_tokenizer_name": str(folder), "hf_proj_type": "mlp",
                    "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 256,
                    "hf_model_pretrained": False}
        model = open_clip.CustomTextCLIP(embed_dim=64, vision_cfg=vision_cfg, text_cfg=text_cfg)
    perturb(model, 1)
    assert model.visual.trunk.norm.eps == 1e-6, model.visual.trunk.norm.eps
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    hub_name = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
    text_cfg.update(hf_model_name=hub_name, hf_tokenizer_name=hub_name)
    del text_cfg["hf_model_pretrained"]
    write_config(folder, {"embed_dim": 64, "vision_cfg": vision_cfg, "text_cfg": text_cfg}, {"mean": MEAN, "std": STD})
    tokenizer = open_clip.tokenizer.HFTokenizer(str(folder), context_length=256)
    preprocess = open_clip.image_transform(32, is_train=False, mean=MEAN, std=STD)
    prompts = ["a photo of pneumonia", "CT scan of the chest with NO finding", " ".join(["lung"] * 300)]
    reference(model, folder, images(folder), tokenizer, prompts, preprocess)


def tiny_clip_bpe(folder):
    """A character-level CLIP byte-level BPE: every byte alone and word-final, no merges."""
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": i + len(chars) for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tok = CLIPTokenizerFast(vocab=vocab, merges=[])
    tok.save_pretrained(folder)
    return tok, len(vocab)


def vit():
    folder = FIX / "open-clip-vit"
    folder.mkdir(parents=True, exist_ok=True)
    hf_tok, vocab = tiny_clip_bpe(folder)
    vision_cfg = {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8}
    text_cfg = {"context_length": 77, "vocab_size": vocab, "width": 32, "heads": 2, "layers": 2}
    model = open_clip.CLIP(embed_dim=48, vision_cfg=vision_cfg, text_cfg=text_cfg, quick_gelu=True)
    perturb(model, 2)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    write_config(folder, {"embed_dim": 48, "quick_gelu": True, "vision_cfg": vision_cfg, "text_cfg": text_cfg},
                 {"mean": MEAN, "std": STD, "interpolation": "bicubic", "resize_mode": "shortest"})

    def tokenizer(texts):
        # open_clip's SimpleTokenizer steps (clean, sot + tokens + eot, truncate keeping eot,
        # pad with 0) over the tiny vocabulary.
        clean = open_clip.tokenizer._clean_lower
        out = torch.zeros(len(texts), 77, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = hf_tok(clean(t))["input_ids"]
            if len(ids) > 77:
                ids = ids[:76] + [ids[-1]]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    preprocess = open_clip.image_transform(32, is_train=False, mean=MEAN, std=STD)
    prompts = ["a photo of pneumonia", "CT scan of the chest with NO finding", "lung " * 100]
    reference(model, folder, images(folder), tokenizer, prompts, preprocess)
    simple = open_clip.tokenizer.SimpleTokenizer()
    (folder / "clip_bpe_tokens.json").write_text(json.dumps({"prompts": AWKWARD, "ids": unpadded(simple(AWKWARD))}))


if __name__ == "__main__":
    torch.manual_seed(0)
    biomed()
    vit()
    for name in ["open-clip-biomed", "open-clip-vit"]:
        size = sum(f.stat().st_size for f in (FIX / name).iterdir())
        print(f"{name}: {size / 1e6:.2f} MB")
