"""A seeded sample of a corpus (`locus corpus build`'s corpus.jsonl + corpus.gold.jsonl), for
training on a machine that cannot afford the whole corpus (the CPU encoder of issue 18).

    python sample.py CORPUS_DIR N OUT_DIR [--seed 0]
    python sample.py CORPUS_DIR N OUT_DIR --per-repo --window W

Keeps N instances chosen by Python's random.Random(seed).shuffle over the line numbers, in
the corpus's own order, and their gold lines; writes OUT_DIR/sample.jsonl and
OUT_DIR/sample.gold.jsonl and prints the count per repository. Deterministic: the same corpus,
N and seed give byte-identical files.

With --per-repo, N is per repository instead (the rankers' training runs, issue 18): of each
repository's newest W instances whose function gold is reliable and non-empty, N evenly spaced
ones (all of them when fewer). Nearby commits share most of their code, so the encoder's vector
cache makes the later trees of a repository cheap to evaluate; nothing is drawn at random.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path


def per_repo(corpus: Path, lines: list[str], n: int, window: int) -> list[int]:
    """Line numbers: per repository, n evenly spaced of its newest `window` usable instances."""
    with open(corpus / "corpus.gold.jsonl", encoding="utf-8") as f:
        usable = set()
        for line in f:
            g = json.loads(line)
            if g.get("function_gold_reliable") and g.get("functions"):
                usable.add(g["instance_id"])
    by_repo: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        d = json.loads(line)
        if d["instance_id"] in usable:
            by_repo.setdefault(d["repo"], []).append(i)
    keep = []
    for rows in by_repo.values():
        newest = rows[-window:]
        if len(newest) <= n:
            keep += newest
        else:
            keep += [newest[round(j * (len(newest) - 1) / (n - 1))] for j in range(n)] if n > 1 else newest[-1:]
    return sorted(keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("n", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-repo", action="store_true", help="N per repository, evenly spaced over its newest --window")
    ap.add_argument("--window", type=int, default=240)
    args = ap.parse_args()
    lines = (args.corpus / "corpus.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    if args.per_repo:
        keep = per_repo(args.corpus, lines, args.n, args.window)
    else:
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
    how = f"{args.n} per repository of the newest {args.window}" if args.per_repo else f"seed {args.seed}"
    print(f"sample: {len(chosen)} of {len(lines)} instances ({how}), {len(gold)} gold lines -> {args.out}")
    for repo, n in Counter(json.loads(line)["repo"] for line in chosen).most_common():
        print(f"  {repo}: {n}")


if __name__ == "__main__":
    main()
