#!/usr/bin/env bash
# Make a fresh machine able to run the project: Debian packages (as root), then .venv.
# Idempotent and quick when everything is already there.
#   scripts/bootstrap.sh run        .venv only (the embedded default needs no servers)
#   scripts/bootstrap.sh [test]     plus PostgreSQL, Redis, Prometheus, Alertmanager + test tools
#   scripts/bootstrap.sh bench      plus benchmark-only baselines (drain3)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-test}

want_apt=()
if [ "$mode" != run ]; then
  [ -x "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -n1)" ] || want_apt+=(postgresql)
  command -v redis-server >/dev/null || want_apt+=(redis-server)
  command -v prometheus >/dev/null || want_apt+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || want_apt+=(prometheus-alertmanager)
  if [ ${#want_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "missing Debian packages: ${want_apt[*]} (run as root or apt-get install them)" >&2
      exit 1
    fi
    echo "installing Debian packages: ${want_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${want_apt[@]}" >/dev/null
  fi
fi

req=requirements-dev.txt
[ "$mode" = bench ] && req=requirements-bench.txt
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed-$(cat requirements*.txt | sha1sum | cut -c1-12)-$(basename "$req" .txt)"
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  touch "$stamp"
fi
