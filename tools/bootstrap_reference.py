#!/usr/bin/env python3
"""The numpy + scikit-learn bootstrap loop that mvb's `eval::bootstrap` re-implements.

What it is
    `bootstrap_auroc` below is MedVLMBench's loop: one `np.random.default_rng(seed)` (or, with
    "generator": "randomstate", the legacy `np.random.RandomState(seed)`), and for
    each replicate `idx = rng.randint(0, n, n)`, skip it when `y[idx]` holds one class, else
    `roc_auc_score(y[idx], s[idx])`; summarised by `np.mean` and `np.percentile(.., [2.5, 97.5])`.
    tools/make_bootstrap_fixtures.py imports it to write the expected values, and
    `benches/bootstrap.rs` runs this file to time it next to mvb.

How to run (timing)
    python3 tools/bootstrap_reference.py --input data.json [--repeats 5]

    data.json: {"scores": [...], "labels": [0/1, ...], "replicates": 1000, "seed": 42}.
    Prints one JSON line: {"times_s": [...], "median_s": ..., "mean": ..., "lo": ..., "hi": ...,
    "skipped": ..., "numpy": "...", "sklearn": "..."}. Needs numpy and scikit-learn in the
    interpreter that runs it (exit status 3 with a message on stderr when they are missing).
"""

import argparse
import json
import sys
import time


def bootstrap_auroc(y, s, replicates=1000, seed=42, generator="pcg64"):
    """Per-replicate AUROCs (None where the resample holds a single class)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    if generator == "randomstate":
        rng = np.random.RandomState(seed)
        draw = lambda n: rng.randint(0, n, n)  # noqa: E731
    else:
        rng = np.random.default_rng(seed)
        draw = lambda n: rng.integers(0, n, n)  # noqa: E731
    n = len(y)
    values = []
    for _ in range(replicates):
        idx = draw(n)
        if len(np.unique(y[idx])) < 2:
            values.append(None)
            continue
        values.append(float(roc_auc_score(y[idx], s[idx])))
    return values


def summarise(values):
    """(mean, 2.5th percentile, 97.5th percentile, skipped) of the valid values, numpy's way."""
    import numpy as np

    valid = np.array([v for v in values if v is not None], dtype=np.float64)
    skipped = len(values) - len(valid)
    if len(valid) == 0:
        return None, None, None, skipped
    lo, hi = np.percentile(valid, [2.5, 97.5])
    return float(np.mean(valid)), float(lo), float(hi), skipped


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        import numpy as np
        import sklearn
    except ImportError as e:
        print(f"numpy/scikit-learn unavailable: {e}", file=sys.stderr)
        sys.exit(3)
    with open(args.input, encoding="utf-8") as f:
        data = json.load(f)
    y = np.asarray(data["labels"], dtype=np.int64)
    s = np.asarray(data["scores"], dtype=np.float64)
    replicates, seed = int(data.get("replicates", 1000)), int(data.get("seed", 42))
    times = []
    values = None
    for _ in range(args.repeats):
        t = time.perf_counter()
        values = bootstrap_auroc(y, s, replicates, seed, data.get("generator", "pcg64"))
        times.append(time.perf_counter() - t)
    mean, lo, hi, skipped = summarise(values)
    print(json.dumps({
        "times_s": times,
        "median_s": float(np.median(times)),
        "mean": mean,
        "lo": lo,
        "hi": hi,
        "skipped": skipped,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
    }))


if __name__ == "__main__":
    main()
