#!/usr/bin/env bash
# The editor-facing tests. Cheap ones always: protocol (real LSP client over stdio), the VS Code
# extension's unit tests (stubbed vscode) and packaging, Neovim 0.11.4 headless.
# With LOCUS_SLOW_EDITOR_TESTS=1 also Helix 25.01 and the newest Helix (Debian sid, 25.07+) in tmux,
# and VS Code (code-server + Chromium).
# Each test installs what it needs into $LOCUS_CACHE (default ~/.cache/locus). Needs target/release/locus
# (or LOCUS_BIN). Prints a timing line per test and ends with "editors: N passed, N failed".
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
names=(protocol vscode-unit nvim)
if [ "${LOCUS_SLOW_EDITOR_TESTS:-0}" = "1" ]; then
  names+=(helix helix-sid vscode-real)
fi
run_one() {
  case "$1" in
    protocol) "$ROOT/tests/protocol/run.sh" ;;
    vscode-unit) "$HERE/vscode-unit.sh" ;;
    nvim) "$HERE/nvim.sh" ;;
    helix) HX_SUITE=trixie "$HERE/helix.sh" ;;
    helix-sid) HX_SUITE=sid "$HERE/helix.sh" ;;
    vscode-real) "$HERE/vscode-real.sh" ;;
  esac
}
passed=0; failed=0; summary=()
for name in "${names[@]}"; do
  echo "=== editors: $name"
  start=$SECONDS
  if run_one "$name" < /dev/null; then
    passed=$((passed + 1)); status=PASS
  else
    failed=$((failed + 1)); status=FAIL
  fi
  summary+=("$(printf '%-12s %s %4ds' "$name" "$status" $((SECONDS - start)))")
done
echo "=== editor tests"
printf '  %s\n' "${summary[@]}"
echo "editors: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
