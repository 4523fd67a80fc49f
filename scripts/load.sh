#!/usr/bin/env bash
# Loopback load against the example service (release build), with wrk.
#
# 1. Throughput and server CPU per request with and without the RED layer,
#    alternating A B A B in one run (PLIMSOLL_RED=off is the bare side).
# 2. About a million requests with random paths and random tenant headers:
#    series counts must stay at their bounds and RSS must stay flat.
#
# Usage: scripts/load.sh [seconds per round, default 5] [hostile requests, default 1000000]
# Needs: wrk (apt-get install wrk). Sends traffic to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-5}
HOSTILE=${2:-1000000}
command -v wrk >/dev/null || { echo "load.sh: wrk not found (apt-get install wrk)"; exit 1; }

cargo build --quiet --release --example axum_service --features full
BIN=target/release/examples/axum_service
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT

start() { # port red(on|off)
  PLIMSOLL_ADDR="127.0.0.1:$1" PLIMSOLL_RED="$2" "$BIN" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$1/health" >/dev/null && break; sleep 0.1; done
  echo "${PIDS[-1]}"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # utime + stime, 1/100 s
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }     # kB

BARE=$(start 3101 off)
RED=$(start 3102 on)

round() { # label pid port
  local before after out reqs rps
  before=$(ticks "$2")
  out=$(wrk -t1 -c32 -d"${DURATION}s" -H 'x-tenant-id: acme' "http://127.0.0.1:$3/api/v1/orders")
  after=$(ticks "$2")
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  awk -v l="$1" -v r="$rps" -v n="$reqs" -v c="$((after - before))" \
    'BEGIN { printf "%-5s %10.0f req/s  %7.2f us CPU/request  (%d requests)\n", l, r, c * 10000 / n, n }'
}

echo "== throughput and CPU per request, A B A B (${DURATION}s rounds)"
for _ in 1 2; do
  round bare "$BARE" 3101 | tee -a /tmp/plimsoll-load.txt
  round red "$RED" 3102 | tee -a /tmp/plimsoll-load.txt
done
tail -n 4 /tmp/plimsoll-load.txt | awk '
  /^bare/ { br += $2; bc += $4; nb++ } /^red/ { rr += $2; rc += $4; nr++ }
  END { printf "red/bare throughput %.3f, CPU/request +%.2f us\n", (rr/nr)/(br/nb), rc/nr - bc/nb }'
rm -f /tmp/plimsoll-load.txt

echo "== ${HOSTILE} hostile requests (random paths, random tenant headers)"
LUA=$(mktemp --suffix=.lua)
cat > "$LUA" <<'LUA'
math.randomseed(os.time())
request = function()
  local r = math.random(1, 1000000000)
  local path
  if r % 2 == 0 then path = "/api/v1/orders/" .. r else path = "/scan/" .. r .. "/x.php?q=" .. r end
  return wrk.format("GET", path, { ["x-tenant-id"] = "t-" .. math.random(1, 1000000000) })
end
LUA
RSS0=$(rss "$RED")
sent=0
while [ "$sent" -lt "$HOSTILE" ]; do
  n=$(wrk -t1 -c32 -d5s -s "$LUA" "http://127.0.0.1:3102/" | awk '/requests in/ {print $1}')
  sent=$((sent + n))
done
RSS1=$(rss "$RED")
SCRAPE=$(curl -s "http://127.0.0.1:3102/metrics")
series() { echo "$SCRAPE" | grep -c "^$1{" || true; }
echo "sent $sent requests"
echo "series: http_requests_total $(series http_requests_total), http_requests_in_flight $(series http_requests_in_flight), tenants $(echo "$SCRAPE" | grep '^http_requests_total{' | sed 's/.*tenant_id="\([^"]*\)".*/\1/' | sort -u | wc -l)"
echo "RSS: ${RSS0} kB -> ${RSS1} kB (growth $(( (RSS1 - RSS0) / 1024 )) MiB)"
rm -f "$LUA"
