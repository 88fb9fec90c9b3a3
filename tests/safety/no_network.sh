#!/usr/bin/env bash
# Proves Locus opens no network connection: indexing with vectors, locating with the encoder and
# the learned model, and a whole LSP session (initialize, indexing, vectors, locateIssue, edits,
# shutdown) run under `strace -f -e trace=%network`, which records every network system call
# (socket, connect, bind, sendto, ...) of the process and its threads; the test fails if there
# is any. Then the same CLI run inside a fresh network namespace (`unshare -n`: no interfaces
# but a down loopback) must give the same answer as outside it.
# Usage: tests/safety/no_network.sh   (LOCUS_BIN overrides the binary; LOCUS_CACHE the cache)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../editors/lib.sh"
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
  strace -f -qq -e trace=%network -e signal=none -o "$log" "$@" > "$WORK/out" 2> "$WORK/err" \
    || { cat "$WORK/err" >&2; die "$* failed"; }
  if [ -s "$log" ]; then
    head -n 20 "$log" >&2
    die "network system calls by: $*"
  fi
  log "no network system call: $*"
}

trace index "$BIN" index "$WORK/ws" --json
grep -q '"vectors": [1-9]' "$WORK/out" || die "the index run computed no vectors (is the model installed?): $(cat "$WORK/out")"
trace locate "$BIN" locate "$WORK/ws" --issue "$ISSUE_FILE" --json
top_outside="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["functions"][0]["name"])' "$WORK/out")"
# The LSP session: the benchmark client drives a server started through strace (only the server
# is traced, not the Python client).
printf '#!/bin/sh\nexec strace -f -qq -e trace=%%network -e signal=none -o "%s" "%s" "$@"\n' \
  "$WORK/lsp.strace" "$BIN" > "$WORK/locus-traced"
chmod +x "$WORK/locus-traced"
python3 "$ROOT/scripts/bench_lsp.py" "$WORK/locus-traced" "$WORK/ws" "$WORK/issues.jsonl" 1 > "$WORK/out"
grep -q '"first_answer_s"' "$WORK/out" || die "the LSP session gave no answer: $(cat "$WORK/out")"
[ -f "$WORK/lsp.strace" ] || die "strace did not run the server"
if [ -s "$WORK/lsp.strace" ]; then head -n 20 "$WORK/lsp.strace" >&2; die "network system calls by the LSP server"; fi
log "no network system call: an LSP session ($(cat "$WORK/out"))"

if unshare -n true 2>/dev/null; then
  unshare -n "$BIN" locate "$WORK/ws" --issue "$ISSUE_FILE" --json > "$WORK/netns.json"
  top_inside="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["functions"][0]["name"])' "$WORK/netns.json")"
  [ "$top_inside" = "$top_outside" ] || die "answer differs without a network: $top_inside vs $top_outside"
  log "same answer inside a network namespace with no network: $top_inside"
else
  log "unshare -n is not permitted here: the namespace run was skipped (the strace runs above are the proof)"
fi
log "no-network test passed"
