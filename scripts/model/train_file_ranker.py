"""Trains the file model (gradient-boosted trees over the engine's file features, two of them the function model's scores) and exports it to ONNX.

    python train_file_ranker.py [--lite FILE] [--tokio FILE] [--gold-lite FILE] [--gold-tokio FILE]
                                [--out DIR] [--folds-out DIR] [--no-write]

The engine ranks files by its hand-weighted fusion; this model re-scores the fusion's leading
files (`FILE_POOL` in server/search/src/engine.rs, plus the files of the function model's ten
leading functions) from the file's own evidence and a summary of its function candidates,
including the function model's best and second-best score in the file (`fn_best`,
`fn_second`). Inputs are the feature dumps of `locus eval --features FILE` (each line has
`candidates`, the function rows, and `files`, the file rows `{"path", "f": [floats]}`) and
the gold files of /work/shared/data. The columns are the schema's (models/features.json, read
by schema.py): `file` for the file rows, `function` for the function rows; a dump of other
widths is refused. A file row is labelled 1 iff its path is one of the
instance's gold `files` (the source files the patch edits, tests excluded); every instance
with non-empty gold files is used, whether or not its function gold is reliable.

Protocol (never train on what is reported as test): folds by repository, as for the function
model, and *nested* for the stacked features. `fn_best` and `fn_second` are recomputed here
from the function rows: a file row of repository j, used to train the file model that is
tested on repository k, gets the scores of a function model trained without j and k; the
rows of k get the function model trained without k (the fold model `locus eval
--model-folds` uses). So neither model of a fold saw the held-out repository. The shipped
file model is trained on every repository, each row scored by the function model trained
without its repository. The hyper-parameters and the model family are the function model's
(train_ranker.PARAMS), fixed in advance, not tuned here.

Writes (unless --no-write) into --out (default: the checkout's models/):
  ranker.files.onnx          input `features` float32 [N, len(file)] (12 today); `probabilities` float32 [N, 2]
  ranker.files.json          feature names, protocol, figures, versions, sha256 of the onnx
  ranker.files_fixture.json  real file rows and their expected P(edited) (Rust test)
and with --folds-out DIR, `DIR/<owner>+<name>.files.onnx` beside the function fold models.
Needs the versions of scripts/model/requirements.txt, as train_ranker.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import train_ranker as tr  # noqa: E402
from schema import SchemaError, check_monotone, check_width, feature_schema  # noqa: E402

# The file columns this script recomputes from the function rows (the engine's rule, below).
FN_BEST, FN_SECOND, FN_COUNT = "fn_best", "fn_second", "log_fn_count"
# As for functions: more evidence never lowers a file, a worse fusion rank never raises it.
# Keyed by name and checked against the schema's `file` names (check_monotone).
FILE_MONOTONE = {
    "file_score": 1, "log_file_rank": -1, "file_path": 1, "file_lexical": 1, "file_semantic": 1,
    "is_test": 0, "fn_lexical_max": 1, "fn_semantic_max": 1, "fn_symbol_max": 1, "fn_best": 1,
    "fn_second": 1, "log_fn_count": 0,
}
PARAMS = tr.PARAMS
FIXTURE_ROWS = 20


def file_names() -> tuple[str, ...]:
    """The file model's columns (the schema's `file`)."""
    return feature_schema().file


def file_column(name: str) -> int:
    """The position of a file column the script itself computes; stops if the schema lacks it."""
    names = file_names()
    if name not in names:
        raise SchemaError(f"the schema's `file` features have no `{name}`, which train_file_ranker.py "
                          f"recomputes from the function rows: {list(names)}")
    return names.index(name)


def load_gold_files(path: Path) -> dict[str, set[str]]:
    gold = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d.get("files"):
                gold[d["instance_id"]] = set(d["files"])
    return gold


class FileInstance:
    """One issue's file rows (fusion order), their labels, and its function rows."""

    def __init__(self, d: dict, gold: set[str], source: Path | str = "dump"):
        self.iid, self.repo = d["instance_id"], d["repo"]
        n_file, n_fn = len(feature_schema().file), len(feature_schema().function)
        self.paths = [r["path"] for r in d["files"]]
        check_width([r["f"] for r in d["files"]], n_file, f"{source}: {self.iid}: files' \"f\"")
        self.x = np.array([r["f"] for r in d["files"]], dtype=np.float32).reshape(len(self.paths), n_file)
        self.gold = gold
        self.y = np.array([p in gold for p in self.paths], dtype=np.int64)
        cands = d["candidates"]
        check_width([c["f"] for c in cands], n_fn, f"{source}: {self.iid}: candidates' \"f\"")
        self.fn_x = np.array([c["f"] for c in cands], dtype=np.float32).reshape(len(cands), n_fn)
        fn_paths = [c["name"].split(":", 1)[0] for c in cands]
        # Which function rows belong to each file row, as the engine groups them.
        self.members = [[j for j, fp in enumerate(fn_paths) if fp == p] for p in self.paths]
        counts = np.log1p(np.array([len(m) for m in self.members], dtype=np.float32))
        if not np.allclose(counts, self.x[:, file_column(FN_COUNT)], atol=1e-5):
            sys.exit(f"{self.iid}: the dump's log_fn_count disagrees with its function rows")

    def with_fn_scores(self, scores: np.ndarray) -> np.ndarray:
        """The rows with `fn_best` / `fn_second` from these function scores (engine's rule:
        the two highest scores of the file's candidates, 0 where there are fewer)."""
        best, second = file_column(FN_BEST), file_column(FN_SECOND)
        x = self.x.copy()
        for i, m in enumerate(self.members):
            top = sorted((float(scores[j]) for j in m), reverse=True) + [0.0, 0.0]
            x[i, best], x[i, second] = max(top[0], 0.0), max(top[1], 0.0)
        return x


def load(features: Path, gold: dict[str, set[str]]) -> list[FileInstance]:
    out = {}
    with open(features, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            tr.check_dump_line(features, d)
            if d["instance_id"] not in gold:
                continue
            if "files" not in d:
                sys.exit(f"{features}: no `files` rows; re-run `locus eval --features` with a build that writes them")
            out[d["instance_id"]] = FileInstance(d, gold[d["instance_id"]], features)
    return [out[k] for k in sorted(out)]


def file_metrics(insts: list[FileInstance], scores: list[np.ndarray] | None) -> dict[str, float]:
    """Strict file Acc@1/3/5 and MRR (EVAL.md) over the pooled files; a gold file outside
    the pool is a miss in both orders."""
    acc = {1: 0, 3: 0, 5: 0}
    mrr = 0.0
    for i, inst in enumerate(insts):
        order = np.arange(len(inst.paths)) if scores is None else np.argsort(-scores[i], kind="stable")
        ranked = [inst.paths[j] for j in order]
        for k in acc:
            acc[k] += len(inst.gold.intersection(ranked[:k])) == min(len(inst.gold), k)
        first = next((r for r, p in enumerate(ranked) if p in inst.gold), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
    n = max(len(insts), 1)
    return {"n": len(insts), **{f"acc{k}": 100.0 * v / n for k, v in acc.items()}, "mrr": mrr / n}


def fit_files(xs: list[np.ndarray], ys: list[np.ndarray]):
    model = tr.make_model(PARAMS, file_names(), FILE_MONOTONE)
    return model.fit(np.concatenate(xs), np.concatenate(ys))


class FunctionModels:
    """Function models trained without given repositories, cached."""

    def __init__(self, fn_insts: list):
        self.fn_insts, self.cache = fn_insts, {}

    def without(self, repos: frozenset):
        if repos not in self.cache:
            self.cache[repos] = tr.fit([i for i in self.fn_insts if i.repo not in repos], tr.PARAMS)
        return self.cache[repos]

    def rows(self, inst: FileInstance, excluded: frozenset) -> np.ndarray:
        return inst.with_fn_scores(tr.positive(self.without(excluded), inst.fn_x))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    tr.data_arguments(ap, "file")
    args = ap.parse_args()
    tr.single_thread()
    names = file_names()
    check_monotone(names, FILE_MONOTONE, "train_file_ranker.FILE_MONOTONE")
    check_monotone(feature_schema().function, tr.MONOTONE, "train_ranker.MONOTONE")

    lite = load(args.lite, load_gold_files(args.gold_lite))
    tokio = load(args.tokio, load_gold_files(args.gold_tokio))
    pairs = tr.corpus_pairs(args)
    corpus = [i for f, g in pairs for i in load(f, load_gold_files(g))]
    tr.check_disjoint(lite + tokio, corpus)
    lite, tokio, corpus = (tr.only_language(x, args.language) for x in (lite, tokio, corpus))
    every = lite + tokio + corpus
    fn_lite, _ = tr.load_instances(args.lite, tr.load_gold(args.gold_lite))
    fn_tokio, _ = tr.load_instances(args.tokio, tr.load_gold(args.gold_tokio))
    fn_corpus = [i for f, g in pairs for i in tr.load_instances(f, tr.load_gold(g))[0]]
    fns = FunctionModels(tr.only_language(fn_lite + fn_tokio + fn_corpus, args.language))
    repos = sorted({i.repo for i in every})
    print(f"{len(lite)} Lite + {len(tokio)} tokio + {len(corpus)} corpus instances with gold files, {len(repos)} repositories, "
          f"{sum(len(i.paths) for i in every)} file rows; params {PARAMS}")

    # 1. Out of fold by repository, nested for the function scores.
    oof: dict[str, np.ndarray] = {}
    fold_models = {}
    for k in repos:
        train = [i for i in every if i.repo != k]
        xs = [fns.rows(i, frozenset({i.repo, k})) for i in train]
        model = fit_files(xs, [i.y for i in train])
        fold_models[k] = model
        for i in every:
            if i.repo == k:
                oof[i.iid] = tr.positive(model, fns.rows(i, frozenset({k})))

    print("\nOut of fold (each repository scored by file and function models trained on the others):")
    print("| subset | n | order | file Acc@1 | Acc@3 | Acc@5 | MRR |")
    print("|---|---:|---|---:|---:|---:|---:|")
    figures = {}
    subsets = [("Lite-available", lite), ("tokio (Rust)", tokio)] + tr.corpus_subsets(corpus)
    subsets += [(r, [i for i in every if i.repo == r]) for r in repos]
    for label, insts in subsets:
        if not insts:
            continue
        f = file_metrics(insts, None)
        r = file_metrics(insts, [oof[i.iid] for i in insts])
        figures[label] = {"fusion": f, "reranked": r}
        for order, m in (("fusion", f), ("reranked", r)):
            print(f"| {label} | {m['n']} | {order} | {m['acc1']:.1f} | {m['acc3']:.1f} | {m['acc5']:.1f} | {m['mrr']:.3f} |")

    if args.no_write:
        return

    def export(model) -> bytes:
        return tr.export_onnx(model, len(names), f"Locus file model: P(file is edited by the fix) from {len(names)} engine features")

    if args.folds_out:
        args.folds_out.mkdir(parents=True, exist_ok=True)
        for k, model in fold_models.items():
            stem = k.replace("/", "+") + ".files"
            tr.write_model(args.folds_out, stem, export(model),
                           {"trained_without": k, "params": PARAMS,
                            "training_languages": tr.languages([i for i in every if i.repo != k])}, names)
        print(f"wrote {len(fold_models)} fold file models to {args.folds_out}")

    # 2. The shipped file model: every repository, each row's function scores out of fold.
    xs = [fns.rows(i, frozenset({i.repo})) for i in every]
    model = fit_files(xs, [i.y for i in every])
    data = export(model)
    x_all = np.concatenate(xs)
    diff = np.abs(tr.onnx_scores(data, x_all) - model.predict_proba(x_all)[:, 1])
    print(f"\nONNX vs sklearn on {len(x_all)} rows: max abs diff {diff.max():.2e}, mean {diff.mean():.2e}")
    if diff.max() > 1e-4:
        sys.exit("ONNX Runtime disagrees with scikit-learn by more than 1e-4; not writing")
    sha = hashlib.sha256(data).hexdigest()
    y_all = np.concatenate([i.y for i in every])
    pos = list(np.flatnonzero(y_all)[:5])
    spread = np.linspace(0, len(x_all) - 1, FIXTURE_ROWS - 1 - len(pos)).round().astype(int)
    fx = np.stack([np.zeros(len(names), dtype=np.float32)] + [x_all[j] for j in pos] + [x_all[j] for j in spread])
    fixture = tr.fixture_record(model, fx, names, sha, "written by scripts/model/train_file_ranker.py; "
                                "expected = sklearn predict_proba[:, 1] of the shipped file model")
    meta = {
        **tr.model_record(data, len(names), PARAMS, FILE_MONOTONE),
        "label": "1 iff the file's path is in the instance's gold `files`",
        "training_repos": repos,
        "training_instances": len(every),
        "training_languages": tr.languages(every),
        **({"language": args.language} if args.language else {}),
        "training_rows": int(len(x_all)),
        "training_positives": int(y_all.sum()),
        "data": {"lite": {"file": args.lite.name, "sha256": tr.file_sha(args.lite)},
                 "tokio": {"file": args.tokio.name, "sha256": tr.file_sha(args.tokio)},
                 "corpus": tr.corpus_record(pairs, corpus)},
        "protocol": "folds by repository, nested for the function model's scores; fixed hyper-parameters "
                    "(the function model's); figures out of fold; shipped model trained on all folds",
        "out_of_fold": {lab: {o: {m: (round(v, 4) if isinstance(v, float) else v) for m, v in d.items()}
                              for o, d in f.items()} for lab, f in figures.items()},
        "versions": tr.versions(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    tr.write_model(args.out, "ranker.files", data, meta, names)
    (args.out / "ranker.files_fixture.json").write_text(tr.fixture_json(fixture), encoding="utf-8")
    print(f"wrote {args.out / 'ranker.files.onnx'} ({len(data)} bytes, sha256 {sha}), ranker.files.json, "
          "ranker.files_fixture.json")


if __name__ == "__main__":
    main()
