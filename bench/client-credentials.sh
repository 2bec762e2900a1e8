#!/usr/bin/env bash
# Client-credentials token issuance per second, with wrk, on each storage backend.
#
#   bash bench/client-credentials.sh [--duration 15s] [--connections 16] [--threads 2]
#                                    [--backends "sqlite postgres"] [--warmup 3s]
#
# The same settings can be given in the environment: DURATION, CONNECTIONS, THREADS, BACKENDS,
# WARMUP, TIMEOUT (wrk's per-request timeout, default 10s), PGHOST/PGPORT/PGUSER (default
# 127.0.0.1, 5432, postgres), MANDATE_BIN (the binary to measure; default release/mandate under
# CARGO_TARGET_DIR or target/, built with `cargo build --release -p mandate-cli` if missing).
# RUST_LOG is passed to the server (unset: its default, info, logging to a file in the temporary
# directory). The shell functions are in bench/lib.sh, shared with bench/compare.sh.
#
# For each backend: a fresh database (SQLite file in a temporary directory, or a new PostgreSQL
# database, dropped afterwards), `mandate serve` on a free loopback port, a warm-up, then wrk
# against POST /token (bench/token.lua), POST /introspect and GET /jwks.json for reference, the
# server's idle RSS (VmRSS before load) and peak RSS (VmHWM, reset before each endpoint), its CPU
# time, and the host's CPU use. Results go to stdout and to bench/results/.
#
# Any response other than 200, any socket error or timeout, or fewer audit rows than issued
# tokens makes the run fail (exit 1) after the table is printed, with the problem spelled out.
# The absolute numbers depend on the machine; compare ratios measured in one run (tokens/s ÷
# jwks/s) across runs on shared or noisy machines.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
BACKENDS=${BACKENDS:-"sqlite postgres"}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_flags usage --backends BACKENDS -- "$@"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

command -v wrk >/dev/null || die "wrk is not installed; install it with: apt-get install wrk"
command -v curl >/dev/null || die "curl is not installed; install it with: apt-get install curl"
for backend in $BACKENDS; do
  case "$backend" in
    sqlite) ;;
    postgres) command -v psql >/dev/null || die "psql is not installed (needed for the postgres backend); apt-get install postgresql-client" ;;
    *) die "unknown backend $backend (expected sqlite and/or postgres)" ;;
  esac
done
mandate_bin

CLIENT_ID=bench-agent
CLIENT_SECRET=bench-agent-secret-0123456789abcdefghijklmnop
RESOURCE=http://127.0.0.1:9090/mcp
AUTHORIZATION="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/bench/results
RAW=$RESULTS/client-credentials-$STAMP
SUMMARY=$RESULTS/client-credentials-$STAMP.md
mkdir -p "$RAW"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mandate-bench.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM

ROWS=()
RATIOS=()
INVALID=()
NOTES=()
ENDPOINTS="token introspect jwks"

for backend in $BACKENDS; do
  echo "== $backend" >&2
  case "$backend" in
    sqlite)
      mkdir -p "$WORK/sqlite"
      DATABASE=sqlite://$WORK/sqlite/mandate.db ;;
    postgres) pg_create ;;
  esac

  start_mandate "$backend" "$DATABASE"
  sleep 1
  IDLE_KIB=$(proc_kib "$SERVER_PID" VmRSS)
  echo "$backend: serving on $BASE (pid $SERVER_PID), idle RSS $(mib "$IDLE_KIB")" >&2

  echo "-- $backend warm-up: POST /token for $WARMUP" >&2
  run_wrk "$backend-warmup" token.lua /token "$WARMUP" >/dev/null

  echo "-- $backend: POST /token for $DURATION" >&2
  run_wrk "$backend-token" token.lua /token "$DURATION"

  TOKEN=$(curl -fsS -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials --data-urlencode "resource=$RESOURCE" \
    "$BASE/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$TOKEN" ] || die "$backend: could not obtain a token for the introspection run"
  echo "-- $backend: POST /introspect for $DURATION" >&2
  run_wrk "$backend-introspect" introspect.lua /introspect "$DURATION" BENCH_TOKEN="$TOKEN" BENCH_EXPECT='"active":true'

  echo "-- $backend: GET /jwks.json for $DURATION" >&2
  run_wrk "$backend-jwks" jwks.lua /jwks.json "$DURATION"

  # Server-side problems the log mentions (warnings and errors, e.g. "database unavailable").
  stop_server "$backend"
  server_log_problems "$backend" "$WORK/$backend-server.log"

  # Every issued token must have its audit row: at least as many token_issued rows as 200s counted.
  issued=$(( $(field "$RAW/$backend-warmup.result" ok) + $(field "$RAW/$backend-token.result" ok) + 1 ))
  audited=$(audit_count "$backend" "$DATABASE")
  if [ "$audited" = "?" ]; then
    NOTES+=("$backend: sqlite3 not installed; audit rows not counted")
  elif [ "$audited" -lt "$issued" ]; then
    fail "$backend: $audited token_issued audit rows for $issued tokens wrk and curl received"
  else
    NOTES+=("$backend: $audited token_issued audit rows for $issued tokens counted by wrk and curl (requests in flight when wrk stopped are audited but not counted)")
  fi

  [ "$backend" != postgres ] || pg_drop

  for endpoint in $ENDPOINTS; do
    r=$RAW/$backend-$endpoint.result
    statuses=$(field "$r" statuses)
    errors=$(( $(field "$r" connect) + $(field "$r" read) + $(field "$r" write) + $(field "$r" timeout) ))
    bad="0"
    rps=$(field "$r" rps)
    if [ "$statuses" != "-" ] || [ "$errors" -gt 0 ]; then
      bad="**$statuses; socket errors $errors (timeouts $(field "$r" timeout))**"
      rps="**INVALID** ($rps, failures included)"
      INVALID+=("$backend-$endpoint")
    fi
    case "$endpoint" in
      token) label="POST /token" ;;
      introspect) label="POST /introspect" ;;
      jwks) label="GET /jwks.json" ;;
    esac
    ROWS+=("| $backend | $label | $rps | $(ms "$(field "$r" p50_us)") | $(ms "$(field "$r" p99_us)") | $bad | $(field "$r" server_cpu) | $(field "$r" host_busy) % | $(mib "$IDLE_KIB") | $(mib "$(field "$r" hwm_kib)") |")
  done
  ratio() {
    case " ${INVALID[*]-} " in
      *" $backend-$1 "* | *" $backend-jwks "*) echo "**INVALID**"; return ;;
    esac
    awk -v a="$(field "$RAW/$backend-$1.result" rps)" -v b="$(field "$RAW/$backend-jwks.result" rps)" 'BEGIN { printf "%.3f", a / b }'
  }
  RATIOS+=("| $backend | $(ratio token) | $(ratio introspect) |")
done

{
  echo "## Client-credentials benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "wrk: $THREADS threads, $CONNECTIONS connections, $DURATION per endpoint after a $WARMUP warm-up on /token;" \
    "work tree at $(git describe --always --dirty 2>/dev/null || echo unknown), binary $BIN built $BUILT;" \
    "$(nproc) CPUs ($(sed -n '/^model name/{s/^model name[[:space:]]*: //p;q}' /proc/cpuinfo))."
  echo
  echo "| backend | endpoint | requests/s | p50 | p99 | non-200 | server CPU (cores) | host CPU busy | idle RSS | peak RSS |"
  echo "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "| backend | tokens/s ÷ jwks/s | introspections/s ÷ jwks/s |"
  echo "| --- | ---: | ---: |"
  printf '%s\n' "${RATIOS[@]}"
  echo
  echo "Server CPU: the server process's CPU time ÷ wall time. Host CPU busy: all CPUs, wrk and PostgreSQL included."
  echo "Peak RSS: the server's VmHWM during that endpoint's run (reset before each); idle RSS: VmRSS after start-up."
  for note in ${NOTES[@]+"${NOTES[@]}"}; do echo "- $note"; done
  if [ ${#FAILURES[@]} -gt 0 ]; then
    echo
    echo "**INVALID RUN: not every request was answered 200, or another check failed:**"
    for f in "${FAILURES[@]}"; do echo "- $f"; done
  fi
} | tee "$SUMMARY"
echo "raw wrk output and results: $RAW" >&2
echo "summary: $SUMMARY" >&2

if [ ${#FAILURES[@]} -gt 0 ]; then
  echo >&2
  echo "BENCHMARK FAILED: ${#FAILURES[@]} problem(s); the numbers above do not measure a healthy server:" >&2
  for f in "${FAILURES[@]}"; do echo "  - $f" >&2; done
  exit 1
fi
