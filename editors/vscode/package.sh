#!/usr/bin/env bash
# Builds the extension and packages it as a .vsix.
# Usage: editors/vscode/package.sh [-o OUT.vsix] [--bundle-server PATH_TO_LOCUS]
# With --bundle-server the binary is copied into the extension (server/locus), which the extension
# prefers over `locus` on PATH when `locus.serverPath` is unset.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/locus.vsix"
SERVER=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) OUT="$2"; shift 2 ;;
    --bundle-server) SERVER="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
cd "$HERE"
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
rm -rf server
if [ -n "$SERVER" ]; then
  mkdir -p server && cp "$SERVER" server/locus && chmod +x server/locus
fi
mkdir -p "$(dirname "$OUT")"
npx vsce package --no-dependencies --skip-license --allow-missing-repository -o "$OUT" >&2
rm -rf server
echo "$OUT"
