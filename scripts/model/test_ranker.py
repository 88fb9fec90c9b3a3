"""Checks the committed localization model: models/ranker.onnx against its metadata and its fixture.

    python test_ranker.py [--models DIR]

- ranker.onnx has the sha256 that ranker.json and ranker_fixture.json record;
- its graph has the contract locus-embed relies on (input `features` float32 [N, 16],
  output `probabilities` float32 [N, 2]) and ranker.json names the engine's 16 features;
- ONNX Runtime's P(edited) for the fixture rows equals the scikit-learn scores the
  fixture records (written by train_ranker.py from the same model), within TOLERANCE;
- an empty batch and a batch in another order give the same per-row scores.

Exits non-zero with the numbers on any failure. Needs only numpy, onnx and onnxruntime
(the venv of scripts/setup.sh); scikit-learn is not needed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
N_FEATURES = 16
# The Rust test uses the same bound: the tree ensemble is float32 arithmetic in ONNX
# Runtime and float64 in scikit-learn, which differ by ~1e-7 on these rows.
TOLERANCE = 1e-4


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    args = ap.parse_args()

    import onnx
    import onnxruntime as ort

    failures = []
    data = (args.models / "ranker.onnx").read_bytes()
    meta = json.loads((args.models / "ranker.json").read_text(encoding="utf-8"))
    fixture = json.loads((args.models / "ranker_fixture.json").read_text(encoding="utf-8"))

    sha = hashlib.sha256(data).hexdigest()
    for name, recorded in [("ranker.json", meta["onnx_sha256"]), ("ranker_fixture.json", fixture["onnx_sha256"])]:
        if recorded != sha:
            failures.append(f"{name} records sha256 {recorded}, ranker.onnx has {sha}")
    if len(meta["feature_names"]) != N_FEATURES or meta["feature_names"] != fixture["feature_names"]:
        failures.append(f"feature names differ: {meta['feature_names']} vs {fixture['feature_names']}")

    graph = onnx.load_from_string(data).graph
    inputs = [(i.name, [d.dim_value or d.dim_param or None for d in i.type.tensor_type.shape.dim]) for i in graph.input]
    outputs = [o.name for o in graph.output]
    if len(inputs) != 1 or inputs[0][0] != "features" or inputs[0][1][1] != N_FEATURES:
        failures.append(f"inputs {inputs}, expected one `features` [N, {N_FEATURES}]")
    if "probabilities" not in outputs:
        failures.append(f"outputs {outputs}, expected `probabilities`")

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])

    def score(x: np.ndarray) -> np.ndarray:
        (p,) = sess.run(["probabilities"], {"features": x.astype(np.float32).reshape(-1, N_FEATURES)})
        if p.shape != (len(x), 2):
            failures.append(f"probabilities has shape {p.shape} for {len(x)} rows")
        return p[:, 1]

    rows = np.array(fixture["rows"], dtype=np.float32)
    expected = np.array(fixture["expected"], dtype=np.float64)
    got = score(rows)
    diff = np.abs(got - expected)
    print(f"{len(rows)} fixture rows: max abs diff {diff.max():.2e} (tolerance {TOLERANCE:g})")
    for i in np.flatnonzero(diff >= TOLERANCE):
        failures.append(f"row {i}: onnxruntime {got[i]:.7f}, fixture {expected[i]:.7f}")
    if not ((got >= 0) & (got <= 1)).all():
        failures.append(f"scores outside [0, 1]: {got}")

    perm = np.arange(len(rows))[::-1]
    if np.abs(score(rows[perm]) - got[perm]).max() > 1e-7:
        failures.append("a row's score depends on the other rows of its batch")
    if len(score(np.zeros((0, N_FEATURES), dtype=np.float32))) != 0:
        failures.append("an empty batch did not give an empty result")

    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    if not failures:
        print(f"ok: {args.models / 'ranker.onnx'} ({len(data)} bytes, sha256 {sha[:12]}…)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
