#!/usr/bin/env python3
"""Labels a `locus eval --call-traces` dump against the gold and says what each kind of call is worth.

Every call the search policy considered (issued, or declined with the hand-set policy's reason)
carries the entities it returned (declined: would have returned) and those that were new. Against
the gold functions and files of its instance, each call gets two labels, the policy model's targets:

- `gold_new`: it brings a gold function (or gold file, for a file entity) not seen before it;
- `gold_hit`: it returns a gold function at all (evidence, even when the entity was seen).

The table groups calls by tool, relation or source, and decision, with: calls, redundant share
(no new entity), mean g (new / returned), and the shares labelled gold_hit and gold_new. With
`--rows OUT` it writes one labelled row per call (JSON lines) for training.

    python3 scripts/policy/call_stats.py TRACES GOLD [--by tool|source|relation] [--rows OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def load_gold(path: Path) -> dict[str, tuple[set[str], set[str]]]:
    """instance_id -> (gold functions, gold files); instances without reliable function gold keep files only."""
    gold = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            fns = set(d.get("functions") or []) if d.get("function_gold_reliable", True) else set()
            gold[d["instance_id"]] = (fns, set(d.get("files") or []))
    return gold


def label(call: dict, fns: set[str], files: set[str]) -> dict:
    returned, new = call["returned_names"], set(call["new_names"])
    hit = [n for n in returned if n in fns]
    return {
        "gold_hit": bool(hit),
        "gold_new": any(n in new for n in hit) or any(n in new and n in files for n in returned),
        "redundant": not new,
        "g": len(new) / len(returned) if returned else 0.0,
    }


def group_key(call: dict, by: str) -> str:
    decision = "issued" if call["issued"] else f"declined: {call['declined']}"
    if by == "source":
        what = f"{call['tool']}/{call['source']}"
    elif by == "relation":
        what = f"{call['tool']}/{call.get('relation') or '-'}"
    else:
        what = call["tool"]
    return f"turn {min(call['turn'], 3)}{'+' if call['turn'] >= 3 else ''} {what} [{decision}]"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", type=Path)
    ap.add_argument("gold", type=Path)
    ap.add_argument("--by", choices=["tool", "source", "relation"], default="tool")
    ap.add_argument("--rows", type=Path, help="write one labelled row per call here (JSON lines)")
    args = ap.parse_args(argv)

    gold = load_gold(args.gold)
    groups: dict[str, list[dict]] = defaultdict(list)
    instances = missing = 0
    rows = open(args.rows, "w", encoding="utf-8") if args.rows else None
    with open(args.traces, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["instance_id"] not in gold:
                missing += 1
                continue
            instances += 1
            fns, files = gold[d["instance_id"]]
            for c in d["calls"]:
                lab = label(c, fns, files)
                groups[group_key(c, args.by)].append(lab)
                if rows:
                    row = {k: v for k, v in c.items() if k not in ("returned", "new", "returned_names", "new_names")}
                    row.update(instance_id=d["instance_id"], repo=d["repo"], returned_n=len(c["returned_names"]),
                               new_n=len(c["new_names"]), **lab)
                    rows.write(json.dumps(row) + "\n")
    if rows:
        rows.close()
    if instances == 0:
        print(f"no instance of {args.traces} has gold in {args.gold}", file=sys.stderr)
        return 2
    print(f"{instances} instances ({missing} without gold skipped)")
    print(f"| calls considered | n | per instance | redundant | mean g | gold hit | gold new |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for key in sorted(groups):
        g = groups[key]
        n = len(g)
        share = lambda k: 100.0 * sum(x[k] for x in g) / n  # noqa: E731
        mean_g = sum(x["g"] for x in g) / n
        print(f"| {key} | {n} | {n / instances:.2f} | {share('redundant'):.1f} % | {mean_g:.2f} "
              f"| {share('gold_hit'):.1f} % | {share('gold_new'):.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
