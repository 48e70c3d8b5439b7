#!/usr/bin/env bash
# Expected-diagnostics tests: for each NAME.tdsl under tests/errors (subdirectories included),
# runs `tcc check NAME.tdsl` from this directory and compares its stderr, byte for byte, with
# NAME.expected. Every case must exit with status 1 and print nothing on stdout.
#
#   run_errors.sh TCC [CASE.tdsl...]            run all cases (or the ones named)
#   run_errors.sh --update TCC [CASE.tdsl...]   rewrite the .expected files from tcc's output
#
# A .tdsl file whose first line is `# errors: skip` is a helper (an imported module, say) and
# is not run as a case.
set -uo pipefail

update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
if [ $# -lt 1 ]; then
  echo "usage: $0 [--update] TCC [CASE.tdsl...]" >&2
  exit 2
fi
tcc=$(realpath "$1"); shift
if [ ! -x "$tcc" ]; then echo "run_errors.sh: $tcc is not an executable" >&2; exit 2; fi
cd "$(dirname "$0")"
unset TDSL_STDLIB   # the build's stdlib, whatever the caller's environment says

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ $# -gt 0 ]; then
  cases=("$@")
else
  mapfile -t cases < <(find . -name '*.tdsl' | sed 's|^\./||' | LC_ALL=C sort)
fi

pass=0
fail=0
for f in "${cases[@]}"; do
  if head -n 1 "$f" | grep -q '^# errors: skip'; then continue; fi
  expected="${f%.tdsl}.expected"
  "$tcc" check "$f" >"$tmp/stdout" 2>"$tmp/stderr"
  rc=$?
  if [ $update -eq 1 ]; then
    cp "$tmp/stderr" "$expected"
    echo "updated $expected"
  fi
  problems=()
  [ $rc -eq 1 ] || problems+=("exit status $rc, expected 1")
  [ -s "$tmp/stdout" ] && problems+=("stdout is not empty")
  if [ ! -f "$expected" ]; then
    problems+=("$expected is missing (create it with --update, then review it)")
  elif ! diff -u --label "$expected" --label "stderr of tcc check $f" "$expected" "$tmp/stderr" >"$tmp/diff"; then
    problems+=("stderr differs from $expected")
  fi
  if [ ${#problems[@]} -eq 0 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $f"
    for p in "${problems[@]}"; do echo "  $p"; done
    [ -s "$tmp/diff" ] && cat "$tmp/diff"
    if [ -s "$tmp/stdout" ]; then echo "  stdout:"; sed 's/^/    /' "$tmp/stdout"; fi
    rm -f "$tmp/diff"
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
