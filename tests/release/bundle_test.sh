#!/usr/bin/env bash
# The release bundle as a new user gets it (issue 22): scripts/release.sh builds it; it is unpacked
# into a fresh folder and run with an empty HOME (no cache), a PATH that holds only the bundle's bin/
# (no Python, no ORT_DYLIB_PATH, nothing of this checkout) and, where permitted, no network
# (`unshare -n`). Then:
#   (a) `locus doctor` finds the runtime, the encoder and the models inside the bundle, and
#       `locus locate` on examples/shop answers with the encoder and the learned models;
#   (b) the platform .vsix carrying the bundle (scripts/release.sh --vsix), installed into real VS Code
#       (code-server 4.139.1 + Chromium) with an empty HOME, no Python on PATH and no
#       locus.serverPath, locates the example issue with its own server, runtime, encoder and models
#       (tests/editors/vscode-real.sh --vsix);
#   (c) Neovim loads the bundle's plugin folder (share/locus/nvim) and `:checkhealth locus` is clean.
# Usage: tests/release/bundle_test.sh   (LOCUS_CACHE: the developer cache setup.sh fills)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/../editors/lib.sh"
load_example
WORK="$(mktemp -d "${TMPDIR:-/tmp}/locus-bundle.XXXXXX")"
trap '[ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

bash "$ROOT/scripts/release.sh" --out "$WORK/dist" --vsix > "$WORK/built"
ARCHIVE="$(tail -n 1 "$WORK/built")"
VSIX="$(grep '\.vsix$' "$WORK/built" | tail -n 1)"
[ -f "$ARCHIVE" ] || die "scripts/release.sh wrote no archive ($(cat "$WORK/built"))"
[ -f "$VSIX" ] || die "scripts/release.sh --vsix wrote no .vsix ($(cat "$WORK/built"))"
log "platform extension: $VSIX ($(du -h "$VSIX" | cut -f1))"
log "bundle: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
mkdir -p "$WORK/install" "$WORK/home"
tar -xzf "$ARCHIVE" -C "$WORK/install"
B="$WORK/install/$(basename "$ARCHIVE" .tar.gz)"
(cd "$B" && sha256sum --quiet -c MANIFEST.sha256) || die "the bundle's files do not match its MANIFEST.sha256"
cp -r "$EXAMPLE_DIR" "$WORK/ws"

# A new user's environment: nothing but HOME and the bundle's bin/ on PATH.
NET=()
if unshare -n true 2>/dev/null; then
  NET=("$(command -v unshare)" -n)
else
  log "unshare -n is not permitted here: the bundle runs with the network present (it makes no call either way: tests/safety)"
fi
as_user() { env -i HOME="$WORK/home" PATH="$B/bin" "${NET[@]}" "$@"; }
as_user /bin/sh -c 'command -v python3 >/dev/null' && die "python3 is reachable in the new user's environment"

# (a) doctor, then locate with the encoder and the models.
as_user "$B/bin/locus" doctor > "$WORK/doctor" 2>&1 || { cat "$WORK/doctor" >&2; die "locus doctor found something missing"; }
for want in "release bundle: $B" "ok      ONNX Runtime: $B/lib/" "ok      encoder: locus-minilm-l6-loc" \
  "in $B/share/locus/encoder/locus-minilm-l6-loc" "in $B/share/locus/models"; do
  grep -qF "$want" "$WORK/doctor" || { cat "$WORK/doctor" >&2; die "locus doctor does not say: $want"; }
done
log "doctor: everything found inside the bundle"

as_user "$B/bin/locus" locate "$WORK/ws" --issue "$ISSUE_FILE" --json > "$WORK/locate.json" 2> "$WORK/locate.err" \
  || { cat "$WORK/locate.err" >&2; die "locus locate failed"; }
python3 - "$WORK/locate.json" "$EXPECT_TOP" <<'PY' || die "the bundle's answer is not the full engine's"
import json, sys
d = json.load(open(sys.argv[1]))
s = d["stats"]
assert s["semanticReady"] > 0 and s["semanticReady"] == s["vectorsWanted"], f"encoder not used: {s}"
assert s["ranking"].startswith("model"), f"the learned models did not rank: {s['ranking']}"
top = d["functions"][0]["name"]
assert not sys.argv[2] or top == sys.argv[2], f"top {top}, expected {sys.argv[2]}"
print(f"locate: top {top}, ranked by {s['ranking']}, {s['semanticReady']} vectors", file=sys.stderr)
PY
[ -n "$(ls "$WORK/home/.cache/locus/vectors" 2>/dev/null)" ] || die "no vectors were cached under the new user's HOME"

# (c) Neovim loads the plugin folder from the bundle; :checkhealth locus is clean.
ensure_nvim
as_user "$NVIM" --headless -u NONE -i NONE --cmd "set rtp^=$B/share/locus/nvim" \
  -c "runtime plugin/locus.lua" -c "checkhealth locus" -c "write! $WORK/health.txt" -c "qa!" \
  > "$WORK/nvim.out" 2>&1 || { cat "$WORK/nvim.out" >&2; die "Neovim failed to run :checkhealth locus"; }
grep -q "server: $B/bin/locus" "$WORK/health.txt" || { cat "$WORK/health.txt" >&2; die ":checkhealth locus did not find the bundled server"; }
grep -q "ERROR" "$WORK/health.txt" && { cat "$WORK/health.txt" >&2; die ":checkhealth locus reports an error"; }
[ "$(grep -c "OK" "$WORK/health.txt")" -ge 5 ] || { cat "$WORK/health.txt" >&2; die ":checkhealth locus has fewer than 5 OK lines"; }
log "nvim: :checkhealth locus clean with the bundle's plugin folder"

# (b) the platform .vsix in real VS Code, installed as a new user would.
LISTING="$(unzip -l "$VSIX")"
for f in extension/server/bin/locus extension/server/lib/libonnxruntime.so.1.31.1 extension/server/MANIFEST.sha256 \
  extension/server/share/locus/encoder/locus-minilm-l6-loc/model.onnx extension/server/share/locus/models/ranker.onnx; do
  grep -qF "$f" <<<"$LISTING" || die "$VSIX lacks $f"
done
grep -q 'TargetPlatform="linux-x64"' <(unzip -p "$VSIX" extension.vsixmanifest) || die "$VSIX is not a linux-x64 platform extension"
bash "$ROOT/tests/editors/vscode-real.sh" --vsix "$VSIX" || die "the platform .vsix failed in code-server"
log "bundle test passed"
