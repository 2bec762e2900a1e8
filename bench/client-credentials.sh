#!/usr/bin/env bash
# Client-credentials token issuance per second, with wrk, on each storage backend.
#
#   bash bench/client-credentials.sh [--duration 15s] [--connections 16] [--threads 2]
#                                    [--backends "sqlite postgres"] [--warmup 3s]
#
# The same settings can be given in the environment: DURATION, CONNECTIONS, THREADS, BACKENDS,
# WARMUP, TIMEOUT (wrk's per-request timeout, default 10s), PGHOST/PGPORT/PGUSER (default
# 127.0.0.1, 5432, postgres), MANDATE_BIN (the binary to measure; default target/release/mandate,
# built with `cargo build --release -p mandate-cli` if missing). RUST_LOG is passed to the server
# (unset: its default, info, logging to a file in the temporary directory).
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
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
BACKENDS=${BACKENDS:-"sqlite postgres"}
WARMUP=${WARMUP:-3s}
TIMEOUT=${TIMEOUT:-10s}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --backends) BACKENDS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=${MANDATE_BIN:-$ROOT/target/release/mandate}

die() { echo "error: $*" >&2; exit 1; }

command -v wrk >/dev/null || die "wrk is not installed; install it with: apt-get install wrk"
command -v curl >/dev/null || die "curl is not installed; install it with: apt-get install curl"
for backend in $BACKENDS; do
  case "$backend" in
    sqlite) ;;
    postgres) command -v psql >/dev/null || die "psql is not installed (needed for the postgres backend); apt-get install postgresql-client" ;;
    *) die "unknown backend $backend (expected sqlite and/or postgres)" ;;
  esac
done
if [ -n "${MANDATE_BIN:-}" ]; then
  [ -x "$BIN" ] || die "MANDATE_BIN=$BIN is not an executable"
elif [ ! -x "$BIN" ]; then
  echo "building the release binary (cargo build --release -p mandate-cli)" >&2
  cargo build --release -p mandate-cli
fi
BUILT=$(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')
NEWER=
[ -n "${MANDATE_BIN:-}" ] || NEWER=$(find crates Cargo.toml Cargo.lock -newer "$BIN" -type f -print -quit 2>/dev/null || true)
if [ -n "$NEWER" ]; then
  echo "warning: $NEWER is newer than $BIN (built $BUILT); run cargo build --release -p mandate-cli to measure the current source" >&2
  BUILT="$BUILT, older than the source (e.g. $NEWER)"
fi

CLIENT_ID=bench-agent
CLIENT_SECRET=bench-agent-secret-0123456789abcdefghijklmnop
RESOURCE=http://127.0.0.1:9090/mcp
AUTHORIZATION="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
CLK_TCK=$(getconf CLK_TCK)

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/bench/results
RAW=$RESULTS/client-credentials-$STAMP
SUMMARY=$RESULTS/client-credentials-$STAMP.md
mkdir -p "$RAW"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mandate-bench.XXXXXX")

SERVER_PID=
PG_DB=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$PG_DB" ]; then
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILURES=()
fail() { FAILURES+=("$*"); echo "BENCH PROBLEM: $*" >&2; }

# A loopback port nothing listens on (the server's start is retried if another process takes it first).
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
  done
  die "no free loopback port found"
}

proc_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
proc_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }  # utime + stime
host_cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5, $6 }' /proc/stat; }  # busy idle iowait
mib() { awk -v k="$1" 'BEGIN { printf "%.0f MiB", k / 1024 }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
field() { tr ' ' '\n' <"$1" | awk -F= -v k="$2" '$1 == k { print substr($0, length(k) + 2) }'; }

# start_server BACKEND DATABASE_URL: sets SERVER_PID, PORT, BASE.
start_server() {
  local backend=$1 database=$2 config log attempt
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    BASE=http://127.0.0.1:$PORT
    config=$WORK/$backend.toml
    log=$WORK/$backend-server.log
    cat >"$config" <<EOF
issuer   = "$BASE"
listen   = "127.0.0.1:$PORT"
database = "$database"

[[resources]]
uri = "$RESOURCE"
name = "bench"
scopes = ["tools:read", "tools:call"]

[[clients]]
client_id = "$CLIENT_ID"
client_secret = "$CLIENT_SECRET"
scopes = ["tools:read", "tools:call"]
EOF
    "$BIN" serve --config "$config" >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
      if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
      if curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null; then return 0; fi
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
      tail -20 "$log" >&2
      die "$backend: the server did not answer $BASE/healthz within 30 s"
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    if grep -qi "address already in use" "$log"; then continue; fi  # lost a race for the port
    tail -20 "$log" >&2
    die "$backend: the server exited during start-up (log above)"
  done
  die "$backend: no free port after $attempt attempts"
}

stop_server() {
  local status=0
  kill -TERM "$SERVER_PID"
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    fail "$1: the server did not stop within 10 s of SIGTERM; killed"
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait "$SERVER_PID" 2>/dev/null || status=$?
  SERVER_PID=
  [ "$status" -eq 0 ] || fail "$1: the server exited with status $status after SIGTERM"
}

# run_wrk NAME SCRIPT PATH DURATION [ENV=VALUE...]: runs wrk, leaves key=value results in $RAW/NAME.result.
run_wrk() {
  local name=$1 script=$2 path=$3 duration=$4
  shift 4
  local result=$RAW/$name.result out=$RAW/$name.wrk.txt
  local ticks0 ticks1 host0 host1 t0 t1 status=0
  rm -f "$result"
  echo 5 >"/proc/$SERVER_PID/clear_refs" 2>/dev/null || true  # reset VmHWM: peak RSS of this run only
  ticks0=$(proc_ticks "$SERVER_PID")
  host0=$(host_cpu)
  t0=$(date +%s.%N)
  env "$@" BENCH_RESULT="$result" BENCH_AUTHORIZATION="$AUTHORIZATION" BENCH_RESOURCE="$RESOURCE" \
    wrk --threads "$THREADS" --connections "$CONNECTIONS" --duration "$duration" --timeout "$TIMEOUT" \
    --latency --script "$ROOT/bench/$script" "$BASE$path" >"$out" 2>&1 || status=$?
  t1=$(date +%s.%N)
  host1=$(host_cpu)
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    cat "$out" >&2
    die "$name: the server died during the run"
  fi
  ticks1=$(proc_ticks "$SERVER_PID")
  cat "$out"
  [ "$status" -eq 0 ] || die "$name: wrk exited with status $status (output above)"
  [ -s "$result" ] || die "$name: wrk wrote no result (output above)"
  {
    printf ' wall=%s server_cpu=%s host_busy=%s host_iowait=%s hwm_kib=%s rss_kib=%s\n' \
      "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" \
      "$(awk -v a="$ticks0" -v b="$ticks1" -v t0="$t0" -v t1="$t1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz / (t1 - t0) }')" \
      "$(echo "$host0 $host1" | awk '{ d = ($4 - $1) + ($5 - $2) + ($6 - $3); printf "%.0f", 100 * ($4 - $1) / d }')" \
      "$(echo "$host0 $host1" | awk '{ d = ($4 - $1) + ($5 - $2) + ($6 - $3); printf "%.0f", 100 * ($6 - $3) / d }')" \
      "$(proc_kib "$SERVER_PID" VmHWM)" "$(proc_kib "$SERVER_PID" VmRSS)"
  } >>"$result"
  tr '\n' ' ' <"$result" >"$result.tmp" && mv "$result.tmp" "$result"
  if grep -q "BENCH FAILED" "$out"; then
    fail "$name: $(grep "BENCH FAILED" "$out" | sed 's/^BENCH FAILED: //')"
  fi
}

audit_count() {
  local backend=$1 database=$2
  case "$backend" in
    sqlite)
      if command -v sqlite3 >/dev/null; then
        sqlite3 "${database#sqlite://}" "SELECT count(*) FROM audit_log WHERE event = 'token_issued'"
      else
        echo "?"
      fi ;;
    postgres)
      psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d "$PG_DB" -Atc "SELECT count(*) FROM audit_log WHERE event = 'token_issued'" ;;
  esac
}

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
    postgres)
      PG_DB=mandate_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
      psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$PG_DB\"" \
        || die "cannot create a PostgreSQL database on $PGHOST:$PGPORT as $PGUSER (is PostgreSQL running?)"
      DATABASE=postgres://$PGUSER@$PGHOST:$PGPORT/$PG_DB ;;
  esac

  start_server "$backend" "$DATABASE"
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
  LOG=$WORK/$backend-server.log
  stop_server "$backend"
  problems=$(sed 's/\x1b\[[0-9;]*m//g' "$LOG" | grep -E ' (WARN|ERROR) ' || true)
  if [ -n "$problems" ]; then
    printf '%s\n' "$problems" >"$RAW/$backend-server-problems.log"
    fail "$backend: the server logged $(printf '%s\n' "$problems" | wc -l) WARN/ERROR lines; first: $(printf '%s\n' "$problems" | awk 'NR == 1 { print substr($0, 1, 300) }') (all in $RAW/$backend-server-problems.log)"
  fi
  sed -n '1,20{s/\x1b\[[0-9;]*m//g;p}' "$LOG" >"$RAW/$backend-server-start.log"

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

  if [ "$backend" = postgres ]; then
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qc "DROP DATABASE IF EXISTS \"$PG_DB\"" >/dev/null \
      || fail "postgres: could not drop database $PG_DB"
    PG_DB=
  fi

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
