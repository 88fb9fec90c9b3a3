#!/usr/bin/env bash
# The VS Code extension in real VS Code: code-server 4.139.1 (Node 24) driven by Debian's Chromium
# through playwright-core, against the real server on the example workspace.
# Usage: tests/editors/vscode-real.sh [--save-screenshot DIR] [--vsix PLATFORM.vsix]
# Leaves the screenshot in $CACHE/screenshots/vscode.png (and vscode-issue.png).
# By default the extension is packaged from this checkout and runs target/release/locus (the
# locus.serverPath setting). With --vsix it installs that platform .vsix (scripts/release.sh --vsix:
# the release bundle inside) as a new user would: no locus.serverPath, code-server with an empty HOME
# (no cache), no LOCUS_*/ORT_* variables and no Python on PATH; the server must come from the
# extension's own server/ folder and answer with the bundled encoder and models.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
SAVE_DIR=""
GIVEN_VSIX=""
while [ $# -gt 0 ]; do
  case "$1" in
    --save-screenshot) SAVE_DIR="$2"; shift 2 ;;
    --vsix) GIVEN_VSIX="$(cd "$(dirname "$2")" && pwd -P)/$(basename "$2")"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
[ -n "$GIVEN_VSIX" ] || BIN="$(locus_bin)"
load_example
ensure_chromium
ensure_code_server
ensure_playwright
ensure_npm_deps "$ROOT/editors/vscode" vscode-ext

WORK="$(mktemp -d "${TMPDIR:-/tmp}/locus-vscode.XXXXXX")"
CS_PID=""
cleanup() { [ -n "$CS_PID" ] && kill "$CS_PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cp -r "$EXAMPLE_DIR" "$WORK/ws"
mkdir -p "$WORK/ud/User" "$WORK/ext" "$CACHE/screenshots"
# How code-server (and so the extension host and the server it spawns) is run.
CS_ENV=(env)
if [ -n "$GIVEN_VSIX" ]; then
  [ -f "$GIVEN_VSIX" ] || die "$GIVEN_VSIX not found (scripts/release.sh --vsix builds it)"
  VSIX="$GIVEN_VSIX"
  SERVER_SETTING=""
  # A new user's machine: an empty HOME, and a PATH with Node 24 and the system's tools but no Python.
  mkdir -p "$WORK/home" "$WORK/path"
  for f in /usr/bin/* /bin/*; do
    case "$(basename "$f")" in python*|pip*|pydoc*|locus) continue ;; esac
    [ -e "$WORK/path/$(basename "$f")" ] || ln -s "$f" "$WORK/path/$(basename "$f")"
  done
  CS_ENV=(env -i HOME="$WORK/home" PATH="$NODE24_DIR/bin:$WORK/path" LANG=C.UTF-8)
  SCREEN=vscode-vsix
else
  VSIX="$("$ROOT/editors/vscode/package.sh" -o "$WORK/locus.vsix" 2>"$WORK/package.log")" || { cat "$WORK/package.log" >&2; die "packaging failed"; }
  SERVER_SETTING="\"locus.serverPath\": \"$BIN\","
  SCREEN=vscode
fi
cat > "$WORK/ud/User/settings.json" <<JSON
{
  $SERVER_SETTING
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "extensions.ignoreRecommendations": true,
  "telemetry.telemetryLevel": "off",
  "security.workspace.trust.enabled": false,
  "git.enabled": false,
  "update.mode": "none",
  "chat.disableAIFeatures": true
}
JSON
export PATH="$NODE24_DIR/bin:$PATH"
"${CS_ENV[@]}" "$CS_BIN" --extensions-dir "$WORK/ext" --user-data-dir "$WORK/ud" --install-extension "$VSIX" >"$WORK/install.log" 2>&1 \
  || { cat "$WORK/install.log" >&2; die "installing the extension failed"; }
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"${CS_ENV[@]}" "$CS_BIN" --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check \
  --disable-workspace-trust --user-data-dir "$WORK/ud" --extensions-dir "$WORK/ext" "$WORK/ws" >"$WORK/cs.log" 2>&1 &
CS_PID=$!
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$CS_PID" 2>/dev/null || { cat "$WORK/cs.log" >&2; die "code-server exited"; }
  sleep 0.5
done
log "code-server $("$CS_BIN" --version | head -n1 | cut -d' ' -f1) on port $PORT; extension $(basename "$VSIX"); server ${BIN:-from the extension}"
SHOT="$CACHE/screenshots/$SCREEN.png"
rc=0
PW_MODULE="$CACHE/pw/node_modules/playwright-core" CS_URL="http://127.0.0.1:$PORT/?folder=$WORK/ws" \
  ISSUE_ONE_LINE="$(tr '\n' ' ' < "$ISSUE_FILE")" ISSUE_BASENAME="$(basename "$ISSUE_FILE")" \
  EXPECT_TOP="${EXPECT_TOP:-}" EXPECT_TOP_FILE="${EXPECT_TOP_FILE:-}" SHOT="$SHOT" CHROMIUM=/usr/bin/chromium \
  timeout 600 node "$HERE/vscode_real.js" || rc=$?
if [ "$rc" -ne 0 ]; then
  log "code-server log (tail):"; tail -n 30 "$WORK/cs.log" >&2 || true
  find "$WORK/ud/logs" -name '*Locus*' -exec tail -n 30 {} \; >&2 2>/dev/null || true
fi
if [ "$rc" -eq 0 ] && [ -n "$GIVEN_VSIX" ]; then
  # The answer must have come from the extension's own bundle: its server, runtime, encoder, models.
  OUTLOG="$(find "$WORK/ud/logs" -name '*Locus*.log' 2>/dev/null | head -n 1)"
  [ -n "$OUTLOG" ] || die "no Locus output channel log under $WORK/ud/logs"
  EXTDIR="$(find "$WORK/ext" -maxdepth 1 -type d -name 'locus.locus-*' | head -n 1)"
  for want in "$EXTDIR/server/bin/locus lsp (found via bundled)" "release bundle: $EXTDIR/server" \
    "ok      ONNX Runtime: $EXTDIR/server/lib/" "ok      encoder: locus-minilm-l6-loc" "in $EXTDIR/server/share/locus/models"; do
    grep -qF "$want" "$OUTLOG" || { cat "$OUTLOG" >&2; die "the Locus output channel does not say: $want"; }
  done
  [ -n "$(ls "$WORK/home/.cache/locus/vectors" 2>/dev/null)" ] || die "no vectors were cached under the new user's HOME: the encoder did not run"
  log "the installed platform .vsix answered with its own server, runtime, encoder and models"
fi
if [ -n "$SAVE_DIR" ]; then
  mkdir -p "$SAVE_DIR" && cp "$CACHE/screenshots"/$SCREEN*.png "$SAVE_DIR/" && log "screenshots copied to $SAVE_DIR"
fi
exit "$rc"
