#!/usr/bin/env python3
"""Writes a synthetic workspace of about N code entities, for scale measurements.

Usage: scripts/gen_workspace.py OUT_DIR [ENTITIES] [SEED]

Deterministic for a given (ENTITIES, SEED). Four Python files of five-method classes and free
functions for every Rust file of impls and functions, in packages of 50 files; names are drawn
from a vocabulary so identifiers repeat across files the way real code's do, and every function
calls a few others (same file, and imported ones) so the code graph has real work to do.
Also writes OUT_DIR.issue.md, an issue text naming a few entities, for `locus locate`.
Prints the number of files and entities written (by the generator's count, file entities
excluded) as JSON.
"""
import json
import os
import random
import sys

WORDS = (
    "account buffer cache channel client config connection context cursor decode encode entry event "
    "file filter format frame handler header index item key layout ledger lock manager message "
    "node option order packet parser path pool queue reader record registry request response "
    "result route schema session signal socket state stream table task timer token tree user value "
    "view worker writer"
).split()
VERBS = "apply build check close collect compute create flush get load merge open parse poll push " \
        "read refresh register remove render reset resolve run save send split start stop update validate write"
VERBS = VERBS.split()


def name(rng, parts=2):
    return "_".join([rng.choice(VERBS)] + [rng.choice(WORDS) for _ in range(parts - 1)])


def camel(rng):
    return "".join(rng.choice(WORDS).capitalize() for _ in range(2))


def python_file(rng, pkg, idx, budget, prev):
    """A module with classes of five methods and free functions; returns (text, entities, exported)."""
    lines = [f'"""Module {idx} of package {pkg}."""', "import os", "import re"]
    exported = []
    if prev:
        mod, fn = prev
        lines.append(f"from {pkg}.{mod} import {fn}")
    lines.append("")
    entities = 0
    funcs = []
    while entities < budget:
        if rng.random() < 0.5 and budget - entities >= 6:
            cls = camel(rng) + str(entities)
            lines.append(f"class {cls}:")
            lines.append(f'    """A {cls.lower()} that keeps its {rng.choice(WORDS)}s."""')
            lines.append("")
            for m in range(5):
                meth = name(rng) + f"_{m}"
                lines.append(f"    def {meth}(self, {rng.choice(WORDS)}, *args):")
                lines.append(f'        """{meth.replace("_", " ").capitalize()}."""')
                if funcs:
                    lines.append(f"        value = {rng.choice(funcs)}({rng.choice(WORDS)})")
                else:
                    lines.append("        value = None")
                lines.append(f"        if value is None and not os.path.exists('{rng.choice(WORDS)}'):")
                lines.append(f"            raise ValueError('cannot {meth.replace('_', ' ')} without a value')")
                lines.append(f"        return re.sub('{rng.choice(WORDS)}', '', str(value))")
                lines.append("")
            entities += 6
        else:
            fn = name(rng, 3) + f"_{entities}"
            arg = rng.choice(WORDS)
            lines.append(f"def {fn}({arg}, limit=10):")
            lines.append(f'    """Return the {arg} after a {rng.choice(VERBS)}."""')
            callee = rng.choice(funcs) if funcs else (prev[1] if prev else None)
            lines.append(f"    result = {callee}({arg})" if callee else f"    result = {arg}")
            lines.append("    for i in range(limit):")
            lines.append("        result = result or i")
            lines.append("    return result")
            lines.append("")
            funcs.append(fn)
            exported.append(fn)
            entities += 1
    return "\n".join(lines) + "\n", entities, exported


def rust_file(rng, idx, budget):
    lines = [f"//! Module {idx}.", "use std::collections::HashMap;", ""]
    entities = 0
    funcs = []
    while entities < budget:
        if rng.random() < 0.5 and budget - entities >= 5:
            ty = camel(rng) + str(entities)
            lines.append(f"pub struct {ty} {{ map: HashMap<String, u64> }}")
            lines.append("")
            lines.append(f"impl {ty} {{")
            for m in range(3):
                meth = name(rng) + f"_{m}"
                lines.append(f"    /// {meth.replace('_', ' ')}.")
                lines.append(f"    pub fn {meth}(&mut self, key: &str) -> Option<u64> {{")
                call = f"{rng.choice(funcs)}(key.len() as u64)" if funcs else "key.len() as u64"
                lines.append(f"        let v = {call};")
                lines.append("        self.map.insert(key.to_string(), v)")
                lines.append("    }")
            lines.append("}")
            lines.append("")
            entities += 5  # struct, impl, three methods
        else:
            fn = name(rng, 3) + f"_{entities}"
            lines.append(f"/// Returns the {rng.choice(WORDS)} count.")
            lines.append(f"pub fn {fn}(n: u64) -> u64 {{")
            lines.append(f"    if n == 0 {{ return 0; }}")
            lines.append(f"    {rng.choice(funcs)}(n - 1) + 1" if funcs else "    n * 2")
            lines.append("}")
            lines.append("")
            funcs.append(fn)
            entities += 1
    return "\n".join(lines) + "\n", entities


def main():
    out = sys.argv[1]
    target = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
    per_file = 40
    files = entities = 0
    named = []
    while entities < target:
        pkg = f"pkg{files // 50}"
        budget = min(per_file, target - entities)
        if files % 5 == 4:
            path = os.path.join(out, "crates", f"c{files // 50}", "src", f"m{files}.rs")
            text, n = rust_file(rng, files, budget)
        else:
            prev = None
            if named and named[-1][0] == pkg:
                prev = (named[-1][1], named[-1][2])
            path = os.path.join(out, pkg, f"mod{files}.py")
            text, n, exported = python_file(rng, pkg, files, budget, prev)
            if exported:
                named.append((pkg, f"mod{files}", exported[0]))
            init = os.path.join(out, pkg, "__init__.py")
            if not os.path.exists(init):
                os.makedirs(os.path.dirname(init), exist_ok=True)
                open(init, "w").close()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        files += 1
        entities += n
    picks = rng.sample(named, 3)
    with open(out.rstrip("/") + ".issue.md", "w") as f:
        f.write(f"`{picks[0][2]}` returns the wrong value when `limit` is 0; it is called from "
                f"{picks[1][0]}.{picks[1][1]}. Seen also in {picks[2][2]}.\n")
    print(json.dumps({"files": files, "entities": entities}))


if __name__ == "__main__":
    main()
