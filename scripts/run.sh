#!/usr/bin/env bash
# `make run`: serve the platform on http://127.0.0.1:8000 with one Celery worker (+ beat)
# beside it. Ctrl-C stops what this started, including the local PostGIS/Redis if they
# were not already running before.
set -euo pipefail
cd "$(dirname "$0")/.."
set -a; eval "$(scripts/services.sh env)"; DJANGO_DEBUG=${DJANGO_DEBUG:-1}; set +a
BIN=.venv/bin
HOST=${GRIDGOV_HOST:-127.0.0.1}
PORT=${GRIDGOV_PORT:-8000}

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping GridGov…"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${GRIDGOV_KEEP_SERVICES:-0}" = 1 ] || scripts/services.sh stop
}
trap cleanup INT TERM EXIT

mkdir -p var/log
$BIN/celery -A gridgov worker --beat -l info --concurrency 1 -s var/celerybeat-schedule >var/log/celery.log 2>&1 &
pids+=($!)

$BIN/python manage.py demo_logins
echo "GridGov: http://$HOST:$PORT/   (Ctrl-C to stop; worker log: var/log/celery.log)"
# gridgov.serve is daphne answering 414/431 to oversized requests instead of dropping them.
$BIN/python -m gridgov.serve -b "$HOST" -p "$PORT" gridgov.asgi:application &
pids+=($!)
wait "${pids[-1]}"
