#!/usr/bin/env bash
# Builds and runs zend's protocol microbenchmarks (ordo-one/benchmark) and prints
# the results as markdown on stdout: a one-table summary of the medians, then the
# tool's full percentile tables. Build progress goes to stderr.
#
#   Benchmarks/micro/run.sh                          # everything, about 15 s once built
#   Benchmarks/micro/run.sh --filter 'framer.*'      # extra options go to `swift package benchmark`
#
# The first run resolves and builds the benchmark package and its dependencies in
# Benchmarks/micro/.build (a few minutes on 2 cores); it never touches the
# top-level package's .build.
set -euo pipefail

cd "$(dirname "$0")"

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT

# The plugin prints its own notes on stdout before the results; keep them out of
# the markdown and show them on stderr if the run fails.
if ! swift package --allow-writing-to-package-directory benchmark run \
        --format markdown --path stdout --no-progress "$@" >"$raw"; then
    cat "$raw" >&2
    echo "run.sh: swift package benchmark failed" >&2
    exit 1
fi

results=$(sed -n '/^## Baseline/,$p' "$raw")
if [[ -z "$results" ]]; then
    cat "$raw" >&2
    echo "run.sh: no results in the benchmark output" >&2
    exit 1
fi

# Summary: the p50 column of each benchmark's table (figures marked * are per
# request, or per line for the parser; see README.md).
echo "## Summary (p50; per request, per line for the parser)"
echo
echo "$results" | awk -F'|' '
    function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
    function flush() {
        if (name != "") printf "| %s | %s | %s | %s |\n", name, throughput, wall, mallocs
    }
    BEGIN {
        print "| benchmark | throughput | wall clock | mallocs |"
        print "|:--|--:|--:|--:|"
    }
    /^### / { flush(); name = substr($0, 5); throughput = wall = mallocs = "" }
    # "Throughput (# / s) (M)" -> "M/s"; "Time (wall clock) (ns) *" -> "ns".
    /^\| Throughput/      { unit = trim($2); sub(/^Throughput \(# \/ s\) */, "", unit); gsub(/[()]/, "", unit)
                           throughput = trim($5) " " unit "/s" }
    /^\| Time \(wall/     { unit = trim($2); sub(/^Time \(wall clock\) /, "", unit); gsub(/[()* ]/, "", unit)
                           wall = trim($5) " " unit }
    /^\| Malloc \(total\)/ { mallocs = trim($5) }
    END { flush() }
'
echo
echo "$results"
