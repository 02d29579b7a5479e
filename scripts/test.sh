#!/usr/bin/env bash
# Runs the test suite: starts the services the integration tests need, runs pytest, stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
export DO_NOT_TRACK=1
source scripts/services.sh
trap services_stop EXIT
services_start
.venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
