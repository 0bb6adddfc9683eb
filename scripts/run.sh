#!/usr/bin/env bash
# The README's first command: the product on its embedded default (SQLite, in-memory
# channel layer, eager Celery) with the demo estate, served on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_DEBUG=${DJANGO_DEBUG:-true}
PORT=${PORT:-8000}
py=.venv/bin/python

$py manage.py migrate --noinput -v0
mkdir -p .run
$py manage.py load_demo --base-url "http://127.0.0.1:$PORT" | tee .run/demo-accounts.txt

cat <<MSG

Reliability Studio is starting on http://127.0.0.1:$PORT
  admin:      http://127.0.0.1:$PORT/admin/         (admin / admin, or any demo user: password = username)
  API:        http://127.0.0.1:$PORT/api/v1/        (Authorization: Token <key> from the list above)
  API docs:   http://127.0.0.1:$PORT/api/v1/docs/
  live feed:  ws://127.0.0.1:$PORT/ws/incidents/?token=<key>
Send an alert:
  curl -XPOST <webhook URL above> -H 'Authorization: Bearer <secret>' -H 'Content-Type: application/json' \\
       -d '{"name": "Checkout latency high", "labels": {"service": "checkout", "severity": "critical"}}'
(the generic integrations take that shape; Alertmanager/Grafana ones take their own webhook payloads)

MSG
# runserver is daphne here (ASGI: HTTP + WebSockets) and serves the admin's static files
exec $py manage.py runserver "127.0.0.1:$PORT" --noreload
