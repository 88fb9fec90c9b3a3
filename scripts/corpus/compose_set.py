#!/usr/bin/env python3
"""Joins instance files into one evaluation set of a chosen size, for timing `locus eval` at scale.

    python3 scripts/corpus/compose_set.py OUT_PREFIX SIZE \
        INSTANCES:GOLD[:REPO,REPO…] [INSTANCES:GOLD[:…] …] [--fill INSTANCES:GOLD]

Each INSTANCES:GOLD pair is taken whole (only the listed repositories when a third field names
them), in file order; then `--fill` tops the set up to SIZE, one instance per repository in
turn (repositories in name order, each in file order), so no single repository dominates the
filler. Writes OUT_PREFIX.jsonl and OUT_PREFIX.gold.jsonl (the gold lines of the chosen
instances, in the same order) and prints the instances per repository. Deterministic: the same
files give the same set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict


def read(spec: str) -> tuple[list[dict], dict[str, str]]:
    """The instances of INSTANCES:GOLD[:REPOS] (filtered) and every gold line by instance id."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        sys.exit(f"{spec}: expected INSTANCES:GOLD or INSTANCES:GOLD:REPO,REPO")
    repos = set(parts[2].split(",")) if len(parts) == 3 else None
    with open(parts[0], encoding="utf-8") as f:
        insts = [json.loads(line) for line in f if line.strip()]
    with open(parts[1], encoding="utf-8") as f:
        gold = {json.loads(line)["instance_id"]: line.rstrip("\n") for line in f if line.strip()}
    insts = [i for i in insts if repos is None or i["repo"] in repos]
    missing = [i["instance_id"] for i in insts if i["instance_id"] not in gold]
    if missing:
        sys.exit(f"{parts[1]}: no gold for {len(missing)} instances, e.g. {missing[0]}")
    return insts, gold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_prefix")
    ap.add_argument("size", type=int)
    ap.add_argument("sources", nargs="+", metavar="INSTANCES:GOLD[:REPOS]")
    ap.add_argument("--fill", metavar="INSTANCES:GOLD[:REPOS]")
    args = ap.parse_args()

    chosen: list[dict] = []
    gold: dict[str, str] = {}
    for spec in args.sources:
        insts, g = read(spec)
        chosen += insts
        gold.update(g)
    if args.fill and len(chosen) < args.size:
        insts, g = read(args.fill)
        gold.update(g)
        by_repo: dict[str, list[dict]] = defaultdict(list)
        for i in insts:
            by_repo[i["repo"]].append(i)
        turn = 0
        while len(chosen) < args.size and any(turn < len(v) for v in by_repo.values()):
            for repo in sorted(by_repo):
                if turn < len(by_repo[repo]) and len(chosen) < args.size:
                    chosen.append(by_repo[repo][turn])
            turn += 1
    chosen = chosen[: args.size]
    ids = [i["instance_id"] for i in chosen]
    dupes = [k for k, n in Counter(ids).items() if n > 1]
    if dupes:
        sys.exit(f"instance {dupes[0]} is in two sources")
    with open(f"{args.out_prefix}.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(i) + "\n" for i in chosen)
    with open(f"{args.out_prefix}.gold.jsonl", "w", encoding="utf-8") as f:
        f.writelines(gold[k] + "\n" for k in ids)
    print(f"{len(chosen)} instances (asked {args.size}) → {args.out_prefix}.jsonl, .gold.jsonl")
    for repo, n in Counter(i["repo"] for i in chosen).most_common():
        print(f"  {n:4d}  {repo}")


if __name__ == "__main__":
    main()
