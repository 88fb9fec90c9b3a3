#!/usr/bin/env bash
# Runs every test Locus has, installing what they need on a fresh machine:
#   1. the model and ONNX Runtime (scripts/setup.sh, into $LOCUS_CACHE or ~/.cache/locus);
#   2. format and lint checks, the release build, all Rust tests (unit, data-driven, end-to-end,
#      real model parity), the shipped ranking models against their fixtures from Python;
#   3. the no-network proof (tests/safety); the release bundle unpacked and run as a new user
#      (tests/release: doctor, locate with the encoder and models, Neovim :checkhealth); the
#      protocol test (Node client over stdio) and the editor tests that fit CI (VS Code extension
#      logic, Neovim 0.11.4 headless).
#      LOCUS_SLOW_EDITOR_TESTS=1 adds Helix and VS Code (code-server + Chromium).
# Needs: Rust (cargo), python3 with venv, Node 20 + npm, network access to the package registries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step() { printf '\n== %s ==\n' "$*" >&2; }

step "setup: ONNX Runtime and the encoder"
bash scripts/setup.sh

step "format and lint"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --release -- -D warnings

step "build"
cargo build --release -p locus

step "Rust tests"
cargo test --workspace --release

step "the shipped models against their fixtures (Python ONNX Runtime)"
"${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python" scripts/model/test_ranker.py
"${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python" scripts/model/test_train_encoder.py
"${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python" scripts/model/test_distill_encoder.py
"${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python" scripts/model/test_calibrate_cut.py
"${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python" scripts/model/test_load_instances.py
"${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python" scripts/policy/test_call_stats.py
"${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python" scripts/policy/test_train_policy.py
"${LOCUS_CACHE:-$HOME/.cache/locus}/venv/bin/python" scripts/corpus/test_compose_set.py

step "safety: no network system call (strace), same answer in a network namespace"
bash tests/safety/network_calls_test.sh
bash tests/safety/no_network.sh

step "the release bundle as a new user runs it (empty HOME, no Python, no network)"
bash tests/release/bundle_test.sh

step "protocol and editor tests"
bash tests/editors/all.sh

step "all tests passed"
