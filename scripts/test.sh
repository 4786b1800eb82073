#!/usr/bin/env bash
# Every check and test Octo has: formatting, lints, the binaries and npm clients the tests start,
# then the tests. This is the README's test command and exactly what CI (.ci/run) runs.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# Integration tests start the real `octo` and `octo-worker` binaries: build them first.
cargo build --workspace --bins
# Signaling tests drive Octo with the real npm socket.io-client and mediasoup-client.
if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
  npm ci --prefix tests/node --no-audit --no-fund
fi
# The browser app: its build check needs esbuild; the end-to-end tests need playwright-core and
# Debian's Chromium (`apt-get install -y chromium`, done by .ci/run).
for dir in client-web tests/e2e; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    npm ci --prefix "$dir" --no-audit --no-fund
  fi
done
cargo test --workspace
