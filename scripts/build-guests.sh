#!/usr/bin/env bash
# Builds every guest component in plugins/ from source into $FUELHOST_GUESTS
# (default ~/.cache/fuelhost/guests), one `<folder>.wasm` per plugin folder.
# With arguments, builds only the named folders. Run scripts/setup.sh once
# first: it installs the toolchains this script uses.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT"
mkdir -p "$FUELHOST_GUESTS" "$FUELHOST_CACHE/guest-builds"

wanted=("$@")
want() {
  [ ${#wanted[@]} -eq 0 ] && return 0
  local w; for w in "${wanted[@]}"; do [ "$w" = "$1" ] && return 0; done; return 1
}

# Content hash of a plugin folder plus the WIT contract and the Python
# guests' compiler version: a cached build is reused while none changed.
inputs_hash() {
  { (cd "$FUELHOST_ROOT" && find "$1" wit wit-0.2.0 -type f ! -name '*.wasm' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum)
    echo "componentize-py $FUELHOST_COMPONENTIZE_PY"; } | sha256sum | cut -c1-16
}

# Every guest is built by `fuelhost build` (host/cli/src/project.rs), the
# command users build their own projects with: one path for every language.
cargo build --quiet -p fuelhost-cli
fuelhost_bin="$CARGO_TARGET_DIR/debug/fuelhost"

# --- Rust guests: members of plugins/Cargo.toml, std built once -------------
for dir in plugins/rust-*/; do
  name=$(basename "$dir"); want "$name" || continue
  "$fuelhost_bin" build "$dir" >/dev/null 2>"$FUELHOST_CACHE/guest-builds/$name.log" ||
    { cat "$FUELHOST_CACHE/guest-builds/$name.log" >&2; exit 1; }
  mv "$dir/$name.wasm" "$FUELHOST_GUESTS/$name.wasm"
done

# --- Python, JavaScript, C and WAT guests: cached by input hash -------------
for dir in plugins/python-*/ plugins/js-*/ plugins/c-*/ plugins/wat-*/; do
  [ -d "$dir" ] || continue
  name=$(basename "$dir"); want "$name" || continue
  cached="$FUELHOST_CACHE/guest-builds/$name-$(inputs_hash "$dir").wasm"
  if [ ! -f "$cached" ]; then
    echo "build-guests: $name (fuelhost build)"
    "$fuelhost_bin" build "$dir" >/dev/null
    mv "$dir/$name.wasm" "$cached"
  fi
  cp "$cached" "$FUELHOST_GUESTS/$name.wasm"
done

echo "build-guests: guests in $FUELHOST_GUESTS: $(cd "$FUELHOST_GUESTS" && ls *.wasm | tr '\n' ' ')"
