#!/usr/bin/env bash
# Run one benchmark module against throwaway PostgreSQL and Redis: scripts/bench.sh ingest
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/services.sh
source scripts/services.sh
trap services_stop EXIT
services_start
.venv/bin/python -m "benchmarks.bench_$1" "${@:2}"
