"""Writes tests/fixtures/vqa/rouge.json: torchmetrics' ROUGE as MedVLMBench computes it.

What it makes
    MedVLMBench (eval/vqa.py) scores an open answer with
    `torchmetrics.functional.text.rouge_score(output_normed, answer_normed)` and keeps
    `rouge1_fmeasure`, `rouge2_fmeasure`, `rougeL_fmeasure` as `.item()`, on the VQA-normalised
    strings. torchmetrics' default tokenizer lower-cases, replaces every run of characters
    outside [a-z0-9] by a space and splits on whitespace, without stemming; the F-measure is
    computed in Python floats and returned as a float32 tensor, so `.item()` is a float32 value.

    For each case the fixture holds the raw prediction and reference, the normalised strings
    given to torchmetrics (the VQA normaliser of tools/make_metric_fixtures.py, which mirrors
    plugins/vqa/src/normalize.rs; the plugin's test checks it produces the same strings), the
    three values torchmetrics returns ("rouge1", "rouge2", "rougeL", float32 as `.item()` gives
    them) and the same three with torch's default dtype set to float64 ("exact"), i.e. before
    the float32 rounding. The scores are asked for with rouge_keys=("rouge1", "rouge2",
    "rougeL"): MedVLMBench's default keys add "rougeLsum", which needs nltk's punkt data and does
    not change the other three (each key is computed on its own).

How to run
    Any Python with torch and torchmetrics==1.9.0 importable. Without installing torch again,
    torchmetrics and its one small extra dependency can be unpacked next to an existing torch:

        python -m pip download torchmetrics==1.9.0 lightning-utilities==0.15.3 --no-deps -d /tmp/tm
        for w in /tmp/tm/*.whl; do unzip -qo "$w" -d /tmp/tm/site; done
        PYTHONPATH=/tmp/tm/site /work/main/tools/.venv/bin/python tools/make_rouge_fixture.py

    Re-running writes an identical file.
"""

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "vqa", "rouge.json")
TORCHMETRICS = "1.9.0"
KEYS = ("rouge1", "rouge2", "rougeL")

# (prediction, reference): raw model output and gold answer, before normalisation.
CASES = [
    ("My name is John", "Is your name John"),
    ("the lesion is 3.5 cm", "3.5 cm"),
    ("3.5", "3.5 cm"),
    ("3,5 cm", "3.5 cm"),
    ("about 20% of cases", "20%"),
    ("45 %", "45%"),
    ("don't know", "do not know"),
    ("it's the patient's left lung", "patient's left lung"),
    ("ménière's disease", "meniere disease"),
    ("ménière", "ménière"),
    ("größe", "größe"),
    ("naïve b-cell", "naive b cell"),
    ("肺炎", "肺炎"),
    ("右肺 lung", "lung"),
    ("πνευμονία", "πνευμονία"),
    ("αβ 12", "12"),
    ("", ""),
    ("", "yes"),
    ("yes", ""),
    ("...", "yes"),
    ("yes yes yes", "yes"),
    ("the the left left lung", "left lung left"),
    ("left lung left lung left", "left left lung lung"),
    ("CT scan of the abdomen", "ct"),
    ("Yes, there is an effusion.", "yes"),
    ("x-ray", "x ray"),
    ("t2-weighted mri", "t2 weighted"),
    ("e.coli infection", "e coli"),
    ("1/2", "1 2"),
    ("h&e stain", "h e stain"),
    ("bilateral pleural effusions, more on the right", "right pleural effusion"),
    ("Kelvin \u212a 5", "k 5"),
    ("\u0130stanbul", "istanbul"),
    ("one two three", "1 2 3"),
    ("a b c d e f g", "g f e d c b a"),
]


def normalized(text):
    """The VQA-normalised string MedVLMBench hands to torchmetrics (words joined by spaces)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from make_metric_fixtures import normalize

    return " ".join(normalize(text))


def scores(torch, rouge_score, pred, ref, dtype):
    """torchmetrics' rouge1/2/L F-measures, with `dtype` as torch's default dtype."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        out = rouge_score(pred, ref, rouge_keys=KEYS)
    finally:
        torch.set_default_dtype(previous)
    values = [out[f"{key}_fmeasure"] for key in KEYS]
    assert all(v.dtype == dtype for v in values), values
    return [float(v.item()) for v in values]


def main():
    import torch
    import torchmetrics
    from torchmetrics.functional.text import rouge_score

    assert torchmetrics.__version__ == TORCHMETRICS, torchmetrics.__version__
    cases = []
    for prediction, reference in CASES:
        pred, ref = normalized(prediction), normalized(reference)
        single = scores(torch, rouge_score, pred, ref, torch.float32)
        exact = scores(torch, rouge_score, pred, ref, torch.float64)
        for s, e in zip(single, exact):
            assert s == float(torch.tensor(e, dtype=torch.float32).item()), (pred, ref, single, exact)
        case = {"prediction": prediction, "reference": reference, "normalized_prediction": pred}
        case["normalized_reference"] = ref
        case.update(dict(zip(KEYS, single)))
        case["exact"] = exact
        cases.append(case)
    data = {
        "generator": "tools/make_rouge_fixture.py",
        "packages": [f"torch=={torch.__version__}", f"torchmetrics=={torchmetrics.__version__}"],
        "definition": "torchmetrics.functional.text.rouge_score(normalized_prediction, normalized_reference) "
        "F-measures (default tokenizer: lower-case, [^a-z0-9]+ -> space, split; no stemming); rouge1/rouge2/rougeL "
        "as .item() of the float32 tensors MedVLMBench gets; exact: the same with torch's default dtype float64.",
        "cases": cases,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, allow_nan=False, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
