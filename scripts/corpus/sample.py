"""A seeded sample of a corpus (`locus corpus build`'s corpus.jsonl + corpus.gold.jsonl), for
training on a machine that cannot afford the whole corpus (the CPU encoder of issue 18).

    python sample.py CORPUS_DIR N OUT_DIR [--seed 0]

Keeps N instances chosen by Python's random.Random(seed).shuffle over the line numbers, in
the corpus's own order, and their gold lines; writes OUT_DIR/sample.jsonl and
OUT_DIR/sample.gold.jsonl and prints the count per repository. Deterministic: the same corpus,
N and seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("n", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    lines = (args.corpus / "corpus.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    order = list(range(len(lines)))
    random.Random(args.seed).shuffle(order)
    keep = sorted(order[: args.n])
    chosen = [lines[i] for i in keep]
    ids = {json.loads(line)["instance_id"] for line in chosen}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sample.jsonl").write_text("".join(chosen), encoding="utf-8")
    with open(args.corpus / "corpus.gold.jsonl", encoding="utf-8") as f:
        gold = [line for line in f if json.loads(line)["instance_id"] in ids]
    (args.out / "sample.gold.jsonl").write_text("".join(gold), encoding="utf-8")
    print(f"sample: {len(chosen)} of {len(lines)} instances (seed {args.seed}), {len(gold)} gold lines -> {args.out}")
    for repo, n in Counter(json.loads(line)["repo"] for line in chosen).most_common():
        print(f"  {repo}: {n}")


if __name__ == "__main__":
    main()
