"""Checks the committed learned models: models/ranker.onnx, ranker.files.onnx, ranker.tail.onnx and the search policy's policy.onnx against their metadata and fixtures.

    python test_ranker.py [--models DIR] [--schema FILE]

For the function model (ranker.onnx, ranker.json, ranker_fixture.json; the schema's
`function` features), the file model (ranker.files.onnx, ranker.files.json,
ranker.files_fixture.json; `file`) and the tail model (ranker.tail.onnx, ranker.tail.json,
ranker.tail_fixture.json; `tail`) and the search policy (policy.onnx, policy.json,
policy_fixture.json; `call`), the schema being the engine's models/features.json:
- its json's `feature_names` are that schema list exactly (same names, same order), and so
  are its fixture's: a model trained on other columns would read the engine's rows wrongly;
- the model has the sha256 that its json and its fixture record;
- its graph has the contract locus-embed relies on (input `features` float32 [N, width],
  output `probabilities` float32 [N, 2]), width being the schema list's length, and every
  fixture row has that width;
- ONNX Runtime's P(edited) for the fixture rows equals the scikit-learn scores the
  fixture records (written by train_ranker.py from the same model), within TOLERANCE;
- an empty batch and a batch in another order give the same per-row scores.

Exits non-zero with the numbers on any failure. Needs only numpy, onnx and onnxruntime
(the venv of scripts/setup.sh); scikit-learn is not needed. --models DIR checks the models in
DIR instead of the checkout's models/ (against the same schema); --schema FILE reads another
schema than the checkout's models/features.json. The models trained on one language alone
(models/<language>/, where there are any) are checked the same way, and must record that
language among those they were trained on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schema import SCHEMA_PATH, feature_schema, name_diff  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# (stem, fixture, the schema list of its input columns)
MODELS = [("ranker", "ranker_fixture.json", "function"), ("ranker.files", "ranker.files_fixture.json", "file"),
          ("ranker.tail", "ranker.tail_fixture.json", "tail"), ("policy", "policy_fixture.json", "call")]
# The script that trains each model, for the message when its names are not the schema's.
TRAINER = {"ranker": "train_ranker.py", "ranker.files": "train_file_ranker.py", "ranker.tail": "train_tail_ranker.py",
           "policy": "../policy/train_policy.py"}
# The Rust test uses the same bound: the tree ensemble is float32 arithmetic in ONNX
# Runtime and float64 in scikit-learn, which differ by ~1e-7 on these rows.
TOLERANCE = 1e-4


def check(models: Path, stem: str, fixture_name: str, key: str, names: tuple[str, ...], schema_path: Path) -> list[str]:
    """Every check of one model; `names`: the schema's `key` list, its input columns."""
    import onnx
    import onnxruntime as ort

    failures = []
    n_features = len(names)
    data = (models / f"{stem}.onnx").read_bytes()
    meta = json.loads((models / f"{stem}.json").read_text(encoding="utf-8"))
    fixture = json.loads((models / fixture_name).read_text(encoding="utf-8"))

    # The names first: a model trained on other columns reads the engine's rows wrongly, and
    # the engine refuses it (it compares the same names when it loads the model).
    for name, got in [(f"{stem}.json", meta.get("feature_names")), (fixture_name, fixture.get("feature_names"))]:
        if got != list(names):
            failures.append(
                f"{name}: feature_names are not the schema's `{key}` ({schema_path}): "
                f"{name_diff(names, got or [])}; retrain the model (scripts/model/{TRAINER[stem]}) "
                "on a dump of the current engine"
            )

    sha = hashlib.sha256(data).hexdigest()
    for name, recorded in [(f"{stem}.json", meta["onnx_sha256"]), (fixture_name, fixture["onnx_sha256"])]:
        if recorded != sha:
            failures.append(f"{name} records sha256 {recorded}, {stem}.onnx has {sha}")
    bad = [k for k, r in enumerate(fixture["rows"]) if len(r) != n_features]
    if bad:
        failures.append(f"{fixture_name}: rows {bad} do not have the schema's {n_features} values")
        return [f"{stem}: {f}" for f in failures]

    graph = onnx.load_from_string(data).graph
    inputs = [(i.name, [d.dim_value or d.dim_param or None for d in i.type.tensor_type.shape.dim]) for i in graph.input]
    outputs = [o.name for o in graph.output]
    if len(inputs) != 1 or inputs[0][0] != "features" or inputs[0][1][1] != n_features:
        failures.append(f"inputs {inputs}, expected one `features` [N, {n_features}]")
    if "probabilities" not in outputs:
        failures.append(f"outputs {outputs}, expected `probabilities`")

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])

    def score(x: np.ndarray) -> np.ndarray:
        (p,) = sess.run(["probabilities"], {"features": x.astype(np.float32).reshape(-1, n_features)})
        if p.shape != (len(x), 2):
            failures.append(f"probabilities has shape {p.shape} for {len(x)} rows")
        return p[:, 1]

    rows = np.array(fixture["rows"], dtype=np.float32)
    expected = np.array(fixture["expected"], dtype=np.float64)
    got = score(rows)
    diff = np.abs(got - expected)
    print(f"{stem}: {len(rows)} fixture rows: max abs diff {diff.max():.2e} (tolerance {TOLERANCE:g})")
    for i in np.flatnonzero(diff >= TOLERANCE):
        failures.append(f"row {i}: onnxruntime {got[i]:.7f}, fixture {expected[i]:.7f}")
    if not ((got >= 0) & (got <= 1)).all():
        failures.append(f"scores outside [0, 1]: {got}")

    perm = np.arange(len(rows))[::-1]
    if np.abs(score(rows[perm]) - got[perm]).max() > 1e-7:
        failures.append("a row's score depends on the other rows of its batch")
    if len(score(np.zeros((0, n_features), dtype=np.float32))) != 0:
        failures.append("an empty batch did not give an empty result")
    if not failures:
        print(f"ok: {models / (stem + '.onnx')} ({len(data)} bytes, sha256 {sha[:12]}…)")
    return [f"{stem}: {f}" for f in failures]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models", help="the models to check (default: %(default)s)")
    ap.add_argument("--schema", type=Path, default=SCHEMA_PATH, help="the feature schema (default: %(default)s)")
    args = ap.parse_args()
    schema = feature_schema(args.schema)
    failures = [f for stem, fixture, key in MODELS
                for f in check(args.models, stem, fixture, key, schema.names(key), args.schema)]
    # The models trained on one language alone (models/<language>/; no policy of their own),
    # each recording that language among those it was trained on.
    for lang in ("python", "rust"):
        d = args.models / lang
        if not (d / "ranker.onnx").exists():
            continue
        for stem, fixture, key in MODELS[:3]:
            if stem != "ranker" and not (d / f"{stem}.onnx").exists():
                continue
            failures += [f"{lang}/{f}" for f in check(d, stem, fixture, key, schema.names(key), args.schema)]
            trained = json.loads((d / f"{stem}.json").read_text(encoding="utf-8")).get("training_languages", {})
            if not trained.get(lang):
                failures.append(f"{lang}/{stem}: not recorded as trained on {lang} issues: {trained}")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
