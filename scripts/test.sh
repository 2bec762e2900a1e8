#!/usr/bin/env bash
# Every test: formatting and lints, the Rust suites (each HTTP and storage test on SQLite and on a
# fresh PostgreSQL database), and the interop suite on Node 22: oauth4webapi, openid-client, jose, the
# MCP TypeScript and Python SDKs (also against the example MCP server), Debian's Chromium driven by
# playwright-core, and every client auth scenario of the MCP conformance suite against
# examples/conformance-client (mandate-agent).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-deps.sh

# Each test creates its own mandate_t_* database; drop those a previous run left behind.
stale=$(psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'mandate_t_%'")
for db in $stale; do
  psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null
done

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --locked
cargo nextest run --workspace --locked --no-fail-fast
MANDATE_BIN="$PWD/target/debug/mandate" EXAMPLE_MCP_BIN="$PWD/target/debug/example-mcp-server" \
  CONFORMANCE_CLIENT_BIN="$PWD/target/debug/conformance-client" bash interop/run.sh
