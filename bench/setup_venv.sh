#!/usr/bin/env bash
# Creates bench/.venv (git-ignored), the Python environment of tdsl_bench: numpy and
# matplotlib (bench/plot.py's chart) and torch (bench/torch_anchor.py's PyTorch anchors).
#
#   bash bench/setup_venv.sh            idempotent; prints what it did or why not
#
# The PyPI torch wheel for Linux pulls several GB of NVIDIA wheels: when TDSL_BENCH_PYTHON
# already names a python that imports torch, torch is not installed here (the harness uses
# that python for the anchors and this environment for the chart only). TDSL_BENCH_NO_TORCH=1
# skips torch too. Never fails the caller: without this environment the harness skips the
# PyTorch anchors and the chart with a notice.
set -uo pipefail
cd "$(dirname "$0")"
VENV=.venv

note() { echo "setup_venv: $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    note "python3 -m venv failed (install python3-venv): no bench/.venv, PyTorch anchors and chart will be skipped"
    rm -rf "$VENV"
    exit 0
  fi
  note "created bench/$VENV"
fi
PY="$VENV/bin/python"

have() { "$PY" -c "import $1" >/dev/null 2>&1; }

for pkg in numpy matplotlib; do
  if have "$pkg"; then continue; fi
  note "installing $pkg"
  "$PY" -m pip install --quiet "$pkg" || note "pip install $pkg failed"
done

if have torch; then
  note "torch present in bench/$VENV"
elif [ -n "${TDSL_BENCH_PYTHON:-}" ] && "$TDSL_BENCH_PYTHON" -c "import torch" >/dev/null 2>&1; then
  note "TDSL_BENCH_PYTHON=$TDSL_BENCH_PYTHON imports torch: using it for the PyTorch anchors, not installing torch here"
elif [ "${TDSL_BENCH_NO_TORCH:-0}" = 1 ]; then
  note "TDSL_BENCH_NO_TORCH=1: torch not installed; PyTorch anchors will be skipped"
else
  note "installing torch (large download)"
  "$PY" -m pip install --quiet torch || note "pip install torch failed: PyTorch anchors will be skipped"
fi
exit 0
