"""Out-of-fold experiments on the function model's candidates and inputs, from one deep-pool feature dump.

    python pool_experiments.py --lite DEEP_LITE --tokio DEEP_TOKIO

The dumps come from `locus eval … --engine adaptive --semantic --pool-files 10 --features F`:
every function of the fusion's ten leading files is a candidate row, so any shallower pool
is a subset of the rows (the engine's pool of k files: the fusion's top 100, then the other
functions of its k leading files, file by file, at most max(400, 400·k/3) rows). Each variant below is
scored exactly as `train_ranker.py` and `train_file_ranker.py` score the shipped models: one
fold per repository, the file model's function scores nested, the hyper-parameters fixed in
advance (train_ranker.PARAMS) unless the variant changes them. The first row (pool 3, the
shipped inputs) reproduces the end-to-end `--model-folds` figures of docs/benchmarks.md.

Variants (docs/ranker-notes.md, "Session 4: what did not move function Acc@10"):
  pool k             candidates from k leading files instead of 3 (function and file model retrained)
  file prior λ       a function's final score P(fn) · P(its file)^λ, P(file) from the file model
  stage 2            a second function model with P(file), the file model's rank of the file and
                     P(fn) as extra inputs (nested twice: no model of a fold saw its repository)
  name overlap       an extra input: the share of the function's own name's words (split,
                     stemmed) that the issue uses; needs `pip install snowballstemmer`
  params             other tree settings (deeper, longer, unconstrained)

Every figure is out of fold. DEV = sympy + sphinx (the repositories version 1 chose its
settings on); "rest" = the other seven Lite repositories; a choice made on these figures
should be made on DEV and reported on rest.

The dumps' columns are the schema's (models/features.json, read by schema.py): `function` for
the candidates' `"f"`, `candidate` for their `"c"` (the `+ <candidate input>` variants), `file`
for the files' `"f"`; a dump of other widths or other `candidate_features` is refused. Needs the
versions of scripts/model/requirements.txt, as train_ranker.py (and snowballstemmer for the
name-overlap variants).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import train_file_ranker as tf  # noqa: E402
import train_ranker as tr  # noqa: E402
from schema import SchemaError, check_monotone, check_width, feature_schema  # noqa: E402

RERANK_DEPTH = 100  # engine.rs
POOL_MAX = 400  # engine.rs, for POOL_FILES = 3
DEV = ("sympy/sympy", "sphinx-doc/sphinx")
DEEPEST = 10  # the deepest pool a variant uses; the dump must hold at least this many files' functions
# The file columns file_rows() recomputes from a pool's function rows, in the order it writes them.
FILE_FN_COLUMNS = ("fn_lexical_max", "fn_semantic_max", "fn_symbol_max", "fn_best", "fn_second", "log_fn_count")


def column(key: str, name: str) -> int:
    """The position of a column this script reads or writes by meaning, in the schema's `key` list;
    stops if the schema has no such column."""
    names = feature_schema().names(key)
    if name not in names:
        raise SchemaError(f"the schema's `{key}` features have no `{name}`, which pool_experiments.py uses: "
                          f"{list(names)}")
    return names.index(name)


class Inst:
    """One issue of the deep dump: function rows (pool order), file rows, gold."""

    def __init__(self, d: dict, gold_files: set[str], gold_fns: list[str] | None, source: Path | str = "dump"):
        self.iid, self.repo = d["instance_id"], d["repo"]
        schema = feature_schema()
        # Pool order: a dump made with a model lists the candidates in that model's order
        # (`rows_ordered_by`); the pool's is their `log_rank` order (train_ranker.load_instances).
        check_width([x["f"] for x in d["candidates"]], len(schema.function), f"{source}: {self.iid}: candidates' \"f\"")
        rank = column("function", "log_rank")
        c = sorted(d["candidates"], key=lambda x: x["f"][rank])
        self.names = [x["name"] for x in c]
        self.paths = [n.split(":", 1)[0] for n in self.names]
        self.x = np.array([x["f"] for x in c], dtype=np.float32).reshape(len(c), len(schema.function))
        # The engine's candidate inputs (the schema's `candidate`; of the models only the tail reads
        # them). A dump without them (an older engine's) has none; one with them has the schema's
        # (load() checked the names).
        names = d.get("candidate_features", [])
        check_width([x.get("c", []) for x in c], len(names), f"{source}: {self.iid}: candidates' \"c\"")
        cand = np.array([x.get("c", []) for x in c], dtype=np.float32).reshape(len(c), len(names))
        self.extra = {n: cand[:, k] for k, n in enumerate(names)}
        self.fpaths = [r["path"] for r in d["files"]]
        check_width([r["f"] for r in d["files"]], len(schema.file), f"{source}: {self.iid}: files' \"f\"")
        self.fx = np.array([r["f"] for r in d["files"]], dtype=np.float32).reshape(len(self.fpaths), len(schema.file))
        self.gold_files, self.gold_fns = gold_files, gold_fns
        # The fusion's ranked functions come first (positive fused score); pooled extras after.
        zero = np.flatnonzero(self.x[:, column("function", "heuristic")] == 0)
        self.depth = min(RERANK_DEPTH, int(zero[0]) if len(zero) else len(c))
        self.file_rank = np.round(np.exp(self.x[:, column("function", "log_file_rank")]) - 1).astype(int)
        self._pools: dict[int, np.ndarray] = {}

    def pool(self, k: int) -> np.ndarray:
        """Row indices of the engine's pool of k files (candidate_pool in engine.rs)."""
        if k not in self._pools:
            idx, cap = list(range(self.depth)), max(POOL_MAX, POOL_MAX * k // 3)
            for j in range(self.depth, len(self.names)):
                if len(idx) >= cap:
                    break
                if self.file_rank[j] < k:
                    idx.append(j)
            self._pools[k] = np.array(idx, dtype=int)
        return self._pools[k]


def load(path: Path, gold_files: dict, gold_fns: dict) -> list[Inst]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            tr.check_dump_line(path, d)
            if d.get("pool_files", 3) < DEEPEST:
                sys.exit(f"{path}: dumped with a {d.get('pool_files', 3)}-file pool; "
                         f"re-run `locus eval … --pool-files {DEEPEST} --features {path}`")
            if d["instance_id"] in gold_files:
                out.append(Inst(d, gold_files[d["instance_id"]], gold_fns.get(d["instance_id"]), path))
    return sorted(out, key=lambda i: i.iid)


# --- name overlap (the engine's text.rs rules: split on _ and CamelCase, stop words, English Snowball) ---
STOP = set(
    "a an and are as at be but by for from has have if in into is it its of on or that the this to was were "
    "will with i we you self def return none true false fn let mut pub use not no can do does should would "
    "when which there then than so also just".split()
)


def split_identifier(ident: str) -> list[str]:
    parts = []
    for chunk in re.split(r"[^0-9A-Za-z]+|_", ident):
        start = 0
        for k in range(1, len(chunk)):
            p, c = chunk[k - 1], chunk[k]
            next_lower = k + 1 < len(chunk) and chunk[k + 1].islower()
            if (p.islower() and c.isupper()) or (p.isupper() and c.isupper() and next_lower):
                parts.append(chunk[start:k].lower())
                start = k
        if chunk:
            parts.append(chunk[start:].lower())
    return parts


class NameOverlap:
    def __init__(self):
        import snowballstemmer

        self.stem = snowballstemmer.stemmer("english").stemWord
        self.issue_terms = {}
        for name in ("swebench_lite.jsonl", "rust_tokio.jsonl"):
            with open(tr.DATA / name, encoding="utf-8") as f:
                for line in f:
                    d = json.loads(line)
                    self.issue_terms[d["instance_id"]] = self.terms(d["problem_statement"])
        self.cache: dict[str, np.ndarray] = {}

    def words(self, ident: str) -> list[str]:
        return [self.stem(p) for p in split_identifier(ident) if len(p) >= 2 and p not in STOP]

    def terms(self, text: str) -> set[str]:
        out = set()
        for w in re.split(r"[^0-9A-Za-z_]+", text):
            w = w.strip("_")
            if 2 <= len(w) <= 64 and not w.isdigit():
                if len(split_identifier(w)) > 1:
                    out.add(w.lower())
                out.update(self.words(w))
        return out

    def column(self, inst: Inst) -> np.ndarray:
        if inst.iid not in self.cache:
            issue = self.issue_terms[inst.iid]
            vals = []
            for n in inst.names:
                own = re.split(r"\.|::", n.split(":", 1)[1])[-1]
                w = self.words(own)
                vals.append(sum(p in issue for p in w) / len(w) if w else 0.0)
            self.cache[inst.iid] = np.array(vals, dtype=np.float32)
        return self.cache[inst.iid]


# --- within-file relative inputs: a row against the other pooled rows of its own file ---
WITHIN_FILE = {"lexical_in_file": 1, "log_lexical_rank_in_file": -1, "semantic_in_file": 1}


def within_file(i: Inst, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Per pooled row: its lexical (semantic) score over the best of its file's pooled rows,
    and ln(1 + its rank by lexical among them; ties share the better rank)."""
    by_file: dict[str, list[int]] = {}
    for n, j in enumerate(rows):
        by_file.setdefault(i.paths[j], []).append(n)
    lex, sem = i.x[rows, column("function", "lexical")], i.x[rows, column("function", "semantic")]
    out = {k: np.zeros(len(rows), dtype=np.float32) for k in WITHIN_FILE}
    for members in by_file.values():
        m = np.array(members)
        top_l, top_s = float(lex[m].max()), float(sem[m].max())
        out["lexical_in_file"][m] = lex[m] / top_l if top_l > 0 else 0.0
        out["semantic_in_file"][m] = sem[m] / top_s if top_s > 0 else 0.0
        for n in m:
            out["log_lexical_rank_in_file"][n] = math.log1p(int((lex[m] > lex[n]).sum()))
    return out


def sample_weights(ys: list[np.ndarray], how: str | None) -> np.ndarray | None:
    """Per-row training weights, averaging 1: "instance" gives every issue the same total
    weight; "positives" also splits each issue's weight evenly between its gold and other rows."""
    if how is None:
        return None
    n = sum(len(y) for y in ys)
    if how == "instance":
        w = [np.full(len(y), n / (len(ys) * len(y))) for y in ys]
    elif how == "positives":
        w = []
        for y in ys:
            pos = max(int(y.sum()), 1)
            neg = max(len(y) - pos, 1)
            w.append(np.where(y == 1, 0.5 / pos, 0.5 / neg) * n / len(ys))
    else:
        raise ValueError(how)
    return np.concatenate(w).astype(np.float64)


class Variant:
    def __init__(self, label: str, pool: int = 3, lam: float | None = None, stage2: bool = False,
                 name_overlap: bool = False, within: tuple[str, ...] = (), weights: str | None = None,
                 dumped: tuple[str, ...] = (), keep_top: int = 0, params: dict | None = None):
        self.label, self.pool, self.lam, self.stage2 = label, pool, lam, stage2
        self.name_overlap, self.within, self.weights, self.dumped = name_overlap, within, weights, dumped
        # keep_top k: the shipped inputs' model ranks the first k functions and the files; this
        # variant's model orders the functions after them.
        self.keep_top = keep_top
        self.params = dict(tr.PARAMS, **(params or {}))
        self.names = (list(feature_schema().function) + (["name_overlap"] if name_overlap else []) + list(within)
                      + list(dumped))
        self.mono = {**tr.MONOTONE, "name_overlap": 1, **tr.CANDIDATE_MONOTONE, **WITHIN_FILE}


class Experiment:
    def __init__(self, every: list[Inst], v: Variant, overlap: NameOverlap | None):
        self.every, self.v, self.overlap = every, v, overlap
        self.fn_models: dict[frozenset, object] = {}
        self.file_models: dict[frozenset, object] = {}

    def x(self, i: Inst, rows: np.ndarray) -> np.ndarray:
        x = i.x[rows]
        if self.v.name_overlap:
            x = np.concatenate([x, self.overlap.column(i)[rows][:, None]], axis=1)
        if self.v.within:
            cols = within_file(i, rows)
            x = np.concatenate([x] + [cols[k][:, None] for k in self.v.within], axis=1)
        if self.v.dumped:
            x = np.concatenate([x] + [i.extra[k][rows][:, None] for k in self.v.dumped], axis=1)
        return x

    def fn_model(self, excl: frozenset):
        if excl not in self.fn_models:
            xs, ys = [], []
            for i in self.every:
                if i.repo in excl or i.gold_fns is None:
                    continue
                rows, gold = i.pool(self.v.pool), set(i.gold_fns)
                xs.append(self.x(i, rows))
                ys.append(np.array([i.names[j] in gold for j in rows], dtype=np.int64))
            model = tr.make_model(self.v.params, self.v.names, self.v.mono)
            self.fn_models[excl] = model.fit(np.concatenate(xs), np.concatenate(ys),
                                             sample_weight=sample_weights(ys, self.v.weights))
        return self.fn_models[excl]

    def fn_scores(self, i: Inst, excl: frozenset) -> tuple[np.ndarray, np.ndarray]:
        rows = i.pool(self.v.pool)
        return rows, self.fn_model(excl).predict_proba(self.x(i, rows))[:, 1]

    def file_rows(self, i: Inst, rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The file rows with every fn_* column (FILE_FN_COLUMNS) recomputed from this pool
        (file_features in the engine)."""
        lex, sem, sym = (column("function", n) for n in ("lexical", "semantic", "symbol"))
        fn_cols = [column("file", n) for n in FILE_FN_COLUMNS]
        agg: dict[str, list] = {}
        for j, s in zip(rows, scores):
            a = agg.setdefault(i.paths[j], [0.0, 0.0, 0.0, [], 0])
            a[0], a[1], a[2] = max(a[0], i.x[j, lex]), max(a[1], i.x[j, sem]), max(a[2], i.x[j, sym])
            a[3].append(float(s))
            a[4] += 1
        x = i.fx.copy()
        for fi, p in enumerate(i.fpaths):
            a = agg.get(p)
            if a is None:
                x[fi, fn_cols] = 0.0
                continue
            top = sorted(a[3], reverse=True) + [0.0, 0.0]
            x[fi, fn_cols] = [a[0], a[1], a[2], max(top[0], 0.0), max(top[1], 0.0), math.log1p(a[4])]
        return x

    def file_model(self, excl: frozenset):
        """Trained without `excl`; each training row's function scores by a model without its repository too."""
        if excl not in self.file_models:
            xs, ys = [], []
            for i in self.every:
                if i.repo in excl:
                    continue
                rows, s = self.fn_scores(i, excl | {i.repo})
                xs.append(self.file_rows(i, rows, s))
                ys.append(np.array([p in i.gold_files for p in i.fpaths], dtype=np.int64))
            self.file_models[excl] = tf.fit_files(xs, ys)
        return self.file_models[excl]

    def file_scores(self, i: Inst, excl: frozenset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, s = self.fn_scores(i, excl)
        return rows, s, self.file_model(excl).predict_proba(self.file_rows(i, rows, s))[:, 1]

    def stage2_x(self, i: Inst, excl: frozenset) -> tuple[np.ndarray, np.ndarray]:
        rows, s, pf = self.file_scores(i, excl)
        rank = {i.fpaths[j]: n for n, j in enumerate(np.argsort(-pf, kind="stable"))}
        p_file = dict(zip(i.fpaths, pf))
        floor = 0.5 * float(pf.min()) if len(pf) else 1e-3
        extra = [[p_file.get(i.paths[j], floor), math.log1p(rank.get(i.paths[j], len(pf))), sc]
                 for j, sc in zip(rows, s)]
        return rows, np.concatenate([self.x(i, rows), np.array(extra, dtype=np.float32)], axis=1)

    def rankings(self) -> tuple[dict, dict]:
        """Out of fold: instance id -> ranked function names, ranked file paths."""
        if self.v.keep_top:
            base_fns, base_files = Experiment(self.every, Variant("shipped", pool=self.v.pool), None).rankings()
            own = Variant("own", pool=self.v.pool, dumped=self.v.dumped, weights=self.v.weights)
            own_fns, _ = Experiment(self.every, own, None).rankings()
            fns = {}
            for iid, ranked in base_fns.items():
                head = ranked[: self.v.keep_top]
                fns[iid] = head + [n for n in own_fns[iid] if n not in head]
            return fns, base_files
        fns, files = {}, {}
        repos = sorted({i.repo for i in self.every})
        for test in repos:
            held = frozenset({test})
            stage2 = None
            if self.v.stage2:
                xs, ys = [], []
                for i in self.every:
                    if i.repo == test or i.gold_fns is None:
                        continue
                    rows, x = self.stage2_x(i, frozenset({test, i.repo}))
                    xs.append(x)
                    ys.append(np.array([i.names[j] in set(i.gold_fns) for j in rows], dtype=np.int64))
                names = self.v.names + ["p_file", "log_model_file_rank", "p_fn"]
                mono = dict(self.v.mono, p_file=1, log_model_file_rank=-1, p_fn=1)
                stage2 = tr.make_model(self.v.params, names, mono).fit(np.concatenate(xs), np.concatenate(ys))
            for i in self.every:
                if i.repo != test:
                    continue
                rows, s, pf = self.file_scores(i, held)
                files[i.iid] = [i.fpaths[j] for j in np.argsort(-pf, kind="stable")]
                if stage2 is not None:
                    rows, x = self.stage2_x(i, held)
                    s = stage2.predict_proba(x)[:, 1]
                elif self.v.lam is not None:
                    p_file = dict(zip(i.fpaths, pf))
                    floor = 0.5 * float(pf.min()) if len(pf) else 1e-3
                    s = np.array([sc * max(p_file.get(i.paths[j], floor), 1e-6) ** self.v.lam
                                  for j, sc in zip(rows, s)])
                fns[i.iid] = [i.names[rows[j]] for j in np.argsort(-s, kind="stable")]
        return fns, files


def fn_row(insts: list[Inst], fns: dict) -> str:
    acc10 = acc5 = n = 0
    mrr = 0.0
    for i in insts:
        if i.gold_fns is None:
            continue
        n += 1
        g, ranked = set(i.gold_fns), fns[i.iid]
        acc5 += len(g.intersection(ranked[:5])) == min(len(g), 5)
        acc10 += len(g.intersection(ranked[:10])) == min(len(g), 10)
        first = next((r for r, nm in enumerate(ranked) if nm in g), None)
        mrr += 0.0 if first is None else 1.0 / (first + 1)
    return f"{100 * acc5 / n:.1f} | {100 * acc10 / n:.1f} | {mrr / n:.3f}"


def file_row(insts: list[Inst], files: dict) -> str:
    out = []
    for k in (1, 5):
        hit = sum(len(i.gold_files.intersection(files[i.iid][:k])) == min(len(i.gold_files), k) for i in insts)
        out.append(f"{100 * hit / len(insts):.1f}")
    return " | ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lite", type=Path, required=True)
    ap.add_argument("--tokio", type=Path, required=True)
    ap.add_argument("--skip-name-overlap", action="store_true", help="without snowballstemmer")
    ap.add_argument("--only", metavar="TEXT", help="the shipped row and the variants whose label has TEXT")
    ap.add_argument("--within-only", action="store_true",
                    help="only the shipped inputs and session 5's variants (within-file inputs, weights)")
    args = ap.parse_args()
    tr.single_thread()
    schema = feature_schema()
    check_monotone(schema.function, tr.MONOTONE, "train_ranker.MONOTONE")
    check_monotone(schema.candidate, tr.CANDIDATE_MONOTONE, "train_ranker.CANDIDATE_MONOTONE")
    check_monotone(schema.file, tf.FILE_MONOTONE, "train_file_ranker.FILE_MONOTONE")
    lite = load(args.lite, tf.load_gold_files(tr.DATA / "swebench_lite.gold.jsonl"),
                tr.load_gold(tr.DATA / "swebench_lite.gold.jsonl"))
    tokio = load(args.tokio, tf.load_gold_files(tr.DATA / "rust_tokio.gold.jsonl"),
                 tr.load_gold(tr.DATA / "rust_tokio.gold.jsonl"))
    every = lite + tokio
    dev = [i for i in lite if i.repo in DEV]
    rest = [i for i in lite if i.repo not in DEV]
    subsets = [("Lite", lite), ("DEV", dev), ("rest", rest), ("tokio", tokio)]

    print("Gold functions all in the pool (reliable instances):")
    for k in (3, 5, 10):
        cov = []
        for label, sub in subsets:
            rel = [i for i in sub if i.gold_fns is not None]
            inside = sum(set(i.gold_fns) <= {i.names[j] for j in i.pool(k)} for i in rel)
            cov.append(f"{label} {inside}/{len(rel)}")
        print(f"  pool {k}: " + ", ".join(cov))

    within = ("lexical_in_file", "log_lexical_rank_in_file")
    variants = [
        Variant("pool 3 (shipped inputs)"),
        Variant("pool 3, + lexical within file", within=within),
        Variant("pool 3, + lexical and semantic within file", within=within + ("semantic_in_file",)),
        Variant("pool 3, instance-balanced weights", weights="instance"),
        Variant("pool 3, instance- and gold-balanced weights", weights="positives"),
    ]
    # The candidate inputs (the schema's `candidate`), where the dumps have them.
    cand = schema.candidate
    if all(n in i.extra for i in every for n in cand):
        plus = "+ " + ", ".join(cand)
        variants += [Variant(f"pool 3, {plus}", dumped=cand),
                     Variant(f"pool 10, {plus}", pool=10, dumped=cand),
                     Variant(f"pool 3, {plus}, instance-balanced weights", dumped=cand,
                             weights="instance"),
                     Variant(f"pool 3, shipped top 3 and files, then {plus}", dumped=cand,
                             keep_top=3)]
    if args.only:
        variants = [variants[0]] + [v for v in variants[1:] if args.only in v.label]
    if not args.within_only:
        variants += [
            Variant("pool 5", pool=5),
            Variant("pool 10", pool=10),
            Variant("pool 3, file prior λ=0.5", lam=0.5),
            Variant("pool 3, file prior λ=1", lam=1.0),
            Variant("pool 10, file prior λ=1", pool=10, lam=1.0),
            Variant("pool 3, stage 2", stage2=True),
            Variant("pool 3, max_iter 200", params={"max_iter": 200}),
            Variant("pool 3, max_depth 3", params={"max_depth": 3}),
            Variant("pool 3, no monotone constraints", params={"monotone": False}),
        ]
    overlap = None
    if not args.skip_name_overlap and not args.within_only:
        overlap = NameOverlap()
        variants += [Variant("pool 3, + name overlap", name_overlap=True),
                     Variant("pool 5, + name overlap", pool=5, name_overlap=True)]
    head = " | ".join(f"{lab} fn Acc@5 | Acc@10 | MRR" for lab, _ in subsets)
    print(f"\n| variant | {head} | Lite file Acc@1 | Acc@5 |")
    print("|---|" + "---:|" * (3 * len(subsets) + 2))
    for v in variants:
        fns, files = Experiment(every, v, overlap).rankings()
        cells = " | ".join(fn_row(sub, fns) for _, sub in subsets)
        print(f"| {v.label} | {cells} | {file_row(lite, files)} |", flush=True)


if __name__ == "__main__":
    main()
