#!/usr/bin/env bash
# A bounded soak: client-credentials issuance at 70% of the peak rate for a long while (default
# 10 minutes), on loopback only, with zero errors and flat memory required. Not part of CI.
#
#   bash bench/soak.sh [--backend postgres|sqlite] [--duration 10m] [--load 70]
#                      [--connections 16] [--threads 2]
#
# First the peak is measured (10 s, after a 2 s warm-up); then wrk paces each connection
# (bench/token.lua with BENCH_DELAY_MS) so the rate is about --load percent of that peak, for
# --duration. The server's RSS is sampled every 10 s. The run fails (exit 1, after the table) on any
# non-200 answer or socket error, on fewer audit rows than issued tokens, or when memory grows: the
# largest RSS of the second half may exceed the first half's largest by at most 8 MiB or 10 %.
# MANDATE_BIN, PGHOST/PGPORT/PGUSER as for bench/client-credentials.sh. Results go to stdout and
# bench/results/soak-<stamp>.md.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

BACKEND=postgres
LOAD=70
DURATION=${DURATION:-10m}
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
parse_flags usage --backend BACKEND --load LOAD -- "$@"

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

for tool in wrk curl; do command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install wrk curl)"; done
case "$BACKEND" in
  sqlite) ;;
  postgres) command -v psql >/dev/null || die "psql is not installed (apt-get install postgresql-client)" ;;
  *) die "unknown backend $BACKEND (postgres or sqlite)" ;;
esac
mandate_bin

CLIENT_ID=bench-agent
CLIENT_SECRET=bench-agent-secret-0123456789abcdefghijklmnop
RESOURCE=http://127.0.0.1:9090/mcp
AUTHORIZATION="Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$ROOT/bench/results
RAW=$RESULTS/soak-$STAMP
SUMMARY=$RESULTS/soak-$STAMP.md
mkdir -p "$RAW"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mandate-soak.XXXXXX")
SAMPLER=
trap '[ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null || true; cleanup' EXIT
trap 'exit 130' INT TERM

if [ "$BACKEND" = postgres ]; then
  pg_create
else
  DATABASE=sqlite://$WORK/soak.db
fi
start_mandate "$BACKEND" "$DATABASE"
IDLE_KIB=$(proc_kib "$SERVER_PID" VmRSS)

echo "-- $BACKEND: warm-up, then the peak for 10s" >&2
run_wrk warmup token.lua /token 2s >/dev/null
run_wrk peak token.lua /token 10s >/dev/null
PEAK=$(field "$RAW/peak.result" rps)
P50_US=$(field "$RAW/peak.result" p50_us)
TARGET=$(awk -v p="$PEAK" -v l="$LOAD" 'BEGIN { printf "%.0f", p * l / 100 }')
# Each connection sends one request every (latency + delay): delay = connections / target - latency.
DELAY_MS=$(awk -v c="$CONNECTIONS" -v t="$TARGET" -v lat="$P50_US" 'BEGIN { d = 1000 * c / t - lat / 1000; if (d < 1) d = 1; printf "%.0f", d }')
echo "-- $BACKEND: soak at ~$LOAD% of $PEAK tokens/s (~$TARGET/s, ${DELAY_MS} ms between a connection's requests) for $DURATION" >&2

(
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    echo "$(date +%s) $(proc_kib "$SERVER_PID" VmRSS)" >>"$RAW/rss.txt"
    sleep 10
  done
) &
SAMPLER=$!
run_wrk soak token.lua /token "$DURATION" BENCH_DELAY_MS="$DELAY_MS" >/dev/null
kill "$SAMPLER" 2>/dev/null || true
SAMPLER=

ISSUED=$(( $(field "$RAW/warmup.result" ok) + $(field "$RAW/peak.result" ok) + $(field "$RAW/soak.result" ok) ))
sleep 1
AUDITED=$(audit_count "$BACKEND" "$DATABASE")
stop_server "$BACKEND"
[ "$BACKEND" != postgres ] || pg_drop

read -r FIRST_MAX SECOND_MAX SAMPLES < <(awk '{ v[NR] = $2 } END {
  h = int(NR / 2); a = 0; b = 0
  for (i = 1; i <= h; i++) if (v[i] > a) a = v[i]
  for (i = h + 1; i <= NR; i++) if (v[i] > b) b = v[i]
  print a, b, NR }' "$RAW/rss.txt")
ALLOWED=$(awk -v a="$FIRST_MAX" 'BEGIN { m = a * 0.10; if (m < 8192) m = 8192; printf "%.0f", a + m }')
[ "${SAMPLES:-0}" -ge 4 ] || fail "only ${SAMPLES:-0} RSS samples: run the soak for at least a minute"
[ "$SECOND_MAX" -le "$ALLOWED" ] || fail "memory grew: the second half peaked at $(mib "$SECOND_MAX"), the first at $(mib "$FIRST_MAX")"
[ "$AUDITED" = "?" ] || [ "$AUDITED" -ge "$ISSUED" ] || fail "$AUDITED token_issued audit rows for $ISSUED tokens"

{
  echo "## Soak, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "mandate on $BACKEND, $BIN (built $BUILT); wrk $THREADS threads, $CONNECTIONS connections; $(nproc) CPUs."
  echo
  echo "| phase | tokens/s | p50 | p99 | non-200 | server RSS |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  echo "| peak (10 s) | $(field "$RAW/peak.result" rps) | $(ms "$(field "$RAW/peak.result" p50_us)") | $(ms "$(field "$RAW/peak.result" p99_us)") | $(field "$RAW/peak.result" non200) | $(mib "$(field "$RAW/peak.result" hwm_kib)") peak |"
  echo "| soak at ~$LOAD% ($DURATION) | $(field "$RAW/soak.result" rps) | $(ms "$(field "$RAW/soak.result" p50_us)") | $(ms "$(field "$RAW/soak.result" p99_us)") | $(field "$RAW/soak.result" non200) | $(mib "$FIRST_MAX") → $(mib "$SECOND_MAX") (halves' maxima; idle $(mib "$IDLE_KIB")) |"
  echo
  echo "$ISSUED tokens issued, $AUDITED token_issued audit rows; $SAMPLES RSS samples."
  if [ ${#FAILURES[@]} -gt 0 ]; then
    echo
    echo "**FAILED:**"
    for f in "${FAILURES[@]}"; do echo "- $f"; done
  fi
} | tee "$SUMMARY"
[ ${#FAILURES[@]} -eq 0 ] || exit 1
