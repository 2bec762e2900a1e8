# Shell functions shared by bench/client-credentials.sh and bench/compare.sh (sourced, not run).
#
# The sourcing script sets, before calling them: ROOT (the repository), WORK (a temporary
# directory), RAW (where raw results go), THREADS, CONNECTIONS, TIMEOUT (wrk's settings), CLIENT_ID,
# CLIENT_SECRET, RESOURCE, and PGHOST/PGPORT/PGUSER for PostgreSQL. The functions set SERVER_PID,
# PORT, BASE (the server under load, one at a time), PG_DB, and append to FAILURES.

SERVER_PID=
LIVE_PIDS=()  # servers a script keeps running side by side; cleanup stops them too
PG_DB=
FAILURES=()

# Settings every script shares; the environment may set them, flags override (shared_flag).
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-2s}
TIMEOUT=${TIMEOUT:-10s}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}

# shared_flag FLAG VALUE: sets a flag every script takes (--duration, --connections, --threads,
# --warmup, --timeout); returns 1 for any other flag.
shared_flag() {
  case "$1" in
    --duration) DURATION=$2 ;;
    --connections) CONNECTIONS=$2 ;;
    --threads) THREADS=$2 ;;
    --warmup) WARMUP=$2 ;;
    --timeout) TIMEOUT=$2 ;;
    *) return 1 ;;
  esac
}

# parse_flags USAGE_FN [--flag VAR ...] -- "$@": the shared flags, the script's own (each sets VAR),
# -h/--help; anything else stops with exit 2.
parse_flags() {
  local usage_fn=$1; shift
  local -A own=()
  while [ "$1" != "--" ]; do own[$1]=$2; shift 2; done
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      -h | --help) "$usage_fn"; exit 0 ;;
    esac
    [ $# -ge 2 ] || { echo "error: $1 needs a value (see --help)" >&2; exit 2; }
    if [ -n "${own[$1]:-}" ]; then
      printf -v "${own[$1]}" '%s' "$2"
    elif ! shared_flag "$1" "$2"; then
      echo "error: unknown argument $1 (see --help)" >&2; exit 2
    fi
    shift 2
  done
}
CLK_TCK=$(getconf CLK_TCK)

die() { echo "error: $*" >&2; exit 1; }
fail() { FAILURES+=("$*"); echo "BENCH PROBLEM: $*" >&2; }

# For `trap cleanup EXIT`: stops the server, drops the PostgreSQL database, removes WORK.
cleanup() {
  local pid
  for pid in "$SERVER_PID" "${LIVE_PIDS[@]}"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ -n "$PG_DB" ]; then
    psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  [ -z "${WORK:-}" ] || rm -rf "$WORK"
}

# mandate_bin: sets BIN (MANDATE_BIN, or release/mandate under CARGO_TARGET_DIR or target/, built
# if missing) and BUILT (when, and whether the source is newer).
mandate_bin() {
  local newer=
  BIN=${MANDATE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/mandate}
  if [ -n "${MANDATE_BIN:-}" ]; then
    [ -x "$BIN" ] || die "MANDATE_BIN=$BIN is not an executable"
  elif [ ! -x "$BIN" ]; then
    echo "building the release binary (cargo build --release -p mandate-cli)" >&2
    cargo build --release -p mandate-cli
  fi
  BUILT=$(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC')
  [ -n "${MANDATE_BIN:-}" ] || newer=$(find crates Cargo.toml Cargo.lock -newer "$BIN" -type f -print -quit 2>/dev/null || true)
  if [ -n "$newer" ]; then
    echo "warning: $newer is newer than $BIN (built $BUILT); run cargo build --release -p mandate-cli to measure the current source" >&2
    BUILT="$BUILT, older than the source (e.g. $newer)"
  fi
}

# A loopback port nothing listens on (a server's start is retried if another process takes it first).
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
# field FILE KEY: the value of KEY in a key=value result line.
field() { tr ' ' '\n' <"$1" | awk -F= -v k="$2" '$1 == k { print substr($0, length(k) + 2) }'; }

# pg_create: a fresh PostgreSQL database; sets PG_DB and DATABASE (its URL).
pg_create() {
  PG_DB=mandate_bench_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
  psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$PG_DB\"" \
    || die "cannot create a PostgreSQL database on $PGHOST:$PGPORT as $PGUSER (is PostgreSQL running?)"
  DATABASE=postgres://$PGUSER@$PGHOST:$PGPORT/$PG_DB
}

pg_drop() {
  psql -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -qc "DROP DATABASE IF EXISTS \"$PG_DB\"" >/dev/null \
    || fail "postgres: could not drop database $PG_DB"
  PG_DB=
}

# await_server NAME URL LOG: waits up to 30 s for SERVER_PID to answer URL. Returns 1 if the server
# exited because its port was taken (the caller retries on another); dies on any other failure.
await_server() {
  local name=$1 url=$2 log=$3
  for _ in $(seq 1 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    tail -20 "$log" >&2
    die "$name: the server did not answer $url within 30 s"
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  if grep -qi "address already in use\|EADDRINUSE" "$log"; then return 1; fi  # lost a race for the port
  tail -20 "$log" >&2
  die "$name: the server exited during start-up (log above)"
}

# start_mandate NAME DATABASE_URL: `mandate serve` ($BIN) with one resource and one confidential
# client; sets SERVER_PID, PORT, BASE. Its log is $WORK/NAME-server.log.
start_mandate() {
  local name=$1 database=$2 config=$WORK/$1.toml log=$WORK/$1-server.log attempt
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    BASE=http://127.0.0.1:$PORT
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
    # MANDATE_BIN is the script's, not a config key: mandate refuses unknown MANDATE_* overrides.
    env -u MANDATE_BIN "$BIN" serve --config "$config" >"$log" 2>&1 &
    SERVER_PID=$!
    if await_server "$name" "$BASE/healthz" "$log"; then return 0; fi
  done
  die "$name: no free port after $attempt attempts"
}

# stop_server NAME: SIGTERM, then the server must exit 0 within 10 s.
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

# run_wrk NAME SCRIPT PATH DURATION [ENV=VALUE...]: runs wrk against $BASE$PATH with bench/SCRIPT,
# leaves key=value results in $RAW/NAME.result (wrk's, then the server's CPU and peak RSS).
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

# audit_count BACKEND DATABASE_URL: token_issued audit rows, or "?" without sqlite3.
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

# server_log_problems NAME LOG: fails the run if the server's log has WARN or ERROR lines.
server_log_problems() {
  local name=$1 log=$2 problems
  problems=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E ' (WARN|ERROR) ' || true)
  if [ -n "$problems" ]; then
    printf '%s\n' "$problems" >"$RAW/$name-server-problems.log"
    fail "$name: the server logged $(printf '%s\n' "$problems" | wc -l) WARN/ERROR lines; first: $(printf '%s\n' "$problems" | awk 'NR == 1 { print substr($0, 1, 300) }') (all in $RAW/$name-server-problems.log)"
  fi
  sed -n '1,20{s/\x1b\[[0-9;]*m//g;p}' "$log" >"$RAW/$name-server-start.log"
}
