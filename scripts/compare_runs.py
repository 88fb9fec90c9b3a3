#!/usr/bin/env python3
"""Compares `locus eval` runs on the instances they all completed, from their per_instance.jsonl.

Usage: scripts/compare_runs.py [--repo OWNER/NAME ...] [--not-repo OWNER/NAME ...] LABEL=RUN_DIR ...

The per-instance metrics are the ones `locus eval` computed (EVAL.md's definitions); this only
averages them over a common subset, so runs that stopped early, or that cover different
repositories, are compared on the same instances. File metrics average over instances with
gold files, function metrics over instances with reliable, non-empty function gold, exactly
as `locus eval` does; n is printed with every row. Prints a Markdown table.
"""
import argparse
import json
import os
import sys

FILE = [("file_acc@1", "file Acc@1"), ("file_acc@5", "file Acc@5"), ("file_mrr", "file MRR")]
FUNC = [("function_acc@5", "fn Acc@5"), ("function_acc@10", "fn Acc@10"),
        ("function_recall@5", "fn R@5"), ("function_f1", "fn F1"), ("function_mrr", "fn MRR")]


def count(v):
    """Gold sizes are counts in current runs and lists in older ones."""
    return len(v) if isinstance(v, list) else int(v or 0)


def load(run_dir):
    out = {}
    with open(os.path.join(run_dir, "per_instance.jsonl"), encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d.get("skipped") or d.get("error") or not d.get("metrics"):
                continue
            out[d["instance_id"]] = d
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", action="append", default=[], help="only these repositories")
    ap.add_argument("--not-repo", action="append", default=[], help="leave these repositories out")
    ap.add_argument("runs", nargs="+", help="LABEL=RUN_DIR")
    a = ap.parse_args()
    runs = []
    for spec in a.runs:
        label, _, path = spec.partition("=")
        if not path:
            sys.exit(f"expected LABEL=RUN_DIR, got {spec!r}")
        runs.append((label, load(path)))
    common = set.intersection(*(set(r) for _, r in runs))
    first = runs[0][1]
    common = {i for i in common
              if (not a.repo or first[i]["repo"] in a.repo) and first[i]["repo"] not in a.not_repo}
    if not common:
        sys.exit("no instance is completed in every run")
    repos = sorted({first[i]["repo"] for i in common})
    files = sorted(i for i in common if count(first[i]["gold_files"]) > 0)
    funcs = sorted(i for i in common if first[i]["function_gold_reliable"] and count(first[i]["gold_functions"]) > 0)
    print(f"common instances: {len(common)} (file n = {len(files)}, function n = {len(funcs)}); "
          f"repositories: {', '.join(repos)}\n")
    cols = [c for _, c in FILE + FUNC]
    print("| run | " + " | ".join(cols) + " | p50 ms | calls |")
    print("|---|" + "---:|" * (len(cols) + 2))
    for label, r in runs:
        vals = []
        for key, _ in FILE:
            vals.append(sum(r[i]["metrics"][key] for i in files) / len(files))
        for key, _ in FUNC:
            vals.append(sum(r[i]["metrics"][key] for i in funcs) / max(len(funcs), 1))
        ms = sorted(r[i]["ms"] for i in common)
        calls = sum(r[i]["calls"] for i in common) / len(common)
        cells = [f"{v:.3f}" if "MRR" in c else f"{100 * v:.1f}" for v, c in zip(vals, cols)]
        print(f"| {label} | " + " | ".join(cells) + f" | {ms[len(ms) // 2]:.1f} | {calls:.1f} |")


if __name__ == "__main__":
    main()
