#!/usr/bin/env bash
# A local monitoring stack in one command, no containers, all on loopback:
#   - the example service (examples/axum_service.rs), exporting traces;
#   - Prometheus scraping it every second, exemplar storage on, with the
#     rules `plimsoll rules` generates from examples/slo.yaml;
#   - Alertmanager routing the `page` and `ticket` severities to a local
#     webhook receiver that logs every notification it gets;
#   - the OTLP collector (rotel), printing the spans it receives.
#
#   scripts/stack.sh up       start what is not running, print the URLs
#   scripts/stack.sh status   what runs, where
#   scripts/stack.sh down     stop what `up` started (and nothing else)
#
# Tools come from scripts/install-services.sh (Prometheus, Alertmanager,
# rotel) and python3. Settings, from the environment:
#   PLIMSOLL_STACK_DIR   state, configs and logs (default target/stack)
#   STACK_APP_PORT (3000), STACK_PROMETHEUS_PORT (9090),
#   STACK_ALERTMANAGER_PORT (9093), STACK_RECEIVER_PORT (9099),
#   STACK_OTLP_PORT (4317, gRPC), STACK_OTLP_HTTP_PORT (4318)
#   STACK_APP_BIN, STACK_CLI_BIN   prebuilt example and `plimsoll` binaries
#                                  (default: built here with cargo)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DIR=${PLIMSOLL_STACK_DIR:-$ROOT/target/stack}
APP_PORT=${STACK_APP_PORT:-3000}
PROM_PORT=${STACK_PROMETHEUS_PORT:-9090}
AM_PORT=${STACK_ALERTMANAGER_PORT:-9093}
RECEIVER_PORT=${STACK_RECEIVER_PORT:-9099}
OTLP_PORT=${STACK_OTLP_PORT:-4317}
OTLP_HTTP_PORT=${STACK_OTLP_HTTP_PORT:-4318}
PARTS=(receiver collector app prometheus alertmanager)

say() { echo "stack: $*" >&2; }

# A pid file holds the pid and the process's start time (field 22 of
# /proc/PID/stat), so a pid reused by another process is not taken for ours.
started_at() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null || true; }

pid_of() { awk '{print $1}' "$DIR/pids/$1" 2>/dev/null || true; }

running() {
  local pid since
  pid=$(pid_of "$1")
  since=$(awk '{print $2}' "$DIR/pids/$1" 2>/dev/null || true)
  [ -n "$pid" ] && [ -n "$since" ] && [ "$(started_at "$pid")" = "$since" ]
}

url_of() {
  case $1 in
    app) echo "http://127.0.0.1:$APP_PORT" ;;
    prometheus) echo "http://127.0.0.1:$PROM_PORT" ;;
    alertmanager) echo "http://127.0.0.1:$AM_PORT" ;;
    receiver) echo "http://127.0.0.1:$RECEIVER_PORT (log: $DIR/logs/receiver.log)" ;;
    collector) echo "127.0.0.1:$OTLP_PORT (OTLP gRPC; spans in $DIR/logs/collector.log)" ;;
  esac
}

# Waits until `$2` (a command) succeeds, for up to 30 s.
wait_for() {
  local name=$1
  shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    if ! running "$name"; then
      say "$name exited; its log: $DIR/logs/$name.log"
      tail -n 20 "$DIR/logs/$name.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
  say "$name did not become ready; its log: $DIR/logs/$name.log"
  return 1
}

http_ok() { python3 - "$1" <<'PY'
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=1).read()
PY
}

port_open() { python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$1"; }

# Starts `$2…` as part `$1` in the background (its own process group),
# with its output in its log, unless it runs; refuses a port another
# program listens on (`$PORT` of the part).
start() {
  local name=$1 port=$2
  shift 2
  if running "$name"; then
    say "$name runs already (pid $(pid_of "$name"))"
    return 0
  fi
  if port_open "$port" 2>/dev/null; then
    say "port $port ($name) is taken by another program; set its STACK_*_PORT"
    return 1
  fi
  setsid "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $(started_at "$pid")" >"$DIR/pids/$name"
}

binaries() {
  APP_BIN=${STACK_APP_BIN:-}
  CLI_BIN=${STACK_CLI_BIN:-}
  if [ -z "$APP_BIN" ]; then
    say "building the example service"
    cargo build --quiet --example axum_service --features full
    APP_BIN=$ROOT/target/debug/examples/axum_service
  fi
  if [ -z "$CLI_BIN" ]; then
    say "building the plimsoll command"
    cargo build --quiet -p plimsoll-slo --features cli --bin plimsoll
    CLI_BIN=$ROOT/target/debug/plimsoll
  fi
}

alertmanager_bin() {
  command -v alertmanager || command -v prometheus-alertmanager || {
    say "Alertmanager is missing: run scripts/install-services.sh"
    exit 1
  }
}

configs() {
  "$CLI_BIN" rules --slo "$ROOT/examples/slo.yaml" >"$DIR/rules.yml"
  cat >"$DIR/prometheus.yml" <<EOF
# Written by scripts/stack.sh.
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:$AM_PORT']
scrape_configs:
  - job_name: orders-api
    static_configs:
      - targets: ['127.0.0.1:$APP_PORT']
EOF
  cat >"$DIR/alertmanager.yml" <<EOF
# Written by scripts/stack.sh: pages and tickets to the local receiver.
route:
  receiver: ticket
  group_by: [alertname, slo, severity]
  group_wait: 2s
  group_interval: 10s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="page"']
      receiver: page
    - matchers: ['severity="ticket"']
      receiver: ticket
receivers:
  - name: page
    webhook_configs:
      - url: http://127.0.0.1:$RECEIVER_PORT/page
  - name: ticket
    webhook_configs:
      - url: http://127.0.0.1:$RECEIVER_PORT/ticket
EOF
}

up() {
  mkdir -p "$DIR/pids" "$DIR/logs" "$DIR/data"
  binaries
  configs
  local am
  am=$(alertmanager_bin)

  start receiver "$RECEIVER_PORT" python3 "$ROOT/scripts/stack-receiver.py" "$RECEIVER_PORT" "$DIR/logs/receiver.log.jsonl"
  wait_for receiver port_open "$RECEIVER_PORT"

  start collector "$OTLP_PORT" rotel-agent start --exporter blackhole \
    --debug-log traces --debug-log-verbosity detailed \
    --otlp-grpc-endpoint "127.0.0.1:$OTLP_PORT" --otlp-http-endpoint "127.0.0.1:$OTLP_HTTP_PORT"
  wait_for collector port_open "$OTLP_PORT"

  start app "$APP_PORT" env PLIMSOLL_ADDR="127.0.0.1:$APP_PORT" \
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$OTLP_PORT" OTEL_BSP_SCHEDULE_DELAY=500 \
    "$APP_BIN"
  wait_for app http_ok "http://127.0.0.1:$APP_PORT/api/v1/ready"

  start alertmanager "$AM_PORT" "$am" --config.file="$DIR/alertmanager.yml" \
    --storage.path="$DIR/data/alertmanager" --web.listen-address="127.0.0.1:$AM_PORT" \
    --cluster.listen-address=
  wait_for alertmanager http_ok "http://127.0.0.1:$AM_PORT/-/ready"

  start prometheus "$PROM_PORT" prometheus --config.file="$DIR/prometheus.yml" \
    --storage.tsdb.path="$DIR/data/prometheus" --web.listen-address="127.0.0.1:$PROM_PORT" \
    --enable-feature=exemplar-storage
  wait_for prometheus http_ok "http://127.0.0.1:$PROM_PORT/-/ready"

  status
}

status() {
  local part
  for part in "${PARTS[@]}"; do
    if running "$part"; then
      printf '  %-13s up    %s\n' "$part" "$(url_of "$part")"
    else
      printf '  %-13s down\n' "$part"
    fi
  done
}

down() {
  local part pid
  for part in prometheus alertmanager app collector receiver; do
    if running "$part"; then
      pid=$(pid_of "$part")
      # Each part leads its own process group (setsid): stop the group,
      # and only a group led by the process `up` started.
      if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
          running "$part" || break
          sleep 0.1
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        say "stopped $part"
      fi
    fi
    rm -f "$DIR/pids/$part"
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: scripts/stack.sh up | down | status" >&2
    exit 1
    ;;
esac
