#!/usr/bin/env python3
"""Builds the tiny random Swin fixtures read by tests/it/swin.rs.

Run from the repository root (offline, deterministic: torch.manual_seed(0), float32, CPU):

    tools/.venv/bin/python tools/make_swin_fixtures.py

Writes:

tests/fixtures/tiny-swin/             transformers `SwinModel` (random weights), save_pretrained
                                      layout (config.json, model.safetensors; transformers 5
                                      saves the 4.x tensor names: attention.self.query,
                                      attention.output.dense, intermediate.dense, output.dense)
                                      and reference.json: pixel_values, last_hidden_state and
                                      pooler_output for 2 random images.
tests/fixtures/tiny-medclip-vision/   the same Swin in MedCLIP's checkpoint layout
                                      (`MedClipVisionModelViT` in RyanWangZf/MedCLIP
                                      medclip/modeling_medclip.py: `vision_model.model.*` + a
                                      bias-free `vision_model.projection_head` 48 -> 16), saved
                                      with torch.save as pytorch_model.bin as MedCLIP ships it,
                                      and reference.json with `encode_image`'s output (pooler
                                      output, projection, L2 normalisation).

The config: image 32, patch 4 (8x8 patches), embed 12, depths [2, 2, 2], heads [1, 2, 4],
window 4. Stage 1 (8x8) has 4 windows and shifts its second block by 2 (the shifted-window
mask is exercised); stage 2 (4x4) equals the window, so transformers turns the shift off; in
stage 3 (2x2) the window is clipped to 2. transformers 5 builds every block's relative position
table for config.window_size and fails on a clipped window, while 4.x (which wrote the real
checkpoints) built it for the clipped size: stage 3's tables are replaced here by 4.x's
(3x3 relative positions), so the fixture is the model 4.x would build. Every bias, LayerNorm
parameter and relative position table is perturbed so that a loader dropping one fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import SwinConfig, SwinModel
from transformers.models.swin.modeling_swin import SwinRelativePositionBias

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures"


def build() -> SwinModel:
    torch.manual_seed(0)
    cfg = SwinConfig(
        image_size=32, patch_size=4, num_channels=3, embed_dim=12, depths=[2, 2, 2], num_heads=[1, 2, 4],
        window_size=4, mlp_ratio=4.0, hidden_act="gelu", layer_norm_eps=1e-5,
    )
    model = SwinModel(cfg).eval()
    grid = cfg.image_size // cfg.patch_size
    for i, stage in enumerate(model.encoder.layers):
        side = grid // 2**i
        for block in stage.blocks:
            if side < cfg.window_size:  # what transformers 4.x built for a clipped window
                block.attention.relative_position_bias = SwinRelativePositionBias(block.attention.num_attention_heads, (side, side))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "relative_position_bias_table" in name:
                p.copy_(torch.randn_like(p) * (0.5 if "table" in name else 0.05))
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + torch.randn_like(p) * 0.1)
    return model


def flat(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.detach().reshape(-1)]


def main() -> None:
    torch.set_num_threads(2)
    model = build()
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = model(pixel_values=pixels)
    swin = OUT / "tiny-swin"
    swin.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(swin)
    ref = {
        "pixel_values": flat(pixels), "shape": list(pixels.shape),
        "last_hidden_state": flat(out.last_hidden_state), "last_hidden_shape": list(out.last_hidden_state.shape),
        "pooler_output": flat(out.pooler_output),
    }
    (swin / "reference.json").write_text(json.dumps(ref) + "\n")

    # MedCLIP's vision side: projection_head without bias, then encode_image's L2 normalisation.
    head = torch.nn.Linear(out.pooler_output.shape[1], 16, bias=False)
    # The 4.x tensor names MedCLIP's checkpoint holds (what save_pretrained wrote above).
    saved = load_file(swin / "model.safetensors")
    state = {f"vision_model.model.{k}": v for k, v in saved.items()}
    state["vision_model.projection_head.weight"] = head.weight.detach().contiguous()
    with torch.no_grad():
        embeds = head(out.pooler_output)
        embeds = embeds / embeds.norm(dim=-1, keepdim=True)
    medclip = OUT / "tiny-medclip-vision"
    medclip.mkdir(parents=True, exist_ok=True)
    torch.save(state, medclip / "pytorch_model.bin")
    (medclip / "config.json").write_text(model.config.to_json_string())
    (medclip / "reference.json").write_text(json.dumps({"image_embeds": flat(embeds)}) + "\n")
    print(f"wrote {swin} and {medclip}; pooler {tuple(out.pooler_output.shape)}, embeds {tuple(embeds.shape)}")


if __name__ == "__main__":
    main()
