#!/usr/bin/env python3
"""train_policy.py's label, threshold rule and AUC, and its refusal of benchmark repositories,
on hand-made rows (numpy only: the venv of scripts/setup.sh)."""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402

import train_policy as tp  # noqa: E402
from schema import SchemaError, feature_schema  # noqa: E402


def lab(hit, new, redundant):
    return {"gold_hit": hit, "gold_new": new, "redundant": redundant}


def main() -> None:
    # A call is worth it when it first brings the fix, or touches it and brings something new,
    # or touches it as a name, frame or path the rankers weigh even when already seen.
    assert tp.worth({"tool": "graph"}, lab(True, True, False))
    assert tp.worth({"tool": "graph"}, lab(True, False, False))
    assert not tp.worth({"tool": "graph"}, lab(True, False, True))
    assert tp.worth({"tool": "symbol"}, lab(True, False, True))
    assert not tp.worth({"tool": "symbol"}, lab(False, False, False))

    # The threshold keeps the asked share of positives: the highest such value.
    y = np.array([1, 1, 1, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.3, 0.1, 0.5, 0.05])
    assert tp.choose_threshold(y, p, 0.75) == 0.3
    assert tp.choose_threshold(y, p, 1.0) == 0.1
    assert tp.auc(np.array([1, 0, 1, 0]), np.array([0.9, 0.1, 0.8, 0.2])) == 1.0
    assert tp.auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5

    # Rows come from a trace's `x` in the schema's order; the whole issue's calls are no decision.
    names = feature_schema().call
    x = {n: float(i) for i, n in enumerate(names)}
    calls = [
        {"tool": "lexical", "source": "issue", "x": x, "returned_names": ["a.py:f"], "new_names": ["a.py:f"]},
        {"tool": "symbol", "source": "identifier_code", "x": x, "returned_names": ["a.py:f"], "new_names": []},
        {"tool": "graph", "source": "leader", "x": x, "returned_names": ["a.py:g"], "new_names": ["a.py:g"]},
    ]
    gold = {"instance_id": "o__r-1", "files": ["a.py"], "functions": ["a.py:f"], "function_gold_reliable": True}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "gold.jsonl").write_text(json.dumps(gold) + "\n")
        (d / "t.jsonl").write_text(json.dumps({"instance_id": "o__r-1", "repo": "o/r", "calls": calls}) + "\n")
        xs, ys, repos, tools = tp.rows(d / "t.jsonl", d / "gold.jsonl")
        assert tools == ["symbol", "graph"] and list(ys) == [1, 0] and repos == ["o/r", "o/r"]
        assert list(xs[0]) == list(range(len(names)))
        # A benchmark repository is refused.
        (d / "b.jsonl").write_text(json.dumps({"instance_id": "o__r-1", "repo": "psf/requests", "calls": calls}) + "\n")
        try:
            tp.rows(d / "b.jsonl", d / "gold.jsonl")
            raise AssertionError("a benchmark repository was accepted")
        except SchemaError as e:
            assert "benchmark" in str(e)
    print("ok: train_policy labels, threshold rule, AUC, benchmark refusal")


if __name__ == "__main__":
    main()
