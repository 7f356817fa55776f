#!/usr/bin/env python3
"""Writes tests/fixtures/bootstrap/pcg64.json: the index sets MedVLMBench's bootstrap draws,
`rng = numpy.random.default_rng(seed)` then `rng.integers(0, n, n)` once per replicate, for a
few seeds and sizes (full arrays for small n; first and last 50 indices and the sum otherwise).

Run: tools/.venv/bin/python tools/make_pcg64_fixture.py
"""

import json
from pathlib import Path

import numpy as np

cases = []
for seed in (42, 0, 7, 4294967295):
    for n in (1, 2, 3, 10, 156, 624, 65536, 100003):
        rng = np.random.default_rng(seed)
        reps = []
        for _ in range(3):
            idx = rng.integers(0, n, n)
            if n <= 1000:
                reps.append({"all": idx.tolist()})
            else:
                reps.append({"head": idx[:50].tolist(), "tail": idx[-50:].tolist(), "sum": int(idx.sum())})
        cases.append({"seed": seed, "n": n, "replicates": reps})
out = Path(__file__).resolve().parent.parent / "tests/fixtures/bootstrap/pcg64.json"
out.write_text(json.dumps({"numpy": np.__version__, "cases": cases}) + "\n")
print(out, out.stat().st_size)
