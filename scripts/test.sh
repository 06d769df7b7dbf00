#!/usr/bin/env bash
# The test command: installs system packages, builds, runs every test, then lints.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
chmod 700 "$XDG_RUNTIME_DIR"
cargo test --all-targets --no-fail-fast
cargo fmt --check
cargo clippy --all-targets -- -D warnings
