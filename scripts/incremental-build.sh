#!/usr/bin/env bash
# Measures the edit-compile loop: how long `cargo build` (the binaries)
# and `cargo test --no-run` (every test target) take after one line changes
# in a file. For each FILE (default: one in the HTTP server, one in the
# ledger), appends a comment line, times the build, then restores the file
# and rebuilds so the next probe starts warm.
# Usage: scripts/incremental-build.sh [FILE...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT"

files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(host/server/src/health.rs host/ledger/src/lib.rs)
fi

probe() { # FILE COMMAND...: seconds COMMAND takes after FILE changes
  local f=$1; shift
  "$@" >/dev/null 2>&1
  local saved; saved=$(mktemp)
  cp -p "$f" "$saved"
  echo "// incremental-build probe $(date +%s%N)" >>"$f"
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1 || { cp -p "$saved" "$f"; echo "incremental-build: $* failed" >&2; exit 1; }
  end=$(date +%s.%N)
  cp -p "$saved" "$f"
  rm -f "$saved"
  touch "$f"
  "$@" >/dev/null 2>&1
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

printf '%-36s %12s %22s\n' "file touched" "cargo build" "cargo test --no-run"
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "incremental-build: no file $f" >&2; exit 2; }
  b=$(probe "$f" cargo build --workspace)
  t=$(probe "$f" cargo test --workspace --no-run)
  printf '%-36s %11ss %21ss\n' "$f" "$b" "$t"
done
