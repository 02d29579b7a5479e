#!/usr/bin/env bash
# Runs every benchmark in bench/ (each writes bench/results/<area>.json), then regenerates the
# README benchmark table from those files.
set -euo pipefail
cd "$(dirname "$0")/.."
for b in bench/bench_*.py; do
  echo "== $b"
  .venv/bin/python "$b"
done
.venv/bin/python scripts/bench_table.py --write README.md
