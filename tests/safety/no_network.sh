#!/usr/bin/env bash
# Proves Locus opens no network connection: indexing with vectors, locating with the encoder and
# the learned model, and a whole LSP session (initialize, indexing, vectors, locateIssue, edits,
# shutdown) run under `strace -f -e trace=%network`, which records every network system call
# (socket, connect, bind, sendto, ...) of the process and its threads; the test fails if the log
# holds any. network_calls.py reads each log line's system call name, so strace's own lines (a
# lost thread's `???( <detached ...>`, exits, signals) do not count; network_calls_test.sh tests
# it. Then the same CLI run inside a fresh network namespace (`unshare -n`: no interfaces but a
# down loopback) must give the same answer as outside it.
# Usage: tests/safety/no_network.sh   (LOCUS_BIN overrides the binary; LOCUS_CACHE the cache)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../editors/lib.sh"
. "$HERE/network_trace.sh"
BIN="$(locus_bin)"
load_example
command -v strace >/dev/null || apt_install strace
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp -r "$EXAMPLE_DIR" "$WORK/ws"
python3 -c 'import json,sys; print(json.dumps({"problem_statement": open(sys.argv[1]).read()}))' \
  "$ISSUE_FILE" > "$WORK/issues.jsonl"

trace() { # trace NAME CMD... : runs CMD under strace; fails on any network system call
  local log="$WORK/$1.strace"; shift
  "${STRACE_NETWORK[@]}" -o "$log" "$@" > "$WORK/out" 2> "$WORK/err" \
    || { cat "$WORK/err" >&2; die "$* failed"; }
  assert_no_network_calls "$log" "$*"
}

trace index "$BIN" index "$WORK/ws" --json
grep -q '"vectors": [1-9]' "$WORK/out" || die "the index run computed no vectors (is the model installed?): $(cat "$WORK/out")"
trace locate "$BIN" locate "$WORK/ws" --issue "$ISSUE_FILE" --json
top_outside="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["functions"][0]["qualifiedName"])' "$WORK/out")"
# The LSP session: the benchmark client drives a server started through strace (only the server
# is traced, not the Python client).
printf '#!/bin/sh\nexec %s -o "%s" "%s" "$@"\n' \
  "${STRACE_NETWORK[*]}" "$WORK/lsp.strace" "$BIN" > "$WORK/locus-traced"
chmod +x "$WORK/locus-traced"
python3 "$ROOT/scripts/bench_lsp.py" "$WORK/locus-traced" "$WORK/ws" "$WORK/issues.jsonl" 1 > "$WORK/out"
grep -q '"first_answer_s"' "$WORK/out" || die "the LSP session gave no answer: $(cat "$WORK/out")"
[ -f "$WORK/lsp.strace" ] || die "strace did not run the server"
assert_no_network_calls "$WORK/lsp.strace" "an LSP session ($(cat "$WORK/out"))"

if unshare -n true 2>/dev/null; then
  unshare -n "$BIN" locate "$WORK/ws" --issue "$ISSUE_FILE" --json > "$WORK/netns.json"
  top_inside="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["functions"][0]["qualifiedName"])' "$WORK/netns.json")"
  [ "$top_inside" = "$top_outside" ] || die "answer differs without a network: $top_inside vs $top_outside"
  log "same answer inside a network namespace with no network: $top_inside"
else
  log "unshare -n is not permitted here: the namespace run was skipped (the strace runs above are the proof)"
fi
log "no-network test passed"
