#!/usr/bin/env python3
"""call_stats.py labels calls against the gold: a call returning a gold function is `gold_hit`,
one bringing it for the first time `gold_new`, one with nothing new redundant."""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import call_stats  # noqa: E402


def call(tool, issued, returned, new, declined=None):
    return {"turn": 1, "tool": tool, "source": "issue", "issued": issued, "declined": declined,
            "returned_names": returned, "new_names": new}


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "gold.jsonl").write_text(json.dumps(
            {"instance_id": "a__b-1", "files": ["x.py"], "functions": ["x.py:f"], "function_gold_reliable": True}) + "\n")
        calls = [call("lexical", True, ["x.py:f", "y.py:g"], ["x.py:f", "y.py:g"]),
                 call("symbol", True, ["x.py:f"], []),
                 call("grep", False, ["y.py:h"], ["y.py:h"], declined="over the call budget")]
        (d / "t.jsonl").write_text(json.dumps({"instance_id": "a__b-1", "repo": "a/b", "turns": 1, "calls": calls}) + "\n")
        assert call_stats.main([str(d / "t.jsonl"), str(d / "gold.jsonl"), "--rows", str(d / "rows.jsonl")]) == 0
        rows = [json.loads(l) for l in (d / "rows.jsonl").read_text().splitlines()]
        assert [(r["gold_hit"], r["gold_new"], r["redundant"]) for r in rows] == [
            (True, True, False), (True, False, True), (False, False, False)], rows
        assert rows[0]["g"] == 1.0 and rows[1]["g"] == 0.0
    print("test_call_stats: ok")


if __name__ == "__main__":
    main()
