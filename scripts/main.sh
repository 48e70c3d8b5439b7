#!/usr/bin/env bash
# The main job: installs the dependencies, builds tcc, and runs the stdlib's softmax kernel
# on the reference interpreter with generated inputs, printing the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
./build/tcc run stdlib/nn.tdsl --kernel softmax --random 1 -D R=4 -D N=8 --print
