#!/usr/bin/env bash
# Fuzzes the front end: builds tests/fuzz/fuzz_frontend with clang-19 and libFuzzer (plus
# AddressSanitizer and UndefinedBehaviorSanitizer) in build-fuzz/, seeds a corpus from every
# .tdsl file in tests/ and stdlib/, and runs for SECONDS (default 60). Exits non-zero on any
# crash, sanitizer report, leak or timeout; the input that caused it is saved in build-fuzz/
# as crash-*, leak-* or timeout-*, and can be replayed with
#     build-fuzz/fuzz_frontend build-fuzz/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

CC=clang-19 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTDSL_FUZZ=ON
cmake --build build-fuzz --target fuzz_frontend

corpus=build-fuzz/corpus
mkdir -p "$corpus"
find tests stdlib -name '*.tdsl' -print0 2>/dev/null |
  while IFS= read -r -d '' f; do
    cp "$f" "$corpus/seed-$(printf '%s' "$f" | tr '/' '_')"
  done

echo "fuzz.sh: fuzzing the front end for ${seconds}s (corpus: $(ls "$corpus" | wc -l) files)"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  build-fuzz/fuzz_frontend "$corpus" \
    -dict=tests/fuzz/tdsl.dict \
    -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix=build-fuzz/ -print_final_stats=1
