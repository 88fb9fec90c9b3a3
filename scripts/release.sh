#!/usr/bin/env bash
# Builds the self-contained release bundle of Locus (issue 22):
#   target/dist/locus-<version>-x86_64-linux.tar.gz, unpacking to
#   locus-<version>-x86_64-linux/
#     MANIFEST.sha256                        sha256 of every other file (`sha256sum -c MANIFEST.sha256`)
#     bin/locus                              the language server and command line
#     lib/libonnxruntime.so.1.31.1           ONNX Runtime (from the PyPI wheel setup.sh installs)
#     share/locus/encoder/locus-minilm-l6-loc/  Locus's encoder: model.onnx (int8), tokenizer.json,
#                                            checksums.sha256
#     share/locus/models/                    the localization models (ranker*.onnx + .json, policy, <language>/)
#     share/locus/licenses/                  ONNX Runtime's license and notices
#     README.md                              how to install it into an editor
# The binary finds these relative to itself (server/embed/src/bundle.rs): nothing is downloaded
# at run time and no Python is needed where it runs.
#
#   bash scripts/release.sh [--out DIR] [--vsix]      (default DIR: target/dist)
#
# --vsix also builds the platform VS Code extension carrying this bundle in its server/ folder
# (rust-analyzer's convention): DIR/locus-<version>-linux-x64.vsix (needs Node 20+ and npm).
#
# Runs scripts/setup.sh first (the runtime and the encoder come from the cache it fills) and the
# release build. The archive is reproducible for the same inputs: sorted names, fixed owner and
# mtime (SOURCE_DATE_EPOCH, default the last commit's time).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
die() { echo "release.sh: $*" >&2; exit 1; }

OUT="$ROOT/target/dist"
VSIX=0
while [ $# -gt 0 ]; do
  case "$1" in
  --out) OUT="$2"; shift 2 ;;
  --vsix) VSIX=1; shift ;;
  *) die "unknown argument $1 (usage: bash scripts/release.sh [--out DIR] [--vsix])" ;;
  esac
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd -P)"

CACHE="${LOCUS_CACHE:-$HOME/.cache/locus}"
bash scripts/setup.sh >&2
cargo build --release -p locus >&2

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)"
[ -n "$VERSION" ] || die "no workspace version in Cargo.toml"
ARCH="$(uname -m)"
[ "$ARCH" = x86_64 ] || die "the bundle carries the x86_64 ONNX Runtime; this machine is $ARCH"
NAME="locus-$VERSION-x86_64-linux"
STAGE="$OUT/$NAME"
rm -rf "$STAGE" "$OUT/$NAME.tar.gz"
mkdir -p "$STAGE/bin" "$STAGE/lib" "$STAGE/share/locus/encoder/locus-minilm-l6-loc" \
  "$STAGE/share/locus/models" "$STAGE/share/locus/licenses"

# The binary, without its line tables (the bundle is for users; a backtrace still names functions).
cp target/release/locus "$STAGE/bin/locus"
strip --strip-debug "$STAGE/bin/locus" 2>/dev/null || true

ORT_LIB="$(ls "$CACHE"/ort/onnxruntime/capi/libonnxruntime.so.1.31.* 2>/dev/null | head -1)"
[ -n "$ORT_LIB" ] || die "no ONNX Runtime in $CACHE/ort (scripts/setup.sh installs it)"
cp "$ORT_LIB" "$STAGE/lib/"
for f in "$CACHE"/ort/onnxruntime-*.dist-info/licenses/* "$CACHE"/ort/onnxruntime-*.dist-info/LICENSE* \
  "$CACHE"/ort/onnxruntime/LICENSE* "$CACHE"/ort/onnxruntime/ThirdPartyNotices*; do
  [ -f "$f" ] && cp "$f" "$STAGE/share/locus/licenses/onnxruntime-$(basename "$f")"
done

# The encoder: the two files the embedder reads, with their checksums (checked against the
# record of models/encoder/ that setup.sh installed them from).
ENC="$CACHE/models/locus-minilm-l6-loc"
[ -f "$ENC/checksums.sha256" ] || die "Locus's encoder is not installed in $ENC (scripts/setup.sh installs it)"
want="$(sed -n 's/.*"sha256": *"\([0-9a-f]\{64\}\)".*/\1/p' models/encoder/record.json | head -1)"
got="$(sha256sum "$ENC/model.onnx" | cut -d' ' -f1)"
[ "$want" = "$got" ] || die "$ENC/model.onnx has sha256 $got, models/encoder/record.json records $want; rerun scripts/setup.sh"
cp "$ENC/model.onnx" "$ENC/tokenizer.json" "$STAGE/share/locus/encoder/locus-minilm-l6-loc/"
(cd "$STAGE/share/locus/encoder/locus-minilm-l6-loc" && sha256sum model.onnx tokenizer.json > checksums.sha256)

# The localization models and the search policy (not the test fixtures), and the models trained
# on one language alone (models/<language>/) where there are any.
for m in ranker ranker.files ranker.tail policy; do
  cp "models/$m.onnx" "models/$m.json" "$STAGE/share/locus/models/"
done
for lang in python rust; do
  [ -f "models/$lang/ranker.onnx" ] || continue
  mkdir -p "$STAGE/share/locus/models/$lang"
  for m in ranker ranker.files ranker.tail; do
    if [ -f "models/$lang/$m.onnx" ]; then
      cp "models/$lang/$m.onnx" "models/$lang/$m.json" "$STAGE/share/locus/models/$lang/"
    fi
  done
done

cat > "$STAGE/README.md" <<EOF
# Locus $VERSION (x86_64 Linux)

Everything Locus needs is in this folder: the \`locus\` language server (\`bin/locus\`), ONNX Runtime
(\`lib/\`), its encoder and its localization models (\`share/locus/\`). It works offline; nothing is
downloaded. Check it with \`bin/locus doctor\`, and the files with \`sha256sum -c MANIFEST.sha256\`.

- **Command line**: \`bin/locus locate PATH --text "the issue"\` (or put \`bin/\` on your PATH).
- **VS Code**: \`code --install-extension locus-$VERSION-linux-x64.vsix\` (built beside this archive by
  \`scripts/release.sh --vsix\`; it carries this whole folder), or set the extension's
  \`locus.serverPath\` to this folder's \`bin/locus\`.
- **Neovim 0.11+**: add \`share/locus/nvim\` to the runtimepath (lazy.nvim: \`{ dir = "<this folder>/share/locus/nvim" }\`),
  then \`vim.lsp.enable('locus')\` (the plugin runs this bundle's \`bin/locus\`); \`:checkhealth locus\` says what it found.
- **Helix**: in \`languages.toml\`,
  \`\`\`toml
  [language-server.locus]
  command = "<this folder>/bin/locus"
  [[language]]
  name = "python"
  language-servers = ["pyright", "locus"]   # keep your others; add "locus"
  \`\`\`
EOF

# Editor files that load from the bundle (the Neovim plugin folder).
mkdir -p "$STAGE/share/locus/nvim"
cp -r editors/nvim/lua editors/nvim/lsp editors/nvim/plugin editors/nvim/README.md "$STAGE/share/locus/nvim/"

(cd "$STAGE" && find . -type f ! -name MANIFEST.sha256 -printf '%P\n' | LC_ALL=C sort | xargs sha256sum > MANIFEST.sha256)

EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" -C "$OUT" -cf - "$NAME" \
  | gzip -n -9 > "$OUT/$NAME.tar.gz"
if [ "$VSIX" = 1 ]; then
  bash editors/vscode/package.sh --bundle "$STAGE" -o "$OUT/locus-$VERSION-linux-x64.vsix" >&2
  echo "$OUT/locus-$VERSION-linux-x64.vsix"
fi
echo "$OUT/$NAME.tar.gz"
