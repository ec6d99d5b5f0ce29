#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL server: initdb into a temporary
# directory, started on a loopback port; FUELHOST_TEST_DATABASE_URL is its
# URL while the command runs. The server stops, and its files go, when
# this script ends, however it ends (the server waits on a pipe that
# closes with it).
#   scripts/with-postgres.sh cargo test -p fuelhost-tests
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT"

cargo build --quiet -p fuelhost-postgres --example scratch_server
work=$(mktemp -d)
trap 'exec 9>&- 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
mkfifo "$work/stdin"
"$CARGO_TARGET_DIR/debug/examples/scratch_server" <"$work/stdin" >"$work/url" 2>"$work/err" &
exec 9>"$work/stdin"
for _ in $(seq 1 600); do
  [ -s "$work/url" ] && break
  if ! kill -0 $! 2>/dev/null; then
    echo "the scratch PostgreSQL server did not start: $(cat "$work/err")" >&2
    exit 1
  fi
  sleep 0.1
done
[ -s "$work/url" ] || { echo "the scratch PostgreSQL server did not start within a minute" >&2; exit 1; }
FUELHOST_TEST_DATABASE_URL=$(head -n1 "$work/url")
export FUELHOST_TEST_DATABASE_URL
echo "PostgreSQL for this run: $FUELHOST_TEST_DATABASE_URL"
status=0
"$@" || status=$?
exit "$status"
