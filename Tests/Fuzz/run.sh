#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of the pure protocol code, SECONDS each (10).
#
#   Tests/Fuzz/run.sh [SECONDS]
#
# Targets (one file each, an @_cdecl("LLVMFuzzerTestOneInput") entry point, no main):
#   framer          ZenService.serve: any stream, cut anywhere, answers like one whole
#                   read and like a plain reference model (FramerFuzz.swift)
#   aphorism-file   AphorismFile.parse: never crashes; what it accepts keeps the format's
#                   rules and survives render and re-parse (AphorismFileFuzz.swift)
#   proxy-header    ProxyHeader.parse: never crashes or overreads; cut anywhere it needs
#                   more, then decides once and for all; address text agrees with glibc;
#                   encoded v1 and v2 headers parse back (ProxyHeaderFuzz.swift)
#
# Each is compiled by swiftc straight from Sources/ZenProtocol/*.swift and its target
# file into one module with -sanitize=fuzzer,address, into .build/fuzz; SwiftPM and
# `swift build` never see these files. The seeds in Tests/Fuzz/corpus/TARGET are read;
# inputs libFuzzer finds go to .build/fuzz/corpus/TARGET, crashing ones to
# .build/fuzz/artifacts/ (replay one with: .build/fuzz/TARGET-fuzzer FILE).
# libFuzzer's own output is shown (its "Done N runs" line ends each run); the exit
# status is non-zero if any target crashed or failed to build.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
out=.build/fuzz
mkdir -p "$out/artifacts"
# Swift's backtracer would catch the crash first and hide it from libFuzzer.
export SWIFT_BACKTRACE=enable=no

declare -A sources=([framer]=FramerFuzz.swift [aphorism-file]=AphorismFileFuzz.swift [proxy-header]=ProxyHeaderFuzz.swift)
failed=()
for target in framer aphorism-file proxy-header; do
  echo "== fuzz $target: building"
  if ! swiftc -parse-as-library -sanitize=fuzzer,address -O -g -use-ld=lld \
      -module-name "ZenFuzz_${target//-/_}" \
      Sources/ZenProtocol/*.swift Tests/Fuzz/FuzzSupport.swift "Tests/Fuzz/${sources[$target]}" \
      -o "$out/$target-fuzzer"; then
    failed+=("$target (build)")
    continue
  fi
  mkdir -p "$out/corpus/$target"
  dictionary=()
  [[ -f Tests/Fuzz/$target.dict ]] && dictionary=(-dict="Tests/Fuzz/$target.dict")
  echo "== fuzz $target: running for $seconds s"
  if ! "$out/$target-fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$out/artifacts/$target-" "${dictionary[@]}" \
      "$out/corpus/$target" "Tests/Fuzz/corpus/$target"; then
    failed+=("$target")
  fi
done

if (( ${#failed[@]} )); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $out/artifacts/)" >&2
  exit 1
fi
echo "fuzz: every target ran $seconds s without a crash"
