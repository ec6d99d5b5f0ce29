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

# Content hash of a plugin folder plus the WIT contract: a cached build is
# reused while neither changed.
inputs_hash() {
  (cd "$FUELHOST_ROOT" && find "$1" wit -type f ! -name '*.wasm' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# --- Rust guests: one cargo workspace, plugins/Cargo.toml ------------------
rust_crates=()
for dir in plugins/rust-*/; do
  name=$(basename "$dir"); want "$name" && rust_crates+=("$name")
done
if [ ${#rust_crates[@]} -gt 0 ]; then
  pkgs=(); for c in "${rust_crates[@]}"; do pkgs+=(-p "$c"); done
  target_dir="$FUELHOST_CACHE/guest-target"
  if command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    cargo build --quiet --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml \
      --target-dir "$target_dir" "${pkgs[@]}"
  elif [ -x /usr/bin/cargo ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
    echo "build-guests: Rust guests with Debian's rustc and a rebuilt std (the first build takes minutes)"
    RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
      CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS="-L/usr/lib/wasm32-wasi" \
      /usr/bin/cargo build --quiet --release --target wasm32-wasip2 -Zbuild-std=std,panic_abort \
      --manifest-path plugins/Cargo.toml --target-dir "$target_dir" "${pkgs[@]}"
  else
    echo "build-guests: no way to build wasm32-wasip2 guests: run scripts/setup.sh (installs Debian's rustc-web, rust-web-src, wasi-libc), or 'rustup target add wasm32-wasip2'" >&2
    exit 1
  fi
  for c in "${rust_crates[@]}"; do
    cp "$target_dir/wasm32-wasip2/release/${c//-/_}.wasm" "$FUELHOST_GUESTS/$c.wasm"
  done
fi

# --- Python guests: componentize-py, cached by input hash -------------------
for dir in plugins/python-*/; do
  name=$(basename "$dir"); want "$name" || continue
  world=artifact; [ -f "$dir/world" ] && world=$(cat "$dir/world")
  cached="$FUELHOST_CACHE/guest-builds/$name-$(inputs_hash "$dir").wasm"
  if [ ! -f "$cached" ]; then
    if [ ! -x "$FUELHOST_VENV/bin/componentize-py" ]; then
      echo "build-guests: componentize-py is missing: run scripts/setup.sh" >&2; exit 1
    fi
    echo "build-guests: $name (componentize-py, about a minute)"
    (cd "$dir" && "$FUELHOST_VENV/bin/componentize-py" -d "$FUELHOST_ROOT/wit" -w "$world" \
        componentize -p . app -o "$cached.tmp") >/dev/null
    mv "$cached.tmp" "$cached"
  fi
  cp "$cached" "$FUELHOST_GUESTS/$name.wasm"
done

# --- JavaScript guests: componentize-js, cached by input hash ---------------
for dir in plugins/js-*/; do
  [ -d "$dir" ] || continue
  name=$(basename "$dir"); want "$name" || continue
  world=artifact; [ -f "$dir/world" ] && world=$(cat "$dir/world")
  cached="$FUELHOST_CACHE/guest-builds/$name-$(inputs_hash "$dir").wasm"
  if [ ! -f "$cached" ]; then
    cjs="$FUELHOST_CACHE/js/node_modules/.bin/componentize-js"
    if [ ! -x "$cjs" ]; then
      echo "build-guests: componentize-js is missing: run scripts/setup.sh" >&2; exit 1
    fi
    echo "build-guests: $name (componentize-js, about a minute)"
    "$cjs" "$dir/app.js" -w "$FUELHOST_ROOT/wit" -n "$world" -d http fetch-event -o "$cached.tmp" >/dev/null
    mv "$cached.tmp" "$cached"
  fi
  cp "$cached" "$FUELHOST_GUESTS/$name.wasm"
done

# --- C guests: wit-bindgen c + clang (wasi-libc) + the preview-1 adapter -----
for dir in plugins/c-*/; do
  [ -d "$dir" ] || continue
  name=$(basename "$dir"); want "$name" || continue
  world=artifact; [ -f "$dir/world" ] && world=$(cat "$dir/world")
  cached="$FUELHOST_CACHE/guest-builds/$name-$(inputs_hash "$dir").wasm"
  if [ ! -f "$cached" ]; then
    wbg="$FUELHOST_CACHE/tools/bin/wit-bindgen"
    adapter=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasi-preview1-component-adapter-provider-48.*/artefacts/wasi_snapshot_preview1.reactor.wasm 2>/dev/null | sort -V | tail -1)
    if [ ! -x "$wbg" ] || [ -z "$adapter" ] || ! command -v clang >/dev/null; then
      echo "build-guests: the C toolchain is incomplete (wit-bindgen, clang, the preview-1 adapter): run scripts/setup.sh" >&2; exit 1
    fi
    echo "build-guests: $name (wit-bindgen c + clang)"
    out="$FUELHOST_CACHE/guest-builds/$name-build"
    rm -rf "$out" && mkdir -p "$out"
    "$wbg" c "$FUELHOST_ROOT/wit" --world "$world" --out-dir "$out" >/dev/null 2>"$out/wit-bindgen.log" ||
      { cat "$out/wit-bindgen.log" >&2; exit 1; }
    clang --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor -I "$out" \
      "$dir"/*.c "$out"/*.c "$out"/*_component_type.o -o "$out/core.wasm"
    "$FUELHOST_VENV/bin/wasm-tools" component new "$out/core.wasm" \
      --adapt wasi_snapshot_preview1="$adapter" -o "$cached.tmp"
    mv "$cached.tmp" "$cached"
  fi
  cp "$cached" "$FUELHOST_GUESTS/$name.wasm"
done

# --- WAT guests: a core module written against the canonical ABI by hand;
# wasm-tools embeds the world's WIT and wraps it into a component -----------
for dir in plugins/wat-*/; do
  [ -d "$dir" ] || continue
  name=$(basename "$dir"); want "$name" || continue
  world=artifact; [ -f "$dir/world" ] && world=$(cat "$dir/world")
  out="$FUELHOST_CACHE/guest-builds/$name-core.wasm"
  "$FUELHOST_VENV/bin/wasm-tools" component embed "$FUELHOST_ROOT/wit" --world "$world" "$dir/plugin.wat" -o "$out"
  "$FUELHOST_VENV/bin/wasm-tools" component new "$out" -o "$FUELHOST_GUESTS/$name.wasm"
done

echo "build-guests: guests in $FUELHOST_GUESTS: $(cd "$FUELHOST_GUESTS" && ls *.wasm | tr '\n' ' ')"
