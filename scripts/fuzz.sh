#!/usr/bin/env bash
# Fuzzes what fuelhost reads from outside, each target for SECONDS
# (default 60): manifests, policy rules, uploaded components, the API's
# request bodies. Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs cargo-fuzz into ~/.cache/fuelhost/tools the first time. Runs
# libFuzzer on the stable toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass
# its flags; no sanitizer, so a finding is a panic or a failed assertion).
# New inputs go to ~/.cache/fuelhost/fuzz/corpus/TARGET; the seeds in
# fuzz/corpus/TARGET (and, for `upload`, the built guests) are read, not
# written. A crash is saved under fuzz/artifacts/TARGET and fails the run.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT"

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(manifest rules upload api)

export PATH="$FUELHOST_CACHE/tools/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz into $FUELHOST_CACHE/tools (a few minutes, once)"
  cargo install --quiet --locked --root "$FUELHOST_CACHE/tools" cargo-fuzz
fi

work="$FUELHOST_CACHE/fuzz"
mkdir -p "$work/seeds/upload"
cp "$FUELHOST_GUESTS"/*.wasm "$work/seeds/upload/" 2>/dev/null || true

status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t"
  seeds=("fuzz/corpus/$t")
  [ "$t" = upload ] && seeds+=("$work/seeds/upload")
  echo "== fuzz $t for ${seconds}s"
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz --sanitizer none --target-dir "$work/target" "$t" \
      "$work/corpus/$t" "${seeds[@]}" -- -max_total_time="$seconds" -timeout=60 -rss_limit_mb=8192 -print_final_stats=1 \
      2>&1 | tee "$work/$t.log" | grep -E '^(==|#[0-9]+ +DONE|stat::number_of_executed_units|.*(panicked|ERROR|crash))'; then
    :
  fi
  if grep -qE 'panicked|ERROR: libFuzzer|deadly signal|SUMMARY' "$work/$t.log"; then
    echo "fuzz: $t found a failure; see $work/$t.log and fuzz/artifacts/$t" >&2
    status=1
  else
    runs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$work/$t.log" | awk '{print $2}' | tail -1)
    echo "fuzz: $t ran ${runs:-?} inputs in ${seconds}s without a crash"
  fi
done
exit $status
