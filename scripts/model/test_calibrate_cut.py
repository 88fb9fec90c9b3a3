"""Checks calibrate_cut.py on rows made here: the cut-off, the grid's choice, and that each
repository is scored with the pair chosen without it. Runs in the venv of scripts/setup.sh (CI).

    python test_calibrate_cut.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibrate_cut as cc  # noqa: E402


def row(repo: str, ranked: list[str], scores: list[float], gold: list[str]) -> dict:
    return {"repo": repo, "ranked_functions": ranked, "ranked_function_scores": scores, "gold_functions": gold}


def main() -> None:
    r = row("a/x", ["f", "g", "h"], [1.0, 0.9, 0.5], ["f", "g"])
    assert cc.cut(r, 0.8, 3) == ["f", "g"]
    assert cc.cut(r, 0.8, 1) == ["f"]
    assert cc.cut(r, 0.3, 3) == ["f", "g", "h"]
    assert abs(cc.f1(["f"], ["f", "g"]) - 2 / 3) < 1e-9
    assert cc.f1([], ["f"]) == 0.0
    # Two gold functions close in score: the grid keeps both; ties go to the larger ratio.
    rows = [row("a/x", ["f", "g", "h"], [1.0, 0.9, 0.2], ["f", "g"]) for _ in range(3)]
    ratio, most = cc.best_pair(rows)
    assert cc.cut(rows[0], ratio, most) == ["f", "g"], (ratio, most)
    assert ratio == 0.9, ratio

    # --write records the pair chosen on every repository in the model's .json, keeping the rest.
    with tempfile.TemporaryDirectory() as d:
        run, model = Path(d) / "per_instance.jsonl", Path(d) / "ranker.json"
        lines = [dict(row(repo, ["f", "g", "h"], [1.0, 0.9, 0.2], ["f", "g"]), predicted_functions=["f"])
                 for repo in ("a/x", "b/y")]
        run.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
        model.write_text(json.dumps({"onnx_sha256": "ab", "feature_names": ["x"]}), encoding="utf-8")
        sys.argv = ["calibrate_cut.py", str(run), "--write", str(model)]
        cc.main()
        meta = json.loads(model.read_text(encoding="utf-8"))
        assert meta["onnx_sha256"] == "ab" and meta["feature_names"] == ["x"], meta
        got = meta["predicted_set"]
        assert (got["ratio"], got["max"]) == (0.9, 2), got
        assert got["f1_out_of_fold"] == 100.0 and got["calibrated_on"]["repositories"] == 2, got
    print("calibrate_cut: ok")


if __name__ == "__main__":
    main()
