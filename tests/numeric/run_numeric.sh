#!/usr/bin/env bash
# Numeric tests: runs each case of cases.txt with `tcc run` and compares every output with
# its reference .npy using npycmp.
#
#   run_numeric.sh TCC NPYCMP [CASES_FILE]
#
# A case is one line (paths relative to tests/numeric/; `#` starts a comment):
#
#   FILE KERNEL [IN=INPUT.npy]... -> OUT=REFERENCE.npy... [rtol=R] [atol=A] [-D NAME=VALUE]...
#
# e.g.  ../../stdlib/nn.tdsl softmax x=softmax/x.npy -> y=softmax/y.npy rtol=1e-5 -D N=8
# Outputs are compared with |actual - expected| <= atol + rtol * |expected| (defaults: those
# of npycmp, rtol 1e-6 and atol 1e-7); NaN matches NaN. Every case runs on each engine in
# $ENGINES (default: "interp cpu"), so the compiled code meets the same references.
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 TCC NPYCMP [CASES_FILE]" >&2
  exit 2
fi
tcc=$(realpath "$1")
npycmp=$(realpath "$2")
# CASES_FILE is taken relative to this directory (as ctest passes it) or as given
if [ -n "${3:-}" ] && [ -f "$3" ]; then cases_file=$(realpath "$3"); else cases_file=${3:-cases.txt}; fi
cd "$(dirname "$0")"
if [ ! -f "$cases_file" ]; then
  echo "$0: no cases file '$cases_file'" >&2
  exit 2
fi
unset TDSL_STDLIB

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass=0
fail=0
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  line=${line%%#*}
  read -ra tok <<<"$line"
  [ ${#tok[@]} -eq 0 ] && continue
  name="$cases_file:$lineno (${tok[0]} ${tok[1]:-})"
  run_args=()
  outs=()
  tol=()
  after_arrow=0
  bad=""
  if [ ${#tok[@]} -lt 2 ]; then bad="expected FILE KERNEL ..."; fi
  for ((i = 2; i < ${#tok[@]}; i++)); do
    t=${tok[i]}
    case "$t" in
      "->") after_arrow=1 ;;
      -D) i=$((i + 1)); run_args+=(-D "${tok[i]:-}") ;;
      -D*) run_args+=("$t") ;;
      rtol=*) tol+=(--rtol "${t#rtol=}") ;;
      atol=*) tol+=(--atol "${t#atol=}") ;;
      *=*)
        if [ $after_arrow -eq 0 ]; then
          run_args+=(--in "$t")
        else
          outs+=("${t%%=*}" "${t#*=}")
          run_args+=(--out "${t%%=*}=$tmp/$lineno.${t%%=*}.npy")
        fi ;;
      *) bad="unexpected '$t'" ;;
    esac
  done
  [ -z "$bad" ] && [ ${#outs[@]} -eq 0 ] && bad="no outputs to compare (OUT=REF.npy after '->')"
  if [ -n "$bad" ]; then
    fail=$((fail + 1))
    echo "FAIL $name: malformed case: $bad"
    continue
  fi

  for engine in ${ENGINES:-interp cpu}; do
    if ! "$tcc" run "${tok[0]}" --kernel "${tok[1]}" --engine "$engine" "${run_args[@]}" >"$tmp/log" 2>&1; then
      fail=$((fail + 1))
      echo "FAIL $name [$engine]: tcc run failed:"
      echo "  $tcc run ${tok[0]} --kernel ${tok[1]} --engine $engine ${run_args[*]}"
      sed 's/^/  /' "$tmp/log"
      continue
    fi
    ok=1
    for ((j = 0; j < ${#outs[@]}; j += 2)); do
      if ! "$npycmp" "$tmp/$lineno.${outs[j]}.npy" "${outs[j + 1]}" "${tol[@]}" >"$tmp/cmp" 2>&1; then
        ok=0
        echo "FAIL $name [$engine]: output ${outs[j]} differs from ${outs[j + 1]}"
        sed 's/^/  /' "$tmp/cmp"
      fi
    done
    if [ $ok -eq 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
  done
done <"$cases_file"
echo "$pass passed, $fail failed"
if [ $pass -eq 0 ] && [ $fail -eq 0 ]; then
  echo "$0: $cases_file has no cases" >&2
  exit 2
fi
[ $fail -eq 0 ]
