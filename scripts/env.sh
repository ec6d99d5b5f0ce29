# Shared settings for fuelhost's scripts; sourced, not run.
# Build outputs live outside the checkout so a warm machine reuses them.
FUELHOST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FUELHOST_CACHE="${FUELHOST_CACHE:-$HOME/.cache/fuelhost}"
export FUELHOST_GUESTS="${FUELHOST_GUESTS:-$FUELHOST_CACHE/guests}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FUELHOST_CACHE/target}"
FUELHOST_VENV="$FUELHOST_CACHE/venv"
# The componentize-py the Python guests are built with (setup.sh installs
# exactly this one; a guest build's cache key includes it).
export FUELHOST_COMPONENTIZE_PY=0.25.1

# Build the `fuelhost` command and link it as $FUELHOST_CACHE/bin/fuelhost,
# the one the README's quick start puts on the PATH.
link_fuelhost() {
  cargo build --quiet -p fuelhost-cli
  mkdir -p "$FUELHOST_CACHE/bin"
  ln -sf "$(cd "$CARGO_TARGET_DIR" && pwd)/debug/fuelhost" "$FUELHOST_CACHE/bin/fuelhost"
}

# No incremental compilation state: every fresh clone (CI) would add its
# own to the shared target directory, gigabytes each time; a clean build
# is not slower without it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
