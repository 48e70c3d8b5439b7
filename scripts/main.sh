#!/usr/bin/env bash
# The main job: installs the dependencies and builds everything; then
#   1. a stdlib model (examples/model.tdsl: layernorm and attention) was built ahead of time
#      into a shared library by `tcc ... -o libmodel.so --header model.h` during the build,
#      and the C host examples/host_aot.c, compiled against that header, calls it;
#   2. examples/host_decoder.c runs the stdlib's LLaMA decoder block (built the same way into
#      libllama.so) for ten decode steps with its KV caches and checks every step in C;
#   3. examples/host_jit.c JIT-compiles a fused op from a string and checks it;
#   4. `tcc run` runs the stdlib softmax kernel, compiled for this CPU, on generated inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
echo "== C host calling the AOT-built model (build/examples/libmodel.so) =="
./build/examples/host_aot
echo "== C host running the stdlib LLaMA decoder block (build/examples/libllama.so) =="
./build/examples/host_decoder
echo "== C host embedding the JIT =="
TDSL_STDLIB="$PWD/stdlib" ./build/examples/host_jit
echo "== tcc run stdlib/nn.tdsl --kernel softmax =="
./build/tcc run stdlib/nn.tdsl --kernel softmax --random 1 -D R=4 -D N=8 --print
