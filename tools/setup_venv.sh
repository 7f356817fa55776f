#!/usr/bin/env bash
# Creates tools/.venv: the Python environment used ONLY by the fixture / demo-model
# generators in tools/ (make_fixtures.py, train_demo_models.py,
# make_decoder_fixtures.py, ...).  CI and the Rust build never need it: everything
# those scripts write is committed.
#
# Usage:   bash tools/setup_venv.sh            # creates/updates tools/.venv
#          VENV=/some/where bash tools/setup_venv.sh
#
# gguf + accelerate: transformers needs both to load a GGUF file (gguf_file=...).
# Everything comes from PyPI (the torch wheel from PyPI is the CUDA build, several GB
# with its nvidia-* dependencies; the scripts only use it on CPU).
# History: the CLIP/SigLIP fixtures (make_fixtures.py) were generated with
# transformers 4.57.6, on purpose: the public CLIP/SigLIP checkpoints the Rust loader
# targets were written by transformers 4.x, so those committed fixtures are in exactly
# that layout (config key "torch_dtype", CLIPTokenizerFast tokenizer files, ...).
# The decoder fixtures (make_decoder_fixtures.py: Llama, Qwen2, LLaVA, SmolLM2 GGUF)
# are made with the transformers 5.x pinned below.  Re-running make_fixtures.py with
# 5.x would change the layout of the CLIP fixtures (config key "dtype", ...): keep the
# committed ones unless that change is wanted (or pin transformers==4.57.6 in a
# separate VENV for that script).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$HERE/.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --upgrade --quiet pip
"$VENV/bin/python" -m pip install --quiet \
  "torch==2.15.0" \
  "torchvision==0.29.2" \
  "transformers==5.23.0" \
  "tokenizers==0.23.3" \
  "safetensors==0.8.0" \
  "numpy==2.4.6" \
  "pillow==13.0.0" \
  "gguf==0.19.0" \
  "accelerate==1.15.0" \
  "jinja2==3.1.6" \
  "open-clip-torch==3.3.0" \
  "peft==0.21.2" \
  "ftfy==6.3.1" \
  "sentencepiece==0.2.3" \
  "protobuf==7.36.2" \
  "regex"
"$VENV/bin/python" - <<'PY'
import torch, transformers, tokenizers, safetensors, numpy, PIL, open_clip, gguf, jinja2, accelerate, peft
print("torch", torch.__version__, "| transformers", transformers.__version__,
      "| tokenizers", tokenizers.__version__, "| safetensors", safetensors.__version__,
      "| numpy", numpy.__version__, "| pillow", PIL.__version__,
      "| open_clip", open_clip.__version__, "| jinja2", jinja2.__version__, "| peft", peft.__version__)
PY
