#!/usr/bin/env bash
# Benchmarks: installs the Debian packages, builds (build/, Release), sets up bench/.venv when
# it can (numpy, matplotlib, torch), and runs one suite of tdsl_bench at 1 and 2 threads:
#
#   bash scripts/bench.sh [core|scan] [tdsl_bench options, e.g. --reps 5 --cases softmax]
#
# Prints the table; writes bench/results/SUITE.json and bench/results/SUITE.png. PyTorch
# anchors use $TDSL_BENCH_PYTHON when set (a python with torch), else bench/.venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE="${1:-core}"
[ $# -gt 0 ] && shift
bash scripts/deps.sh
bash scripts/build.sh
bash bench/setup_venv.sh
./build/bench/tdsl_bench --suite "$SUITE" --threads 1,2 "$@"
