#!/usr/bin/env python3
"""Builds the tiny random BLIP-2 image-text retrieval fixture read by tests/it/blip2.rs.

Run from the repository root (offline, deterministic: torch.manual_seed(0), float32, CPU):

    tools/.venv/bin/python tools/make_blip2_fixtures.py

Writes tests/fixtures/tiny-blip2/: a transformers 5.23 `Blip2ForImageTextRetrieval` (the class of
Salesforce/blip2-itm-vit-g) with random weights, in save_pretrained's layout (config.json,
model.safetensors), a small uncased BERT WordPiece tokenizer with `[DEC]` added as its bos token
(as transformers' BLIP-2 conversion script builds the ITM checkpoints' tokenizer from
bert-base-uncased: tokenizer.json, tokenizer_config.json), `BlipImageProcessor`'s
preprocessor_config.json (fixed size, bicubic, no crop, CLIP mean/std), three PNGs, and
reference.json:

  pixel_values      BlipImageProcessorPil's output (Pillow resampling, as MedVLMBench's
                    transformers 4.x ran it)
  token_ids         the prompts' ids (MedVLMBench: `processor.tokenizer(prompts, padding=True)`)
  vision_cls        vision_model(...).last_hidden_state[:, 0] (MedVLMBench's FT-LP feature)
  query_features    vision_projection of the Q-Former's query outputs, unnormalised, [B, Q, P]
  text_features     text_projection of the Q-Former's text CLS, unnormalised, [T, P]
  image_embeds,     the model's forward outputs with use_image_text_matching_head=False
  text_embeds,      (normalised query and text embeddings, max-over-queries cosine)
  logits
  probs             softmax of the logits over the prompts (MedVLMBench's zero-shot scores)
  awkward, awkward_ids  token ids of awkward prompts (accents, case, punctuation, long words)

Tiny config: vision 32 px, patch 8 (16 patches + CLS), width 32, 2 layers, 2 heads, MLP 64;
Q-Former width 32, 3 layers (cross-attention every 2: layers 0 and 2), 2 heads, MLP 48,
64 positions; 4 query tokens; shared space 16. Every parameter is drawn at random (biases,
LayerNorms, the key part of the fused qkv bias included) so a loader dropping one fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch
from PIL import Image
from transformers import (
    Blip2Config,
    Blip2ForImageTextRetrieval,
    Blip2QFormerConfig,
    Blip2VisionConfig,
    BertTokenizerFast,
)
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

# The open_clip fixtures' three test images (odd-sized RGB, grey, wide) and tensor JSON.
from make_open_clip_fixtures import images, tensor

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "tiny-blip2"
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]

WORDS = (
    "a photo of the and with no normal pneumonia chest lung lungs ct scan x ray view yes disease "
    "diseased xray benign glaucoma fundus retina tumor positive negative image laser scanning "
    "ophthalmoscope cafe naive resume"
).split()

PROMPTS = [
    "a photo of diseased xray",
    "a photo of normal xray",
    "a photo of a benign scanning laser ophthalmoscope fundus image",
]

AWKWARD = [
    "a photo of pneumonia",
    "Ménétrier’s DISEASE of the Stomach",
    "CT   scan\tof the\nchest &amp; “lungs”",
    "pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 120,
    "ﬁbrosis ＣＴ café naïve RÉSUMÉ 肺",
    "an x-ray (PA view): normal? yes!",
    "[DEC] a photo [SEP] of",
]


def tokenizer():
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
    punct = list(".,'\"-()&;:?!")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + letters + ["##" + c for c in letters] + punct + WORDS
    vocab += ["men", "##et", "##rier", "pneum", "##ono"]
    vocab = list(dict.fromkeys(vocab))  # one id per token, no gaps (WORDS repeats letters)
    tok = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True, model_max_length=64)
    tok.add_special_tokens({"bos_token": "[DEC]"})
    return tok


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and ("norm" in name.lower()):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if name.endswith("weight") else 0.0))
            elif "query_tokens" in name or "embedding" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    model.eval()


def unpadded(ids, mask):
    return [[i for i, m in zip(row, ms) if m] for row, ms in zip(ids.tolist(), mask.tolist())]


def main():
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    tok = tokenizer()
    config = Blip2Config(
        vision_config=Blip2VisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            image_size=32, patch_size=8,
        ).to_dict(),
        qformer_config=Blip2QFormerConfig(
            vocab_size=len(tok), hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
            intermediate_size=48, max_position_embeddings=64, cross_attention_frequency=2,
            use_qformer_text_input=True,
        ).to_dict(),
        num_query_tokens=4,
        image_text_hidden_size=16,
    )
    model = Blip2ForImageTextRetrieval(config)
    perturb(model, 1)
    model.save_pretrained(OUT)
    tok.save_pretrained(OUT)
    proc = BlipImageProcessorPil(size={"height": 32, "width": 32}, image_mean=MEAN, image_std=STD)
    proc.save_pretrained(OUT)
    # The processor's saved class name is the slow one's, as the real checkpoint's.
    pre = json.loads((OUT / "preprocessor_config.json").read_text())
    pre["image_processor_type"] = "BlipImageProcessor"
    (OUT / "preprocessor_config.json").write_text(json.dumps(pre, indent=2, sort_keys=True) + "\n")

    names = images(OUT)
    pixel_values = proc(images=[Image.open(OUT / n) for n in names], return_tensors="pt")["pixel_values"]
    enc = tok(PROMPTS, padding=True, return_tensors="pt")
    awk = tok(AWKWARD, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(pixel_values=pixel_values, input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    use_image_text_matching_head=False)
        vision = model.vision_model(pixel_values=pixel_values).last_hidden_state
        q = model.query_tokens.expand(len(names), -1, -1)
        mask = torch.ones(vision.shape[:-1], dtype=torch.long)
        query = model.qformer(query_embeds=q, encoder_hidden_states=vision, encoder_attention_mask=mask)
        query_features = model.vision_projection(query.last_hidden_state)
        text = model.qformer(query_embeds=model.embeddings(input_ids=enc["input_ids"]), query_length=0,
                             attention_mask=enc["attention_mask"])
        text_features = model.text_projection(text.last_hidden_state[:, 0, :])
    assert torch.allclose(torch.nn.functional.normalize(query_features, dim=-1), out.image_embeds, atol=1e-6)
    assert torch.allclose(torch.nn.functional.normalize(text_features, dim=-1), out.text_embeds, atol=1e-6)
    ref = {
        "images": names,
        "prompts": PROMPTS,
        "token_ids": unpadded(enc["input_ids"], enc["attention_mask"]),
        "awkward": AWKWARD,
        "awkward_ids": unpadded(awk["input_ids"], awk["attention_mask"]),
        "pixel_values": tensor(pixel_values),
        "vision_cls": tensor(vision[:, 0, :]),
        "query_features": tensor(query_features),
        "text_features": tensor(text_features),
        "image_embeds": tensor(out.image_embeds),
        "text_embeds": tensor(out.text_embeds),
        "logits": tensor(out.logits_per_image),
        "probs": tensor(out.logits_per_image.softmax(dim=-1)),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
    }
    (OUT / "reference.json").write_text(json.dumps(ref) + "\n")
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
