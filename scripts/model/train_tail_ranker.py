"""Trains the tail model: the function model's inputs plus the engine's candidate inputs, used to order the functions after the function model's first three.

    python train_tail_ranker.py [--lite FILE] [--tokio FILE] [--out DIR] [--folds-out DIR] [--no-write]

Why and how it was chosen: docs/ranker-notes.md, "Session 5". The engine ranks the function
model's (ranker.onnx) first KEEP_TOP candidates first, in its order, and every other pooled
candidate after them in this model's order; the files stay the file model's. Inputs are the
same feature dumps as train_ranker.py (`locus eval … --semantic --features FILE`), whose
candidates carry `"c"`, the candidate inputs named by the line's `"candidate_features"`.
The columns are the schema's `tail` names (models/features.json, read by schema.py): its
`function` names (the dump's `"f"`), then its `candidate` names (today `semantic_all`; the
dump's `"c"`, whose `candidate_features` must be exactly those).

Protocol as train_ranker.py: one fold per repository, the parameters fixed in advance
(train_ranker.PARAMS), every reported figure out of fold (the first three by the fold's
function model, the rest by the fold's tail model), the shipped model trained on all folds.
--folds-out writes `<owner>+<name>.tail.onnx` beside train_ranker.py's fold models, which is
where `locus eval --model-folds` looks for it.

Writes (unless --no-write) into --out (default: the checkout's models/):
  ranker.tail.onnx          input `features` float32 [N, len(tail)] (17 today); `probabilities` column 1
  ranker.tail.json          feature names, protocol, data, figures, versions, sha256
  ranker.tail_fixture.json  20 rows and their expected scores (test_ranker.py, server/embed/tests)
Needs the versions of scripts/model/requirements.txt, as train_ranker.py.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import train_ranker as tr  # noqa: E402
from schema import check_monotone, feature_schema  # noqa: E402

# The function model's directions, then the candidate inputs'; checked against the schema's
# `tail` names (check_monotone) in main().
MONOTONE = {**tr.MONOTONE, **tr.CANDIDATE_MONOTONE}
KEEP_TOP = 3  # engine.rs KEEP_TOP


def tail_names() -> tuple[str, ...]:
    """The tail model's columns (the schema's `tail`: its `function`, then its `candidate`)."""
    return feature_schema().tail


def load(features: Path, gold: dict[str, list[str]]) -> tuple[list[tr.Instance], list[tr.Instance], int]:
    """The usable instances twice: with the function model's columns and with the tail model's."""
    tail, lines = tr.load_instances(features, gold, with_candidates=True)
    n_fn = len(feature_schema().function)
    base = [tr.Instance(i.iid, i.repo, i.names, i.x[:, :n_fn], i.gold) for i in tail]
    return base, tail, lines


def fit(insts: list[tr.Instance]):
    x, y = tr.stack(insts)
    return tr.make_model(tr.PARAMS, tail_names(), MONOTONE).fit(x, y)


def combined(base: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """Scores whose descending order is the engine's: the function model's first KEEP_TOP,
    then the rest by the tail model (stable: ties keep the candidates' order)."""
    head = np.argsort(-base, kind="stable")[:KEEP_TOP]
    rest = [j for j in np.argsort(-tail, kind="stable") if j not in set(head)]
    out = np.empty(len(base), dtype=np.float64)
    for rank, j in enumerate(list(head) + rest):
        out[j] = len(base) - rank
    return out


def out_of_fold(base: list[tr.Instance], tail: list[tr.Instance],
                folds: list[list[int]]) -> tuple[list[np.ndarray], list[np.ndarray], list]:
    """Every instance scored by models that never saw it: the fold function model's scores, the
    engine's order (that model's first KEEP_TOP, then the fold tail model's) as `combined`
    scores, and the fold tail models in the folds' order."""
    oof_base = tr.out_of_fold(base, tr.PARAMS, folds)
    oof_tail: list[np.ndarray | None] = [None] * len(tail)
    models = []
    for test in folds:
        held = set(test)
        model = fit([t for j, t in enumerate(tail) if j not in held])
        models.append(model)
        for j in test:
            oof_tail[j] = tr.positive(model, tail[j].x)
    return oof_base, [combined(b, t) for b, t in zip(oof_base, oof_tail)], models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    tr.data_arguments(ap, "tail")
    args = ap.parse_args()
    tr.single_thread()
    names = tail_names()
    check_monotone(feature_schema().function, tr.MONOTONE, "train_ranker.MONOTONE")
    check_monotone(names, MONOTONE, "train_tail_ranker.MONOTONE (train_ranker.MONOTONE + CANDIDATE_MONOTONE)")

    ver = tr.versions()
    lite_b, lite_t, lite_lines = load(args.lite, tr.load_gold(args.gold_lite))
    tokio_b, tokio_t, tokio_lines = load(args.tokio, tr.load_gold(args.gold_tokio))
    pairs = tr.corpus_pairs(args)
    corpus_b, corpus_t = [], []
    for f, g in pairs:
        b, t, _ = load(f, tr.load_gold(g))
        corpus_b += b
        corpus_t += t
    tr.check_disjoint(lite_b + tokio_b, corpus_b)

    def only_language(b: list, t: list) -> tuple[list, list]:
        """The pairs (function row, tail row) of one instance whose candidates are --language's."""
        keep = [args.language is None or tr.instance_language(i) == args.language for i in b]
        return [i for i, k in zip(b, keep) if k], [x for x, k in zip(t, keep) if k]

    (lite_b, lite_t), (tokio_b, tokio_t), (corpus_b, corpus_t) = (
        only_language(b, t) for b, t in ((lite_b, lite_t), (tokio_b, tokio_t), (corpus_b, corpus_t)))
    base, tail = lite_b + tokio_b + corpus_b, lite_t + tokio_t + corpus_t
    repos = sorted({i.repo for i in base})
    folds = tr.repo_folds(base)
    print(f"{len(repos)} repositories, {len(base)} instances, {sum(len(i.names) for i in base)} candidates")

    # Out of fold: the fold's function model for the head, the fold's tail model for the rest.
    oof_base, scores, fold_models = out_of_fold(base, tail, folds)
    by_id = {i.iid: s for i, s in zip(base, scores)}
    shipped = {i.iid: s for i, s in zip(base, oof_base)}
    figures = {}
    print("\nOut of fold (function model's first three, then the tail model):")
    print("| subset | n | order | Acc@5 | Acc@10 | Recall@5 | MRR | first gold vs fusion |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    subsets = [("Lite-available", lite_b), ("tokio (Rust)", tokio_b)] + tr.corpus_subsets(corpus_b)
    for label, insts in subsets:
        if not insts:
            continue
        s_ship, s_new = [shipped[i.iid] for i in insts], [by_id[i.iid] for i in insts]
        m_ship, m_new = tr.metrics(insts, s_ship), tr.metrics(insts, s_new)
        print(tr.fmt_row(label, "function model", m_ship))
        print(tr.fmt_row(label, "+ tail model", m_new, tr.paired(insts, s_new)))
        figures[label] = {"function_model": m_ship, "with_tail": m_new}

    if args.no_write:
        return
    if args.folds_out:
        args.folds_out.mkdir(parents=True, exist_ok=True)
        for repo, m in zip(repos, fold_models):
            tr.write_model(args.folds_out, repo.replace("/", "+") + ".tail", export(m),
                           {"trained_without": repo, "params": tr.PARAMS,
                            "training_languages": tr.languages([t for t in tail if t.repo != repo])}, names)
        print(f"wrote {len(repos)} fold tail models to {args.folds_out}")

    model = fit(tail)
    data = export(model)
    x_all = tr.stack(tail)[0]
    diff = np.abs(tr.onnx_scores(data, x_all) - model.predict_proba(x_all)[:, 1])
    print(f"\nONNX vs sklearn on {len(x_all)} rows: max abs diff {diff.max():.2e}")
    if diff.max() > 1e-4:
        sys.exit("ONNX Runtime disagrees with scikit-learn by more than 1e-4; not writing ranker.tail.json")
    sha = hashlib.sha256(data).hexdigest()
    fx = fixture_rows(tail)
    fixture = tr.fixture_record(model, fx, names, sha,
                                "written by scripts/model/train_tail_ranker.py; expected = sklearn predict_proba[:, 1]")
    meta = {
        **tr.model_record(data, len(names), tr.PARAMS, MONOTONE),
        "use": f"orders the candidates after the function model's first {KEEP_TOP}",
        "label": "1 iff the candidate's name is in the instance's gold `functions`",
        "training_repos": repos,
        "training_instances": len(tail),
        "training_languages": tr.languages(tail),
        **({"language": args.language} if args.language else {}),
        "training_rows": int(sum(len(i.names) for i in tail)),
        "data": {
            "lite": {"file": args.lite.name, "sha256": tr.file_sha(args.lite), "lines": lite_lines},
            "tokio": {"file": args.tokio.name, "sha256": tr.file_sha(args.tokio), "lines": tokio_lines},
            "corpus": tr.corpus_record(pairs, corpus_b),
        },
        "protocol": "folds by repository; fixed hyper-parameters; figures out of fold; shipped model trained on all folds",
        "out_of_fold": {lab: {k: {m: (round(v, 4) if isinstance(v, float) else v) for m, v in d.items()}
                              for k, d in f.items()} for lab, f in figures.items()},
        "versions": ver,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    tr.write_model(args.out, "ranker.tail", data, meta, names)
    (args.out / "ranker.tail_fixture.json").write_text(tr.fixture_json(fixture), encoding="utf-8")
    print(f"wrote {args.out / 'ranker.tail.onnx'} ({len(data)} bytes, sha256 {sha}), ranker.tail.json, fixture")


def export(model) -> bytes:
    width = len(tail_names())
    return tr.export_onnx(model, width, f"Locus tail model: P(candidate is edited by the fix) from {width} engine features")


def fixture_rows(insts: list[tr.Instance]) -> np.ndarray:
    """As train_ranker.fixture_rows, at this model's width."""
    x, y = tr.stack(insts)
    pos = list(np.flatnonzero(y)[:5])
    spread = np.linspace(0, len(x) - 1, tr.FIXTURE_ROWS - 1 - len(pos)).round().astype(int)
    rows = [np.zeros(len(tail_names()), dtype=np.float32)] + [x[j] for j in pos] + [x[j] for j in spread]
    return np.stack(rows).astype(np.float32)


if __name__ == "__main__":
    main()
