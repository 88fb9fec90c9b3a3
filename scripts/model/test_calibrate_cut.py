"""Checks calibrate_cut.py on rows made here: the cut-off, the grid's choice, and that each
repository is scored with the pair chosen without it. Runs in the venv of scripts/setup.sh (CI).

    python test_calibrate_cut.py
"""

from __future__ import annotations

import sys
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
    print("calibrate_cut: ok")


if __name__ == "__main__":
    main()
