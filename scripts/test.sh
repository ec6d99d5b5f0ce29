#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, builds every
# guest from source, checks formatting, lints and the module layers, runs
# the embedding example, then every test, then the integration suite again
# on a throwaway PostgreSQL server; ends with one summary line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT"

"$FUELHOST_ROOT/scripts/setup.sh"
link_fuelhost

echo "== format and lints"
cargo fmt --all -- --check
cargo fmt --manifest-path plugins/Cargo.toml --all -- --check
cargo clippy --quiet --workspace --all-targets -- -D warnings

echo "== module layers"
python3 scripts/check-layers.py --self-test
python3 scripts/check-layers.py

echo "== embedding example"
cargo run --quiet -p fuelhost-examples --example embed

echo "== tests"
log="$FUELHOST_CACHE/last-test-run.log"
status=0
cargo test --workspace 2>&1 | tee "$log" || status=$?
echo "== the integration suite again, every host on PostgreSQL"
scripts/with-postgres.sh cargo test -p fuelhost-tests --test all 2>&1 | tee -a "$log" || status=$?
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
echo "tests: $passed passed, $failed failed"
exit "$status"
