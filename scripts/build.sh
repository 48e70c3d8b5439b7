#!/usr/bin/env bash
# Configures (Ninja, Release) into build/ and builds tcc, the tests and their tools.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
