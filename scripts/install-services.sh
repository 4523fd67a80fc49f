#!/usr/bin/env bash
# Installs the real servers and tools the tests run against. Idempotent: what
# is present already is left alone. Needs root (apt-get) and network access to
# Debian's packages and PyPI.
set -euo pipefail

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)   # promtool + prometheus
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v amtool >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)   # alertmanager + amtool
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)   # validates deploy/compose.yaml
# PostgreSQL: Debian keeps its tools off PATH (/usr/lib/postgresql/N/bin).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }
command -v initdb >/dev/null 2>&1 || [ -n "$(pg_bin)" ] || need_apt+=(postgresql)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-services: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v initdb >/dev/null 2>&1; then
  for tool in initdb pg_ctl postgres; do ln -sf "$(pg_bin)/$tool" /usr/local/bin/$tool; done
fi

# The reference OpenMetrics parser (prometheus_client.openmetrics.parser).
if ! python3 -c 'import prometheus_client.openmetrics.parser' 2>/dev/null; then
  echo "install-services: pip install prometheus-client"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore prometheus-client
fi

# Kubernetes' schemas, offline, for deploy/kubernetes.
if [ "$(python3 -m kubernetes_validate --version 2>/dev/null)" != 1.37.0 ]; then
  echo "install-services: pip install kubernetes-validate"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore kubernetes-validate==1.37.0
fi

# The OTLP collector (rotel, pre-releases only), linked onto PATH.
rotel_bin() { python3 -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))' 2>/dev/null; }
if ! command -v rotel-agent >/dev/null 2>&1; then
  if [ ! -x "$(rotel_bin)" ]; then
    echo "install-services: pip install --pre rotel"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --pre rotel
  fi
  ln -sf "$(rotel_bin)" /usr/local/bin/rotel-agent
fi

echo "install-services: promtool $(promtool --version 2>&1 | head -n1 | awk '{print $3}'), amtool $(amtool --version 2>&1 | head -n1 | awk '{print $3}'), redis-server $(redis-server --version | awk '{print $3}'), $(initdb --version), python prometheus_client ok, $(docker-compose --version | head -n1), kubernetes-validate $(python3 -m kubernetes_validate --version), $(rotel-agent --version)"
