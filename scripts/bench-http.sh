#!/usr/bin/env bash
# HTTP components side by side, loopback only: the same trivial
# `wasi:http/proxy` component (plugins/rust-http-ok) behind `wasmtime serve`
# (wasmtime-cli 48 from crates.io, installed into ~/.cache/fuelhost/tools
# the first time: about 15 minutes on 2 cores) and behind a release
# `fuelhost serve` at its route, each call charged (durability as given:
# `full` fsyncs every settlement, `process` does not). wrk drives each in
# turn with the same connections for the same time; prints requests per
# second, p50 and p99 for each and fuelhost's ratio.
# Usage: scripts/bench-http.sh [DURATION_S] [CONNECTIONS] [DURABILITY]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT"
duration=${1:-10}; connections=${2:-16}; durability=${3:-process}
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo; $sudo apt-get install -y -q wrk >/dev/null; }
wasmtime="$FUELHOST_CACHE/tools/bin/wasmtime"
if [ ! -x "$wasmtime" ]; then
  echo "bench-http: installing wasmtime-cli 48 into $FUELHOST_CACHE/tools (the first time: minutes)"
  cargo install --quiet --locked --root "$FUELHOST_CACHE/tools" wasmtime-cli@48.0.8
fi
[ -f "$FUELHOST_GUESTS/rust-http-ok.wasm" ] || bash scripts/build-guests.sh rust-http-ok
component="$FUELHOST_GUESTS/rust-http-ok.wasm"
export CARGO_TARGET_DIR="$FUELHOST_CACHE/target-bench"
cargo build --quiet --release -p fuelhost-cli --bin fuelhost
bin="$CARGO_TARGET_DIR/release/fuelhost"
work=$(mktemp -d)
wport=$((20000 + RANDOM % 10000)); fport=$((30000 + RANDOM % 10000))
trap 'kill $wpid $fpid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

# wasmtime serve: a fresh instance per request, as fuelhost makes; its
# defaults otherwise (fuel and epochs off), with `wasi:cli` linked (`-S
# cli`: Rust's std imports it, as fuelhost links it).
"$wasmtime" serve -S cli=y --addr "127.0.0.1:$wport" "$component" >"$work/wasmtime.log" 2>&1 &
wpid=$!

FUELHOST_LOG=warn "$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$fport" --durability "$durability" \
  >"$work/serve.log" 2>&1 &
fpid=$!
for _ in $(seq 100); do grep -q "serving on" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
export HOME="$work" FUELHOST_URL="http://127.0.0.1:$fport"
export FUELHOST_API_KEY=$(grep -o 'fh_[0-9a-f]*' "$work/serve.log")
alice=$("$bin" agent create alice --key-only)
bob=$("$bin" agent create bob --key-only)
"$bin" mint bob scrip 1000000000000 --id seed-scrip >/dev/null
"$bin" mint bob fuel 1000000000000000 --id seed-fuel >/dev/null
printf 'owner = "alice"\nname = "ok"\nversion = "1"\nprice = 1\nresource_policy = "caller_pays"\n' >"$work/ok.toml"
FUELHOST_API_KEY=$alice "$bin" upload "$work/ok.toml" "$component" >/dev/null
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$wport/" >/dev/null && break; sleep 0.1; done
curl -sf -H "Authorization: Bearer $bob" "http://127.0.0.1:$fport/run/alice/ok/" >/dev/null

cat >"$work/key.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $bob"
LUA
measure() { # name url [script]
  local out
  out=$(wrk -t2 -c"$connections" -d"${duration}s" --latency ${3:+-s "$3"} "$2")
  local rps p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  errors=$(echo "$out" | awk '/Non-2xx/ {print $4} /Socket errors/ {print}' | head -1)
  printf '%-28s %10s req/s  p50 %8s  p99 %8s  %s\n' "$1" "$rps" "$p50" "$p99" "${errors:-}"
  echo "$rps" >"$work/$1.rps"
}
echo "bench-http: ${duration}s each, $connections connections, $(nproc) cores, fuelhost durability $durability"
measure "wasmtime-serve" "http://127.0.0.1:$wport/"
measure "fuelhost-$durability" "http://127.0.0.1:$fport/run/alice/ok/" "$work/key.lua"
awk -v f="$(cat "$work/fuelhost-$durability.rps")" -v w="$(cat "$work/wasmtime-serve.rps")" \
  'BEGIN { printf "fuelhost / wasmtime serve: %.2fx\n", f / w }'
echo "charged calls settled: $("$bin" stats --json | grep -o '"total_usage_records": [0-9]*' | grep -o '[0-9]*$')"
