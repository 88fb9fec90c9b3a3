#!/usr/bin/env python3
"""Trains the search policy's model (models/policy.onnx): the value of a call the search considers.

Input: call traces of `locus eval --policy explore --call-traces FILE` on the training corpus
(never a benchmark repository: the script refuses them), and the corpus's gold. With the explore
policy every candidate call of the learned policy's turns was issued (or, over the call budget,
probed), so every row has its outcome. Each row is labelled by call_stats.label:

    value = P(the call first brings a gold function or file, or returns a gold function and
              either brings something new or is evidence the rankers weigh: a symbol or
              outline call)

— a call that touches the fix is worth its cost; one that touches nothing of the fix is noise,
and one that returns only what was seen is the redundancy FuseSearch's objective
(F1 + F1·efficiency) charges for, unless its evidence (the issue names that function, a frame
or path points at it) is what ranks the fix first. The model: scikit-learn's HistGradientBoostingClassifier over the engine's
`CallFeatures` (models/features.json, key `call`), exported to ONNX like the rankers.

The threshold is chosen on the training traces, out of fold by repository: the highest value at
which the calls kept still hold `--keep` (default 0.9) of the calls labelled positive (the
re-query aside: it nearly always returns a gold function among its 200 hits). It is
written into policy.json; the engine issues a call when its value reaches it.

    python3 scripts/policy/train_policy.py --traces T.jsonl --gold G.jsonl [--traces … --gold …] \
        [--out models] [--keep 0.9]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "model"))

import numpy as np  # noqa: E402

import call_stats  # noqa: E402
import train_ranker as tr  # noqa: E402
from schema import SchemaError, feature_schema  # noqa: E402

PARAMS = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15, "min_samples_leaf": 40,
          "l2_regularization": 1.0, "monotone": False}
# SWE-bench's repositories and the Rust benchmark file's (DESIGN §10): never training data.
BENCHMARK = {
    "astropy/astropy", "django/django", "matplotlib/matplotlib", "mwaskom/seaborn", "pallets/flask",
    "psf/requests", "pydata/xarray", "pylint-dev/pylint", "pytest-dev/pytest", "scikit-learn/scikit-learn",
    "sphinx-doc/sphinx", "sympy/sympy", "tokio-rs/tokio", "tokio-rs/tracing", "tokio-rs/bytes",
    "BurntSushi/ripgrep", "sharkdp/fd", "sharkdp/bat", "serde-rs/serde", "rayon-rs/rayon", "hyperium/hyper",
    "dtolnay/proc-macro2", "asterinas/asterinas", "apache/arrow-rs", "bitflags/bitflags", "rust-random/rand",
    "GuillaumeGomez/sysinfo", "crossbeam-rs/crossbeam", "dtolnay/syn", "rust-lang/regex",
}


# Tools whose hits are evidence the rankers weigh on their own (a name of the issue, a frame, a
# path): such a call is worth its cost when it lands on the fix even if an earlier call had
# returned the entity. A graph, grep or lexical hit on a seen entity adds little.
EVIDENCE_TOOLS = {"symbol", "outline"}


def worth(call: dict, lab: dict) -> bool:
    """The label: the call first brings a gold function or file, or it returns a gold function
    and either brings something new or is evidence the rankers weigh (EVIDENCE_TOOLS)."""
    if lab["gold_new"]:
        return True
    return lab["gold_hit"] and (not lab["redundant"] or call["tool"] in EVIDENCE_TOOLS)


def rows(traces: Path, gold: Path) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Feature rows, labels, repository and tool of every considered call of every instance."""
    names = feature_schema().call
    g = call_stats.load_gold(gold)
    xs, ys, repos, tools = [], [], [], []
    with open(traces, encoding="utf-8") as f:
        # `locus eval --jobs N` writes instances as they finish: sorted, the rows (and so the
        # model) do not depend on the order they were written in.
        instances = sorted((json.loads(line) for line in f), key=lambda d: d["instance_id"])
        for d in instances:
            if d["repo"] in BENCHMARK:
                raise SchemaError(f"{traces}: {d['instance_id']} is from the benchmark repository {d['repo']}; "
                                  "the policy trains on the corpus only")
            if d["instance_id"] not in g:
                continue
            fns, files = g[d["instance_id"]]
            if not fns and not files:
                continue
            for c in d["calls"]:
                if c["source"] == "issue":
                    continue  # the whole issue's calls open every search: no decision to learn
                x = c.get("x")
                if x is None or list(x) != list(names):
                    got = list(x) if x else []
                    raise SchemaError(f"{traces}: call features {got[:3]}… are not the schema's `call` columns; "
                                      "record the traces again with the current engine (`locus eval … --call-traces`)")
                lab = call_stats.label(c, fns, files)
                xs.append([float(x[n]) for n in names])
                ys.append(1 if worth(c, lab) else 0)
                repos.append(d["repo"])
                tools.append(c["tool"])
    return np.asarray(xs, dtype=np.float32), np.asarray(ys), repos, tools


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic, ties averaged)."""
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    sp = p[order]
    i = 0
    while i < len(sp):
        j = i
        while j + 1 < len(sp) and sp[j + 1] == sp[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y == 1
    n1, n0 = pos.sum(), (~pos).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def choose_threshold(y: np.ndarray, p: np.ndarray, keep: float) -> float:
    """The highest threshold whose kept calls (p >= t) hold at least `keep` of the positives."""
    pos = np.sort(p[y == 1])[::-1]
    if len(pos) == 0:
        return 0.0
    k = max(1, int(np.ceil(keep * len(pos))))
    return float(pos[k - 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--traces", type=Path, action="append", required=True)
    ap.add_argument("--gold", type=Path, action="append", required=True)
    ap.add_argument("--out", type=Path, default=HERE.parents[1] / "models")
    ap.add_argument("--keep", type=float, default=0.9)
    ap.add_argument("--threshold", type=float,
                    help="record this threshold instead of the --keep rule's (e.g. one chosen by running the "
                         "engine on training instances at several, `locus eval --policy-threshold`)")
    ap.add_argument("--threshold-rule", default="", help="how --threshold was chosen, for the model's record")
    args = ap.parse_args()
    tr.single_thread()
    if len(args.traces) != len(args.gold):
        sys.exit("give one --gold per --traces")
    parts = [rows(t, g) for t, g in zip(args.traces, args.gold)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    repos = [r for p in parts for r in p[2]]
    tools = [t for p in parts for t in p[3]]
    names = feature_schema().call
    repo_set = sorted(set(repos))
    print(f"{len(y)} calls ({int(y.sum())} positive) from {len(repo_set)} repositories; params {PARAMS}")

    # Out of fold by repository: the threshold and the figures.
    oof = np.zeros(len(y))
    ra = np.asarray(repos)
    for r in repo_set:
        test = ra == r
        m = tr.make_model(PARAMS, names, monotone={}).fit(x[~test], y[~test])
        oof[test] = m.predict_proba(x[test])[:, 1]
    # The re-query almost always returns a gold function among its 200 hits: it is kept at any
    # threshold worth having, and would set the threshold alone. The rule counts the other calls.
    decided = np.asarray([tool != "lexical" for tool in tools])
    t = choose_threshold(y[decided], oof[decided], args.keep)
    kept = oof >= t
    print(f"the --keep rule's threshold: {t:.4f}")
    rule = f"highest value keeping {args.keep:.0%} of the positive calls other than the re-query, out of fold by repository"
    if args.threshold is not None:
        if not args.threshold_rule:
            sys.exit("--threshold needs --threshold-rule: how it was chosen")
        t, rule = args.threshold, args.threshold_rule
        kept = oof >= t
    print(f"out of fold: AUC {auc(y, oof):.3f} ({auc(y[decided], oof[decided]):.3f} without the re-query); "
          f"threshold {t:.4f} keeps {kept.mean():.1%} of the calls and {kept[y == 1].mean():.1%} of the positive ones")
    by_tool = defaultdict(lambda: [0, 0, 0, 0])
    for tool, k, lab in zip(tools, kept, y):
        e = by_tool[tool]
        e[0] += 1
        e[1] += int(k)
        e[2] += int(lab)
        e[3] += int(k and lab)
    print("| tool | calls | kept | positive | positive kept |\n|---|---:|---:|---:|---:|")
    for tool, (n, k, pos, pk) in sorted(by_tool.items()):
        print(f"| {tool} | {n} | {k} | {pos} | {pk} |")

    model = tr.make_model(PARAMS, names, monotone={}).fit(x, y)
    data = tr.export_onnx(model, len(names), "Locus search policy: P(a considered call touches the fix) "
                          f"from {len(names)} search-state features")
    sha = __import__("hashlib").sha256(data).hexdigest()
    fixture_x = np.concatenate([np.zeros((1, len(names)), dtype=np.float32),
                                x[np.linspace(0, len(x) - 1, tr.FIXTURE_ROWS - 1).round().astype(int)]])
    onnx_p = tr.onnx_scores(data, fixture_x)
    skl_p = model.predict_proba(fixture_x)[:, 1]
    if np.max(np.abs(onnx_p - skl_p)) > 1e-5:
        sys.exit(f"ONNX Runtime disagrees with scikit-learn by {np.max(np.abs(onnx_p - skl_p)):.2e}")
    ver = tr.versions()
    tr.warn_unpinned(ver)
    extra = {
        **tr.model_record(data, len(names), PARAMS, None),
        "threshold": round(t, 6),
        "threshold_rule": rule,
        "label": "the call first brings a gold function or file, or returns a gold function and brings something new or is a symbol or outline call",
        "training_repos": repo_set,
        "training_calls": int(len(y)),
        "training_positive": int(y.sum()),
        "out_of_fold_auc": round(auc(y, oof), 4),
        "seed": tr.SEED,
        "trained_on": "CPU",
        "versions": ver,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    sha = tr.write_model(args.out, "policy", data, extra, names)
    fixture = tr.fixture_record(model, fixture_x, names, sha, "rows of the training traces; the scores "
                                "scikit-learn gave them, which ONNX Runtime must reproduce")
    (args.out / "policy_fixture.json").write_text(tr.fixture_json(fixture), encoding="utf-8")
    print(f"wrote {args.out / 'policy.onnx'} ({len(data)} bytes, sha256 {sha[:12]}…), threshold {t:.4f}")


if __name__ == "__main__":
    main()
