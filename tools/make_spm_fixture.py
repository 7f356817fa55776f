#!/usr/bin/env python3
"""Builds a tiny SentencePiece (Unigram) tokenizer in the layout of real SigLIP checkpoints
(google/siglip-base-patch16-224 ships `spiece.model` and no `tokenizer.json`), and the token
ids transformers' `SiglipTokenizer` gives for a set of awkward prompts.

Run (from the repository root, after ``bash tools/setup_venv.sh``):

    tools/.venv/bin/python tools/make_spm_fixture.py

Writes tests/fixtures/siglip-spm/{spiece.model, tokenizer_config.json,
special_tokens_map.json} (SiglipTokenizer.save_pretrained) and
tests/fixtures/reference/siglip_spm_tokens.json ({"prompts": [...], "input_ids": [[...]]},
padded to the longest with the pad token, as MedVLMBench tokenizes prompts).

The training text is generated here (MedMNIST class names in prompt templates, plus a few
generic sentences), so the model is deterministic and small (a few kB). Special ids follow
SigLIP's: <pad> 0, </s> 1 (also the pad token), <unk> 2.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import sentencepiece as spm
from transformers import SiglipTokenizer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/siglip-spm"
REF = ROOT / "tests/fixtures/reference/siglip_spm_tokens.json"

CLASSES = [
    "pneumonia", "normal", "adipose", "background", "debris", "lymphocytes", "mucus",
    "smooth muscle", "normal colon mucosa", "cancer-associated stroma",
    "colorectal adenocarcinoma epithelium", "basophil", "eosinophil", "erythroblast",
    "immature granulocytes", "lymphocyte", "monocyte", "neutrophil", "platelet",
    "no apparent retinopathy", "mild", "moderate", "severe", "proliferative",
]
TEMPLATES = ["a photo of {}.", "an image of {}", "a chest x-ray showing {}", "{} tissue", "this is {}"]
GENERIC = [
    "the quick brown fox jumps over the lazy dog",
    "medical images need careful evaluation",
    "a radiograph of the chest with clear lungs",
    "histology slide stained with hematoxylin and eosin",
    "dermatology photo of a skin lesion",
]

PROMPTS = [
    "a photo of pneumonia",
    "A photo of Colorectal Adenocarcinoma Epithelium.",
    "a photo of  no   apparent\tretinopathy",
    "x-ray, chest; (PA) view!",
    "Café ünïcode ﬁbrosis Ⅻ",
    "tumor_42 & normal",
    "zebra quasar",
    "a photo of ▁ underline",
    "",
]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [t.format(c) for c in CLASSES for t in TEMPLATES] + GENERIC
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(lines) + "\n")
        prefix = Path(tmp) / "spiece"
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(prefix), model_type="unigram", vocab_size=110,
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0,
            normalization_rule_name="nmt_nfkc", num_threads=1, seed_sentencepiece_size=10000,
            minloglevel=2,
        )
        tok = SiglipTokenizer(vocab_file=str(prefix) + ".model", model_max_length=64)
        tok.save_pretrained(str(OUT))
    tok = SiglipTokenizer.from_pretrained(str(OUT))
    enc = tok(PROMPTS, padding="longest")
    REF.write_text(json.dumps({
        "tokenizer": "transformers.SiglipTokenizer",
        "pad_id": tok.pad_token_id,
        "prompts": PROMPTS,
        "input_ids": enc["input_ids"],
        "tokens": [tok.convert_ids_to_tokens(r) for r in enc["input_ids"]],
    }, ensure_ascii=False, indent=1) + "\n")
    for p, ids in zip(PROMPTS, enc["input_ids"]):
        print(repr(p), ids)


if __name__ == "__main__":
    main()
