"""Calibrates the predicted function set's cut-off for one language, out of fold by repository.

    python calibrate_cut.py RUN/per_instance.jsonl [RUN2/per_instance.jsonl ...]

The engine commits to a set of functions: the leading ones whose score, relative to the best,
is at least RATIO, at most MAX of them (`PRED_FUNCTION_RATIO` / `PRED_FUNCTION_MAX` and their
per-language values in server/search/src/fusion.rs). Given `locus eval` rows with
`ranked_function_scores`, this picks (RATIO, MAX) on a grid to maximize mean function F1, with
one fold per repository: each repository's instances are scored with the pair chosen on the
other repositories, so the reported F1 is out of fold. It prints the current pair's F1 (read
from the rows' own predicted sets), the out-of-fold F1, the pair chosen on every repository and
how often each fold chose it. Only instances with reliable, non-empty function gold count, as
in `locus eval`. Deterministic: ties go to the larger ratio, then the smaller maximum.

    python calibrate_cut.py RUN/per_instance.jsonl ... --write models/rust/ranker.json

also records the pair chosen on every repository in that model's `.json` (`predicted_set`),
which the engine reads: the function model that ranked an answer decides where its predicted
set ends (the constants of fusion.rs without one). Calibrate on runs ranked by that model's
fold models (`locus eval --model-folds`), so its scores are the ones the pair is chosen for;
rerun it after retraining (train_ranker.py writes the `.json` anew).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

RATIOS = [round(0.30 + 0.05 * i, 2) for i in range(15)]  # 0.30 .. 1.00
MAXES = [1, 2, 3, 4, 5]


def f1(pred: list[str], gold: list[str]) -> float:
    p, g = set(pred), set(gold)
    tp = len(p & g)
    if not p or not g or tp == 0:
        return 0.0
    precision, recall = tp / len(p), tp / len(g)
    return 2 * precision * recall / (precision + recall)


def cut(row: dict, ratio: float, most: int) -> list[str]:
    pairs = list(zip(row["ranked_functions"], row["ranked_function_scores"]))[:most]
    return [name for name, score in pairs if score >= ratio - 1e-6]


def best_pair(rows: list[dict]) -> tuple[float, int]:
    best = None
    for ratio in sorted(RATIOS, reverse=True):
        for most in MAXES:
            v = sum(f1(cut(r, ratio, most), r["gold_functions"]) for r in rows) / len(rows)
            if best is None or v > best[0] + 1e-12:
                best = (v, ratio, most)
    return best[1], best[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="locus eval per_instance.jsonl files")
    ap.add_argument("--write", type=Path, metavar="MODEL_JSON",
                    help="record the chosen pair as `predicted_set` in this function model's .json")
    args = ap.parse_args()
    rows, source = [], {}
    for path in args.runs:
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                if r.get("skipped") or r.get("error") or not r.get("function_gold_reliable", True):
                    continue
                if not r.get("gold_functions"):
                    continue
                if len(r.get("ranked_function_scores", [])) != len(r["ranked_functions"]):
                    sys.exit(f"{path}: rows without ranked_function_scores (rerun locus eval)")
                rows.append(r)
                source[id(r)] = path
    if not rows:
        sys.exit("no rows with function gold")
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_repo[r["repo"]].append(r)
    current = sum(f1(r["predicted_functions"], r["gold_functions"]) for r in rows) / len(rows)
    chosen: dict[tuple[float, int], int] = defaultdict(int)
    oof: dict[int, float] = {}
    for repo in sorted(by_repo):
        train = [r for k, v in by_repo.items() if k != repo for r in v]
        ratio, most = best_pair(train)
        chosen[(ratio, most)] += 1
        for r in by_repo[repo]:
            oof[id(r)] = f1(cut(r, ratio, most), r["gold_functions"])
    ratio, most = best_pair(rows)
    print(f"instances {len(rows)}, repositories {len(by_repo)}")
    print(f"function F1, current cut-off: {100 * current:.1f}")
    print(f"function F1, out of fold by repository: {100 * sum(oof.values()) / len(rows):.1f}")
    if len(args.runs) > 1:
        for path in args.runs:
            mine = [r for r in rows if source[id(r)] == path]
            if mine:
                now = sum(f1(r["predicted_functions"], r["gold_functions"]) for r in mine) / len(mine)
                print(f"  {path}: {len(mine)} instances, current {100 * now:.1f}, out of fold "
                      f"{100 * sum(oof[id(r)] for r in mine) / len(mine):.1f}")
    print(f"pairs the folds chose: {dict(sorted(chosen.items()))}")
    print(f"pair chosen on every repository: ratio {ratio}, max {most}")
    if args.write:
        meta = json.loads(args.write.read_text(encoding="utf-8"))
        meta["predicted_set"] = {
            "ratio": ratio, "max": most,
            "calibrated_on": {"runs": [str(p) for p in args.runs], "instances": len(rows), "repositories": len(by_repo)},
            "f1_out_of_fold": round(100 * sum(oof.values()) / len(rows), 1),
        }
        args.write.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        print(f"wrote predicted_set {{ratio {ratio}, max {most}}} into {args.write}")


if __name__ == "__main__":
    main()
