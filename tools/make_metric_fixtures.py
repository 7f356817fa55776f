#!/usr/bin/env python3
"""Reference values for mvb's first-party metric plugins (auroc, accuracy, balanced-accuracy, vqa).

What it does
    Generates test cases with a fixed seed and computes the values the plugins must reproduce
    (to 1e-9) with the reference Python libraries, then writes them, at full double precision,
    to small JSON files that `tests/it/metrics.rs` reads:

    tests/fixtures/metrics/diagnosis.json
        Class-score predictions, labels and bootstrap resamples (index lists), with
        scikit-learn's values on the full set and on each resample:
        roc_auc_score (binary: the class-1 score; more than two classes:
        multi_class="ovr", average="macro"), accuracy_score and balanced_accuracy_score of the
        argmax prediction. Where scikit-learn refuses because a single class is present (or,
        multi-class, a class is absent) the expected value is the string "undefined".
    tests/fixtures/metrics/vqa.json
        Predictions, reference answers and question kinds, with the MedVLMBench VQA metrics
        per sample, on the full set and on resamples. The normaliser and the count-based scores
        are implemented below from MedVLMBench's definitions (docs: /work/shared/MEDVLMBENCH.md,
        "VQA metrics"); BLEU is nltk's sentence_bleu without smoothing; ROUGE is rouge_score's
        RougeScorer without stemming and with its default tokenizer (every character outside
        [a-z0-9] a separator, as torchmetrics' rouge_score that MedVLMBench calls), each value
        rounded to float32 as torchmetrics returns it. NaN (no question of a kind in the set) is
        the string "nan".

How to run
    python3 tools/make_metric_fixtures.py [diagnosis.json] [vqa.json]

    With file names, only those files are written. Any Python >= 3.9 starts it. The first run
    creates a virtual environment in tools/.venv-metrics (git-ignored) with pinned packages from
    PyPI and re-runs itself there; later runs reuse it. Re-running writes identical files.
"""

import json
import math
import os
import re
import subprocess
import sys
import venv
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "tools", ".venv-metrics")
OUT = os.path.join(ROOT, "tests", "fixtures", "metrics")
PACKAGES = ["numpy==2.4.6", "scikit-learn==1.9.1", "nltk==3.10.4", "rouge-score==0.1.2"]
SEED = 42


def ensure_venv():
    """Re-executes this script inside tools/.venv-metrics, creating it first if needed."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(python):
        print(f"creating {VENV} with {' '.join(PACKAGES)}", file=sys.stderr)
        venv.create(VENV, with_pip=True)
        subprocess.check_call([python, "-m", "pip", "install", "--quiet", *PACKAGES])
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


# ----------------------------------------------------------------------------------------------
# Diagnosis


def diagnosis_cases(np):
    rng = np.random.default_rng(SEED)

    def binary(p1):
        p1 = np.asarray(p1, dtype=float)
        return np.stack([1.0 - p1, p1], axis=1)

    def bootstrap(n, count):
        return [rng.integers(0, n, size=n).tolist() for _ in range(count)]

    cases = []

    n = 200
    y = (rng.random(n) < 0.4).astype(int)
    p = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 1.2 * y - 0.3)))
    cases.append(("binary-random", binary(p), y, bootstrap(n, 8)))

    n = 150
    y = (rng.random(n) < 0.5).astype(int)
    p = np.round(np.clip(0.5 + 0.25 * rng.normal(size=n) + 0.15 * y, 0.0, 1.0), 1)
    cases.append(("binary-ties-1-decimal", binary(p), y, bootstrap(n, 8)))

    n = 40
    y = np.array([0, 1] * (n // 2))
    p = np.where(y == 1, 0.6 + 0.4 * rng.random(n), 0.4 * rng.random(n))
    cases.append(("binary-perfect", binary(p), y, bootstrap(n, 4)))
    cases.append(("binary-inverted", binary(1.0 - p), y, bootstrap(n, 4)))

    n = 30
    y = (rng.random(n) < 0.5).astype(int)
    cases.append(("binary-all-tied", binary(np.full(n, 0.5)), y, bootstrap(n, 4)))

    # Signed zeros tie; scores outside [0, 1] and unnormalised rows are fine for a binary AUROC.
    scores = np.array([[1.0, 0.0], [1.0, -0.0], [0.3, 2.5], [0.0, 0.0], [-1.0, 2.5], [0.2, -3.0], [0.5, 0.5]])
    y = np.array([0, 1, 1, 0, 0, 1, 1])
    positives = [i for i in range(len(y)) if y[i] == 1]
    cases.append(("binary-small-signed-zeros", scores, y, bootstrap(len(y), 6) + [positives, [0, 0, 3]]))

    n = 25
    y = np.ones(n, dtype=int)
    p = rng.random(n)
    cases.append(("binary-single-class", binary(p), y, bootstrap(n, 3)))

    n = 12
    y = np.array([0, 1] * 6)
    p = np.round(rng.random(n), 2)
    cases.append(("binary-resample-one-class", binary(p), y, bootstrap(n, 3) + [[1, 3, 5, 1], [0, 2, 2]]))

    def softmax(logits):
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    n = 120
    y = rng.integers(0, 3, size=n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
    only_01 = [i for i in range(n) if y[i] != 2][:50]
    cases.append(("multiclass-3", softmax(logits), y, bootstrap(n, 6) + [only_01]))

    # Integer logits: repeated rows tie within each one-vs-rest column, and equal maxima test
    # the lowest-index argmax.
    n = 100
    y = rng.integers(0, 5, size=n)
    logits = rng.integers(0, 3, size=(n, 5)).astype(float) + np.eye(5)[y] * rng.integers(0, 2, size=(n, 1))
    cases.append(("multiclass-5-ties", softmax(logits), y, bootstrap(n, 6) + [list(range(10))]))

    n = 8
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    cases.append(("multiclass-3-uniform", np.full((n, 3), 1.0 / 3.0), y, bootstrap(n, 3)))
    return cases


def diagnosis_expected(np, metrics, scores, y):
    """scikit-learn's values, "undefined" where it refuses for a missing class."""
    out = {}
    if scores.shape[1] == 2:
        auroc = lambda: metrics.roc_auc_score(y, scores[:, 1])  # noqa: E731
    else:
        auroc = lambda: metrics.roc_auc_score(y, scores, multi_class="ovr", average="macro")  # noqa: E731
    # Older scikit-learn raises ValueError for a single class; newer versions warn
    # (UndefinedMetricWarning) and return NaN. Both mean "undefined"; anything else is a bug.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(auroc())
        except ValueError as e:
            text = str(e)
            if "Only one class present" not in text and "Number of classes in y_true not equal" not in text:
                raise
            value = math.nan
    if math.isnan(value):
        assert any("Only one class" in str(w.message) for w in caught) or len(set(y.tolist())) < scores.shape[1]
        out["auroc"] = "undefined"
    else:
        out["auroc"] = value
    predicted = scores.argmax(axis=1)
    out["accuracy"] = float(metrics.accuracy_score(y, predicted))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        out["balanced-accuracy"] = float(metrics.balanced_accuracy_score(y, predicted))
    return out


def make_diagnosis(np):
    from sklearn import metrics

    cases = []
    for name, scores, y, resamples in diagnosis_cases(np):
        scores = np.asarray(scores, dtype=float)
        y = np.asarray(y, dtype=int)
        cases.append(
            {
                "name": name,
                "predictions": scores.tolist(),
                "labels": y.tolist(),
                "full": diagnosis_expected(np, metrics, scores, y),
                "resamples": [
                    {"indices": ix, "expected": diagnosis_expected(np, metrics, scores[ix], y[ix])}
                    for ix in resamples
                ],
            }
        )
    return {
        "generator": "tools/make_metric_fixtures.py",
        "packages": PACKAGES,
        "seed": SEED,
        "definition": "auroc: sklearn roc_auc_score (score = column 1 when binary; ovr macro when more than "
        "two columns); accuracy / balanced-accuracy: sklearn accuracy_score / balanced_accuracy_score of "
        "argmax(scores). 'undefined': sklearn refuses (a single class, or a class absent for ovr).",
        "cases": cases,
    }


# ----------------------------------------------------------------------------------------------
# VQA: MedVLMBench's definitions, written from the protocol description.

PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!"]
NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
ARTICLES = {"a", "an", "the"}
# The contraction table of the standard VQA evaluation (vqaEval), written out as pairs: it
# restores apostrophes rather than spelling contractions out.
CONTRACTIONS = dict(
    line.split(" -> ")
    for line in """aint -> ain't
arent -> aren't
cant -> can't
couldve -> could've
couldnt -> couldn't
couldn'tve -> couldn't've
couldnt've -> couldn't've
didnt -> didn't
doesnt -> doesn't
dont -> don't
hadnt -> hadn't
hadnt've -> hadn't've
hadn'tve -> hadn't've
hasnt -> hasn't
havent -> haven't
hed -> he'd
hed've -> he'd've
he'dve -> he'd've
hes -> he's
howd -> how'd
howll -> how'll
hows -> how's
Id've -> I'd've
I'dve -> I'd've
Im -> I'm
Ive -> I've
isnt -> isn't
itd -> it'd
itd've -> it'd've
it'dve -> it'd've
itll -> it'll
let's -> let's
maam -> ma'am
mightnt -> mightn't
mightnt've -> mightn't've
mightn'tve -> mightn't've
mightve -> might've
mustnt -> mustn't
mustve -> must've
neednt -> needn't
notve -> not've
oclock -> o'clock
oughtnt -> oughtn't
ow's'at -> 'ow's'at
'ows'at -> 'ow's'at
'ow'sat -> 'ow's'at
shant -> shan't
shed've -> she'd've
she'dve -> she'd've
she's -> she's
shouldve -> should've
shouldnt -> shouldn't
shouldnt've -> shouldn't've
shouldn'tve -> shouldn't've
somebody'd -> somebodyd
somebodyd've -> somebody'd've
somebody'dve -> somebody'd've
somebodyll -> somebody'll
somebodys -> somebody's
someoned -> someone'd
someoned've -> someone'd've
someone'dve -> someone'd've
someonell -> someone'll
someones -> someone's
somethingd -> something'd
somethingd've -> something'd've
something'dve -> something'd've
somethingll -> something'll
thats -> that's
thered -> there'd
thered've -> there'd've
there'dve -> there'd've
therere -> there're
theres -> there's
theyd -> they'd
theyd've -> they'd've
they'dve -> they'd've
theyll -> they'll
theyre -> they're
theyve -> they've
twas -> 'twas
wasnt -> wasn't
wed've -> we'd've
we'dve -> we'd've
weve -> we've
werent -> weren't
whatll -> what'll
whatre -> what're
whats -> what's
whatve -> what've
whens -> when's
whered -> where'd
wheres -> where's
whereve -> where've
whod -> who'd
whod've -> who'd've
who'dve -> who'd've
wholl -> who'll
whos -> who's
whove -> who've
whyll -> why'll
whyre -> why're
whys -> why's
wont -> won't
wouldve -> would've
wouldnt -> wouldn't
wouldnt've -> wouldn't've
wouldn'tve -> wouldn't've
yall -> y'all
yall'll -> y'all'll
y'allll -> y'all'll
yall'd've -> y'all'd've
y'alld've -> y'all'd've
y'all'dve -> y'all'd've
youd -> you'd
youd've -> you'd've
you'dve -> you'd've
youll -> you'll
youre -> you're
youve -> you've""".splitlines()
)
COMMA_BETWEEN_DIGITS = re.compile(r"\d,\d")
# A period not followed by a (Unicode) digit; the reference deletes at most 32 of them.
PERIOD = re.compile(r"\.(?!\d)")


def normalize(text):
    """Lower-case, VQA punctuation and period handling, number words, articles, contractions."""
    text = text.lower()
    out = text
    strip_all = COMMA_BETWEEN_DIGITS.search(text) is not None
    for p in PUNCT:
        if strip_all or (p + " ") in text or (" " + p) in text:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    out = PERIOD.sub("", out, count=32)
    words = [NUMBER_WORDS.get(w, w) for w in out.split()]
    return [CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES]


def counts(tokens):
    c = {}
    for t in tokens:
        c[t] = c.get(t, 0) + 1
    return c


def precision_recall_f1(pred, ref):
    if not pred or not ref:
        return 0.0, 0.0, 0.0
    pc, rc = counts(pred), counts(ref)
    tp = sum(n for w, n in pc.items() if w in rc)
    fp = sum(n for w, n in pc.items() if w not in rc)
    fn = sum(n for w, n in rc.items() if w not in pc)
    if tp == 0:
        return 0.0, 0.0, 0.0
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    return precision, recall, 2 * precision * recall / (precision + recall)


def exact_match(pred, ref):
    if not pred:
        return 0.0
    return len(set(ref) & set(pred)) / len(pred)


BLEU_WEIGHTS = [(1.0, 0, 0, 0), (0.5, 0.5, 0, 0), (1 / 3, 1 / 3, 1 / 3, 0), (0.25, 0.25, 0.25, 0.25)]


def bleu(pred, ref):
    """nltk sentence_bleu, no smoothing. Where an order in use has no match nltk returns 0 (no
    unigram match) or a value built from sys.float_info.min (at most sys.float_info.min ** (1/k),
    below 1e-76 for BLEU-k): both are exactly 0 here."""
    from nltk.translate.bleu_score import modified_precision, sentence_bleu

    out = []
    for k, weights in enumerate(BLEU_WEIGHTS, start=1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = sentence_bleu([ref], pred, weights=weights)
        zero_order = not pred or any(modified_precision([ref], pred, n).numerator == 0 for n in range(1, k + 1))
        if zero_order:
            assert value <= sys.float_info.min ** (1 / k) * (1 + 1e-9), (pred, ref, k, value)
            value = 0.0
        out.append(float(value))
    return out


def rouge(pred, ref):
    """MedVLMBench's ROUGE: torchmetrics' rouge_score on the normalised strings, whose default
    tokenizer (lower-case, [^a-z0-9]+ -> space, split, no stemming) and F-measure are those of
    rouge_score's RougeScorer with its default tokenizer; torchmetrics returns float32 tensors,
    so each value is rounded to float32. tools/make_rouge_fixture.py checks the plugin against
    torchmetrics itself."""
    import numpy as np
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    s = scorer.score(" ".join(ref), " ".join(pred))  # (target, prediction)
    return [float(np.float32(s[k].fmeasure)) for k in ("rouge1", "rouge2", "rougeL")]


SCORES = [
    "precision",
    "recall",
    "f1",
    "exact-match",
    "bleu-1",
    "bleu-2",
    "bleu-3",
    "bleu-4",
    "rouge-1",
    "rouge-2",
    "rouge-l",
]


def vqa_sample(prediction, answer, kind):
    pred, ref = normalize(prediction), normalize(answer)
    precision, recall, f1 = precision_recall_f1(pred, ref)
    values = [precision, recall, f1, exact_match(pred, ref), *bleu(pred, ref), *rouge(pred, ref)]
    if kind == "closed":
        accuracy = 1.0 if " ".join(ref) in " ".join(pred) else 0.0
    else:
        accuracy = 1.0 if recall >= 0.75 else 0.0
    return {"values": [float(v) for v in values], "kind": kind, "accuracy": accuracy}


def vqa_means(samples):
    out = {}
    for k, name in enumerate(SCORES):
        total = 0.0
        for s in samples:
            total += s["values"][k]
        out[name] = total / len(samples)
    for kind in ("closed", "open"):
        hits = [s["accuracy"] for s in samples if s["kind"] == kind]
        total = 0.0
        for h in hits:
            total += h
        out[f"{kind}-accuracy"] = total / len(hits) if hits else "nan"
    return out


VQA_MIXED = [
    # Closed (yes/no) questions.
    ("Yes", "yes", "closed"),
    ("No, there is no effusion.", "no", "closed"),
    ("yes", "no", "closed"),
    ("I do not know", "no", "closed"),  # "no" is a substring of "i do not know"
    ("", "yes", "closed"),  # empty prediction
    ("The answer is: Yes.", "Yes", "closed"),
    ("NO.", "No", "closed"),
    ("yes, the heart is enlarged", "Yes", "closed"),
    ("Is it? Maybe yes!", "yes", "closed"),
    # Open questions.
    ("Left lung", "left lung", "open"),
    ("There are two lesions.", "2", "open"),
    ("three", "3", "open"),
    ("None of them", "none", "open"),
    ("The heart, lungs and liver", "heart and lungs", "open"),
    ("dont know whats wrong", "don't know", "open"),
    ("the lesion is located in the right upper lobe of the lung", "lesion in the right upper lobe of lung", "open"),
    ("right upper lobe", "the lesion is in the right upper lobe of the lung", "open"),
    ("yes yes yes", "yes no", "open"),  # recall counts prediction tokens: 3 / (3 + 1)
    ("x-ray", "x ray", "open"),
    ("mass (left) - upper lobe", "upper lobe mass", "open"),
    ("Size: 3.5 cm.", "3.5 cm", "open"),
    ("Größe der Läsion: 3,5 cm", "3,5 cm", "open"),  # a comma between digits deletes all marks
    ("Ödem im rechten Lungenflügel", "ödem", "open"),
    ("ΟΔΟΣ ΣΟΦΟΣ", "οδος σοφος", "open"),  # final sigma
    ("肺部有结节", "肺部有结节", "open"),
    ("肺部 有 结节", "结节", "open"),
    ("left\u00a0lung\tand\nright\u2003lung", "left lung", "open"),  # Unicode whitespace
    ("left\x1clung", "left lung", "open"),  # Python splits on U+001C..U+001F
    ("answer:\u0663,\u0665 mm", "\u0663 \u0665 mm", "open"),  # Arabic-Indic digits around a comma
    ("ratio .\u0665 and .5 and x.y", "ratio", "open"),
    (". ".join(["dot"] * 40) + ".", "dot", "open"),  # more than 32 periods: only 32 are deleted
    ("a an the", "the", "open"),  # only articles: both sides empty
    ("something", "", "open"),  # empty answer
    ("", "nothing", "open"),  # empty prediction
    ("cannot see; it's unclear/blurry", "it's unclear", "open"),
    ("ten; nine? eight!", "10 9 8", "open"),
    ("@home `quoted` [brackets] {braces} <angle> a=b+c_d\\e", "home quoted brackets braces angle", "open"),
    ("the right kidney and the left kidney", "left kidney", "open"),
]

VQA_OPEN_ONLY = [
    ("Pneumothorax", "pneumothorax", "open"),
    ("small bowel obstruction", "bowel obstruction", "open"),
    ("CT scan of the abdomen", "ct", "open"),
]


def make_vqa():
    from rouge_score import tokenizers

    # rouge_score's default tokenizer is torchmetrics': only ASCII letters and digits survive.
    default = tokenizers.DefaultTokenizer(use_stemmer=False).tokenize("don't 3.5 größe 肺炎")
    assert default == ["don", "t", "3", "5", "gr", "e"], default

    import random

    rng = random.Random(SEED)
    sets = []
    for name, rows in (("mixed", VQA_MIXED), ("open-only", VQA_OPEN_ONLY)):
        samples = [vqa_sample(p, a, k) for p, a, k in rows]
        n = len(samples)
        resamples = [[rng.randrange(n) for _ in range(n)] for _ in range(5)]
        if name == "mixed":
            resamples.append([i for i in range(n) if rows[i][2] == "open"][:7])
            resamples.append([i for i in range(n) if rows[i][2] == "closed"] * 2)
        per_sample = []
        for s in samples:
            d = dict(zip(SCORES, s["values"]))
            d["closed-accuracy"] = s["accuracy"] if s["kind"] == "closed" else "nan"
            d["open-accuracy"] = s["accuracy"] if s["kind"] == "open" else "nan"
            per_sample.append(d)
        sets.append(
            {
                "name": name,
                "samples": [{"prediction": p, "answer": a, "kind": k} for p, a, k in rows],
                "normalized": [{"prediction": normalize(p), "answer": normalize(a)} for p, a, _ in rows],
                "per_sample": per_sample,
                "full": vqa_means(samples),
                "resamples": [{"indices": ix, "expected": vqa_means([samples[i] for i in ix])} for ix in resamples],
            }
        )
    return {
        "generator": "tools/make_metric_fixtures.py",
        "packages": PACKAGES,
        "seed": SEED,
        "definition": "MedVLMBench VQA metrics on VQA-normalised words (see plugins/vqa/src/lib.rs); BLEU: nltk "
        "sentence_bleu, no smoothing, the tiny values (< 1e-76) nltk gives when an order has no match written as 0; ROUGE: "
        "rouge_score F-measure, no stemming, whitespace tokenizer over the normalised words; 'nan': no "
        "question of that kind in the set.",
        "sets": sets,
    }


def write(name, data):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


def main():
    ensure_venv()
    import numpy as np

    only = sys.argv[1:]  # file names to write (default: all)
    if not only or "diagnosis.json" in only:
        write("diagnosis.json", make_diagnosis(np))
    if not only or "vqa.json" in only:
        write("vqa.json", make_vqa())


if __name__ == "__main__":
    main()
