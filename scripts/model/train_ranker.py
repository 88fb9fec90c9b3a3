"""Trains the localization model (gradient-boosted trees over the engine's function features) and exports it to ONNX.

    python train_ranker.py [--lite FILE] [--tokio FILE] [--gold-lite FILE] [--gold-tokio FILE]
                           [--corpus FILE --gold-corpus FILE ...] [--language python|rust]
                           [--out DIR] [--folds-out DIR] [--no-write]

--language trains on one language's instances of every source: the models of
models/<language>/ (e.g. `--language rust --out models/rust`), which the engine uses for that
language's candidates in the shared models' place; their figures are out of fold as well.

Inputs are the feature dumps of the search engine (`locus eval --features FILE`; one JSON
line per instance: `instance_id`, `repo`, `candidates` = the candidates the model scores,
each `{"name", "f": [floats]}`) and the gold files of /work/shared/data. The columns of `"f"`
are the schema's `function` names (models/features.json, written by the engine; read by
schema.py): the script holds no copy of them, and a dump of another width or with other
`candidate_features` is refused. A candidate is
labelled 1 iff its name is one of the instance's edited `functions`; only instances with
`function_gold_reliable` and non-empty `functions` are used.

Protocol (never train on what is reported as test): folds by repository, one per
repository (the nine Lite repositories with a mirror, and tokio). Every reported figure is
out of fold: each instance is scored by a model that saw no instance of its repository.
The hyper-parameters (PARAMS) are fixed in advance, chosen by the first version of this
script on sympy + sphinx only, so nothing is selected on the reported figures. The shipped
model is trained on all folds. --folds-out writes the fold models
(`<owner>+<name>.onnx` = trained without that repository) for `locus eval --model-folds`,
the end-to-end run of the same protocol.

Writes (unless --no-write) into --out (default: the checkout's models/):
  ranker.onnx          input `features` float32 [N, len(function)] (16 today); outputs `label` int64 [N] and
                       `probabilities` float32 [N, 2] (no ZipMap); column 1 = P(edited)
  ranker.json          feature names, protocol, training data, figures, versions, sha256 of ranker.onnx
  ranker_fixture.json  20 feature rows and their expected P(edited), shared by
                       test_ranker.py and server/embed/tests/ranker.rs

Deterministic: fixed random_state, no early stopping or subsampling, one OpenMP thread,
sorted inputs; running it twice on the same data writes the same bytes. Needs the exact
versions of scripts/model/requirements.txt (the venv of scripts/setup.sh has numpy, onnx and
onnxruntime at those versions; scikit-learn and skl2onnx come on top):
    ${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python -m pip install -r scripts/model/requirements.txt

Also the library of train_file_ranker.py, train_tail_ranker.py and pool_experiments.py:
importing it does nothing but define; each script's main() calls single_thread() first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from schema import SchemaError, check_monotone, check_names, check_width, feature_schema  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

# The exact versions the shipped models were made with (each model's .json records what ran).
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"

SEED = 0
# The direction each feature may move the score when monotone constraints are on (1 up,
# -1 down, 0 free): more evidence from a tool never makes a candidate less likely, a
# worse fusion rank never makes it more likely. A prior, not a fit: with ~150 training
# issues it keeps the trees from learning accidents of a few repositories.
# Keyed by name and checked against the schema's `function` names (check_monotone), so a
# feature the engine adds cannot be trained unconstrained by default.
MONOTONE = {
    "lexical": 1, "semantic": 1, "symbol": 1, "frame": 1, "path": 1, "grep": 1, "graph": 1,
    "n_tools": 1, "is_test": 0, "kind": 0, "log_lines": 0, "heuristic": 1, "log_rank": -1,
    "log_file_rank": -1, "file_path": 1, "file_lexical": 1,
}
# The same for the schema's `candidate` inputs (the tail model's extra columns): a function
# that reads closer to the whole issue is never less likely.
CANDIDATE_MONOTONE = {"semantic_all": 1}
# Shallow trees, as the design asks; fixed in advance (the first version of this script chose
# them by 5-fold cross-validation on sympy + sphinx only, from a 16-point grid).
PARAMS = {"monotone": True, "max_depth": 2, "max_iter": 100, "learning_rate": 0.05}

# ai.onnx opset of the exported graph; ONNX Runtime 1.31 runs it with its ML operators.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
FIXTURE_ROWS = 20

DATA = Path("/work/shared/data")


def single_thread() -> None:
    """One OpenMP thread: HistGradientBoosting sums gradients in parallel, and a sum's
    rounding depends on how it is split; one thread makes the model the same bytes on every
    machine. OpenMP reads OMP_NUM_THREADS when scikit-learn loads it, so this must run before
    the first scikit-learn import: each script's main() calls it first, make_model() again."""
    if os.environ.get("OMP_NUM_THREADS") == "1":
        return
    if "sklearn" in sys.modules:
        sys.exit("scikit-learn was imported before OMP_NUM_THREADS=1 was set; its trees would not be "
                 "reproducible: call train_ranker.single_thread() first (or set OMP_NUM_THREADS=1)")
    os.environ["OMP_NUM_THREADS"] = "1"


def pinned() -> dict[str, str]:
    """requirements.txt as {package: version}; every line must be an exact `==` pin."""
    pins = {}
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        spec = line.split("#", 1)[0].strip()
        if not spec:
            continue
        name, sep, version = spec.partition("==")
        if not sep or not version.strip():
            sys.exit(f"{REQUIREMENTS}: `{spec}` is not an exact `name==version` pin")
        pins[name.strip().lower()] = version.strip()
    return pins


def load_gold(path: Path) -> dict[str, list[str]]:
    """instance_id -> edited functions, for reliable instances with non-empty gold only."""
    gold = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d.get("function_gold_reliable") and d.get("functions"):
                gold[d["instance_id"]] = list(d["functions"])
    return gold


class Instance:
    """One issue: its candidates in fusion order, their features and labels, and the full gold."""

    def __init__(self, iid: str, repo: str, names: list[str], x: np.ndarray, gold: list[str]):
        self.iid, self.repo, self.names, self.x, self.gold = iid, repo, names, x, gold
        gold_set = set(gold)
        self.y = np.array([n in gold_set for n in names], dtype=np.int64)


def check_dump_line(features: Path, d: dict) -> None:
    """Stops unless a dump line's `candidate_features` (where it has them) are the schema's
    `candidate` names: a dump of another engine has other columns, named or not."""
    if "candidate_features" in d:
        check_names(feature_schema().candidate, d["candidate_features"],
                    f"{features}: {d.get('instance_id')}: the dump's candidate_features")


def load_instances(features: Path, gold: dict[str, list[str]], with_candidates: bool = False) -> tuple[list[Instance], int]:
    """The usable instances of a feature dump (sorted by id), and how many lines it had.
    Each row has the schema's `function` columns (the dump's `"f"`); with `with_candidates`,
    the schema's `candidate` columns (the dump's `"c"`) after them: the tail model's row."""
    schema = feature_schema()
    width, n_cand = len(schema.function), len(schema.candidate)
    rank_col = schema.function.index("log_rank")
    out, lines = {}, 0
    with open(features, encoding="utf-8") as f:
        for line in f:
            lines += 1
            d = json.loads(line)
            check_dump_line(features, d)
            iid = d["instance_id"]
            if iid not in gold:
                continue
            cands = d["candidates"]
            check_width([c["f"] for c in cands], width, f"{features}: {iid}: candidates' \"f\"")
            x = np.array([c["f"] for c in cands], dtype=np.float32).reshape(len(cands), width)
            if with_candidates:
                if "candidate_features" not in d:
                    sys.exit(f"{features}: no candidate inputs ({list(schema.candidate)}); dump it again with this "
                             "engine (`locus eval … --semantic --features FILE`)")
                check_width([c.get("c", []) for c in cands], n_cand, f"{features}: {iid}: candidates' \"c\"")
                c = np.array([c["c"] for c in cands], dtype=np.float32).reshape(len(cands), n_cand)
                x = np.concatenate([x, c], axis=1)
            if not np.isfinite(x).all():
                sys.exit(f"{features}: {iid} has non-finite features")
            # A dump made with a model lists the candidates in that model's order
            # (`rows_ordered_by`); the fusion's order, which the scripts report as "fusion" and
            # which breaks their ties, is recovered from `log_rank` (unique per candidate).
            order = np.argsort(x[:, rank_col], kind="stable")
            names = [cands[j]["name"] for j in order]
            out[iid] = Instance(iid, d["repo"], names, x[order], gold[iid])
    return [out[k] for k in sorted(out)], lines


def data_arguments(ap, what: str) -> None:
    """The command line train_file_ranker.py and train_tail_ranker.py share."""
    ap.add_argument("--lite", type=Path, required=True)
    ap.add_argument("--tokio", type=Path, required=True)
    ap.add_argument("--gold-lite", type=Path, default=DATA / "swebench_lite.gold.jsonl")
    ap.add_argument("--gold-tokio", type=Path, default=DATA / "rust_tokio.gold.jsonl")
    corpus_arguments(ap)
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--folds-out", type=Path, help=f"also write the leave-one-repository-out {what} models here")
    ap.add_argument("--no-write", action="store_true", help="report only; write nothing")


def corpus_arguments(ap) -> None:
    """Training instances from the localization corpus (scripts/corpus/): a feature dump of
    `locus eval` on corpus instances and its gold, repeatable in pairs. Their repositories
    are folds like the benchmark's (each scored by models trained without it). Also
    --language, which keeps one language's instances of every source (the models of
    `models/<language>/`, which rank that language's candidates in the shared models' place)."""
    ap.add_argument("--language", choices=("python", "rust"),
                    help="train on this language's instances alone (write to --out models/<language>)")
    ap.add_argument("--corpus", type=Path, action="append", default=[], metavar="FEATURES",
                    help="feature dump of corpus instances (repeatable; one --gold-corpus each)")
    ap.add_argument("--gold-corpus", type=Path, action="append", default=[], metavar="GOLD",
                    help="the corpus gold (corpus.gold.jsonl or a sample's) for the --corpus of the same position")


def only_language(insts: list, language: str | None) -> list:
    """The instances of `language` (all without one)."""
    return insts if language is None else [i for i in insts if instance_language(i) == language]


def corpus_pairs(args) -> list[tuple[Path, Path]]:
    """(features, gold) of each --corpus; stops unless every dump has its gold."""
    if len(args.corpus) != len(args.gold_corpus):
        sys.exit(f"{len(args.corpus)} --corpus but {len(args.gold_corpus)} --gold-corpus: give one gold per dump")
    return list(zip(args.corpus, args.gold_corpus))


def check_disjoint(bench: list, corpus: list) -> None:
    """Stops when a corpus instance comes from a benchmark repository (the corpus builder refuses
    them; a hand-made dump might not): its figures would no longer be held out."""
    shared = sorted({i.repo for i in bench} & {i.repo for i in corpus})
    if shared:
        sys.exit(f"the corpus dumps hold benchmark repositories {shared}; build the corpus without them")


def language(names: list[str]) -> str:
    """"rust" or "python": the language of an instance's candidates (by file extension)."""
    rust = sum(n.split(":", 1)[0].endswith(".rs") for n in names)
    return "rust" if rust * 2 > len(names) else "python"


def instance_language(inst) -> str:
    """The language of a function instance (its candidates' names) or a file instance (its paths)."""
    return language(getattr(inst, "names", None) or getattr(inst, "paths", []))


def languages(insts: list) -> dict[str, int]:
    """Training instances per language, recorded in each model's .json."""
    out: dict[str, int] = {}
    for i in insts:
        lang = instance_language(i)
        out[lang] = out.get(lang, 0) + 1
    return dict(sorted(out.items()))


def corpus_subsets(corpus: list) -> list[tuple[str, list]]:
    """The reported subsets of the corpus instances: one per language."""
    return [(f"corpus, {lang.capitalize()}", [i for i in corpus if instance_language(i) == lang])
            for lang in ("python", "rust")]


def corpus_record(pairs: list[tuple[Path, Path]], insts: list) -> dict:
    """The .json's record of the corpus dumps a model was trained on and their repositories."""
    return {"dumps": [{"file": f.name, "sha256": file_sha(f), "gold": g.name} for f, g in pairs],
            "repos": sorted({i.repo for i in insts})}


def metrics(insts: list[Instance], scores: list[np.ndarray] | None) -> dict[str, float]:
    """Strict function Acc@5/@10, Recall@5 and MRR of the candidate lists.

    scores=None ranks in the fusion's order (the file order); otherwise by descending
    score, ties kept in fusion order. Gold functions outside the top 100 are misses for
    both orders, so neither can reach 100.
    """
    acc = {5: 0, 10: 0}
    rec5 = mrr = 0.0
    for i, inst in enumerate(insts):
        if scores is None:
            order = np.arange(len(inst.names))
        else:
            order = np.argsort(-scores[i], kind="stable")
        ranked = [inst.names[j] for j in order]
        gold = set(inst.gold)
        for k in acc:
            hits = len(gold.intersection(ranked[:k]))
            acc[k] += hits == min(len(gold), k)
        rec5 += len(gold.intersection(ranked[:5])) / len(gold)
        first = next((r for r, n in enumerate(ranked) if n in gold), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
    n = max(len(insts), 1)
    return {
        "n": len(insts),
        "acc5": 100.0 * acc[5] / n,
        "acc10": 100.0 * acc[10] / n,
        "recall5": 100.0 * rec5 / n,
        "mrr": mrr / n,
    }


def first_gold_rank(inst: Instance, scores: np.ndarray | None) -> int | None:
    order = np.arange(len(inst.names)) if scores is None else np.argsort(-scores, kind="stable")
    return next((r for r, j in enumerate(order) if inst.y[j]), None)


def paired(insts: list[Instance], scores: list[np.ndarray]) -> str:
    """Instances whose first gold function moved up / down / stayed: with tens of
    instances, a one-instance change is 2 points, so the counts say more than the means."""
    up = down = 0
    for inst, s in zip(insts, scores):
        before, after = first_gold_rank(inst, None), first_gold_rank(inst, s)
        if before is None:
            continue
        up += after < before
        down += after > before
    found = sum(first_gold_rank(i, None) is not None for i in insts)
    return f"{up} up / {down} down / {found - up - down} same"


def stack(insts: list[Instance]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([i.x for i in insts]), np.concatenate([i.y for i in insts])


def make_model(params: dict, names: tuple[str, ...] | list[str] | None = None, monotone: dict = MONOTONE):
    """HistGradientBoostingClassifier (log-loss) without early stopping, so every
    training row is used and nothing is drawn at random. `names`: the columns (default the
    schema's `function`), each of which needs a direction in `monotone`."""
    single_thread()
    from sklearn.ensemble import HistGradientBoostingClassifier

    names = feature_schema().function if names is None else names
    p = dict(params)
    if p["monotone"]:
        missing = [n for n in names if n not in monotone]
        if missing:
            raise SchemaError(f"no monotone direction for the features {missing}; add them to the constraints")
    mono = [monotone[n] for n in names] if p.pop("monotone") else None
    return HistGradientBoostingClassifier(random_state=SEED, early_stopping=False, monotonic_cst=mono, **p)


def fit(insts: list[Instance], params: dict):
    x, y = stack(insts)
    return make_model(params).fit(x, y)


def positive(model, x: np.ndarray) -> np.ndarray:
    """P(label 1) of each row; an instance without candidates (a search that found nothing) has
    no rows, which scikit-learn refuses to score."""
    return model.predict_proba(x)[:, 1] if len(x) else np.zeros(0)


def predict(model, insts: list[Instance]) -> list[np.ndarray]:
    return [positive(model, i.x) for i in insts]


def out_of_fold(insts: list[Instance], params: dict, folds: list[list[int]]) -> list[np.ndarray]:
    """Scores of every instance by a model that did not see it; folds = lists of test indices."""
    scores: list[np.ndarray | None] = [None] * len(insts)
    for test in folds:
        held = set(test)
        model = fit([inst for j, inst in enumerate(insts) if j not in held], params)
        for j in test:
            scores[j] = positive(model, insts[j].x)
    return scores  # type: ignore[return-value]


def repo_folds(insts: list[Instance]) -> list[list[int]]:
    repos = sorted({i.repo for i in insts})
    return [[j for j, i in enumerate(insts) if i.repo == r] for r in repos]


def fmt_row(subset: str, order: str, m: dict, moves: str = "") -> str:
    return (
        f"| {subset} | {m['n']} | {order} | {m['acc5']:.1f} | {m['acc10']:.1f} | {m['recall5']:.1f} "
        f"| {m['mrr']:.3f} | {moves} |"
    )


def _patch_skl2onnx_leaf_flag() -> None:
    """skl2onnx 1.20.0 writes a Python `False` as a leaf's `nodes_missing_value_tracks_true`
    for HistGradientBoosting trees, which onnx with protobuf 7 refuses in an int list
    ("Expected an int, got a boolean"). The flag means nothing on a leaf; pass it as 0/1."""
    import skl2onnx.common.tree_ensemble as te

    if getattr(te.add_node, "_locus_patched", False):
        return
    original = te.add_node

    def add_node(*args, **kwargs):
        if "nodes_missing_value_tracks_true" in kwargs:
            kwargs["nodes_missing_value_tracks_true"] = int(kwargs["nodes_missing_value_tracks_true"])
        return original(*args, **kwargs)

    add_node._locus_patched = True  # type: ignore[attr-defined]
    te.add_node = add_node


def export_onnx(model, width: int | None = None, doc: str = "") -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    _patch_skl2onnx_leaf_flag()
    width = len(feature_schema().function) if width is None else width

    onx = convert_sklearn(
        model,
        name="locus_ranker",
        initial_types=[("features", FloatTensorType([None, width]))],
        options={id(model): {"zipmap": False}},
        target_opset=TARGET_OPSET,
    )
    onx.doc_string = doc or f"Locus localization model: P(candidate is edited by the fix) from {width} engine features"
    return onx.SerializeToString(deterministic=True)


def onnx_scores(data: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (probs,) = sess.run(["probabilities"], {"features": x.astype(np.float32)})
    return probs[:, 1]


def fixture_rows(insts: list[Instance]) -> np.ndarray:
    """A deterministic spread of real rows: an all-zero row, the gold rows of the first
    held-out instances, and rows at evenly spaced positions of the rest."""
    x, y = stack(insts)
    pos = list(np.flatnonzero(y)[:5])
    spread = np.linspace(0, len(x) - 1, FIXTURE_ROWS - 1 - len(pos)).round().astype(int)
    rows = [np.zeros(len(feature_schema().function), dtype=np.float32)] + [x[j] for j in pos] + [x[j] for j in spread]
    return np.stack(rows).astype(np.float32)


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fixture_json(fixture: dict) -> str:
    """JSON with one feature row per line, so a diff of the fixture reads row by row."""
    head = {k: v for k, v in fixture.items() if k not in ("rows", "expected")}
    lines = [json.dumps(head, indent=1)[:-2] + ","]
    lines.append(' "rows": [')
    lines.append(",\n".join("  " + json.dumps(r) for r in fixture["rows"]))
    lines.append(" ],")
    lines.append(' "expected": ' + json.dumps(fixture["expected"]))
    lines.append("}")
    return "\n".join(lines) + "\n"


def versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import skl2onnx
    import sklearn

    return {
        "python": ".".join(map(str, sys.version_info[:3])),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def warn_unpinned(ver: dict[str, str]) -> None:
    """A warning for each package whose version is not requirements.txt's."""
    for pkg, want in pinned().items():
        if pkg in ver and ver[pkg] != want:
            print(f"warning: {pkg} {ver[pkg]} is not the pinned {want} (requirements.txt); the model may differ",
                  file=sys.stderr)


def fixture_record(model, rows: np.ndarray, names: tuple[str, ...] | list[str], sha: str, comment: str) -> dict:
    """A fixture: feature rows and the scikit-learn scores ONNX Runtime must reproduce."""
    return {
        "comment": comment,
        "onnx_sha256": sha,
        "feature_names": list(names),
        "rows": [[float(v) for v in r] for r in rows],
        "expected": [round(float(p), 7) for p in model.predict_proba(rows)[:, 1]],
    }


def model_record(data: bytes, width: int, params: dict, monotone: dict | None) -> dict:
    """The head of a model's `.json`: its graph contract and how it was fitted."""
    return {
        "onnx_bytes": len(data),
        "input": {"name": "features", "type": "float32", "shape": ["N", width]},
        "output": {"name": "probabilities", "type": "float32", "shape": ["N", 2], "score_column": 1},
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "params": {**params, "random_state": SEED, "early_stopping": False},
        "monotone_constraints": monotone,
    }


def write_model(out: Path, stem: str, data: bytes, extra: dict, names: tuple[str, ...] | list[str] | None = None) -> str:
    """`stem.onnx` and the `stem.json` the Rust loader checks (sha256, feature names; default the
    schema's `function`)."""
    names = list(feature_schema().function if names is None else names)
    sha = hashlib.sha256(data).hexdigest()
    (out / f"{stem}.onnx").write_bytes(data)
    meta = {"model": "locus-ranker", "onnx": f"{stem}.onnx", "onnx_sha256": sha, "feature_names": names, **extra}
    (out / f"{stem}.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return sha


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lite", type=Path, default=Path("/tmp/runs/features-lite.jsonl"))
    ap.add_argument("--tokio", type=Path, default=Path("/tmp/runs/features-tokio.jsonl"))
    ap.add_argument("--gold-lite", type=Path, default=DATA / "swebench_lite.gold.jsonl")
    ap.add_argument("--gold-tokio", type=Path, default=DATA / "rust_tokio.gold.jsonl")
    corpus_arguments(ap)
    ap.add_argument("--out", type=Path, default=ROOT / "models")
    ap.add_argument("--folds-out", type=Path, help="also write the leave-one-repository-out models here")
    ap.add_argument("--no-write", action="store_true", help="report only; write nothing")
    args = ap.parse_args()
    single_thread()
    names = feature_schema().function
    check_monotone(names, MONOTONE, "train_ranker.MONOTONE")

    ver = versions()
    warn_unpinned(ver)

    lite, lite_lines = load_instances(args.lite, load_gold(args.gold_lite))
    tokio, tokio_lines = load_instances(args.tokio, load_gold(args.gold_tokio))
    pairs = corpus_pairs(args)
    corpus = [i for f, g in pairs for i in load_instances(f, load_gold(g))[0]]
    check_disjoint(lite + tokio, corpus)
    lite, tokio, corpus = (only_language(x, args.language) for x in (lite, tokio, corpus))
    every = lite + tokio + corpus
    repos = sorted({i.repo for i in every})
    print(f"{args.lite}: {lite_lines} lines, {len(lite)} usable; {args.tokio}: {tokio_lines} lines, {len(tokio)} usable; "
          f"corpus: {len(corpus)} usable from {len({i.repo for i in corpus})} repositories")
    print(f"{len(repos)} repositories, {len(every)} instances, {sum(len(i.names) for i in every)} candidates; params {PARAMS}")

    # 1. Out of fold, one fold per repository: the reported figures.
    folds = repo_folds(every)
    oof = out_of_fold(every, PARAMS, folds)
    by_id = {i.iid: s for i, s in zip(every, oof)}
    rows = []
    figures = {}
    subsets = [("Lite-available", lite), ("tokio (Rust)", tokio)] + corpus_subsets(corpus)
    for label, insts in subsets:
        if not insts:
            continue
        scores = [by_id[i.iid] for i in insts]
        f, r = metrics(insts, None), metrics(insts, scores)
        rows.append(fmt_row(label, "fusion", f))
        rows.append(fmt_row(label, "reranked", r, paired(insts, scores)))
        figures[label] = {"fusion": f, "reranked": r, "first_gold_moves": paired(insts, scores)}
    per_repo = {}
    for repo in repos:
        sub = [i for i in every if i.repo == repo]
        per_repo[repo] = {"fusion": metrics(sub, None), "reranked": metrics(sub, [by_id[i.iid] for i in sub])}

    print("\nOut of fold (each repository scored by the model trained on the others):")
    print("| subset | n | order | Acc@5 | Acc@10 | Recall@5 | MRR | first gold vs fusion |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    print("\n".join(rows))
    print("\nBy repository (fusion -> reranked, out of fold):")
    print("| repo | n | Acc@5 | Acc@10 | MRR |")
    print("|---|---:|---|---|---|")
    for repo, d in per_repo.items():
        f, r = d["fusion"], d["reranked"]
        print(
            f"| {repo} | {f['n']} | {f['acc5']:.1f} → {r['acc5']:.1f} | {f['acc10']:.1f} → {r['acc10']:.1f} "
            f"| {f['mrr']:.3f} → {r['mrr']:.3f} |"
        )

    if args.no_write:
        return

    # 2. The fold models, for the end-to-end run of the same protocol.
    if args.folds_out:
        args.folds_out.mkdir(parents=True, exist_ok=True)
        for repo, test in zip(repos, folds):
            held = set(test)
            train = [inst for j, inst in enumerate(every) if j not in held]
            m = fit(train, PARAMS)
            stem = repo.replace("/", "+")
            write_model(args.folds_out, stem, export_onnx(m),
                        {"trained_without": repo, "params": PARAMS, "training_languages": languages(train)})
        print(f"wrote {len(repos)} fold models to {args.folds_out}")

    # 3. The shipped model: every fold. Check ONNX Runtime against scikit-learn on every row.
    model = fit(every, PARAMS)
    args.out.mkdir(parents=True, exist_ok=True)
    data = export_onnx(model)
    x_all = stack(every)[0]
    diff = np.abs(onnx_scores(data, x_all) - model.predict_proba(x_all)[:, 1])
    print(f"\nONNX vs sklearn on {len(x_all)} rows: max abs diff {diff.max():.2e}, mean {diff.mean():.2e}")
    if diff.max() > 1e-4:
        sys.exit("ONNX Runtime disagrees with scikit-learn by more than 1e-4; not writing ranker.json")
    sha = hashlib.sha256(data).hexdigest()

    fx = fixture_rows(every)
    fixture = fixture_record(model, fx, names, sha, "written by scripts/model/train_ranker.py; "
                             "expected = sklearn predict_proba[:, 1] of the shipped model")

    def rounded(m: dict | str) -> dict | str:
        if isinstance(m, str):
            return m
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}

    meta = {
        **model_record(data, len(names), PARAMS, MONOTONE if PARAMS["monotone"] else None),
        "label": "1 iff the candidate's name is in the instance's gold `functions`",
        "training_repos": repos,
        "training_instances": len(every),
        "training_languages": languages(every),
        **({"language": args.language} if args.language else {}),
        "training_rows": int(sum(len(i.names) for i in every)),
        "training_positives": int(sum(int(i.y.sum()) for i in every)),
        "data": {
            "lite": {"file": args.lite.name, "sha256": file_sha(args.lite), "lines": lite_lines, "usable": len(lite)},
            "tokio": {"file": args.tokio.name, "sha256": file_sha(args.tokio), "lines": tokio_lines, "usable": len(tokio)},
            "corpus": corpus_record(pairs, corpus),
        },
        "protocol": "folds by repository; fixed hyper-parameters; figures out of fold (leave one repository out); shipped model trained on all folds",
        "out_of_fold": {lab: {k: rounded(v) for k, v in d.items()} for lab, d in figures.items()},
        "out_of_fold_by_repo": {r: {k: rounded(v) for k, v in d.items()} for r, d in per_repo.items()},
        "versions": ver,
    }
    # The three files together, only after every check passed.
    write_model(args.out, "ranker", data, meta)
    (args.out / "ranker_fixture.json").write_text(fixture_json(fixture), encoding="utf-8")
    print(f"wrote {args.out / 'ranker.onnx'} ({len(data)} bytes, sha256 {sha}), ranker.json, ranker_fixture.json")


if __name__ == "__main__":
    main()
