#!/usr/bin/env bash
# Protocol test: a real LSP client over stdio against `locus lsp` on the example workspace.
# Usage: tests/protocol/run.sh   (LOCUS_BIN overrides the server binary; LOCUS_CACHE the cache folder)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../editors/lib.sh"
export LOCUS_BIN; LOCUS_BIN="$(locus_bin)"
load_example
ensure_npm_deps "$HERE" protocol-test
log "protocol test: $LOCUS_BIN on $LOCUS_EXAMPLE (issue $(basename "$LOCUS_ISSUE"), expected top: ${LOCUS_EXPECT_TOP:-any})"
cd "$HERE"
exec node --test --test-reporter=spec protocol.test.js
