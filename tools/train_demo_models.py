#!/usr/bin/env python3
"""Trains the two tiny demonstration contrastive models in data/models/.

Run (from the repository root, after ``bash tools/setup_venv.sh`` and
``apt-get install -y dataset-fashion-mnist``):

    tools/.venv/bin/python tools/train_demo_models.py              # both models
    tools/.venv/bin/python tools/train_demo_models.py specialist   # just one

Each model is a real transformers ``CLIPModel`` (random init, seed fixed) trained from
scratch on CPU for a fixed number of steps (a few minutes with 2 threads) with the CLIP
symmetric contrastive loss on (image, caption) pairs:

* ``demo-generalist``: Fashion-MNIST train split (Debian package ``dataset-fashion-mnist``,
  MIT licence), captions "a photo of a {class}" and other templates.
* ``demo-specialist``: MedMNIST PneumoniaMNIST + RetinaMNIST train splits (vendored in
  data/medmnist/, CC BY 4.0), captions from the official class names ("a photo of
  pneumonia", "a photo of 2") and descriptive ones ("a retinal fundus photograph with
  diabetic retinopathy grade 2"). BreastMNIST is never seen: it is the OOD set.

Written to data/models/demo-{generalist,specialist}/ in the Hugging Face layout
(config.json, model.safetensors in float32, the real 49,408-token CLIP BPE tokenizer
(tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.json, merges.txt),
preprocessor_config.json: CLIPImageProcessor 28 px, bicubic, CLIP mean/std) plus a
MODEL_CARD.md with the recipe and the zero-shot results that this script computes by
reloading the saved folder with transformers (template "a photo of {}", official
MedMNIST class names, softmax over classes, AUROC of p[class 1] for binary sets and
one-vs-rest macro AUROC for RetinaMNIST's 5 grades, as mvb does).

Size: the text tower keeps the full 49,408-token embedding table; with text hidden size
32 that is 6.3 MB in float32, ~7.2 MB per model in all. float32 is kept so that the Rust
loader's main path (f32) is what the demo exercises; the bf16 path has its own fixture.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mvb_common as C  # noqa: E402  (sets HF offline variables first)

import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

OUT = C.REPO / "data" / "models"
IMAGE_SIZE = 28
SEED = 42

HPARAMS = {
    # MVB_DEMO_STEPS only for quick smoke runs; the committed models use the default.
    "steps": int(__import__("os").environ.get("MVB_DEMO_STEPS", "2000")),
    "batch_size": 128,
    "lr": 5e-4,
    "weight_decay": 0.05,
    "warmup_steps": 100,
    "schedule": "linear warmup then cosine decay to 0",
    "optimizer": "AdamW(betas=(0.9, 0.98), eps=1e-6)",
    "logit_scale_init": "ln(1/0.07) = 2.6592, learnable, clamped to ln(100)",
    "augmentation": "random translation by up to 2 px (edge padding), per image",
    "torch_threads": 1,  # 2 threads was 7x slower on the shared 2-core machine
}

TEXT_CONFIG = dict(vocab_size=49408, hidden_size=32, intermediate_size=128, num_hidden_layers=2,
                   num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                   layer_norm_eps=1e-5, projection_dim=64,
                   bos_token_id=49406, eos_token_id=49407, pad_token_id=49407)
VISION_CONFIG = dict(image_size=IMAGE_SIZE, patch_size=7, num_channels=3, hidden_size=64,
                     intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                     hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=64)
PROJECTION_DIM = 64

GENERIC_TEMPLATES = [
    "a photo of {}",
    "a photo of a {}",
    "a photo of the {}",
    "a black and white photo of a {}",
    "a low resolution photo of a {}",
    "a picture of a {}",
    "an image of a {}",
    "a {}",
]

RETINA_GRADES = ["no diabetic retinopathy", "mild diabetic retinopathy", "moderate diabetic retinopathy",
                 "severe diabetic retinopathy", "proliferative diabetic retinopathy"]


def specialist_captions() -> dict[str, list[list[str]]]:
    """Per dataset, per label: the caption pool a training pair draws from."""
    pneu = {
        0: ["a photo of normal", "a photo of a normal chest x-ray", "a chest x-ray of normal lungs",
            "a paediatric chest x-ray with no pneumonia", "normal"],
        1: ["a photo of pneumonia", "a photo of a chest x-ray with pneumonia",
            "a chest x-ray showing pneumonia", "a paediatric chest x-ray with pneumonia", "pneumonia"],
    }
    retina = {}
    for g in range(5):
        retina[g] = [
            f"a photo of {g}",  # the official MedMNIST class name is the grade number
            f"a photo of diabetic retinopathy grade {g}",
            f"a retinal fundus photograph with diabetic retinopathy grade {g}",
            f"a fundus photo of {RETINA_GRADES[g]}",
            f"{g}",
        ]
    return {"pneumoniamnist": [pneu[0], pneu[1]], "retinamnist": [retina[g] for g in range(5)]}


def generalist_captions() -> list[list[str]]:
    return [[t.format(c) for t in GENERIC_TEMPLATES] for c in C.FASHION_CLASSES]


# ----------------------------------------------------------------------------- data

class PairSource:
    """Images (uint8, N x 28 x 28 [x 3]) with a caption pool per label."""

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray, pools: list[list[str]], weight: float):
        if images.ndim == 3:
            images = np.repeat(images[..., None], 3, axis=-1)  # grey -> RGB, like do_convert_rgb
        self.name, self.images, self.labels, self.pools, self.weight = name, images, labels, pools, weight


def normalise(batch_u8: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x 3 -> float32 N x 3 x H x W exactly as CLIPImageProcessor does for
    28x28 inputs at size 28 (resize and crop are the identity): f32(x/255), then
    (x - mean) / std in float32."""
    x = (batch_u8.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.array(C.CLIP_MEAN, np.float32)) / np.array(C.CLIP_STD, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def shift(batch_u8: np.ndarray, rng: np.random.Generator, max_shift: int = 2) -> np.ndarray:
    n, h, w, _ = batch_u8.shape
    padded = np.pad(batch_u8, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)), mode="edge")
    dy = rng.integers(0, 2 * max_shift + 1, size=n)
    dx = rng.integers(0, 2 * max_shift + 1, size=n)
    return np.stack([padded[i, dy[i]: dy[i] + h, dx[i]: dx[i] + w] for i in range(n)])


class Sampler:
    def __init__(self, sources: list[PairSource], tok, rng: np.random.Generator):
        self.sources, self.rng = sources, rng
        w = np.array([s.weight for s in sources], dtype=np.float64)
        self.p = w / w.sum()
        # tokenise every distinct caption once
        self.captions = sorted({c for s in sources for pool in s.pools for c in pool})
        enc = tok(self.captions, padding=True, return_tensors="pt")
        self.ids, self.mask = enc["input_ids"], enc["attention_mask"]
        self.index = {c: i for i, c in enumerate(self.captions)}

    def batch(self, n: int):
        which = self.rng.choice(len(self.sources), size=n, p=self.p)
        imgs, caps = [], []
        for k in range(len(self.sources)):
            m = int((which == k).sum())
            if m == 0:
                continue
            s = self.sources[k]
            idx = self.rng.integers(0, len(s.images), size=m)
            imgs.append(s.images[idx])
            for i in idx:
                pool = s.pools[int(s.labels[i])]
                caps.append(self.index[pool[int(self.rng.integers(0, len(pool)))]])
        imgs = shift(np.concatenate(imgs), self.rng)
        caps = torch.tensor(caps)
        return normalise(imgs), self.ids[caps], self.mask[caps]


# ----------------------------------------------------------------------------- model

def build_model():
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(text_config=TEXT_CONFIG, vision_config=VISION_CONFIG,
                     projection_dim=PROJECTION_DIM, logit_scale_init_value=2.6592)
    torch.manual_seed(SEED)
    return CLIPModel(cfg)


def train(model, sampler: Sampler, log_every: int = 100) -> dict:
    hp = HPARAMS
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in n or "embedding" in n or n == "logit_scale" else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=hp["lr"], betas=(0.9, 0.98), eps=1e-6)

    def lr_at(step: int) -> float:
        if step < hp["warmup_steps"]:
            return hp["lr"] * (step + 1) / hp["warmup_steps"]
        t = (step - hp["warmup_steps"]) / max(1, hp["steps"] - hp["warmup_steps"])
        return hp["lr"] * 0.5 * (1 + math.cos(math.pi * t))

    model.train()
    log, window = [], []
    t0 = time.time()
    for step in range(hp["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        pv, ids, mask = sampler.batch(hp["batch_size"])
        img = F.normalize(model.get_image_features(pixel_values=pv), dim=-1)
        txt = F.normalize(model.get_text_features(input_ids=ids, attention_mask=mask), dim=-1)
        scale = model.logit_scale.clamp(max=math.log(100.0)).exp()
        logits = scale * img @ txt.t()
        target = torch.arange(len(pv))
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(max=math.log(100.0))
        window.append(loss.item())
        if (step + 1) % log_every == 0 or step + 1 == hp["steps"]:
            mean = float(np.mean(window))
            log.append({"step": step + 1, "loss": round(mean, 4), "logit_scale_exp": round(scale.item(), 3)})
            print(f"  step {step + 1:5d}  loss {mean:.4f}  scale {scale.item():6.2f}  {time.time() - t0:6.1f}s", flush=True)
            window = []
    model.eval()
    return {"log": log, "final_loss": log[-1]["loss"], "seconds": round(time.time() - t0, 1)}


# ----------------------------------------------------------------------------- evaluation

def zero_shot(model_dir: Path, images: np.ndarray, labels: np.ndarray, classes: list[str],
              template: str = "a photo of {}") -> dict:
    """mvb's zero-shot recipe through transformers, from the saved folder: the HF image
    processor on PIL images, prompts padded to the longest, logits_per_image, softmax."""
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizerFast

    model = CLIPModel.from_pretrained(str(model_dir)).eval()
    proc = CLIPImageProcessor.from_pretrained(str(model_dir))
    tok = CLIPTokenizerFast.from_pretrained(str(model_dir))
    enc = tok([template.format(c) for c in classes], padding=True, return_tensors="pt")
    probs = []
    with torch.no_grad():
        for i in range(0, len(images), 256):
            pv = proc(images=[C.to_pil(a) for a in images[i: i + 256]], return_tensors="pt")["pixel_values"]
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=pv)
            probs.append(out.logits_per_image.softmax(dim=-1).numpy())
    probs = np.concatenate(probs)
    pred = probs.argmax(1)
    return {"n": int(len(labels)), "classes": classes, "accuracy": round(float((pred == labels).mean()), 4),
            "auroc": round(C.auroc(probs, labels), 4),
            "majority_class_accuracy": round(float(np.bincount(labels).max() / len(labels)), 4),
            "predicted_class_counts": np.bincount(pred, minlength=len(classes)).tolist()}


def evaluate(model_dir: Path) -> dict:
    res = {}
    for ds in ("pneumoniamnist", "retinamnist", "breastmnist"):
        x, y = C.load_medmnist(ds, "test")
        res[ds] = zero_shot(model_dir, x, y, C.MEDMNIST_CLASSES[ds])
    x, y = C.load_fashion_mnist("test")
    res["fashion-mnist"] = zero_shot(model_dir, x, y, C.FASHION_CLASSES)
    return res


# ----------------------------------------------------------------------------- output

def save(model, tok, out_dir: Path) -> None:
    from transformers import CLIPImageProcessor

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    C.save_clip_tokenizer(tok, out_dir)
    CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": IMAGE_SIZE}, resample=3,
        do_center_crop=True, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=C.CLIP_MEAN, image_std=C.CLIP_STD, do_convert_rgb=True,
    ).save_pretrained(str(out_dir))


def model_card(name: str, data_desc: str, pools, train_info: dict, results: dict,
               in_dist: list[str], ood: list[str], out_dir: Path) -> str:
    versions = C.library_versions()
    size = (out_dir / "model.safetensors").stat().st_size
    rows = []
    for ds, r in results.items():
        tag = "in-distribution" if ds in in_dist else "OOD (never seen)"
        rows.append(f"| {ds} | {tag} | {r['n']} | {r['accuracy']:.4f} | {r['majority_class_accuracy']:.4f} "
                    f"| {r['auroc']:.4f} | {r['predicted_class_counts']} |")
    loss_rows = "\n".join(f"| {e['step']} | {e['loss']:.4f} | {e['logit_scale_exp']:.2f} |" for e in train_info["log"])
    captions = json.dumps(pools, indent=2, ensure_ascii=False)
    licences = {
        "demo-generalist": "- Training data: Fashion-MNIST (Zalando Research), MIT licence, from Debian's "
                           "`dataset-fashion-mnist` package (/usr/share/datasets/fashion-mnist/).\n"
                           "- Evaluation data: MedMNIST v2 test splits (CC BY 4.0) vendored in data/medmnist/, "
                           "and the Fashion-MNIST test split (MIT).",
        "demo-specialist": "- Training data: MedMNIST v2 PneumoniaMNIST and RetinaMNIST train splits, CC BY 4.0 "
                           "(Yang et al., Scientific Data 2023; source data Kermany et al., Cell 2018 and DeepDRiD, "
                           "Liu et al., Patterns 2022), vendored in data/medmnist/.\n"
                           "- Evaluation data: MedMNIST v2 test splits (CC BY 4.0) and the Fashion-MNIST test split (MIT).",
    }[name]
    return f"""# {name}: a tiny demonstration CLIP model

**This is a demonstration model made for mvb's tests and demos. It is not one of the
MedVLMBench models, it is not a medical device, and its numbers say nothing about any
published model.** It exists so that mvb can run the whole zero-shot pipeline
(HF checkpoint loading, tokenizer.json, image preprocessing, scoring, AUROC, bootstrap)
on a real trained checkpoint that ships inside the repository.

Made by `tools/train_demo_models.py` (run: `tools/.venv/bin/python tools/train_demo_models.py {name.removeprefix('demo-')}`).

## What it is
- Architecture: transformers `CLIPModel` (Hugging Face layout, `model.safetensors` float32,
  {size / 1e6:.2f} MB), trained from random initialisation, seed {SEED}.
- Vision tower: ViT, image {IMAGE_SIZE}x{IMAGE_SIZE}, patch {VISION_CONFIG['patch_size']}
  ({(IMAGE_SIZE // VISION_CONFIG['patch_size']) ** 2} patches + CLS), hidden {VISION_CONFIG['hidden_size']},
  {VISION_CONFIG['num_hidden_layers']} layers, {VISION_CONFIG['num_attention_heads']} heads, MLP {VISION_CONFIG['intermediate_size']}, `quick_gelu`.
- Text tower: vocabulary 49,408 (the real OpenAI CLIP BPE, `tokenizer.json`), hidden {TEXT_CONFIG['hidden_size']},
  {TEXT_CONFIG['num_hidden_layers']} layers, {TEXT_CONFIG['num_attention_heads']} heads, MLP {TEXT_CONFIG['intermediate_size']}, context 77, causal mask,
  pooled at the first `<|endoftext|>` (eos_token_id 49407), `quick_gelu`.
- Projection dimension {PROJECTION_DIM}; `logit_scale` learned (exp = {train_info['log'][-1]['logit_scale_exp']:.2f} at the end).
- Preprocessing (`preprocessor_config.json`): CLIPImageProcessor, shortest edge {IMAGE_SIZE}, centre crop
  {IMAGE_SIZE}x{IMAGE_SIZE}, bicubic, rescale 1/255, CLIP mean {C.CLIP_MEAN} / std {C.CLIP_STD}, convert to RGB
  (grey images are replicated into 3 channels).

## How it was trained
- Data: {data_desc}
- Loss: CLIP symmetric contrastive loss (image->text and text->image cross-entropy over the
  batch, in-batch negatives; captions of the same class in one batch are false negatives, as
  in plain CLIP training).
- Hyper-parameters: {json.dumps(HPARAMS)}
- Caption pools, per dataset and label (one drawn uniformly per pair):

```json
{captions}
```

- Final training loss (mean of the last {train_info['log'][-1]['step'] - train_info['log'][-2]['step'] if len(train_info['log']) > 1 else 1} steps): **{train_info['final_loss']:.4f}**;
  wall time {train_info['seconds']} s on {HPARAMS['torch_threads']} CPU thread(s).

| step | mean loss | exp(logit_scale) |
|---|---|---|
{loss_rows}

## Zero-shot results (computed by the script, from the saved folder, through transformers)
Template "a photo of {{}}", official class names (MedMNIST INFO table: pneumoniamnist
normal/pneumonia, breastmnist malignant/"normal, benign", retinamnist "0".."4"), prompts
padded to the longest, softmax over classes. Accuracy = argmax; AUROC = p[class 1] for two
classes, one-vs-rest macro average for RetinaMNIST's 5 grades. Test splits, all images.

| test set | for this model | n | accuracy | majority-class acc. | AUROC | predicted class counts |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

In-distribution (its training data's test split): {', '.join(in_dist)}. Out of distribution (never seen): {', '.join(ood)}.

## Versions
{json.dumps(versions)}

## Licences
- The model weights and this card: the mvb project's licence.
{licences}
"""


def run(name: str, tok) -> dict:
    torch.set_num_threads(HPARAMS["torch_threads"])
    rng = np.random.default_rng(SEED)
    if name == "generalist":
        x, y = C.load_fashion_mnist("train")
        pools = generalist_captions()
        sources = [PairSource("fashion-mnist", x, y, pools, 1.0)]
        data_desc = (f"Fashion-MNIST train split, all {len(y)} images (28x28 grey, replicated to RGB), "
                     f"10 classes {C.FASHION_CLASSES}, {len(GENERIC_TEMPLATES)} caption templates.")
        in_dist, ood = ["fashion-mnist"], ["pneumoniamnist", "retinamnist", "breastmnist"]
        card_pools = {"fashion-mnist": {C.FASHION_CLASSES[i]: p for i, p in enumerate(pools)}}
    else:
        caps = specialist_captions()
        xp, yp = C.load_medmnist("pneumoniamnist", "train")
        xr, yr = C.load_medmnist("retinamnist", "train")
        # RetinaMNIST is small (1,080 images): it gets 40% of each batch.
        sources = [PairSource("pneumoniamnist", xp, yp, caps["pneumoniamnist"], 0.6),
                   PairSource("retinamnist", xr, yr, caps["retinamnist"], 0.4)]
        data_desc = (f"MedMNIST v2 train splits: PneumoniaMNIST ({len(yp)} images, grey, replicated to RGB) "
                     f"and RetinaMNIST ({len(yr)} images, RGB); each pair drawn from PneumoniaMNIST with "
                     "probability 0.6 and RetinaMNIST 0.4. BreastMNIST (and every val/test split) unseen.")
        in_dist, ood = ["pneumoniamnist", "retinamnist"], ["breastmnist", "fashion-mnist"]
        card_pools = {ds: {C.MEDMNIST_CLASSES[ds][i]: p for i, p in enumerate(pl)} for ds, pl in caps.items()}
    print(f"== demo-{name}: {data_desc}", flush=True)
    sampler = Sampler(sources, tok, rng)
    model = build_model()
    info = train(model, sampler)
    out_dir = OUT / f"demo-{name}"
    save(model, tok, out_dir)
    results = evaluate(out_dir)
    for ds, r in results.items():
        print(f"  zero-shot {ds:15s} acc {r['accuracy']:.4f} (majority {r['majority_class_accuracy']:.4f})  AUROC {r['auroc']:.4f}")
    card = model_card(f"demo-{name}", data_desc, card_pools, info, results, in_dist, ood, out_dir)
    (out_dir / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    return {"train": info, "zero_shot": results}


def main() -> None:
    which = sys.argv[1:] or ["generalist", "specialist"]
    for w in which:
        if w not in ("generalist", "specialist"):
            raise SystemExit(f"unknown model {w!r}: generalist | specialist")
    tok = C.build_clip_tokenizer(model_max_length=77)
    check = C.verify_clip_tokenizer(tok)
    if not check["all_equal"]:
        raise SystemExit("tokenizer differs from open_clip's SimpleTokenizer")
    for w in which:
        run(w, tok)


if __name__ == "__main__":
    main()
