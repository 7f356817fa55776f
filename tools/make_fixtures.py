#!/usr/bin/env python3
"""Builds the tiny random CLIP / SigLIP fixtures and their transformers reference outputs.

Run (from the repository root, after ``bash tools/setup_venv.sh``):

    tools/.venv/bin/python tools/make_fixtures.py

Offline and deterministic (torch.manual_seed(0), float32 on CPU, 2 threads). It writes:

tests/fixtures/images/            4 source PNGs taken from the vendored MedMNIST test splits
                                  (2 pneumoniamnist grey 28x28, 2 retinamnist RGB 28x28)
tests/fixtures/tiny-clip/         transformers CLIPModel (random weights), save_pretrained
                                  layout: config.json, model.safetensors (float32),
                                  tokenizer.json + tokenizer_config.json +
                                  special_tokens_map.json + vocab.json + merges.txt (the REAL
                                  49,408-token OpenAI CLIP BPE, built offline from the
                                  open-clip-torch wheel), preprocessor_config.json
                                  (CLIPImageProcessor, shortest_edge 32, crop 32, bicubic)
tests/fixtures/tiny-clip-bf16/    the same weights saved in bfloat16 (torch_dtype bfloat16)
tests/fixtures/tiny-siglip/       transformers SiglipModel (random weights), the same CLIP
                                  BPE tokenizer.json (real SigLIP uses SentencePiece; the Rust
                                  side reads any tokenizer.json), SiglipImageProcessor 32x32
                                  bilinear, mean/std 0.5
tests/fixtures/reference/<name>.json   reference outputs (format described in
                                  tests/fixtures/README.md): pixel_values, input_ids,
                                  attention_mask, get_image_features / get_text_features (raw
                                  and L2-normalised), logits_per_image, softmax probabilities,
                                  tower last_hidden_state / pooler_output for one input, plus
                                  the library versions and the tokenizer check.
tests/fixtures/reference/tokenizer_check.json   HF tokenizer vs open_clip SimpleTokenizer.

Random weights: transformers' own initialisation, then every bias and every LayerNorm
weight/bias is perturbed (biases ~ N(0, 0.05^2), LayerNorm weight ~ 1 + N(0, 0.1^2)) so a
loader that drops a bias or a LayerNorm parameter cannot pass the reference comparison.
SigLIP's logit_scale/logit_bias are set to log(10) and -2.5 (its init gives 0 and 0).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mvb_common as C  # noqa: E402  (sets HF offline variables first)

import json  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

FIX = C.REPO / "tests" / "fixtures"
IMAGES = FIX / "images"
REF = FIX / "reference"
SEED = 0

# (file name, dataset, split, index) -- fixed picks, see pick_images()
IMAGE_SPECS: list[tuple[str, str, str, int]] = []

ZS_SETS = {
    # the brief's pair; both class names are single BPE tokens -> no padding
    "pneumoniamnist": ["normal", "pneumonia"],
    # different prompt lengths -> exercises padding to the longest prompt
    "breastmnist": ["malignant", "normal, benign"],
}
TEMPLATE = "a photo of {}"


def pick_images() -> list[dict]:
    """First test image of label 0 and of label 1 (pneumoniamnist), and the first test
    images of grades 0 and 2 (retinamnist). Saved as PNG; the PNGs are the inputs."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    out = []
    for ds, labels in (("pneumoniamnist", (0, 1)), ("retinamnist", (0, 2))):
        x, y = C.load_medmnist(ds, "test")
        for lab in labels:
            idx = int(np.nonzero(y == lab)[0][0])
            name = f"{ds}_test_{idx:04d}_label{lab}.png"
            C.to_pil(x[idx]).save(IMAGES / name, format="PNG", optimize=False)
            out.append({"file": f"images/{name}", "dataset": ds, "split": "test", "index": idx,
                        "label": lab, "class_name": C.MEDMNIST_CLASSES[ds][lab],
                        "mode": "L" if x[idx].ndim == 2 else "RGB", "size": [28, 28]})
    return out


def load_images(specs: list[dict]) -> list[Image.Image]:
    imgs = []
    for s in specs:
        with Image.open(FIX / s["file"]) as im:
            im.load()
            imgs.append(im.copy())
    return imgs


def perturb(model: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            low = name.lower()
            is_norm = "norm" in low  # layer_norm1/2, pre_layrnorm, post_layernorm, final_layer_norm, head.layernorm
            if is_norm and name.endswith("weight"):
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias") and p.ndim >= 1 and "logit" not in low:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))


def tensor_entry(t) -> dict:
    if isinstance(t, torch.Tensor):
        t = t.detach().cpu()
        if t.dtype in (torch.int64, torch.int32):
            arr = t.numpy().astype(np.int64)
            return {"dtype": "i64", "shape": list(arr.shape), "data": [int(v) for v in arr.reshape(-1)]}
        arr = t.float().numpy().astype(np.float32)
    else:
        arr = np.asarray(t, dtype=np.float32)
    # float(np.float32) is the exact value; json writes the shortest repr that round-trips
    # the double, which parses back to the same f32.
    return {"dtype": "f32", "shape": list(arr.shape), "data": [float(v) for v in arr.reshape(-1)]}


def l2n(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(p=2, dim=-1, keepdim=True)


def tokenizer_for(model_dir: Path):
    from transformers import CLIPTokenizerFast

    return CLIPTokenizerFast.from_pretrained(str(model_dir))


def run_reference(kind: str, model, model_dir: Path, specs, images, compute_dtype: torch.dtype,
                  note: str) -> dict:
    """All reference tensors for one model. ``kind`` is "clip" or "siglip"."""
    from transformers import CLIPImageProcessor, SiglipImageProcessor

    proc_cls = CLIPImageProcessor if kind == "clip" else SiglipImageProcessor
    proc = proc_cls.from_pretrained(str(model_dir))
    tok = tokenizer_for(model_dir)
    pixel_values = proc(images=images, return_tensors="pt")["pixel_values"]
    model = model.eval()
    tensors: dict[str, dict] = {"pixel_values": tensor_entry(pixel_values)}
    pv = pixel_values.to(compute_dtype)
    out_sets = {}
    with torch.no_grad():
        img = model.get_image_features(pixel_values=pv)
        tensors["image_embeds"] = tensor_entry(img)
        tensors["image_embeds_normalized"] = tensor_entry(l2n(img.float()))
        vis = model.vision_model(pixel_values=pv[:1])
        tensors["vision_last_hidden_state_image0"] = tensor_entry(vis.last_hidden_state)
        tensors["vision_pooler_output_image0"] = tensor_entry(vis.pooler_output)
        for ds, classes in ZS_SETS.items():
            prompts = [TEMPLATE.format(c) for c in classes]
            enc = tok(prompts, padding=True, return_tensors="pt")
            ids, mask = enc["input_ids"], enc["attention_mask"]
            tensors[f"{ds}/input_ids"] = tensor_entry(ids)
            tensors[f"{ds}/attention_mask"] = tensor_entry(mask)
            if kind == "clip":
                # MedVLMBench's CLIP path: input_ids + attention_mask
                txt = model.get_text_features(input_ids=ids, attention_mask=mask)
                fwd = model(input_ids=ids, attention_mask=mask, pixel_values=pv)
                tower = model.text_model(input_ids=ids[:1], attention_mask=mask[:1])
            else:
                # MedVLMBench's SigLIP path: input_ids only (SiglipTokenizer returns no
                # attention_mask), padded to the longest prompt -> pads are attended to.
                txt = model.get_text_features(input_ids=ids)
                fwd = model(input_ids=ids, pixel_values=pv)
                tower = model.text_model(input_ids=ids[:1])
                tensors[f"{ds}/text_embeds_with_attention_mask"] = tensor_entry(
                    model.get_text_features(input_ids=ids, attention_mask=mask))
            tensors[f"{ds}/text_embeds"] = tensor_entry(txt)
            tensors[f"{ds}/text_embeds_normalized"] = tensor_entry(l2n(txt.float()))
            tensors[f"{ds}/logits_per_image"] = tensor_entry(fwd.logits_per_image)
            tensors[f"{ds}/logits_per_text"] = tensor_entry(fwd.logits_per_text)
            tensors[f"{ds}/probs_softmax"] = tensor_entry(fwd.logits_per_image.float().softmax(dim=-1))
            if kind == "siglip":
                tensors[f"{ds}/probs_sigmoid"] = tensor_entry(torch.sigmoid(fwd.logits_per_image.float()))
            tensors[f"{ds}/text_last_hidden_state_prompt0"] = tensor_entry(tower.last_hidden_state)
            tensors[f"{ds}/text_pooler_output_prompt0"] = tensor_entry(tower.pooler_output)
            out_sets[ds] = {"class_names": classes, "prompts": prompts,
                            "tokens": [tok.convert_ids_to_tokens(r) for r in ids.tolist()]}
        tensors["logit_scale"] = tensor_entry(model.logit_scale.detach().reshape(1))
        tensors["logit_scale_exp"] = tensor_entry(model.logit_scale.detach().float().exp().reshape(1))
        if kind == "siglip":
            tensors["logit_bias"] = tensor_entry(model.logit_bias.detach().reshape(1))
    return {
        "format": "mvb-reference-v1",
        "model_dir": f"tests/fixtures/{model_dir.name}",
        "model_class": type(model).__name__,
        "weights_dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "compute_dtype": str(compute_dtype).replace("torch.", ""),
        "note": note,
        "seed": SEED,
        "versions": C.library_versions(),
        "template": TEMPLATE,
        "images": specs,
        "zero_shot_sets": out_sets,
        "tensors": tensors,
    }


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def make_clip(tok, gen) -> tuple:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    text = dict(vocab_size=49408, hidden_size=32, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=77, hidden_act="quick_gelu",
                layer_norm_eps=1e-5, projection_dim=32,
                # the legacy ids every public OpenAI-style CLIP checkpoint has: eos_token_id
                # == 2 makes transformers pool at argmax(input_ids) (the first 49407)
                bos_token_id=0, eos_token_id=2, pad_token_id=1)
    vision = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                  projection_dim=32)
    cfg = CLIPConfig(text_config=text, vision_config=vision, projection_dim=32, logit_scale_init_value=2.6592)
    torch.manual_seed(SEED)
    model = CLIPModel(cfg).eval()
    perturb(model, gen)
    out = fresh_dir(FIX / "tiny-clip")
    model.save_pretrained(str(out), safe_serialization=True)
    C.save_clip_tokenizer(tok, out)
    CLIPImageProcessor(
        do_resize=True, size={"shortest_edge": 32}, resample=3,
        do_center_crop=True, crop_size={"height": 32, "width": 32},
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=C.CLIP_MEAN, image_std=C.CLIP_STD, do_convert_rgb=True,
    ).save_pretrained(str(out))
    return model, out


def make_siglip(gen) -> tuple:
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    text = dict(vocab_size=49408, hidden_size=32, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=64, hidden_act="gelu_pytorch_tanh",
                layer_norm_eps=1e-6, projection_size=64,
                pad_token_id=49407, bos_token_id=49406, eos_token_id=49407)
    vision = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4, hidden_act="gelu_pytorch_tanh",
                  layer_norm_eps=1e-6)
    cfg = SiglipConfig(text_config=text, vision_config=vision)
    torch.manual_seed(SEED + 1)
    model = SiglipModel(cfg).eval()
    perturb(model, gen)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-2.5)
    out = fresh_dir(FIX / "tiny-siglip")
    model.save_pretrained(str(out), safe_serialization=True)
    tok = C.build_clip_tokenizer(model_max_length=64)
    C.save_clip_tokenizer(tok, out)
    SiglipImageProcessor(
        do_resize=True, size={"height": 32, "width": 32}, resample=2,
        do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_convert_rgb=True,
    ).save_pretrained(str(out))
    return model, out


def check_reload(kind: str, model_dir: Path, ref_model, dtype) -> float:
    """Reloads with from_pretrained and compares every parameter bit for bit."""
    from transformers import CLIPModel, SiglipModel

    cls = CLIPModel if kind == "clip" else SiglipModel
    m = cls.from_pretrained(str(model_dir), dtype=dtype)
    a, b = m.state_dict(), ref_model.state_dict()
    assert set(a) == set(b), set(a) ^ set(b)
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst == 0.0, worst
    return worst


def main() -> None:
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(1234)

    tok = C.build_clip_tokenizer(model_max_length=77)
    check = C.verify_clip_tokenizer(tok)
    # the saved tokenizer.json, reloaded through transformers, must agree too
    specs = pick_images()
    images = load_images(specs)

    clip, clip_dir = make_clip(tok, gen)
    reloaded = tokenizer_for(clip_dir)
    check["reloaded_tokenizer_json_equal"] = all(
        reloaded(c["text"])["input_ids"] == c["open_clip"] for c in check["cases"])
    # tokenizer.json read by the plain `tokenizers` library (the Rust crate's core), no transformers
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(clip_dir / "tokenizer.json"))
    check["tokenizers_library_equal"] = all(
        raw.encode(c["text"]).ids == c["open_clip"] for c in check["cases"])
    check["versions"] = C.library_versions()
    write_json(REF / "tokenizer_check.json", check)
    ok = check["all_equal"] and check["reloaded_tokenizer_json_equal"] and check["tokenizers_library_equal"]
    print("tokenizer check:", "OK" if ok else "MISMATCH")
    for c in check["cases"][:1]:
        print("  ", c["text"], "->", c["hf"])
    if not ok:
        raise SystemExit("tokenizer mismatch, see tests/fixtures/reference/tokenizer_check.json")

    check_reload("clip", clip_dir, clip, torch.float32)
    write_json(REF / "tiny-clip.json", run_reference(
        "clip", clip, clip_dir, specs, images, torch.float32,
        "float32 weights, float32 compute (CPU)"))

    # bf16 copy: same weights rounded to bfloat16 and saved with torch_dtype bfloat16
    bf_dir = fresh_dir(FIX / "tiny-clip-bf16")
    clip_bf16 = type(clip)(clip.config)
    clip_bf16.load_state_dict(clip.state_dict())
    clip_bf16 = clip_bf16.to(torch.bfloat16).eval()
    clip_bf16.save_pretrained(str(bf_dir), safe_serialization=True)
    C.save_clip_tokenizer(tok, bf_dir)
    shutil.copy(clip_dir / "preprocessor_config.json", bf_dir / "preprocessor_config.json")
    check_reload("clip", bf_dir, clip_bf16, torch.bfloat16)
    ref_bf16 = run_reference(
        "clip", clip_bf16, bf_dir, specs, images, torch.bfloat16,
        "bfloat16 weights, bfloat16 compute (what transformers does on CPU when loaded with "
        "torch_dtype=bfloat16); values are bf16 numbers written as f32. Compare loosely. "
        "tensors_f32_compute holds the same outputs for the bf16 weights upcast to float32 "
        "and run in float32: a loader that upcasts on load should match those tightly.")
    clip_up = type(clip)(clip.config)
    clip_up.load_state_dict({k: v.float() for k, v in clip_bf16.state_dict().items()})
    ref_bf16["tensors_f32_compute"] = run_reference(
        "clip", clip_up.float().eval(), bf_dir, specs, images, torch.float32, "")["tensors"]
    write_json(REF / "tiny-clip-bf16.json", ref_bf16)

    siglip, siglip_dir = make_siglip(gen)
    check_reload("siglip", siglip_dir, siglip, torch.float32)
    write_json(REF / "tiny-siglip.json", run_reference(
        "siglip", siglip, siglip_dir, specs, images, torch.float32,
        "float32 weights, float32 compute (CPU); text side called with input_ids only"))

    for d in ("images", "tiny-clip", "tiny-clip-bf16", "tiny-siglip", "reference"):
        total = sum(f.stat().st_size for f in (FIX / d).rglob("*") if f.is_file())
        print(f"{d:16s} {total / 1e6:8.2f} MB")


if __name__ == "__main__":
    main()
