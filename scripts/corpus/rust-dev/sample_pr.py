"""The Rust models' pull-request instances: up to 24 per repository of the Rust dev set's
repositories, from their pull-request texts (not their issue reports, which are the dev set).

    locus corpus build --mirrors M --out PR --repos-file scripts/corpus/rust-dev/repos.txt \\
        --max-commits 600 --skip-failed --pins scripts/corpus/rust-dev/pr-manifest.json
    python3 scripts/corpus/rust-dev/sample_pr.py PR DEV OUT

PR is that build, DEV the Rust dev set's build (its instances are left out), OUT/rdpr.jsonl and
OUT/rdpr.gold.jsonl receive the sample: instances with reliable, non-empty function gold, each
repository's sorted by id and shuffled with seed 0, the first 24 kept. The same repositories as
the dev set, so out-of-fold figures stay held out: a repository's pull requests and its issue
reports fall in the same fold (`train_ranker.py` folds by repository).
"""

from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from pathlib import Path

PER_REPO = 24
SEED = 0


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    pr, dev, out = (Path(a) for a in sys.argv[1:])
    dev_ids = {json.loads(line)["instance_id"] for line in open(dev / "corpus.jsonl", encoding="utf-8")}
    gold = {}
    for line in open(pr / "corpus.gold.jsonl", encoding="utf-8"):
        gold[json.loads(line)["instance_id"]] = line
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for line in open(pr / "corpus.jsonl", encoding="utf-8"):
        r = json.loads(line)
        g = json.loads(gold[r["instance_id"]])
        if r["instance_id"] in dev_ids or not (g.get("function_gold_reliable") and g.get("functions")):
            continue
        by_repo[r["repo"]].append(r)
    random.seed(SEED)
    kept = []
    for repo in sorted(by_repo):
        rows = sorted(by_repo[repo], key=lambda r: r["instance_id"])
        random.shuffle(rows)
        kept += rows[:PER_REPO]
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "rdpr.jsonl", "w", encoding="utf-8") as f, open(out / "rdpr.gold.jsonl", "w", encoding="utf-8") as g:
        for r in kept:
            f.write(json.dumps(r) + "\n")
            g.write(gold[r["instance_id"]])
    print(f"{len(kept)} instances from {len(by_repo)} repositories -> {out}")


if __name__ == "__main__":
    main()
