"""PyTorch + PEFT references for mvb's FT-LoRA (kernel/src/train/, tests/it/lora_train.rs).

For each tiny fixture model (tests/fixtures/tiny-clip, tiny-siglip) this builds MedVLMBench's
FT-LoRA model (model/clip_base.py: PEFT LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05,
bias="none") on every nn.Linear and nn.Embedding of the vision model, a linear head on
get_image_features), gives every LoRA weight a deterministic non-zero value (PEFT's B = 0 would
make every A gradient zero) and writes, under tests/fixtures/lora/<family>/:

- init_adapter/: that adapter, saved by PEFT (save_pretrained) -- mvb must load it;
- reference.safetensors: the pixels, labels, class weights and head; the loss and the gradient of
  every LoRA weight and of the head on the first batch of 8 (dropout off: module.eval());
  a 20-step AdamW run (lr 1e-3, weight decay 0, the batch order stored): the loss per step, and
  every weight after it; the image features of the PEFT-trained adapter (peft_features) and, when
  tests/fixtures/lora/<family>/mvb_adapter exists (written by mvb's test, MVB_BLESS=1), the
  features PEFT computes with that mvb-written adapter (mvb_features);
- peft_adapter/: the adapter after the 20 steps, saved by PEFT.

Run: /work/main/tools/.venv/bin/python tools/make_lora_reference.py  (torch, transformers, peft)
"""

import pathlib
import shutil

import numpy as np
import peft
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import CLIPModel, SiglipModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "lora"
LABELS = [0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1]
STEPS, LR = 20, 1e-3


def targets(vm):
    """model/clip_base.py's find_target_linear_names."""
    kinds = (torch.nn.Linear, torch.nn.Embedding)
    return [n for n, m in vm.named_modules() if isinstance(m, kinds)]


def saved_key(name):
    """A PEFT parameter name as save_pretrained keys it (the adapter name dropped)."""
    return name.replace(".default.weight", ".weight").replace(".default", "")


def build(family):
    cls = CLIPModel if family == "clip" else SiglipModel
    model = cls.from_pretrained(ROOT / "tests" / "fixtures" / f"tiny-{family}").float()
    for p in model.parameters():
        p.requires_grad_(False)
    vm = model.vision_model
    cfg = LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, bias="none", target_modules=targets(vm))
    pm = get_peft_model(vm, cfg)
    if family == "clip":
        features = lambda px: model.visual_projection(pm(pixel_values=px).pooler_output)
    else:
        features = lambda px: pm(pixel_values=px).pooler_output
    return model, pm, features


def lora_params(pm):
    return sorted((n, p) for n, p in pm.named_parameters() if p.requires_grad)


def main():
    torch.manual_seed(0)
    for family in ["clip", "siglip"]:
        out = OUT / family
        out.mkdir(parents=True, exist_ok=True)
        model, pm, features = build(family)
        rng = np.random.RandomState(1)
        for _, p in lora_params(pm):
            p.data = torch.from_numpy(rng.uniform(-0.05, 0.05, p.shape).astype(np.float32))
        init = {n: p.detach().clone() for n, p in lora_params(pm)}
        pm.save_pretrained(out / "init_adapter")
        (out / "init_adapter" / "README.md").unlink(missing_ok=True)
        side = model.config.vision_config.image_size
        pixels = torch.from_numpy(rng.uniform(-1, 1, (16, 3, side, side)).astype(np.float32))
        labels = torch.tensor(LABELS)
        counts = np.bincount(LABELS)
        weights = torch.tensor(len(LABELS) / (2 * counts), dtype=torch.float32)
        dim = features(pixels[:1]).shape[1]
        bound = 1 / np.sqrt(dim)
        head = torch.nn.Linear(dim, 2)
        head.weight.data = torch.from_numpy(rng.uniform(-bound, bound, (2, dim)).astype(np.float32))
        head.bias.data = torch.from_numpy(rng.uniform(-bound, bound, 2).astype(np.float32))
        head0 = {k: v.detach().clone() for k, v in head.state_dict().items()}
        criterion = torch.nn.CrossEntropyLoss(weight=weights)
        pm.eval()
        loss = criterion(head(features(pixels[:8])), labels[:8])
        loss.backward()
        ref = {"pixels": pixels, "labels": labels.float(), "class_weights": weights, "loss": loss.detach().reshape(1)}
        ref.update({"head.weight": head0["weight"], "head.bias": head0["bias"]})
        ref["grad/head.weight"], ref["grad/head.bias"] = head.weight.grad.clone(), head.bias.grad.clone()
        for n, p in lora_params(pm):
            if p.grad is not None:
                ref["grad/" + saved_key(n)] = p.grad.clone()
        # 20 AdamW steps from the same start, dropout off, a stored batch order.
        for n, p in lora_params(pm):
            p.data = init[n].clone()
            p.grad = None
        head.load_state_dict(head0)
        head.zero_grad()
        params = [p for _, p in lora_params(pm)] + list(head.parameters())
        opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
        order_rng = np.random.RandomState(7)
        order = np.concatenate([order_rng.permutation(16) for _ in range(STEPS // 2)]).reshape(STEPS, 8)
        losses = []
        for batch in order:
            opt.zero_grad(set_to_none=True)
            idx = torch.from_numpy(batch)
            loss = criterion(head(features(pixels[idx])), labels[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        ref["order"] = torch.from_numpy(order.astype(np.float32))
        ref["losses"] = torch.tensor(losses, dtype=torch.float32)
        ref["final/head.weight"], ref["final/head.bias"] = head.weight.detach().clone(), head.bias.detach().clone()
        for n, p in lora_params(pm):
            ref["final/" + saved_key(n)] = p.detach().clone()
        with torch.no_grad():
            ref["peft_features"] = features(pixels[:8])
        pm.save_pretrained(out / "peft_adapter")
        (out / "peft_adapter" / "README.md").unlink(missing_ok=True)
        mvb_dir = out / "mvb_adapter"
        if mvb_dir.is_dir():
            cls = CLIPModel if family == "clip" else SiglipModel
            base = cls.from_pretrained(ROOT / "tests" / "fixtures" / f"tiny-{family}").float()
            loaded = PeftModel.from_pretrained(base.vision_model, mvb_dir)
            loaded.eval()
            with torch.no_grad():
                pooled = loaded(pixel_values=pixels[:8]).pooler_output
                ref["mvb_features"] = base.visual_projection(pooled) if family == "clip" else pooled
        else:
            print(f"{mvb_dir} absent: run MVB_BLESS=1 cargo test --test it lora_train first for mvb_features")
        ref = {k: v.contiguous() for k, v in ref.items()}
        meta = {"torch": torch.__version__, "peft": peft.__version__, "lr": str(LR), "steps": str(STEPS)}
        save_file(ref, out / "reference.safetensors", metadata=meta)
        print(family, "loss", float(ref["loss"][0]), "losses", losses[0], "->", losses[-1])


if __name__ == "__main__":
    main()
