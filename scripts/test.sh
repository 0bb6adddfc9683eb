#!/usr/bin/env bash
# The README's test command: installs what is missing, starts throwaway PostgreSQL and
# Redis on loopback, runs lint and pytest against them, stops them.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/test_ingest.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
# shellcheck source=scripts/services.sh
source scripts/services.sh
trap services_stop EXIT
services_start
# tasks run inline in tests; tests/test_celery_worker.py runs a real worker on Redis
export CELERY_TASK_ALWAYS_EAGER=true
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/pytest "$@"
