#!/usr/bin/env bash
# Creates tools/.venv: the Python environment used ONLY by the fixture / demo-model
# generators in tools/ (make_fixtures.py, train_demo_models.py).  CI and the Rust
# build never need it: everything those scripts write is committed.
#
# Usage:   bash tools/setup_venv.sh            # creates/updates tools/.venv
#          VENV=/some/where bash tools/setup_venv.sh
#
# Everything comes from PyPI (the torch wheel from PyPI is the CUDA build, several GB
# with its nvidia-* dependencies; the scripts only use it on CPU).
# transformers is pinned to the last 4.x line on purpose: the public CLIP/SigLIP
# checkpoints the Rust loader targets were written by transformers 4.x, so the
# fixtures are saved in exactly that layout (config key "torch_dtype", CLIPTokenizerFast
# tokenizer files, ...).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$HERE/.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --upgrade --quiet pip
"$VENV/bin/python" -m pip install --quiet \
  "torch==2.9.1" \
  "torchvision==0.24.1" \
  "transformers==4.57.6" \
  "tokenizers==0.22.1" \
  "safetensors==0.6.2" \
  "numpy==2.3.5" \
  "pillow==12.0.0" \
  "open-clip-torch==3.2.0" \
  "ftfy==6.3.1" \
  "sentencepiece==0.2.3" \
  "protobuf==7.36.2" \
  "regex"
"$VENV/bin/python" - <<'PY'
import torch, transformers, tokenizers, safetensors, numpy, PIL, open_clip
print("torch", torch.__version__, "| transformers", transformers.__version__,
      "| tokenizers", tokenizers.__version__, "| safetensors", safetensors.__version__,
      "| numpy", numpy.__version__, "| pillow", PIL.__version__,
      "| open_clip", open_clip.__version__)
PY
