#!/usr/bin/env bash
# Helix 25.01 (Debian trixie, unpacked with its own libc) driven through tmux, with editors/helix's
# languages.toml and the real server: `gr` in the example *.issue.md lists the expected top hit first;
# `space a` → "Locate issue from selection" opens the top hit (window/showDocument) and `space D`
# lists the hint diagnostics "[score] name — reason".
# With HX_SUITE=sid (Helix 25.07 or later from Debian sid) it also checks editors/helix/config.toml's
# `space L` binding (:lsp-workspace-command with the selection as JSON).
# Usage: tests/editors/helix.sh   or   HX_SUITE=sid tests/editors/helix.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/lib.sh"
BIN="$(locus_bin)"
load_example
ensure_helix
command -v tmux >/dev/null || apt_install tmux

WORK="$(mktemp -d "${TMPDIR:-/tmp}/locus-helix.XXXXXX")"
S="locus-hx-$$"
cleanup() { tmux kill-session -t "$S" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cp -r "$EXAMPLE_DIR" "$WORK/ws"
mkdir -p "$WORK/ws/.git" "$WORK/config/helix" "$WORK/bin" "$CACHE/screenshots"
ISSUE_REL="${ISSUE_FILE#"$EXAMPLE_DIR"/}"
# The shipped languages.toml, unchanged: `locus` is found on PATH.
cp "$ROOT/editors/helix/languages.toml" "$WORK/config/helix/languages.toml"
if [ "$HX_SUITE" = sid ]; then
  cp "$ROOT/editors/helix/config.toml" "$WORK/config/helix/config.toml"
  printf '\n[editor]\nmouse = false\n' >> "$WORK/config/helix/config.toml"
else
  printf '[editor]\nmouse = false\n' > "$WORK/config/helix/config.toml"
fi
ln -s "$BIN" "$WORK/bin/locus"
L="$HXROOT/usr/lib/x86_64-linux-gnu"
cat > "$WORK/hx" <<SH
#!/bin/sh
export PATH="$WORK/bin:\$PATH" HELIX_RUNTIME="$HXROOT/usr/lib/hx/runtime" XDG_CONFIG_HOME="$WORK/config" XDG_CACHE_HOME="$WORK/cache" XDG_DATA_HOME="$WORK/data"
exec "$L/ld-linux-x86-64.so.2" --library-path "$L" "$HXROOT/usr/bin/hx" "\$@" 2>"$WORK/hx.stderr"
SH
chmod +x "$WORK/hx"

cap() { tmux capture-pane -t "$S" -p; }
keys() { tmux send-keys -t "$S" "$@"; }
# Escape on its own: followed at once by another key, Helix would read Alt+key.
esc() { tmux send-keys -t "$S" Escape; sleep 0.3; }
# wait_for REGEX SECONDS: poll the screen until REGEX (grep -E) appears.
wait_for() {
  local re="$1" secs="$2" i
  for ((i = 0; i < secs * 10; i++)); do
    if cap | grep -qE -- "$re"; then return 0; fi
    sleep 0.1
  done
  return 1
}
# wait_status REGEX SECONDS: like wait_for, on the status line only (the last two screen lines).
wait_status() {
  local re="$1" secs="$2" i
  for ((i = 0; i < secs * 10; i++)); do
    if cap | tail -n 2 | grep -qE -- "$re"; then return 0; fi
    sleep 0.1
  done
  return 1
}
fail() {
  cap > "$CACHE/screenshots/helix.txt" || true
  log "screen:"; cat "$CACHE/screenshots/helix.txt" >&2 || true
  log "helix log (tail):"; tail -n 30 "$WORK/cache/helix/helix.log" >&2 || true
  echo "0 passed, 1 failed"
  die "$*"
}
passed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }

HXV="$(hx_version)"
log "helix test: $HXV with $BIN on $WORK/ws (expected top file: ${EXPECT_TOP_FILE:-any})"
tmux new-session -d -s "$S" -x 200 -y 50 -c "$WORK/ws" "$WORK/hx $ISSUE_REL"
wait_for "$(basename "$ISSUE_REL")" 20 || fail "Helix did not start"
ok "$HXV opens $(basename "$ISSUE_REL")"

# 1. `gr`: the server ranks the whole buffer; Helix shows the locations in its picker, best first.
# Retry while the server starts or indexes ("No configured language server…", "No references found.").
want="${EXPECT_TOP_FILE:-[^ ]+}"
found=""
deadline=$((SECONDS + ${LOCUS_INDEX_TIMEOUT_S:-120}))
while [ $SECONDS -lt $deadline ]; do
  keys g r
  if wait_for "$want:[0-9]+|No references found|No configured language server" 10; then
    # Before the server has answered `initialize` Helix says no server supports goto-reference.
    if cap | grep -qE "$want:[0-9]+"; then found=1; break; fi
  fi
  esc; sleep 2
done
[ -n "$found" ] || fail "gr did not list ${EXPECT_TOP_FILE:-a location} (is the server starting? see the Helix log)"
cap > "$CACHE/screenshots/helix-gr.txt"
# The first picker row is the top of the ranking.
first="$(cap | grep -oE '[A-Za-z0-9_./-]+\.(py|rs):[0-9]+' | head -n1)"
log "picker first entry: $first"
if [ -n "${EXPECT_TOP_FILE:-}" ]; then
  [[ "$first" == "$EXPECT_TOP_FILE":* ]] || fail "first picker entry $first is not in $EXPECT_TOP_FILE"
fi
ok "gr in the *.issue.md lists the ranking with the top hit first ($first)"
keys Enter
wait_status " ${first%%:*} " 10 || fail "Enter did not open $first"
ok "Enter on the first entry opens ${first%%:*}"

# 2. Code action on a selection → executeCommand → showDocument (top hit) + hint diagnostics.
esc
keys ':' "open $ISSUE_REL" Enter
wait_for " $(basename "$ISSUE_REL") " 10 || fail "could not return to the issue"
keys '%'
sleep 0.3
keys Space a
wait_for "Locate issue from selection" 20 || fail "space a did not offer \"Locate issue from selection\""
ok "space a on a selection offers \"Locate issue from selection\""
keys Enter
top_file="${first%%:*}"
wait_status " ${top_file//./\\.} " 30 || fail "the code action did not open the top hit $top_file"
sleep 1
ok "the code action opened the top hit $top_file (window/showDocument)"
esc
keys Space D
wait_for '\[[0-9]+\.[0-9]{2}\] ' 20 || fail "space D shows no \"[score] name — reason\" diagnostics"
cap > "$CACHE/screenshots/helix.txt"
ok "space D lists the hits as hint diagnostics: $(cap | grep -oE '\[[0-9]+\.[0-9]{2}\] [^│]*' | head -n1 | sed 's/ *$//')"
esc
if [ "$HX_SUITE" = sid ]; then
  # 3. 25.07+: `space L` sends the selection through :lsp-workspace-command (editors/helix/config.toml).
  esc
  keys ':' "open $ISSUE_REL" Enter
  wait_status " ${ISSUE_REL//./\\.} " 10 || fail "could not return to the issue"
  keys '%'
  sleep 0.3
  keys Space L
  wait_status " ${top_file//./\\.} " 30 || fail "space L did not open the top hit $top_file"
  ok "space L (:lsp-workspace-command locus.locateIssue <selection as JSON>) opened the top hit $top_file"
  esc
fi
keys ':' 'qa!' Enter
sleep 0.5
echo "$passed passed, 0 failed"
