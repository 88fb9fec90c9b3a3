"""Checks compose_set.py on files made here: whole sources first (filtered by repository), the
filler one repository at a time, the gold in the instances' order, and a duplicate refused.
Runs in the venv of scripts/setup.sh (CI).

    python test_compose_set.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "compose_set.py"


def write(d: Path, name: str, rows: list[tuple[str, str]]) -> str:
    """INSTANCES:GOLD files of (instance_id, repo) rows, the gold lines in reverse order."""
    inst, gold = d / f"{name}.jsonl", d / f"{name}.gold.jsonl"
    inst.write_text("".join(json.dumps({"instance_id": i, "repo": r}) + "\n" for i, r in rows))
    gold.write_text("".join(json.dumps({"instance_id": i, "files": [f"{i}.py"]}) + "\n" for i, _ in reversed(rows)))
    return f"{inst}:{gold}"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as t:
        d = Path(t)
        bench = write(d, "bench", [("a1", "o/a"), ("b1", "o/b"), ("a2", "o/a")])
        fill = write(d, "fill", [("x1", "o/x"), ("x2", "o/x"), ("x3", "o/x"), ("y1", "o/y")])
        out = d / "set"
        p = run(str(out), "5", f"{bench}:o/a", "--fill", fill)
        assert p.returncode == 0, p.stderr
        ids = [json.loads(line)["instance_id"] for line in open(f"{out}.jsonl")]
        assert ids == ["a1", "a2", "x1", "y1", "x2"], ids
        gold = [json.loads(line)["instance_id"] for line in open(f"{out}.gold.jsonl")]
        assert gold == ids, gold
        # More asked than there is: every instance once, no repeat.
        p = run(str(out), "50", bench, "--fill", fill)
        assert p.returncode == 0, p.stderr
        assert len(open(f"{out}.jsonl").readlines()) == 7
        # The same instance in two sources is refused.
        p = run(str(out), "10", bench, bench)
        assert p.returncode != 0 and "in two sources" in p.stderr, p.stderr
    print("compose_set: ok")


if __name__ == "__main__":
    main()
