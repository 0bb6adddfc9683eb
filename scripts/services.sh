#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis on loopback, on free ports, for tests and benchmarks.
#   source scripts/services.sh; services_start; ...; services_stop
# Exports DATABASE_URL and REDIS_URL. Nothing outlives services_stop.

_free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

services_start() {
  RS_SVC_DIR=$(mktemp -d /tmp/rs-services.XXXXXX)
  chmod 755 "$RS_SVC_DIR"
  local pgbin
  pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n1)")
  local pg_port redis_port run_as=()
  pg_port=$(_free_port)
  redis_port=$(_free_port)
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$RS_SVC_DIR"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$pgbin/initdb" -D "$RS_SVC_DIR/pg" -U rs --auth=trust -E UTF8 >"$RS_SVC_DIR/initdb.log" 2>&1
  "${run_as[@]}" "$pgbin/pg_ctl" -D "$RS_SVC_DIR/pg" -l "$RS_SVC_DIR/pg.log" -w -t 60 start \
    -o "-h 127.0.0.1 -p $pg_port -k $RS_SVC_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
  "$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U rs reliability
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --daemonize yes --pidfile "$RS_SVC_DIR/redis.pid" --logfile "$RS_SVC_DIR/redis.log" --dir "$RS_SVC_DIR"
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export DATABASE_URL="postgres://rs@127.0.0.1:$pg_port/reliability"
  export REDIS_URL="redis://127.0.0.1:$redis_port/0"
  export RS_SVC_DIR RS_PGBIN="$pgbin" RS_RUN_AS="${run_as[*]}"
  echo "services: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port"
}

services_stop() {
  [ -n "${RS_SVC_DIR:-}" ] && [ -d "$RS_SVC_DIR" ] || return 0
  if [ -f "$RS_SVC_DIR/redis.pid" ]; then kill "$(cat "$RS_SVC_DIR/redis.pid")" 2>/dev/null || true; fi
  # shellcheck disable=SC2086
  $RS_RUN_AS "$RS_PGBIN/pg_ctl" -D "$RS_SVC_DIR/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$RS_SVC_DIR"
  unset RS_SVC_DIR
}
