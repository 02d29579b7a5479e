#!/usr/bin/env bash
# Start/stop the external services used by integration tests. Each service records its own pid
# under var/run/ and is stopped by that pid.
RUN_DIR="${RUN_DIR:-var/run}"

# --- Hazelcast (grid plane): one member for the @pytest.mark.hazelcast tests, on loopback,
# cluster dolphin-test, port 5701 (override with DOLPHIN_TEST_HZ_PORT). Maven builds
# grid-member/ (downloads the jars from Maven Central) the first time. The member-kill test
# starts and kills its own members on other ports.
hazelcast_start() {
  local port="${DOLPHIN_TEST_HZ_PORT:-5701}"
  local py="${PYTHON_BIN:-.venv/bin/python}"
  command -v java >/dev/null || { echo "services: java (17) not found; apt-get install openjdk-17-jre-headless" >&2; return 1; }
  command -v mvn >/dev/null || { echo "services: maven not found; apt-get install maven" >&2; return 1; }
  hazelcast_stop  # a member left over from an interrupted run (by its recorded pid)
  PYTHONPATH=src "$py" -m dolphin.cli grid member start --run-dir "$RUN_DIR" --name hazelcast-test \
    --cluster-name dolphin-test --port "$port" --members "127.0.0.1:$port" --heap-mb 256 || return 1
  export DOLPHIN_TEST_HZ_MEMBERS="127.0.0.1:$port"
  export DOLPHIN_TEST_HZ_CLUSTER="dolphin-test"
}

hazelcast_stop() {
  local py="${PYTHON_BIN:-.venv/bin/python}"
  [ -e "$RUN_DIR/hazelcast-test.pid" ] || return 0
  PYTHONPATH=src "$py" -m dolphin.cli grid member stop --run-dir "$RUN_DIR" --name hazelcast-test \
    || kill "$(cat "$RUN_DIR/hazelcast-test.pid")" 2>/dev/null || true
}

services_start() {
  mkdir -p "$RUN_DIR"
  hazelcast_start
}

services_stop() {
  hazelcast_stop
  local pidfile
  for pidfile in "$RUN_DIR"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}
