#!/usr/bin/env bash
# The VS Code extension in real VS Code: code-server 4.139.1 (Node 24) driven by Debian's Chromium
# through playwright-core, against the real server on the example workspace.
# Usage: tests/editors/vscode-real.sh [--save-screenshot DIR]
# Leaves the screenshot in $CACHE/screenshots/vscode.png (and vscode-issue.png).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
SAVE_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    --save-screenshot) SAVE_DIR="$2"; shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
BIN="$(locus_bin)"
load_example
ensure_chromium
ensure_code_server
ensure_playwright
ensure_npm_deps "$ROOT/editors/vscode" vscode-ext

WORK="$(mktemp -d "${TMPDIR:-/tmp}/locus-vscode.XXXXXX")"
CS_PID=""
cleanup() { [ -n "$CS_PID" ] && kill "$CS_PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
VSIX="$("$ROOT/editors/vscode/package.sh" -o "$WORK/locus.vsix" 2>"$WORK/package.log")" || { cat "$WORK/package.log" >&2; die "packaging failed"; }
cp -r "$EXAMPLE_DIR" "$WORK/ws"
mkdir -p "$WORK/ud/User" "$WORK/ext" "$CACHE/screenshots"
cat > "$WORK/ud/User/settings.json" <<JSON
{
  "locus.serverPath": "$BIN",
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
"$CS_BIN" --extensions-dir "$WORK/ext" --user-data-dir "$WORK/ud" --install-extension "$VSIX" >"$WORK/install.log" 2>&1 \
  || { cat "$WORK/install.log" >&2; die "installing the extension failed"; }
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$CS_BIN" --bind-addr "127.0.0.1:$PORT" --auth none --disable-telemetry --disable-update-check \
  --disable-workspace-trust --user-data-dir "$WORK/ud" --extensions-dir "$WORK/ext" "$WORK/ws" >"$WORK/cs.log" 2>&1 &
CS_PID=$!
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$CS_PID" 2>/dev/null || { cat "$WORK/cs.log" >&2; die "code-server exited"; }
  sleep 0.5
done
log "code-server $("$CS_BIN" --version | head -n1 | cut -d' ' -f1) on port $PORT; extension $(basename "$VSIX"); server $BIN"
SHOT="$CACHE/screenshots/vscode.png"
rc=0
PW_MODULE="$CACHE/pw/node_modules/playwright-core" CS_URL="http://127.0.0.1:$PORT/?folder=$WORK/ws" \
  ISSUE_ONE_LINE="$(tr '\n' ' ' < "$ISSUE_FILE")" ISSUE_BASENAME="$(basename "$ISSUE_FILE")" \
  EXPECT_TOP="${EXPECT_TOP:-}" EXPECT_TOP_FILE="${EXPECT_TOP_FILE:-}" SHOT="$SHOT" CHROMIUM=/usr/bin/chromium \
  timeout 600 node "$HERE/vscode_real.js" || rc=$?
if [ "$rc" -ne 0 ]; then
  log "code-server log (tail):"; tail -n 30 "$WORK/cs.log" >&2 || true
  find "$WORK/ud/logs" -name '*Locus*' -exec tail -n 30 {} \; >&2 2>/dev/null || true
fi
if [ -n "$SAVE_DIR" ]; then
  mkdir -p "$SAVE_DIR" && cp "$CACHE/screenshots"/vscode*.png "$SAVE_DIR/" && log "screenshots copied to $SAVE_DIR"
fi
exit "$rc"
