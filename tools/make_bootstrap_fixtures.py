#!/usr/bin/env python3
"""Reference values for mvb's bootstrap and binary AUROC (`tests/it/bootstrap.rs`).

What it does
    Draws binary test sets with a fixed seed (scores rounded to 2 decimals, so that many tie)
    and runs the numpy + scikit-learn bootstrap loop of tools/bootstrap_reference.py on them
    (1,000 replicates, RandomState(42), single-class replicates skipped). Writes, at full
    double precision, tests/fixtures/bootstrap/<name>.json:

        name, n, seed, replicates, scores, labels (0/1),
        point     roc_auc_score on the full set,
        values    the 1,000 replicate AUROCs, null where the replicate was skipped,
        first_indices   the first two replicates' index sets (rng.randint(0, n, n)),
        mean, lo, hi    np.mean and np.percentile(valid, [2.5, 97.5]),
        skipped         the number of skipped replicates.

    Cases: n=200 (about 40% positive), n=10000 (about 30% positive), and n=15 with two
    positives (about 12% of the replicates hold a single class and are skipped).

How to run
    python3 tools/make_bootstrap_fixtures.py

    Any Python >= 3.9 starts it. The first run creates tools/.venv-metrics (git-ignored) with
    the pinned packages of tools/make_metric_fixtures.py and re-runs itself there. Takes about
    ten seconds; re-running writes identical files.
"""

import json
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "tools", ".venv-metrics")
PACKAGES = ["numpy==2.4.6", "scikit-learn==1.9.1", "nltk==3.10.4", "rouge-score==0.1.2"]
OUT = os.path.join(ROOT, "tests", "fixtures", "bootstrap")
SEED = 42
REPLICATES = 1000


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


def main():
    ensure_venv()
    import numpy as np
    from sklearn.metrics import roc_auc_score

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bootstrap_reference import bootstrap_auroc, summarise

    data = np.random.default_rng(20250617)

    def case(n, prevalence, shift):
        y = (data.random(n) < prevalence).astype(np.int64)
        s = np.round(1.0 / (1.0 + np.exp(-(data.normal(size=n) + shift * y - 0.5))), 2)
        return y, s

    cases = [("n200", *case(200, 0.4, 1.0)), ("n10000", *case(10000, 0.3, 0.8))]
    y = np.zeros(15, dtype=np.int64)
    y[[3, 11]] = 1
    cases.append(("n15-skips", y, np.round(data.random(15), 2)))

    os.makedirs(OUT, exist_ok=True)
    for name, y, s in cases:
        n = len(y)
        values = bootstrap_auroc(y, s, REPLICATES, SEED)
        mean, lo, hi, skipped = summarise(values)
        rng = np.random.RandomState(SEED)
        first = [rng.randint(0, n, n).tolist() for _ in range(2)]
        doc = {
            "name": name,
            "n": n,
            "seed": SEED,
            "replicates": REPLICATES,
            "scores": [float(v) for v in s],
            "labels": [int(v) for v in y],
            "point": float(roc_auc_score(y, s)),
            "values": values,
            "first_indices": first,
            "mean": mean,
            "lo": lo,
            "hi": hi,
            "skipped": skipped,
            "numpy": np.__version__,
        }
        path = os.path.join(OUT, f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print(f"{path}: point {doc['point']:.6f} mean {mean:.6f} CI [{lo:.6f}, {hi:.6f}] skipped {skipped}")


if __name__ == "__main__":
    main()
