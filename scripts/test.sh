#!/usr/bin/env bash
# Every check and test Octo has: formatting, lints, the binaries the tests start, then the tests.
# This is the README's test command and exactly what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Integration tests start the real `octo` and `octo-worker` binaries: build them first.
cargo build --workspace --bins
cargo test --workspace
