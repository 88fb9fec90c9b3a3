"""Measures the learned function order blended with the fusion's, out of fold (an experiment; it writes nothing).

    python blend_experiment.py --lite FILE --tokio FILE [--corpus FILE --gold-corpus FILE ...]
                               [--language L] [--weights 0,0.25,0.5,0.75,1]

The engine's learned order is the function model's first KEEP_TOP candidates, then the tail
model's order (train_tail_ranker.combined). Here each instance's learned order comes from the
fold models that never saw its repository (folds by repository, train_ranker.PARAMS, as the
training scripts), and is blended by rank with the fusion's order (the candidates' order,
which train_ranker.load_instances restores from `log_rank`):

    score = (1 - w) * rank_share(learned) + w * rank_share(fusion)

where rank_share is 1 for the first candidate down to 1/n for the last; w = 0 is the learned
order, w = 1 the fusion's. Reports strict Acc@5/@10, Recall@5 and MRR over the candidate pool
(train_ranker.metrics) for every weight and subset: Lite-available, tokio and the corpus by
language. Choose a weight on the corpus (held out by repository, never a benchmark), then read
the benchmark rows. The inputs are the training scripts' (feature dumps of `locus eval
--semantic --features FILE`). Measured in docs/benchmarks.md, session 24: no weight between
the two ends beat both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import train_ranker as tr  # noqa: E402
import train_tail_ranker as tt  # noqa: E402


def rank_share(scores: np.ndarray) -> np.ndarray:
    """1 for the best-scored candidate, then 1 - r/n for rank r (ties in candidate order)."""
    n = len(scores)
    order = np.argsort(-scores, kind="stable")
    ranks = np.empty(n)
    ranks[order] = np.arange(n)
    return 1.0 - ranks / max(n, 1)


def blended(learned: np.ndarray, weight: float) -> np.ndarray:
    """The blend of a learned order with the fusion's (the candidates' own order)."""
    fusion = rank_share(-np.arange(len(learned), dtype=np.float64))
    return (1.0 - weight) * rank_share(learned) + weight * fusion


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lite", type=Path, required=True)
    ap.add_argument("--tokio", type=Path, required=True)
    ap.add_argument("--gold-lite", type=Path, default=tr.DATA / "swebench_lite.gold.jsonl")
    ap.add_argument("--gold-tokio", type=Path, default=tr.DATA / "rust_tokio.gold.jsonl")
    tr.corpus_arguments(ap)
    ap.add_argument("--weights", default="0,0.25,0.5,0.75,1", help="fusion weights to report, comma-separated")
    args = ap.parse_args()
    tr.single_thread()
    weights = [float(w) for w in args.weights.split(",")]

    sources = [("Lite-available", args.lite, args.gold_lite), ("tokio (Rust)", args.tokio, args.gold_tokio)]
    sources += [("corpus", f, g) for f, g in tr.corpus_pairs(args)]
    base, tail, label = [], [], []
    for name, features, gold in sources:
        b, t, _ = tt.load(features, tr.load_gold(gold))
        for i, x in zip(b, t):
            if args.language is None or tr.instance_language(i) == args.language:
                base.append(i)
                tail.append(x)
                label.append(f"corpus, {tr.instance_language(i).capitalize()}" if name == "corpus" else name)
    tr.check_disjoint([i for i, lab in zip(base, label) if not lab.startswith("corpus")],
                      [i for i, lab in zip(base, label) if lab.startswith("corpus")])
    folds = tr.repo_folds(base)
    print(f"{len({i.repo for i in base})} repositories, {len(base)} instances")

    _, learned, _ = tt.out_of_fold(base, tail, folds)

    print("\n| subset | n | fusion weight | Acc@5 | Acc@10 | Recall@5 | MRR |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for subset in dict.fromkeys(label):
        idx = [j for j, lab in enumerate(label) if lab == subset]
        for w in weights:
            m = tr.metrics([base[j] for j in idx], [blended(learned[j], w) for j in idx])
            print(f"| {subset} | {m['n']} | {w:g} | {m['acc5']:.1f} | {m['acc10']:.1f} | {m['recall5']:.1f} | {m['mrr']:.3f} |")


if __name__ == "__main__":
    main()
