#!/usr/bin/env python3
"""Trains the two tiny demonstration generative VLMs in data/models/ (LLaVA-1.5 layout).

Run (from the repository root, after ``bash tools/setup_venv.sh``,
``apt-get install -y dataset-fashion-mnist`` and ``tools/train_demo_models.py``, whose CLIP
vision towers these models reuse):

    tools/.venv/bin/python tools/train_demo_vlms.py              # both models
    tools/.venv/bin/python tools/train_demo_vlms.py specialist   # just one

Each model is a real transformers ``LlavaForConditionalGeneration``:

* vision tower: the vision tower of the matching demo CLIP model (data/models/demo-generalist
  or demo-specialist; 28 px, patch 7, 4 layers, width 64), frozen; LLaVA reads its second-last
  layer (``vision_feature_layer = -2``) and drops the class token: 16 image positions;
* projector: LLaVA-1.5's two-layer GELU MLP, 64 -> hidden -> hidden;
* language model: a small Llama (random init, seed fixed) with a byte-level BPE tokenizer
  trained here with the ``tokenizers`` library on the model's own question/answer corpus,
  plus an ``<image>`` added token and ``</s>`` as end of sequence; LLaVA-1.5's conversation
  format "USER: <image>\\n{prompt} ASSISTANT:" (chat_template.json).

Projector and language model are trained together from scratch on CPU (next-token
cross-entropy on the answer and ``</s>`` only) on VQA built from image labels, with
MedVLMBench's prompts: the question for open questions, "Answer the following question about
the image with yes or no. {question}" for closed ones:

* ``demo-vlm-generalist``: Fashion-MNIST train split (Debian package ``dataset-fashion-mnist``,
  MIT licence), per image "Does this image show a {class}?" (the image's class for even
  indices, another class for odd ones) and "What does this image show?" -> the class name;
* ``demo-vlm-specialist``: the VQA views of MedMNIST PneumoniaMNIST and RetinaMNIST train
  splits, exactly as the ``medmnist`` plugin serves them (``*-vqa``; rule in
  data/medmnist/README.md). BreastMNIST is never seen: it is the OOD set.

The script then reloads each saved folder with transformers (``AutoProcessor``,
``LlavaForConditionalGeneration``), greedy-decodes the VQA test sets and scores the answers as
the ``vqa`` metric plugin does (closed accuracy: normalised answer is a substring of the
normalised prediction; open accuracy: unigram recall >= 0.75), writes the MODEL_CARD.md, and
writes tests/fixtures/demo-vlm/reference.json: greedy ids and text for a few test images of
each model, which tests/it/demo_vlm.rs checks mvb against.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mvb_common as C  # noqa: E402  (sets HF offline variables first)

import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from make_decoder_fixtures import LLAVA_CHAT_TEMPLATE, byte_level_bpe, llava_legacy_state  # noqa: E402
from train_demo_models import normalise as pixel_values  # noqa: E402
from train_demo_models import shift  # noqa: E402

OUT = C.REPO / "data" / "models"
FIXTURE = C.REPO / "tests" / "fixtures" / "demo-vlm" / "reference.json"
SEED = 42
IMAGE_SIZE = 28

HPARAMS = {
    # MVB_DEMO_STEPS only for quick smoke runs; the committed models use the default.
    "steps": int(os.environ.get("MVB_DEMO_STEPS", "1000")),
    "batch_size": 64,
    "lr": 2e-3,
    "weight_decay": 0.01,
    "warmup_steps": 100,
    "schedule": "linear warmup then cosine decay to 0",
    "optimizer": "AdamW(betas=(0.9, 0.98), eps=1e-6)",
    "loss": "cross-entropy on the answer tokens and </s> only",
    "augmentation": "random translation by up to 2 px (edge padding), per image",
    "trained": "projector and language model; the CLIP vision tower is frozen",
    "torch_threads": 1,  # 2 threads was slower on the shared 2-core machine
}

TEXT_CONFIG = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=32, max_position_embeddings=128, rms_norm_eps=1e-5,
                   rope_theta=10000.0, hidden_act="silu", tie_word_embeddings=False, attention_bias=False,
                   mlp_bias=False, initializer_range=0.02)
BPE_VOCAB = 384  # upper bound; the corpus is small, so training stops earlier
SPECIALS = ["<pad>", "</s>"]
PAD, EOS = 0, 1
IMAGE_TOKEN = "<image>"
IMAGE_POSITIONS = (IMAGE_SIZE // 7) ** 2  # 16 patches, the class token dropped
MAX_NEW = 8  # answers are at most a few tokens

# LLaVA-1.5's conversation format, "USER: <image>\n{text} ASSISTANT:" (llava-1.5-hf's chat_template.json).
CHAT_TEMPLATE = LLAVA_CHAT_TEMPLATE

# MedVLMBench's prompt for questions whose gold answer is yes/no (../shared/MEDVLMBENCH.md).
CLOSED_PREFIX = "Answer the following question about the image with yes or no. "

# The VQA views of the medmnist plugin (plugins/medmnist/src/catalog.rs, data/medmnist/README.md):
# (closed question for even image indices, labels answered yes), (the same for odd), open question.
MEDMNIST_VQA = {
    "pneumoniamnist": (("Does this chest X-ray show pneumonia?", {1}), ("Is this chest X-ray normal?", {0}),
                       "What does this chest X-ray show?"),
    "breastmnist": (("Does this breast ultrasound show a malignant tumour?", {0}),
                    ("Is this breast ultrasound normal or benign?", {1}),
                    "What does this breast ultrasound show?"),
    "retinamnist": (("Does this fundus photograph show diabetic retinopathy?", {1, 2, 3, 4}),
                    ("Is this fundus photograph free of diabetic retinopathy?", {0}),
                    "What is the diabetic retinopathy grade of this fundus photograph?"),
}


# ----------------------------------------------------------------------------- VQA data

def medmnist_vqa(name: str, split: str) -> tuple[np.ndarray, list[dict]]:
    """The plugin's `{name}-vqa` split: images, and per image a closed then an open sample."""
    images, labels = C.load_medmnist(name, split)
    (even, even_yes), (odd, odd_yes), open_q = MEDMNIST_VQA[name]
    classes = C.MEDMNIST_CLASSES[name]
    samples = []
    for i, label in enumerate(labels.tolist()):
        question, yes = (even, even_yes) if i % 2 == 0 else (odd, odd_yes)
        samples.append({"id": f"{split}-{i}-closed", "image": i, "kind": "closed", "question": question,
                        "answer": "yes" if label in yes else "no"})
        samples.append({"id": f"{split}-{i}-open", "image": i, "kind": "open", "question": open_q,
                        "answer": classes[label]})
    return images, samples


def fashion_vqa(split: str) -> tuple[np.ndarray, list[dict]]:
    """Fashion-MNIST asked the same way: per image "Does this image show a {c}?" (its own class
    for even indices, class (label + 1 + (i // 2) % 9) % 10 for odd ones) and "What does this
    image show?" -> the class name."""
    images, labels = C.load_fashion_mnist(split)
    samples = []
    for i, label in enumerate(labels.tolist()):
        c = label if i % 2 == 0 else (label + 1 + (i // 2) % 9) % 10
        samples.append({"id": f"{split}-{i}-closed", "image": i, "kind": "closed",
                        "question": f"Does this image show a {C.FASHION_CLASSES[c]}?",
                        "answer": "yes" if c == label else "no"})
        samples.append({"id": f"{split}-{i}-open", "image": i, "kind": "open",
                        "question": "What does this image show?", "answer": C.FASHION_CLASSES[label]})
    return images, samples


def prompt_text(sample: dict) -> str:
    """MedVLMBench's prompt for the sample, as the user turn's text."""
    return (CLOSED_PREFIX if sample["kind"] == "closed" else "") + sample["question"]


def chat(text: str) -> str:
    """The chat template's rendering of one user turn holding the image then `text`."""
    return f"USER: {IMAGE_TOKEN}\n{text} ASSISTANT:"


# ----------------------------------------------------------------------------- vqa metric

_PUNCT = ";/[]\"{}()=+\\_-><@`,?!"
_NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
            "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}


def normalise(text: str) -> list[str]:
    """The vqa plugin's normaliser (plugins/vqa/src/normalize.rs) without its contraction table,
    which changes no word these models can write."""
    t = text.lower()
    comma_digits = re.search(r"\d,\d", t) is not None
    out = []
    for c in t:
        if c in _PUNCT:
            if not (comma_digits or f" {c}" in t or f"{c} " in t):
                out.append(" ")
        else:
            out.append(c)
    t = re.sub(r"\.(?!\d)", "", "".join(out), count=32)
    words = [_NUMBERS.get(w, w) for w in t.split()]
    return [w for w in words if w not in ("a", "an", "the")]


def recall(pred: list[str], ref: list[str]) -> float:
    if not pred or not ref:
        return 0.0
    tp = sum(1 for w in pred if w in set(ref))
    fn = sum(1 for w in ref if w not in set(pred))
    return tp / (tp + fn) if tp else 0.0


def score(prediction: str, answer: str, kind: str) -> int:
    p, a = normalise(prediction), normalise(answer)
    hit = " ".join(a) in " ".join(p) if kind == "closed" else recall(p, a) >= 0.75
    return int(hit)


# ----------------------------------------------------------------------------- tokenizer

def train_tokenizer(corpus: list[str]):
    from tokenizers import AddedToken, pre_tokenizers, trainers

    tok = byte_level_bpe()
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, special_tokens=SPECIALS, min_frequency=2,
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    for i, s in enumerate(SPECIALS):
        assert tok.token_to_id(s) == i, s
    tok.add_special_tokens([AddedToken(IMAGE_TOKEN, special=True, normalized=False)])
    return tok


def corpus_of(samples: list[dict]) -> list[str]:
    """Every distinct turn of the training conversations."""
    texts = {chat(prompt_text(s)) + " " + s["answer"] for s in samples}
    return sorted(texts)


def tokenizer_config(tok) -> dict:
    added = {str(tok.token_to_id(s)): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                       "single_word": False, "special": True} for s in SPECIALS + [IMAGE_TOKEN]}
    return {"add_prefix_space": False, "added_tokens_decoder": added, "additional_special_tokens": [IMAGE_TOKEN],
            "clean_up_tokenization_spaces": False, "eos_token": SPECIALS[EOS], "model_max_length": 128,
            "pad_token": SPECIALS[PAD], "padding_side": "left", "tokenizer_class": "PreTrainedTokenizerFast"}


# ----------------------------------------------------------------------------- model

def build_model(clip_dir: Path, vocab: int, image_id: int):
    from safetensors.torch import load_file
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlamaConfig

    clip = json.loads((clip_dir / "config.json").read_text())
    vision = {k: v for k, v in clip["vision_config"].items() if k not in ("transformers_version", "dtype")}
    text = LlamaConfig(vocab_size=vocab, bos_token_id=None, eos_token_id=EOS, pad_token_id=PAD, **TEXT_CONFIG)
    cfg = LlavaConfig(vision_config=vision, text_config=text.to_dict(), image_token_index=image_id,
                      projector_hidden_act="gelu", vision_feature_layer=-2,
                      vision_feature_select_strategy="default", image_seq_length=IMAGE_POSITIONS,
                      multimodal_projector_bias=True, tie_word_embeddings=False, pad_token_id=PAD)
    torch.manual_seed(SEED)
    model = LlavaForConditionalGeneration(cfg)
    clip_weights = load_file(str(clip_dir / "model.safetensors"))
    # transformers 5 names the tower's parameters without its `vision_model.` level (and puts it
    # back when saving: the checkpoint has `model.vision_tower.vision_model.*`).
    tower = {k.removeprefix("vision_model."): v for k, v in clip_weights.items() if k.startswith("vision_model.")}
    model.model.vision_tower.load_state_dict(tower, strict=True)
    model.model.vision_tower.requires_grad_(False)
    return model


def to_rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images[..., None], 3, axis=-1) if images.ndim == 3 else images


class Sampler:
    """Training batches: (image, sample) pairs drawn from weighted sources, tokenised as the
    processor does (the prompt with <image> expanded to 16 positions, then answer + </s>)."""

    def __init__(self, sources: list[tuple[np.ndarray, list[dict], float]], tok, image_id: int, rng):
        self.sources, self.rng = [(to_rgb(x), s) for x, s, _ in sources], rng
        w = np.array([wt for _, _, wt in sources], np.float64)
        self.p = w / w.sum()
        self.encoded: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        for _, samples in self.sources:
            for s in samples:
                key = (prompt_text(s), s["answer"])
                if key not in self.encoded:
                    prompt = tok.encode(chat(key[0])).ids
                    prompt = [t for i in prompt for t in ([i] * IMAGE_POSITIONS if i == image_id else [i])]
                    self.encoded[key] = (prompt, tok.encode(" " + key[1]).ids + [EOS])

    def batch(self, n: int):
        which = self.rng.choice(len(self.sources), size=n, p=self.p)
        images, rows = [], []
        for k, (x, samples) in enumerate(self.sources):
            for j in self.rng.integers(0, len(samples), size=int((which == k).sum())):
                s = samples[j]
                images.append(x[s["image"]])
                rows.append(self.encoded[(prompt_text(s), s["answer"])])
        length = max(len(p) + len(a) for p, a in rows)
        ids = torch.full((n, length), PAD)
        labels = torch.full((n, length), -100)
        mask = torch.zeros((n, length), dtype=torch.long)
        for r, (p, a) in enumerate(rows):
            ids[r, : len(p) + len(a)] = torch.tensor(p + a)
            labels[r, len(p): len(p) + len(a)] = torch.tensor(a)
            mask[r, : len(p) + len(a)] = 1
        return ids, mask, labels, pixel_values(shift(np.stack(images), self.rng))


def learning_rate(step: int) -> float:
    """Linear warmup, then cosine decay to 0."""
    lr, warm, total = HPARAMS["lr"], HPARAMS["warmup_steps"], HPARAMS["steps"]
    if step < warm:
        return lr * (step + 1) / warm
    return lr * 0.5 * (1 + math.cos(math.pi * ((step - warm) / max(1, total - warm))))


def train(model, sampler: Sampler, log_every: int = 100) -> dict:
    hp = HPARAMS
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=hp["lr"], betas=(0.9, 0.98), eps=1e-6)

    model.train()
    log, window, t0 = [], [], time.time()
    for step in range(hp["steps"]):
        for g in opt.param_groups:
            g["lr"] = learning_rate(step)
        ids, mask, labels, pv = sampler.batch(hp["batch_size"])
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=pv).logits
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                               ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        window.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == hp["steps"]:
            mean = float(np.mean(window))
            log.append({"step": step + 1, "loss": round(mean, 4)})
            print(f"  step {step + 1:5d}  loss {mean:.4f}  {time.time() - t0:6.1f}s", flush=True)
            window = []
    model.eval()
    return {"log": log, "final_loss": log[-1]["loss"], "seconds": round(time.time() - t0, 1)}


# ----------------------------------------------------------------------------- output

def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def save(model, tok, out_dir: Path) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    from safetensors.torch import save_file

    model.generation_config.update(bos_token_id=None, eos_token_id=EOS, pad_token_id=PAD, do_sample=False)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    # llava-1.5-hf's key layout (`language_model.model.*`, `vision_tower.vision_model.*`), which
    # both transformers and mvb read (transformers 5.23's own writer drops `vision_model.`).
    state = {k: v.detach().contiguous().clone() for k, v in llava_legacy_state(model).items()}
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    (out_dir / "model.safetensors").chmod(0o644)
    tok.save(str(out_dir / "tokenizer.json"), pretty=True)
    write_json(out_dir / "tokenizer_config.json", tokenizer_config(tok))
    write_json(out_dir / "special_tokens_map.json", {"additional_special_tokens": [IMAGE_TOKEN],
                                                     "eos_token": SPECIALS[EOS], "pad_token": SPECIALS[PAD]})
    write_json(out_dir / "chat_template.json", {"chat_template": CHAT_TEMPLATE})
    write_json(out_dir / "preprocessor_config.json", {
        "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": C.CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor", "image_std": C.CLIP_STD,
        "processor_class": "LlavaProcessor", "resample": 3, "rescale_factor": 1 / 255,
        "size": {"shortest_edge": IMAGE_SIZE}})
    write_json(out_dir / "processor_config.json", {
        "image_token": IMAGE_TOKEN, "num_additional_image_tokens": 1, "patch_size": 7,
        "processor_class": "LlavaProcessor", "vision_feature_select_strategy": "default"})


# ----------------------------------------------------------------------------- evaluation

def load_saved(out_dir: Path):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    proc = AutoProcessor.from_pretrained(str(out_dir), backend="pil")
    model = LlavaForConditionalGeneration.from_pretrained(str(out_dir), dtype=torch.float32,
                                                          attn_implementation="eager").eval()
    return proc, model


def check_tokenizer(proc, tok) -> None:
    """The processor's tokenizer (transformers) splits prompts exactly as tokenizer.json does
    (what the Rust `tokenizers` crate reads), and expands <image> to 16 positions."""
    text = chat(CLOSED_PREFIX + MEDMNIST_VQA["breastmnist"][0][0])
    assert proc.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text":
                                    CLOSED_PREFIX + MEDMNIST_VQA["breastmnist"][0][0]}]}],
                                    add_generation_prompt=True, tokenize=False) == text
    assert proc.tokenizer(text, add_special_tokens=True)["input_ids"] == tok.encode(text).ids


@torch.no_grad()
def greedy_answers(proc, model, images: np.ndarray, samples: list[dict], batch: int = 256) -> list[str]:
    """Batched greedy decoding (left padding), up to MAX_NEW tokens or </s>."""
    proc.tokenizer.padding_side = "left"
    out = []
    for i in range(0, len(samples), batch):
        part = samples[i: i + batch]
        enc = proc(images=[C.to_pil(images[s["image"]]) for s in part], text=[chat(prompt_text(s)) for s in part],
                   padding=True, return_tensors="pt")
        new = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=EOS,
                             pad_token_id=PAD)[:, enc["input_ids"].shape[1]:]
        out.extend(proc.tokenizer.decode(row, skip_special_tokens=True) for row in new.tolist())
    return out


def vqa_scores(samples: list[dict], answers: list[str]) -> dict:
    res = {"n": len(samples)}
    for kind in ("closed", "open"):
        hits = [score(a, s["answer"], s["kind"]) for s, a in zip(samples, answers) if s["kind"] == kind]
        res[f"n_{kind}"] = len(hits)
        res[f"{kind}_accuracy"] = round(float(np.mean(hits)), 4)
    closed = [(s, a) for s, a in zip(samples, answers) if s["kind"] == "closed"]
    res["closed_yes_rate"] = round(float(np.mean([normalise(a) == ["yes"] for _, a in closed])), 4)
    res["closed_majority"] = round(max(np.mean([s["answer"] == "yes" for s, _ in closed]),
                                       np.mean([s["answer"] == "no" for s, _ in closed])), 4)
    counts: dict[str, int] = {}
    for s, a in zip(samples, answers):
        if s["kind"] == "open":
            counts[a.strip()] = counts.get(a.strip(), 0) + 1
    res["open_answers"] = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:6])
    return res


def evaluate(out_dir: Path, tok, trained) -> dict:
    proc, model = load_saved(out_dir)
    check_tokenizer(proc, tok)
    saved, mine = model.state_dict(), trained.state_dict()
    assert set(saved) == set(mine) and all(torch.equal(saved[k], mine[k]) for k in mine), "reload differs"
    results = {}
    for name in ("pneumoniamnist", "retinamnist", "breastmnist"):
        images, samples = medmnist_vqa(name, "test")
        results[f"{name}-vqa"] = vqa_scores(samples, greedy_answers(proc, model, images, samples))
    images, samples = fashion_vqa("test")
    results["fashion-mnist-vqa"] = vqa_scores(samples, greedy_answers(proc, model, images, samples))
    return results


@torch.no_grad()
def references(out_dir: Path) -> list[dict]:
    """Greedy ids and text, one sample at a time without padding, for the first two images of
    the PneumoniaMNIST and RetinaMNIST test splits and the first of BreastMNIST (closed and
    open question each: 10 samples), with the smallest top-1/top-2 logit gap on the way."""
    proc, model = load_saved(out_dir)
    entries = []
    for name, n in (("pneumoniamnist", 2), ("retinamnist", 2), ("breastmnist", 1)):
        images, samples = medmnist_vqa(name, "test")
        for s in samples[: 2 * n]:
            text = chat(prompt_text(s))
            enc = proc(images=C.to_pil(images[s["image"]]), text=text, return_tensors="pt")
            ids, margins = enc["input_ids"], []
            for _ in range(MAX_NEW):
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                               pixel_values=enc["pixel_values"]).logits[0, -1]
                top = torch.topk(logits, 2)
                margins.append(float(top.values[0] - top.values[1]))
                ids = torch.cat([ids, top.indices[:1].view(1, 1)], dim=1)
                if int(top.indices[0]) == EOS:
                    break
            new = ids[0, enc["input_ids"].shape[1]:].tolist()
            gen = model.generate(**enc, max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=EOS,
                                 pad_token_id=PAD)[0, enc["input_ids"].shape[1]:].tolist()
            assert gen == new, ("generate() != argmax loop", gen, new)
            kept = new[:-1] if new and new[-1] == EOS else new
            entries.append({"dataset": f"{name}-vqa", "id": s["id"], "prompt": prompt_text(s), "chat": text,
                            "input_ids": enc["input_ids"][0].tolist(), "new_ids": kept,
                            "text": proc.tokenizer.decode(kept, skip_special_tokens=True),
                            "eos": bool(new and new[-1] == EOS), "min_top2_margin": round(min(margins), 4)})
    return entries


# ----------------------------------------------------------------------------- model card

def result_rows(results: dict, in_dist: list[str]) -> str:
    rows = []
    for ds, r in results.items():
        tag = "in-distribution" if ds in in_dist else "OOD (never seen)"
        rows.append(f"| {ds} | {tag} | {r['n_closed']} / {r['n_open']} | {r['closed_accuracy']:.4f} "
                    f"| {r['closed_majority']:.4f} | {r['closed_yes_rate']:.4f} | {r['open_accuracy']:.4f} "
                    f"| {json.dumps(r['open_answers'], ensure_ascii=False)} |")
    return "\n".join(rows)


def model_card(name: str, clip: str, data_desc: str, examples: list[dict], tok, train_info: dict,
               results: dict, in_dist: list[str], out_dir: Path, model) -> str:
    size = (out_dir / "model.safetensors").stat().st_size
    count = lambda part: sum(p.numel() for p in part.parameters())  # noqa: E731
    lm, proj, tower = model.model.language_model, model.model.multi_modal_projector, model.model.vision_tower
    heads = model.lm_head
    loss_rows = "\n".join(f"| {e['step']} | {e['loss']:.4f} |" for e in train_info["log"])
    licences = {
        "demo-vlm-generalist": "- Training data: Fashion-MNIST (Zalando Research), MIT licence, from Debian's "
                               "`dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist/).",
        "demo-vlm-specialist": "- Training data: MedMNIST v2 PneumoniaMNIST and RetinaMNIST train splits, CC BY 4.0 "
                               "(Yang et al., Scientific Data 2023; source data Kermany et al., Cell 2018 and "
                               "DeepDRiD, Liu et al., Patterns 2022), vendored in data/medmnist/.",
    }[name]
    return f"""# {name}: a tiny demonstration generative VLM (LLaVA-1.5 layout)

**This is a demonstration model made for mvb's tests and demos. It is not one of the
MedVLMBench models, it is not a medical device, and its numbers say nothing about any
published model.** It exists so that mvb can run the whole VQA pipeline (LLaVA checkpoint
loading, tokenizer.json, chat template, image preprocessing, greedy decoding, the `vqa`
metrics, bootstrap) on a real trained checkpoint that ships inside the repository.

Made by `tools/train_demo_vlms.py` (run: `tools/.venv/bin/python tools/train_demo_vlms.py {name.removeprefix('demo-vlm-')}`).

## What it is
- Architecture: transformers `LlavaForConditionalGeneration` (Hugging Face layout, llava-1.5-hf's
  key names `language_model.model.*`, `vision_tower.vision_model.*`, `model.safetensors` float32, {size / 1e6:.2f} MB), seed {SEED}.
- Vision tower ({count(tower):,} parameters, frozen): the vision tower of `data/models/{clip}`
  (CLIP ViT, {IMAGE_SIZE}x{IMAGE_SIZE} px, patch 7, width 64, 4 layers), read at
  `vision_feature_layer = -2` with the class token dropped (`vision_feature_select_strategy =
  "default"`): {IMAGE_POSITIONS} image positions per image.
- Projector ({count(proj):,} parameters): LLaVA-1.5's `linear_1` (64 -> {TEXT_CONFIG['hidden_size']}), GELU, `linear_2`.
- Language model ({count(lm) + count(heads):,} parameters with `lm_head`): Llama, hidden {TEXT_CONFIG['hidden_size']},
  {TEXT_CONFIG['num_hidden_layers']} layers, {TEXT_CONFIG['num_attention_heads']} heads ({TEXT_CONFIG['num_key_value_heads']} key/value heads, head dim
  {TEXT_CONFIG['head_dim']}), MLP {TEXT_CONFIG['intermediate_size']} (SiLU), RMSNorm, RoPE theta {TEXT_CONFIG['rope_theta']:g}, context
  {TEXT_CONFIG['max_position_embeddings']}, untied `lm_head`, vocabulary {model.config.text_config.vocab_size}.
- Tokenizer (`tokenizer.json`): byte-level BPE trained with `tokenizers` on this model's own
  training conversations ({tok.get_vocab_size()} tokens: `<pad>` 0, `</s>` 1 (end of sequence),
  256 byte symbols, the merges, then the added token `<image>` = {tok.token_to_id(IMAGE_TOKEN)}); no BOS token.
  Any text encodes (byte-level); words it never saw become several small tokens.
- Conversation format (`chat_template.json`, LLaVA-1.5's): `USER: <image>\\n{{prompt}} ASSISTANT:`;
  the answer follows as ` {{answer}}</s>`.
- Preprocessing (`preprocessor_config.json`): CLIPImageProcessor, shortest edge {IMAGE_SIZE}, centre crop
  {IMAGE_SIZE}x{IMAGE_SIZE}, bicubic, rescale 1/255, CLIP mean/std, convert to RGB.

## How it was trained
- Data: {data_desc}
- Prompts (MedVLMBench's): open questions as they are; closed questions as
  "{CLOSED_PREFIX}{{question}}".
- Hyper-parameters: {json.dumps(HPARAMS)}
- Language model: `{json.dumps(TEXT_CONFIG)}`
- Example training conversations:

```json
{json.dumps(examples, indent=2, ensure_ascii=False)}
```

- Final training loss (mean of the last 100 steps): **{train_info['final_loss']:.4f}**; wall time
  {train_info['seconds']} s on {HPARAMS['torch_threads']} CPU thread(s).

| step | mean loss |
|---|---|
{loss_rows}

## VQA results (computed by the script, from the saved folder, through transformers)
The test splits of the `medmnist` plugin's VQA views (all images; two questions each, rule in
data/medmnist/README.md) and of Fashion-MNIST asked the same way, MedVLMBench's prompts, batched
greedy decoding (left padding) of at most {MAX_NEW} new tokens, stopping at `</s>`. Scored as the
`vqa` metric plugin does: both strings lower-cased and VQA-normalised; closed accuracy = the
answer is a substring of the prediction; open accuracy = unigram recall >= 0.75. "majority" is
the accuracy of always giving the more frequent closed answer; "says yes" is the share of closed
questions answered "yes"; the last column shows the most frequent open answers.

| test set | for this model | closed / open questions | closed accuracy | majority | says yes | open accuracy | open answers |
|---|---|---|---|---|---|---|---|
{result_rows(results, in_dist)}

In-distribution: {', '.join(in_dist)}. Everything else was never seen in training.

## Versions
{json.dumps(C.library_versions())}

## Licences
- The model weights and this card: the mvb project's licence. The vision tower is
  `data/models/{clip}`'s (same project, same licence).
{licences}
- Evaluation data: MedMNIST v2 test splits (CC BY 4.0) vendored in data/medmnist/, and the
  Fashion-MNIST test split (MIT).
"""


# ----------------------------------------------------------------------------- main

def run(name: str) -> list[dict]:
    torch.manual_seed(SEED)
    torch.set_num_threads(HPARAMS["torch_threads"])
    rng = np.random.default_rng(SEED)
    clip = f"demo-{name}"
    if name == "generalist":
        x, s = fashion_vqa("train")
        sources = [(x, s, 1.0)]
        data_desc = (f"Fashion-MNIST train split, all {len(x)} images (28x28 grey, replicated to RGB), two "
                     f"questions each ({len(s)} samples; rule in the script's `fashion_vqa`), classes "
                     f"{C.FASHION_CLASSES}.")
        in_dist = ["fashion-mnist-vqa"]
    else:
        (xp, sp), (xr, sr) = medmnist_vqa("pneumoniamnist", "train"), medmnist_vqa("retinamnist", "train")
        sources = [(xp, sp, 0.6), (xr, sr, 0.4)]
        data_desc = (f"the `medmnist` plugin's pneumoniamnist-vqa ({len(sp)} samples of {len(xp)} images) and "
                     f"retinamnist-vqa ({len(sr)} samples of {len(xr)} images) train splits; each pair drawn "
                     "from PneumoniaMNIST with probability 0.6 and RetinaMNIST 0.4. BreastMNIST (and every "
                     "val/test split) unseen.")
        in_dist = ["pneumoniamnist-vqa", "retinamnist-vqa"]
    print(f"== demo-vlm-{name}: {data_desc}", flush=True)
    tok = train_tokenizer(corpus_of([smp for _, ss, _ in sources for smp in ss]))
    image_id = tok.token_to_id(IMAGE_TOKEN)
    vocab = (image_id + 1 + 63) // 64 * 64  # padded past the tokenizer, as llava-1.5-hf's 32064
    print(f"  tokenizer: {tok.get_vocab_size()} tokens, <image> = {image_id}, model vocabulary {vocab}", flush=True)
    model = build_model(OUT / clip, vocab, image_id)
    sampler = Sampler(sources, tok, image_id, rng)
    info = train(model, sampler)
    out_dir = OUT / f"demo-vlm-{name}"
    save(model, tok, out_dir)
    results = evaluate(out_dir, tok, model)
    for ds, r in results.items():
        print(f"  {ds:20s} closed {r['closed_accuracy']:.4f} (majority {r['closed_majority']:.4f}, "
              f"yes {r['closed_yes_rate']:.4f})  open {r['open_accuracy']:.4f}  {r['open_answers']}", flush=True)
    examples = [{"prompt": chat(prompt_text(smp)), "answer": f" {smp['answer']}</s>"}
                for _, ss, _ in sources for smp in ss[:2]]
    card = model_card(f"demo-vlm-{name}", clip, data_desc, examples, tok, info, results, in_dist, out_dir, model)
    (out_dir / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    return references(out_dir)


def main() -> None:
    which = sys.argv[1:] or ["generalist", "specialist"]
    for w in which:
        if w not in ("generalist", "specialist"):
            raise SystemExit(f"unknown model {w!r}: generalist | specialist")
    fixture = json.loads(FIXTURE.read_text()) if FIXTURE.exists() else {}
    for w in which:
        fixture[f"demo-vlm-{w}"] = {"model_dir": f"data/models/demo-vlm-{w}", "max_new_tokens": MAX_NEW,
                                    "eos_token_id": EOS, "versions": C.library_versions(), "samples": run(w)}
    write_json(FIXTURE, dict(sorted(fixture.items())))


if __name__ == "__main__":
    main()
