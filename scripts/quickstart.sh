#!/usr/bin/env bash
# One command for the quickstart: builds and starts the authorization server on
# examples/quickstart.toml (http://127.0.0.1:8080, SQLite under ./mandate-data/) and the example MCP
# server it protects (examples/mcp-server at http://127.0.0.1:9090/mcp), then waits; Ctrl-C stops
# both. QUICKSTART_PROFILE=dev uses a debug build (faster to build, slower to run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ISSUER=http://127.0.0.1:8080
RESOURCE=http://127.0.0.1:9090/mcp
profile="${QUICKSTART_PROFILE:-release}"
case "$profile" in
  release) dir=release ;;
  dev) dir=debug ;;
  *) echo "QUICKSTART_PROFILE must be release or dev" >&2; exit 2 ;;
esac

cargo build --profile "$profile" -p mandate-cli -p example-mcp-server
bin="${CARGO_TARGET_DIR:-target}/$dir"

pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM

"$bin/mandate" serve --config examples/quickstart.toml &
pids+=($!)
# The example server waits for the issuer by itself (it retries, answering 503 meanwhile); starting
# it once mandate answers keeps the log quiet.
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "quickstart: mandate did not start (see above)" >&2; exit 1; }
  sleep 0.1
done
"$bin/example-mcp-server" --listen 127.0.0.1:9090 --issuer "$ISSUER" --resource "$RESOURCE" &
pids+=($!)

cat <<EOF

  Authorization server  $ISSUER   (sign in as alice / quickstart-alice-password)
  Example MCP server    $RESOURCE   (tools: whoami, echo)

  Point an MCP host at $RESOURCE, e.g.  claude mcp add --transport http mandate-example $RESOURCE
  or try it with curl: see "Quickstart: an MCP server protected by mandate" in README.md.
  Ctrl-C stops both.

EOF
# Either one stopping ends the quickstart (and the trap stops the other).
wait -n
