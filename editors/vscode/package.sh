#!/usr/bin/env bash
# Builds the extension and packages it as a .vsix.
# Usage: editors/vscode/package.sh [-o OUT.vsix] [--bundle RELEASE | --bundle-server PATH_TO_LOCUS]
#   --bundle RELEASE   a platform .vsix (linux-x64, rust-analyzer's convention) carrying the whole release
#                      bundle of scripts/release.sh (its .tar.gz or unpacked folder) in server/: the
#                      server, ONNX Runtime, the encoder and the models. It works offline, with nothing
#                      else installed. The extension runs server/bin/locus when locus.serverPath is unset.
#   --bundle-server P  only the binary (server/locus); the runtime and models come from the user's cache.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="$HERE/locus.vsix"
SERVER=""
BUNDLE=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) OUT="$2"; shift 2 ;;
    --bundle-server) SERVER="$2"; shift 2 ;;
    --bundle) BUNDLE="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -z "$SERVER" ] || [ -z "$BUNDLE" ] || { echo "--bundle and --bundle-server exclude each other" >&2; exit 2; }
mkdir -p "$(dirname "$OUT")"
OUT="$(cd "$(dirname "$OUT")" && pwd -P)/$(basename "$OUT")"
if [ -n "$BUNDLE" ]; then BUNDLE="$(cd "$(dirname "$BUNDLE")" && pwd -P)/$(basename "$BUNDLE")"; fi
cd "$HERE"
[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error
rm -rf server
trap 'rm -rf "$HERE/server"' EXIT
TARGET=()
if [ -n "$SERVER" ]; then
  mkdir -p server && cp "$SERVER" server/locus && chmod +x server/locus
elif [ -n "$BUNDLE" ]; then
  mkdir -p server
  if [ -d "$BUNDLE" ]; then
    cp -r "$BUNDLE"/. server/
  else
    tar -xzf "$BUNDLE" -C server --strip-components=1
  fi
  [ -x server/bin/locus ] && [ -f server/MANIFEST.sha256 ] \
    || { echo "$BUNDLE is not a Locus release bundle (no bin/locus and MANIFEST.sha256; scripts/release.sh builds one)" >&2; exit 2; }
  (cd server && sha256sum --quiet -c MANIFEST.sha256) || { echo "$BUNDLE does not match its MANIFEST.sha256" >&2; exit 2; }
  TARGET=(--target linux-x64)
fi
npx vsce package "${TARGET[@]}" --no-dependencies --skip-license --allow-missing-repository -o "$OUT" >&2
echo "$OUT"
