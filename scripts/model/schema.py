"""The localization models' input columns, read from the engine's schema `models/features.json`.

The engine (server/search/src/features.rs) is the one place the feature names are written; it
writes them to models/features.json, and the training scripts and test_ranker.py read them
here, so no script holds its own copy. Keys (each a list of names, in column order):
  function   the function model's inputs (ranker.onnx), the `"f"` rows of a dump's candidates
  candidate  candidate inputs only the tail model reads, the `"c"` rows of a dump's candidates
             (named by the dump's `candidate_features`)
  file       the file model's inputs (ranker.files.onnx), the `"f"` rows of a dump's files
  tail       the tail model's inputs (ranker.tail.onnx): function, then candidate
  call       the search policy's inputs (policy.onnx), the `"x"` of a call trace's calls

Standard library only (test_ranker.py runs in the venv of scripts/setup.sh).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "models" / "features.json"

# What to do when a dump or a model was made by another engine than the schema's.
REDUMP = "dump the features again with the current engine (`locus eval … --features FILE`)"


KEYS = ("function", "candidate", "file", "tail", "call")


class SchemaError(SystemExit):
    """A schema, dump or constraint table that disagrees with the engine's feature names;
    a SystemExit, so a script stops with the message and no traceback."""


@dataclass(frozen=True)
class FeatureSchema:
    """Column names per model input, in order (tuples: shared by every caller, never mutated)."""

    path: Path
    function: tuple[str, ...]
    candidate: tuple[str, ...]
    file: tuple[str, ...]
    tail: tuple[str, ...]
    call: tuple[str, ...]

    def names(self, key: str) -> tuple[str, ...]:
        """The list under `key` ("function", "candidate", "file", "tail" or "call")."""
        if key not in KEYS:
            raise KeyError(key)
        return getattr(self, key)


@functools.lru_cache(maxsize=None)
def feature_schema(path: Path = SCHEMA_PATH) -> FeatureSchema:
    """models/features.json of this checkout (or `path`), checked: every key present, each a list
    of distinct names, and `tail` = `function` + `candidate` (the scripts build tail rows so)."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise SchemaError(f"cannot read the feature schema {path}: {e}; it is written by the engine's tests "
                          "(`UPDATE_SCHEMA=1 cargo test -p locus-search schema`)") from None
    lists = {}
    for key in KEYS:
        names = raw.get(key) if isinstance(raw, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise SchemaError(f"{path}: `{key}` is not a list of feature names")
        if len(set(names)) != len(names):
            raise SchemaError(f"{path}: `{key}` names a feature twice: {names}")
        lists[key] = tuple(names)
    if lists["tail"] != lists["function"] + lists["candidate"]:
        raise SchemaError(f"{path}: `tail` is not `function` followed by `candidate`; the training "
                          "scripts build the tail model's rows that way")
    return FeatureSchema(path=Path(path), **lists)


def name_diff(expected: tuple[str, ...] | list[str], got: tuple[str, ...] | list[str]) -> str:
    """Which names differ between two column lists: missing, extra, or the first moved column."""
    expected, got = list(expected), list(got)
    missing = [n for n in expected if n not in got]
    extra = [n for n in got if n not in expected]
    parts = []
    if missing:
        parts.append(f"missing {missing}")
    if extra:
        parts.append(f"unexpected {extra}")
    if not parts:
        k = next((k for k, (a, b) in enumerate(zip(expected, got)) if a != b), None)
        if k is not None:
            parts.append(f"column {k} is `{got[k]}`, the schema has `{expected[k]}` there")
        elif len(expected) != len(got):
            parts.append(f"{len(got)} names for {len(expected)} columns")
    return "; ".join(parts)


def check_names(expected: tuple[str, ...] | list[str], got: tuple[str, ...] | list[str], what: str,
                fix: str = REDUMP) -> None:
    """Stops with the differing names unless `got` is `expected` exactly (same names, same order)."""
    if list(got) != list(expected):
        raise SchemaError(f"{what} are not the schema's ({name_diff(expected, got)}): {fix}")


def check_monotone(names: tuple[str, ...] | list[str], monotone: dict[str, int], what: str) -> None:
    """Stops unless `monotone` constrains exactly the features `names`: a feature the schema adds
    must get its direction written down, not be trained unconstrained by default."""
    problems = []
    missing = [n for n in names if n not in monotone]
    if missing:
        problems.append(f"no direction for {missing}")
    extra = [n for n in monotone if n not in names]
    if extra:
        problems.append(f"directions for features the schema does not have: {extra}")
    if problems:
        raise SchemaError(f"{what} does not match the schema's features ({'; '.join(problems)}); give every "
                          "feature of models/features.json its direction (1 up, -1 down, 0 free) and no other")


def check_width(rows: list, width: int, what: str) -> None:
    """Stops unless every row of `rows` has `width` values (rows of a dump, a fixture)."""
    bad = next(((k, len(r)) for k, r in enumerate(rows) if len(r) != width), None)
    if bad is not None:
        raise SchemaError(f"{what}: row {bad[0]} has {bad[1]} values, the schema has {width} columns; {REDUMP}")
