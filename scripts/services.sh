#!/usr/bin/env bash
# Project-local PostGIS and Redis for `make run` / `make test`.
#   scripts/services.sh start   start them (idempotent) and print the env to use
#   scripts/services.sh stop    stop what start started
#   scripts/services.sh env     print DATABASE_URL / REDIS_URL for the local services
# DATABASE_URL / REDIS_URL set in the environment mean "use that one": nothing local starts.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PGBIN=/usr/lib/postgresql/15/bin

# initdb/pg_ctl refuse root, so the cluster belongs to the postgres user; its data must sit
# under a path that user can traverse. The project's var/ is used when it can, else a
# per-checkout directory under /var/tmp.
var_dir() {
  local v="$ROOT/var"
  mkdir -p "$v"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$v" 2>/dev/null; then
    v="/var/tmp/gridgov-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
    mkdir -p "$v"
  fi
  echo "$v"
}
VAR=$(var_dir)
PGDATA="$VAR/pgdata"
PGSOCK="$VAR/run"
REDIS_DIR="$VAR/redis"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Ports: the one recorded by the last start of this checkout, else the first free one from the
# default (another checkout's cluster may hold the default), recorded for `env` and `stop`.
pick_port() {  # name default
  local file="$VAR/$1.port" port
  if [ -s "$file" ]; then cat "$file"; return; fi
  port=$2
  while port_busy "$port"; do port=$((port + 1)); done
  echo "$port" >"$file"; echo "$port"
}
recorded_port() { if [ -s "$VAR/$1.port" ]; then cat "$VAR/$1.port"; else echo "$2"; fi; }
PG_PORT=${GRIDGOV_PG_PORT:-$(recorded_port pg 54329)}
REDIS_PORT=${GRIDGOV_REDIS_PORT:-$(recorded_port redis 63799)}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_start() {
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1 || PG_PORT=${GRIDGOV_PG_PORT:-$(rm -f "$VAR/pg.port"; pick_port pg 54329)}
  mkdir -p "$PGSOCK"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGSOCK" && chmod 775 "$PGSOCK"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$VAR/initdb.log"
    cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGSOCK'
max_connections = 300
shared_buffers = 1GB
work_mem = 64MB
maintenance_work_mem = 512MB
fsync = ${GRIDGOV_PG_FSYNC:-on}
synchronous_commit = off
timezone = 'Asia/Shanghai'
CONF
  fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGSOCK/postgres.log" -o "-p $PG_PORT" -w -t 60 start >/dev/null
  fi
  local psql=(env PGOPTIONS="-c client_min_messages=warning" psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  # PostGIS is not a trusted extension: the superuser creates it, in template1 too so that
  # the test databases Django creates inherit it.
  "${psql[@]}" -d template1 -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
  "${psql[@]}" -d postgres -tc "SELECT 1 FROM pg_database WHERE datname='gridgov'" | grep -q 1 \
    || "${psql[@]}" -d postgres -c "CREATE DATABASE gridgov" >/dev/null
  "${psql[@]}" -d gridgov -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}

redis_start() {
  mkdir -p "$REDIS_DIR"
  if ! { [ -s "$REDIS_DIR/redis.pid" ] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; }; then
    REDIS_PORT=${GRIDGOV_REDIS_PORT:-$(rm -f "$VAR/redis.port"; pick_port redis 63799)}
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --daemonize yes \
      --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --save "" --appendonly no >/dev/null
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
}

case "${1:-}" in
  start)
    [ -n "${DATABASE_URL:-}" ] || pg_start
    [ -n "${REDIS_URL:-}" ] || redis_start
    ;;
  stop)
    if [ -s "$PGDATA/PG_VERSION" ]; then as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true; fi
    if [ -s "$REDIS_DIR/redis.pid" ] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; then
      redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    ;;
  env)
    echo "DATABASE_URL=${DATABASE_URL:-postgis://postgres@127.0.0.1:$PG_PORT/gridgov}"
    echo "REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
    ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
