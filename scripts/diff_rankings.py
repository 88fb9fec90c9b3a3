#!/usr/bin/env python3
"""Checks that two `locus eval` runs ranked every instance identically.

Usage: scripts/diff_rankings.py [--after-only] BEFORE_RUN_DIR AFTER_RUN_DIR

Compares, instance by instance, `ranked_files`, `ranked_functions`, `predicted_files` and
`predicted_functions` in the two runs' per_instance.jsonl (instances skipped in both — no
mirror — are counted apart). Prints one line per differing instance and a summary; exits 1 if
any instance differs or is missing from one run, 0 if the rankings are the same. For a
behaviour-preserving change: run the same `locus eval` command with the old and the new binary.
With --after-only, only the instances the AFTER run holds are compared (a run restricted with
`--repo`); the BEFORE instances left out are counted.
"""
import json
import os
import sys

KEYS = ("ranked_files", "ranked_functions", "predicted_files", "predicted_functions")


def load(run_dir):
    rows = {}
    with open(os.path.join(run_dir, "per_instance.jsonl"), encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            rows[d["instance_id"]] = d
    return rows


def main():
    args = sys.argv[1:]
    after_only = "--after-only" in args
    args = [a for a in args if a != "--after-only"]
    if len(args) != 2:
        sys.exit(__doc__)
    before, after = load(args[0]), load(args[1])
    same = skipped = 0
    differ = []
    ids = set(after) if after_only else set(before) | set(after)
    for iid in sorted(ids):
        b, a = before.get(iid), after.get(iid)
        if b is None or a is None:
            differ.append(f"{iid}: only in {'after' if b is None else 'before'}")
            continue
        if b.get("skipped") and a.get("skipped"):
            skipped += 1
            continue
        if b.get("error") or a.get("error"):
            differ.append(f"{iid}: error before={b.get('error')!r} after={a.get('error')!r}")
            continue
        keys = [k for k in KEYS if b.get(k) != a.get(k)]
        if keys:
            differ.append(f"{iid}: {', '.join(keys)} differ")
        else:
            same += 1
    for line in differ:
        print(line)
    left_out = f"; not compared (not in AFTER): {len(set(before) - ids)}" if after_only else ""
    print(f"identical rankings: {same}; differing or missing: {len(differ)}; skipped in both (no mirror): {skipped}{left_out}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
