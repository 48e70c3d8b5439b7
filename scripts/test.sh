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
# allocator_may_return_null: the tests of out-of-memory paths ask for more than ASan's
# allocator serves; compiled code must get NULL and fail cleanly, as with the real malloc.
ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure

bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
echo "test.sh: all tests passed"
