#!/usr/bin/env bash
# The README's first command: the product on its embedded default (SQLite, in-memory
# channel layer, eager Celery) with the demo estate, served on http://127.0.0.1:8000, plus
# the telemetry lab (Prometheus/Loki/Tempo/Kubernetes APIs of a simulated shop) sending its
# alerts to the product, with a fault injected after DEMO_FAULT_AFTER seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_DEBUG=${DJANGO_DEBUG:-true}
PORT=${PORT:-8000}
LAB_PORT=${LAB_PORT:-19090}
DEMO_FAULT=${DEMO_FAULT:-bad_deploy:payments}
DEMO_FAULT_AFTER=${DEMO_FAULT_AFTER:-30}
# alert rules hold this long before firing in the demo (the shipped rule files keep 1-10 min)
DEMO_ALERT_FOR=${DEMO_ALERT_FOR:-15}
py=.venv/bin/python
export PROMETHEUS_URL=${PROMETHEUS_URL:-http://127.0.0.1:$LAB_PORT}
export LOKI_URL=${LOKI_URL:-http://127.0.0.1:$LAB_PORT}
export TEMPO_URL=${TEMPO_URL:-http://127.0.0.1:$LAB_PORT}
mkdir -p .run
export KUBECONFIG=${KUBECONFIG:-$PWD/.run/lab-kubeconfig}
# no Celery worker here: incident analyses run on a background thread of the server
export ANALYSIS_IN_THREAD=${ANALYSIS_IN_THREAD:-true}

$py manage.py migrate --noinput -v0
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

The telemetry lab serves Prometheus, Loki, Tempo and Kubernetes APIs on http://127.0.0.1:$LAB_PORT
and posts its alerts to the "lab" integration. In about $DEMO_FAULT_AFTER s it injects $DEMO_FAULT:
watch http://127.0.0.1:$PORT/admin/incidents/incident/ for the incident to open and its
timeline to grow, and http://127.0.0.1:$PORT/admin/intelligence/insight/ for its analysis
(API: /api/v1/incidents/<id>/insights/; the lab's log: .run/lab.log). Try: .venv/bin/python -m lab faults --url http://127.0.0.1:$LAB_PORT

MSG
webhook=$($py manage.py webhook_url lab --with-secret --base-url "http://127.0.0.1:$PORT")
(
  # the lab starts once the product answers, so its first alerts are not refused
  $py -c "import time, httpx
for _ in range(120):
    try:
        httpx.get('http://127.0.0.1:$PORT/api/v1/', timeout=1); break
    except httpx.HTTPError:
        time.sleep(0.5)"
  exec $py -m lab serve --port "$LAB_PORT" --webhook-url "$webhook" --fault "$DEMO_FAULT" \
    --inject-after "$DEMO_FAULT_AFTER" --alert-for "$DEMO_ALERT_FOR" --kubeconfig "$KUBECONFIG"
) > .run/lab.log 2>&1 &
lab_pid=$!
trap 'kill $lab_pid 2>/dev/null; pkill -f "lab serve --port $LAB_PORT" 2>/dev/null' EXIT INT TERM
# runserver is daphne here (ASGI: HTTP + WebSockets) and serves the admin's static files
$py manage.py runserver "127.0.0.1:$PORT" --noreload
