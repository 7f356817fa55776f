"""Helpers shared by tools/make_fixtures.py and tools/train_demo_models.py.

Nothing here downloads anything: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE are forced on
before transformers is imported, the CLIP BPE vocabulary comes from the open-clip-torch
package (``open_clip/bpe_simple_vocab_16e6.txt.gz``) and MedMNIST from data/medmnist/.

* ``write_clip_tokenizer(dir, model_max_length)`` builds the real OpenAI CLIP tokenizer
  (49,408 tokens) offline, exactly the way CLIP's ``SimpleTokenizer`` does, wraps it as a
  transformers ``CLIPTokenizerFast`` and saves it (tokenizer.json, tokenizer_config.json,
  special_tokens_map.json, vocab.json, merges.txt).
* ``verify_clip_tokenizer(tok)`` checks it against open_clip's ``SimpleTokenizer``.
* MedMNIST / Fashion-MNIST loaders, zero-shot scoring and AUROC (one-vs-rest macro for
  more than two classes, as mvb does).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gzip
import importlib.util
import json
import struct
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MEDMNIST_DIR = REPO / "data" / "medmnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# Official MedMNIST label names (MedMNIST INFO table; same as plugins/medmnist/src/catalog.rs).
MEDMNIST_CLASSES = {
    "pneumoniamnist": ["normal", "pneumonia"],
    "breastmnist": ["malignant", "normal, benign"],
    "retinamnist": ["0", "1", "2", "3", "4"],
}

FASHION_CLASSES = [
    "t-shirt or top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
]

# Strings the tokenizer check runs over (besides the brief's sentence).
TOKENIZER_PROBES = [
    "a photo of a pneumonia chest x-ray.",
    "a photo of normal",
    "a photo of pneumonia",
    "a photo of malignant",
    "a photo of normal, benign",
    "a photo of diabetic retinopathy grade 2",
    "a photo of 0",
    "a photo of diseased xray",
    "a photo of actinic keratoses or melanoma",
    "a photo of a benign scanning laser ophthalmoscope fundus image",
    "A Photo   of  an ANKLE boot!!  (t-shirt/top) 12.5% -- don't",
    "naïve café résumé über",
]


# ----------------------------------------------------------------------------- tokenizer

def bpe_vocab_path() -> Path:
    """The CLIP BPE merges file shipped inside the open-clip-torch wheel."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("open-clip-torch is not installed (run tools/setup_venv.sh)")
    path = Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"
    if not path.exists():
        raise SystemExit(f"{path} missing")
    return path


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP reversible byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def clip_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """Vocabulary and merges exactly as CLIP's SimpleTokenizer builds them:
    256 byte characters, the same with '</w>', the 48,894 merges (file lines 1..48894),
    then <|startoftext|> (49406) and <|endoftext|> (49407): 49,408 tokens."""
    lines = gzip.open(bpe_vocab_path()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    pairs = [tuple(m.split()) for m in merges]
    assert all(len(p) == 2 for p in pairs)
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(p) for p in pairs]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408 and len(set(vocab)) == 49408
    return {t: i for i, t in enumerate(vocab)}, [" ".join(p) for p in pairs]


def build_clip_tokenizer(model_max_length: int = 77):
    """A transformers CLIPTokenizerFast over the real CLIP vocabulary, built offline.

    vocab.json / merges.txt are written to a private temporary folder (removed at exit);
    ``save_pretrained`` then writes them next to tokenizer.json as usual."""
    import atexit
    import shutil

    from transformers import CLIPTokenizerFast

    vocab, merges = clip_vocab_and_merges()
    tmp = Path(tempfile.mkdtemp(prefix="mvb-clip-tok-"))
    atexit.register(shutil.rmtree, tmp, True)
    vf, mf = tmp / "vocab.json", tmp / "merges.txt"
    vf.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    # Like OpenAI's file, HF's CLIPTokenizer skips the first line of merges.txt
    # (a "#version" header) and reads lines [1 : 49152-256-2+1], as SimpleTokenizer does.
    mf.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return CLIPTokenizerFast(
        vocab_file=str(vf),
        merges_file=str(mf),
        model_max_length=model_max_length,
        unk_token="<|endoftext|>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )


def save_clip_tokenizer(tok, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A batch call with padding=True leaves padding switched on in the backend tokenizer,
    # and save_pretrained would write it into tokenizer.json: switch it off first.
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.no_truncation()
    tok.save_pretrained(str(out_dir))
    saved = json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert saved["padding"] is None and saved["truncation"] is None
    for f in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"):
        assert (out_dir / f).exists(), f


def verify_clip_tokenizer(tok) -> dict:
    """Compares the HF tokenizer (fast, and its tokenizer.json reloaded through the
    tokenizers library) with open_clip's SimpleTokenizer on TOKENIZER_PROBES."""
    from open_clip.tokenizer import SimpleTokenizer

    st = SimpleTokenizer()
    sot, eot = st.sot_token_id, st.eot_token_id
    results = []
    ok = True
    for text in TOKENIZER_PROBES:
        ref = [sot] + st.encode(text) + [eot]
        got = tok(text)["input_ids"]
        same = got == ref
        ok &= same
        results.append({"text": text, "open_clip": ref, "hf": got, "equal": same})
    return {"all_equal": bool(ok), "sot": int(sot), "eot": int(eot), "cases": results}


# ----------------------------------------------------------------------------- data

def load_medmnist(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(MEDMNIST_DIR / f"{name}.npz") as z:
        return z[f"{split}_images"], z[f"{split}_labels"].reshape(-1).astype(np.int64)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 0x08, path
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    img = FASHION_DIR / f"{prefix}-images-idx3-ubyte.gz"
    lab = FASHION_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not img.exists():
        raise SystemExit(
            f"{img} missing: install Debian's dataset-fashion-mnist "
            "(apt-get update && apt-get install -y dataset-fashion-mnist)"
        )
    return _read_idx(img), _read_idx(lab).astype(np.int64)


def to_pil(arr: np.ndarray):
    from PIL import Image

    return Image.fromarray(arr, mode="L" if arr.ndim == 2 else "RGB")


# ----------------------------------------------------------------------------- metrics

def _binary_auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUROC with average ranks for ties (= sklearn roc_auc_score)."""
    pos = positive.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty_like(ranks)
    r[order] = ranks
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auroc(probs: np.ndarray, labels: np.ndarray) -> float:
    """Binary: AUROC of p[class 1]. More classes: one-vs-rest macro average (mvb's rule)."""
    if probs.shape[1] == 2:
        return _binary_auroc(probs[:, 1], labels == 1)
    vals = [_binary_auroc(probs[:, c], labels == c) for c in range(probs.shape[1])]
    vals = [v for v in vals if not np.isnan(v)]
    return float(np.mean(vals))


def library_versions() -> dict:
    import platform

    import numpy
    import PIL
    import safetensors
    import tokenizers
    import torch
    import transformers

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
    }
    try:
        import open_clip

        out["open_clip_torch"] = open_clip.__version__
    except Exception:  # pragma: no cover
        pass
    return out
