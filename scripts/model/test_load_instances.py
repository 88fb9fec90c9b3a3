"""Checks how the training scripts read a feature dump, on a dump made here: candidates come back
in the fusion's order whoever ordered the dump, an instance whose search found no candidate is
scored as an empty ranking, and blend_experiment.py's ends are the learned and the fusion's order.
Runs in the venv of scripts/setup.sh (CI).

    python test_load_instances.py
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import blend_experiment as be  # noqa: E402
import train_ranker as tr  # noqa: E402
from schema import feature_schema  # noqa: E402


def candidate(name: str, fusion_rank: int, lexical: float) -> dict:
    """A candidate row of the schema's width: `log_rank` from its fusion rank, `lexical` set."""
    names = feature_schema().function
    f = [0.0] * len(names)
    f[names.index("log_rank")] = math.log1p(fusion_rank)
    f[names.index("lexical")] = lexical
    return {"name": name, "f": f}


class Refuses:
    """Scores a row by its `lexical` column and, like scikit-learn, refuses an empty batch."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            raise ValueError("Found array with 0 sample(s)")
        p = x[:, feature_schema().function.index("lexical")].astype(np.float64)
        return np.stack([1 - p, p], axis=1)


def main() -> None:
    # Listed in a model's order (as `locus eval --model --features` writes them): c, a, b; the
    # fusion ranked them a, b, c.
    ordered_by_model = [candidate("m.py:c", 2, 0.1), candidate("m.py:a", 0, 0.9), candidate("m.py:b", 1, 0.5)]
    lines = [
        {"instance_id": "o__r-1", "repo": "o/r", "rows_ordered_by": {"ranking": "model"},
         "candidates": ordered_by_model},
        {"instance_id": "o__r-2", "repo": "o/r", "candidates": []},
    ]
    gold = {"o__r-1": ["m.py:b"], "o__r-2": ["m.py:z"]}
    with tempfile.TemporaryDirectory() as d:
        dump = Path(d) / "features.jsonl"
        dump.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        insts, n_lines = tr.load_instances(dump, gold)
    assert n_lines == 2
    one, empty = insts
    assert one.names == ["m.py:a", "m.py:b", "m.py:c"], one.names
    lexical = feature_schema().function.index("lexical")
    assert one.x[:, lexical].tolist() == [np.float32(0.9), np.float32(0.5), np.float32(0.1)]
    assert one.y.tolist() == [0, 1, 0]
    # The "fusion" order of the scripts' tables is now the fusion's: b is second.
    assert tr.first_gold_rank(one, None) == 1
    assert empty.names == [] and empty.x.shape == (0, len(feature_schema().function))

    # The empty instance is scored as an empty ranking instead of stopping the script (scikit-learn
    # refuses zero rows; a stand-in with its predict_proba, since CI's venv has no scikit-learn).
    model = Refuses()
    assert tr.positive(model, empty.x).shape == (0,)
    assert np.allclose(tr.positive(model, one.x), [0.9, 0.5, 0.1])
    scores = [tr.positive(model, i.x) for i in (one, empty)]
    m = tr.metrics([one, empty], scores)
    assert m["n"] == 2 and m["acc5"] == 50.0, m

    # The blend's ends: w = 0 keeps the learned order, w = 1 is the candidates' (fusion's) order.
    learned = np.array([0.1, 0.2, 0.9])
    assert list(np.argsort(-be.blended(learned, 0.0), kind="stable")) == [2, 1, 0]
    assert list(np.argsort(-be.blended(learned, 1.0), kind="stable")) == [0, 1, 2]
    assert be.rank_share(np.array([0.5, 0.9])).tolist() == [0.5, 1.0]
    print("load_instances: ok")


if __name__ == "__main__":
    main()
