#!/usr/bin/env bash
# fuelhost against Extism per call, in one criterion run (bench/extism).
# Extism 1.41 brings wasmtime 49, which needs Rust 1.96: this uses rustup's
# toolchain when it is new enough, else Debian's rustc (scripts/setup.sh
# installs it). Extra arguments go to criterion.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT/bench/extism"
export CARGO_TARGET_DIR="$FUELHOST_CACHE/target-extism"
cargo_bin=cargo
if ! rustc --version | awk '{split($2, v, "."); exit !(v[1] > 1 || v[2] >= 96)}'; then
  cargo_bin=/usr/bin/cargo
  export RUSTC=/usr/bin/rustc
fi
"$cargo_bin" bench --bench per_call -- "$@"
