#!/usr/bin/env bash
# Time the README's quick start, as written, from nothing to a charged call,
# once per language given (default: python rust js): the block's
# `fuelhost new artifact python hello` line names each language in turn.
# Runs in a scratch folder with a fresh HOME, on a free port, with the
# `fuelhost` the set-up command linked. Prints one line per language.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT"
link_fuelhost

block=$(awk '/A quick start, on one machine/ {found=1} found && /^```sh$/ {inside=1; next} inside && /^```$/ {exit} inside {print}' README.md)
[ -n "$block" ] || { echo "quick-start-time: no quick start found in README.md" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

for lang in "${@:-python rust js}"; do
  for l in $lang; do
    work=$(mktemp -d)
    script="set -euo pipefail
trap 'kill \$(jobs -p) 2>/dev/null || true' EXIT
export PATH=\"$FUELHOST_CACHE/bin:\$PATH\"
${block//fuelhost new artifact python hello/fuelhost new artifact $l hello}
wait"
    script=${script//8080/$port}
    start=$(date +%s%N)
    # A fresh HOME (no saved login), the caller's FUELHOST_* settings
    # dropped; Rust's homes stay where they are.
    if (cd "$work" &&
      env -u FUELHOST_URL -u FUELHOST_API_KEY -u FUELHOST_CONFIG -u XDG_CONFIG_HOME -u FUELHOST_DATA_DIR \
        -u FUELHOST_LISTEN -u FUELHOST_SERVE_CONFIG \
        HOME="$work" FUELHOST_CACHE="$FUELHOST_CACHE" \
        CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" \
        timeout 900 bash -c "$script" >"$work/out.log" 2>&1); then
      tenths=$(( ($(date +%s%N) - start) / 100000000 ))
      printf '%-7s first charged call in %d.%d s (from an empty folder: serve, agents, new, build, upload, invoke)\n' \
        "$l" $((tenths / 10)) $((tenths % 10))
      rm -rf "$work"
    else
      echo "$l: the quick start failed; its output is in $work/out.log" >&2
      exit 1
    fi
  done
done
