#!/usr/bin/env bash
# Registers and spills of every CUDA kernel launch the project's programs compile to, as ptxas
# reports them (`ptxas -v`), written into docs/cuda.md between its ptxas-table markers.
#
#     bash scripts/ptxas_table.sh [BUILD_DIR]       (default: build; needs tcc built with NVRTC)
#
# For each program of stdlib/, tests/golden/ and tests/numeric/progs/ that compiles: the PTX of
# `tcc --emit=ptx` (sm_80, the default) assembled by `ptxas -arch=sm_80` and `-arch=sm_90`, and
# the PTX of `--arch=sm_90` assembled for sm_90. Columns: registers per thread, then spill
# stores / loads in bytes, per target. $PTXAS names another ptxas (default: the toolkit's).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
tcc="$build/tcc"
ptxas=${PTXAS:-/usr/local/cuda/bin/ptxas}
doc=docs/cuda.md
[ -x "$tcc" ] || { echo "ptxas_table.sh: $tcc is missing; build first (bash scripts/build.sh)" >&2; exit 1; }
[ -x "$ptxas" ] || { echo "ptxas_table.sh: $ptxas is missing; set \$PTXAS" >&2; exit 1; }
grep -q '<!-- ptxas-table:begin -->' "$doc" || { echo "ptxas_table.sh: $doc lacks the table markers" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# "kernel regs spill_stores spill_loads" per entry function of one ptxas -v log
parse() {
    awk -v q="'" '/Compiling entry function/ { split($0, p, q); name = p[2] }
         /bytes spill stores/ { st = $5; ld = $9 }
         /Used [0-9]+ registers/ { for (i = 1; i <= NF; i++) if ($i == "Used") r = $(i + 1); print name, r, st, ld }' "$1"
}
export LC_ALL=C

rows="$work/rows"
: > "$rows"
nprog=0
for f in stdlib/*.tdsl tests/golden/*.tdsl tests/numeric/progs/*.tdsl; do
    "$tcc" check -I tests/golden/inputs "$f" > /dev/null 2>&1 || continue
    base=$(echo "$f" | tr / _)
    "$tcc" --emit=ptx -I tests/golden/inputs "$f" -o "$work/$base.80.ptx"
    "$tcc" --emit=ptx --arch=sm_90 -I tests/golden/inputs "$f" -o "$work/$base.90.ptx"
    "$ptxas" -v -arch=sm_80 "$work/$base.80.ptx" -o /dev/null 2> "$work/a.log"
    "$ptxas" -v -arch=sm_90 "$work/$base.80.ptx" -o /dev/null 2> "$work/b.log"
    "$ptxas" -v -arch=sm_90 "$work/$base.90.ptx" -o /dev/null 2> "$work/c.log"
    parse "$work/a.log" | sort -k1,1 > "$work/a"
    parse "$work/b.log" | sort -k1,1 > "$work/b"
    parse "$work/c.log" | sort -k1,1 > "$work/c"
    join "$work/a" "$work/b" | join - "$work/c" | sort -V | awk -v prog="$f" '{ print prog, $0 }' >> "$rows"
    nprog=$((nprog + 1))
done

table="$work/table"
awk -v nprog="$nprog" '
    { n++; prog[n] = $1; k[n] = $2; r80[n] = $3; s80[n] = $4 "/" $5; r9a[n] = $6; s9a[n] = $7 "/" $8; r90[n] = $9; s90[n] = $10 "/" $11
      if ($3 > max) { max = $3; maxk = $2 }
      if ($4 + $5 + $7 + $8 + $10 + $11 > 0) { nsp++; spl = spl sprintf("- `%s` (%s): sm_80 %s, sm_90 %s / %s bytes spill stores/loads\n", $2, $1, s80[n], s9a[n], s90[n]) } }
    END {
        printf "%d launches of %d programs; at most %d registers per thread (sm_80, `%s`); ", n, nprog, max, maxk
        if (nsp == 0) printf "no kernel spills a register.\n\n"
        else printf "%d kernels spill:\n\n%s\n", nsp, spl
        print "| program | launch | sm_80: regs | spills st/ld | sm_90 (sm_80 PTX): regs | spills | sm_90 (sm_90 PTX): regs | spills |"
        print "|---|---|---:|---:|---:|---:|---:|---:|"
        for (i = 1; i <= n; i++)
            printf "| %s | `%s` | %s | %s | %s | %s | %s | %s |\n", prog[i], k[i], r80[i], s80[i], r9a[i], s9a[i], r90[i], s90[i]
    }' "$rows" > "$table"

# replace what lies between the markers
awk -v table="$table" '
    /<!-- ptxas-table:begin -->/ { print; print ""; while ((getline line < table) > 0) print line; print ""; skip = 1; next }
    /<!-- ptxas-table:end -->/ { skip = 0 }
    !skip { print }' "$doc" > "$work/doc"
cp "$work/doc" "$doc"
head -n 3 "$table"
echo "ptxas_table.sh: $(wc -l < "$rows") launches of $nprog programs written to $doc"
