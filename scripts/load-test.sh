#!/usr/bin/env bash
# Load test of invoke over HTTP, loopback only: a release `fuelhost serve`
# in a temporary data directory, agents alice and bob, rust-echo at price 1,
# then wrk posting invocations as bob. Prints wrk's summary with latency
# percentiles. Usage: scripts/load-test.sh [DURATION_S] [CONNECTIONS] [DURABILITY]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT"
duration=${1:-10}; connections=${2:-16}; durability=${3:-full}
command -v wrk >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo; $sudo apt-get install -y -q wrk >/dev/null; }
[ -f "$FUELHOST_GUESTS/rust-echo.wasm" ] || bash scripts/build-guests.sh rust-echo
export CARGO_TARGET_DIR="$FUELHOST_CACHE/target-bench"
cargo build --quiet --release -p fuelhost-cli --bin fuelhost
bin="$CARGO_TARGET_DIR/release/fuelhost"
work=$(mktemp -d); port=$((20000 + RANDOM % 20000))
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
FUELHOST_LOG=warn "$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --durability "$durability" >"$work/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q "serving on" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
export HOME="$work" FUELHOST_URL="http://127.0.0.1:$port"
export FUELHOST_API_KEY=$(grep -o 'fh_[0-9a-f]*' "$work/serve.log")
alice=$("$bin" agent create alice --json | grep -o 'fh_[0-9a-f]*')
bob=$("$bin" agent create bob --json | grep -o 'fh_[0-9a-f]*')
"$bin" mint bob scrip 1000000000000 --id seed-scrip >/dev/null
"$bin" mint bob fuel 1000000000000000 --id seed-fuel >/dev/null
printf 'owner = "alice"\nname = "echo"\nversion = "1"\nprice = 1\nresource_policy = "caller_pays"\n' >"$work/echo.toml"
FUELHOST_API_KEY=$alice "$bin" upload "$work/echo.toml" "$FUELHOST_GUESTS/rust-echo.wasm" >/dev/null
cat >"$work/invoke.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"artifact":"alice/echo@1","input":"hi"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $bob"
done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
echo "load test: ${duration}s, ${connections} connections, durability ${durability}, $(nproc) cores"
wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/invoke.lua" "http://127.0.0.1:$port/v1/invoke"
echo "invocations settled: $("$bin" stats --json | grep -o '"total_usage_records": [0-9]*' | grep -o '[0-9]*$')"
