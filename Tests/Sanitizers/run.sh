#!/usr/bin/env bash
# Builds the Swift tests, and with them zend and zen, under AddressSanitizer and
# ThreadSanitizer, runs the whole Swift test suite under each, and fails on any test
# failure or any sanitizer report from any process: the test runner and every zend,
# zen or other sanitized child the tests start.
#
#   Tests/Sanitizers/run.sh [address|thread]... [SWIFT-TEST-ARGUMENTS...]
#
#   Tests/Sanitizers/run.sh                       both, every test
#   Tests/Sanitizers/run.sh thread --filter Lock  ThreadSanitizer, the matching tests only
#
# Each sanitizer builds into its own scratch directory (.build-asan, .build-tsan); the
# end-to-end tests run the zend beside the test binary, so a sanitized test run runs a
# sanitized zend. Reports go to files, not to stderr: a child's stderr is its log file,
# which nobody reads when the test passes. Every sanitized process writes its reports to
# SCRATCH/sanitizer-reports/report.PID (log_path); any such file fails the run and is
# printed. ASan stops a process at its first error (halt_on_error); TSan goes on and
# makes the process exit 66 at the end.
#
# Figures a sanitizer distorts (memory per connection) are not checked under it; the
# test prints "SKIP under the … sanitizer: …" for each (Tests/TestSupport/Sanitizer.swift).
#
# Before the ThreadSanitizer run, Tests/Sanitizers/LockCheck.swift checks that TSan sees
# LinuxIO's Lock (no report) and sees an unguarded counter (a report: TSan is on), and
# says whether it sees Synchronization.Mutex (this toolchain's does not: zend's code
# uses Lock).
set -euo pipefail
cd "$(dirname "$0")/../.."

sanitizers=()
while (($#)); do
  case $1 in
    address | thread) sanitizers+=("$1"); shift ;;
    *) break ;;
  esac
done
((${#sanitizers[@]})) || sanitizers=(address thread)
test_arguments=("$@")

# Swift's backtracer would catch a sanitizer's trap first and bury the report.
export SWIFT_BACKTRACE=enable=no

# Every process a test starts is recorded here; what is still running at the end is
# killed by PID, and only if it is a program from one of these build directories.
pids=$(mktemp /tmp/zend-sanitizer-pids.XXXXXX)
export ZEND_TEST_PIDS=$pids
cleanup() {
  local pid
  while read -r pid; do
    [[ -n "$pid" && -d /proc/$pid ]] || continue
    if [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$PWD"/.build-[at]san/* ]]; then
      echo "sanitizers: killing leftover test process $pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done < "$pids"
  rm -f "$pids"
}
trap cleanup EXIT

failed=()
summary=()

# Prints the reports in DIRECTORY; returns non-zero if there are any.
show_reports() {
  local directory=$1 name=$2 report count=0
  for report in "$directory"/report.*; do
    [[ -e $report ]] || continue
    count=$((count + 1))
    echo "==== $name report from process ${report##*.} ($report):"
    head -n 150 "$report"
    (($(wc -l < "$report") <= 150)) || echo "     … (the rest is in $report)"
  done
  ((count == 0)) || { echo "sanitizers: $count process(es) reported under $name" >&2; return 1; }
}

# Does TSan see the locks? (see the top of this file)
lock_check() {
  local out=.build-tsan/lockcheck status
  mkdir -p "$out"
  echo "== thread: does ThreadSanitizer see the locks?"
  swiftc -parse-as-library -sanitize=thread -swift-version 6 -g -Onone -module-name LockCheck \
    Tests/Sanitizers/LockCheck.swift Sources/LinuxIO/Lock.swift -o "$out/LockCheck"
  for way in lock none mutex; do
    status=0
    TSAN_OPTIONS="exitcode=66 halt_on_error=0" "$out/LockCheck" "$way" > "$out/$way.log" 2>&1 || status=$?
    case $way:$status in
      lock:0) echo "   LinuxIO.Lock: no report (TSan sees it)" ;;
      none:66) echo "   no lock at all: a data race reported (TSan is on)" ;;
      mutex:66) echo "   Synchronization.Mutex: reported as a data race (this TSan does not see it; zend uses Lock)" ;;
      mutex:0) echo "   Synchronization.Mutex: no report (this TSan sees it: Mutex would do again)" ;;
      *)
        echo "   $way: unexpected exit status $status:"
        cat "$out/$way.log"
        return 1 ;;
    esac
  done
}

for sanitizer in "${sanitizers[@]}"; do
  case $sanitizer in
    address) scratch=.build-asan; variable=ASAN_OPTIONS ;;
    thread) scratch=.build-tsan; variable=TSAN_OPTIONS ;;
  esac
  started=$SECONDS
  echo "== $sanitizer: building the tests into $scratch"
  if ! swift build --build-tests --sanitize "$sanitizer" --scratch-path "$scratch"; then
    failed+=("$sanitizer (build)")
    continue
  fi
  built=$SECONDS
  if [[ $sanitizer == thread ]] && ! lock_check; then
    failed+=("thread (lock check)")
  fi

  reports=$PWD/$scratch/sanitizer-reports
  rm -rf "$reports"
  mkdir -p "$reports"
  case $sanitizer in
    # detect_leaks=0: LeakSanitizer cannot run under ptrace, and a test runs zend under
    # strace; leaks are not what this run looks for.
    address) options="log_path=$reports/report:halt_on_error=1:detect_leaks=0" ;;
    thread) options="log_path=$reports/report:halt_on_error=0:exitcode=66:second_deadlock_stack=1" ;;
  esac
  echo "== $sanitizer: running the tests ($variable=$options)"
  status=0
  env "$variable=$options" ZEND_SANITIZER="$sanitizer" \
    swift test --skip-build --sanitize "$sanitizer" --scratch-path "$scratch" "${test_arguments[@]}" || status=$?
  ran=$SECONDS
  result="$sanitizer: build $((built - started)) s, tests $((ran - built)) s"
  if ((status != 0)); then
    failed+=("$sanitizer (tests failed, status $status)")
    result+=", tests FAILED"
  fi
  if ! show_reports "$reports" "$sanitizer"; then
    failed+=("$sanitizer (sanitizer reports in $reports)")
    result+=", $(find "$reports" -name 'report.*' | wc -l) process(es) reported"
  else
    result+=", no sanitizer report"
  fi
  summary+=("$result")
done

for line in "${summary[@]}"; do echo "sanitizers: $line"; done
if ((${#failed[@]})); then
  echo "sanitizers: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "sanitizers: ${sanitizers[*]}: every test passed (or skipped a figure, saying so), no sanitizer report"
