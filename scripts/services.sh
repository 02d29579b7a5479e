#!/usr/bin/env bash
# Start/stop the external services used by integration tests. Each service records its own pid
# under var/run/ and is stopped by that pid.
RUN_DIR="${RUN_DIR:-var/run}"

services_start() {
  mkdir -p "$RUN_DIR"
}

services_stop() {
  local pidfile
  for pidfile in "$RUN_DIR"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}
