#!/usr/bin/env bash
# Reproduces BENCHMARKS.md and Benchmarks/benchmarks.svg from a clean checkout:
# builds zend and zen (release), the SwiftNIO peer, the C peer server and the C load
# generator, then runs every server under the same loads, counts instructions, syscalls
# and allocations per request against the C peer (callgrind, strace, a malloc counter)
# and measures the per-reactor balance (Benchmarks/run.py). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup
for tool in taskset valgrind strace objcopy cc make; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed (scripts/setup installs it)" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || echo "run.sh: warning: fewer than 2 CPUs; server and client will share one" >&2
# run.py reports the whole time, builds included.
export ZEND_BENCH_STARTED=$(date +%s)
echo "== building (release)"
swift build -c release --product zend
swift build -c release --product zen
(cd Benchmarks/peers/nio && swift build -c release)
make -s -C Benchmarks/peers/c
echo "== measuring"
exec /usr/bin/python3 Benchmarks/run.py
