#!/usr/bin/env bash
# The main job: installs what is missing, builds every guest from source,
# then runs `fuelhost demo` on the embedded default (SQLite).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$FUELHOST_ROOT"
"$FUELHOST_ROOT/scripts/setup.sh"
link_fuelhost
"$FUELHOST_CACHE/bin/fuelhost" demo "$@"
