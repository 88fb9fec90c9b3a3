#!/usr/bin/env bash
# Builds Locus, installs the model (scripts/setup.sh), indexes the bundled example workspace and
# locates the issue in examples/shop/bug.issue.md. Extra arguments go to `locus locate`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh >&2
cargo build --release -p locus >&2
exec target/release/locus locate examples/shop --issue examples/shop/bug.issue.md --explain "$@"
