#!/usr/bin/env bash
# Every test of the project, failing on the first failure:
#   1. the Release build in build/ and its whole ctest suite;
#   2. a Debug build with AddressSanitizer and UndefinedBehaviorSanitizer in build-asan/ and
#      the whole suite again;
#   3. the front-end fuzzer for FUZZ_SECONDS (default 60) seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTDSL_SANITIZE=ON
cmake --build build-asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure

bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
echo "test.sh: all tests passed"
