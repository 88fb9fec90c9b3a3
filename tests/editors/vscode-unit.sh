#!/usr/bin/env bash
# VS Code extension without VS Code: type-check and compile, unit-test the command logic against a
# stubbed `vscode` module (node:test), then bundle and package the .vsix.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
EXT="$ROOT/editors/vscode"
ensure_npm_deps "$EXT" vscode-ext
cd "$EXT"
npx tsc -p .
node --test --test-reporter=spec test/locate.test.js
VSIX="$("$EXT/package.sh" -o "$CACHE/vsix/locus.vsix")"
# The listing is read whole first: with pipefail, `unzip -l | grep -q` fails whenever grep quits
# on its match before unzip has written everything (SIGPIPE), which happened under load.
LISTING="$(unzip -l "$VSIX")"
grep -q 'extension/dist/extension.js' <<<"$LISTING" || die "$VSIX lacks dist/extension.js"
grep -q 'extension/node_modules' <<<"$LISTING" && die "$VSIX carries node_modules (should be bundled)"
log "packaged $VSIX ($(du -k "$VSIX" | cut -f1) KiB)"
