#!/usr/bin/env bash
# Mutation testing: puts each plausible one-line bug of Tests/Mutation/mutants.txt into a
# scratch copy of the repository, builds it, runs the fast tests against it, and says
# whether a test failed (the mutant is killed) or not (it survived).
#
#   Tests/Mutation/run.sh                 every mutant; exit 0 when the score is at least 90%
#   Tests/Mutation/run.sh --only NAME...  those mutants; exit 0 only when every one is killed
#   Tests/Mutation/run.sh --list          the names
#   Tests/Mutation/run.sh --check         only check that every mutant's line is found once
#   Tests/Mutation/run.sh --no-filter ... each mutant against the whole fast set, ignoring
#                                         the `tests` filters of the list
#   Tests/Mutation/run.sh --timeout S ... seconds a mutant's tests may take (default 600)
#
# One line per mutant on stdout: `killed NAME`, `survived NAME`, `timeout NAME` (the tests
# ran past the timeout: counted as detected) or `error NAME: why` (its line is not found
# exactly once, or it does not build: fix the list); then `score K/N`, K counting killed
# and timed-out mutants, N every mutant run. Progress and timings go to stderr, each
# mutant's build and test output to .build/mutation/logs/NAME.log.
#
# The working tree is never touched: its files (tracked and untracked, not ignored) are
# copied into .build/mutation/tree, which keeps its own .build between runs and mutants.
# The mutated file is restored after each mutant, and at the end (or on an interrupt) the
# unmutated copy is rebuilt. Builds and tests run under `nice -n 15`; a mutant's tests run
# in a process group of their own, which the timeout kills whole, by its PID.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repository=$(cd "$here/../.." && pwd)
list=${MUTATION_LIST:-$here/mutants.txt}
work=$repository/.build/mutation
tree=$work/tree
applied=$work/applied
logs=$work/logs
helper=("python3" "$here/mutants.py")

# The fast tests: `swift test` without the suites that put heavy load on the machine for
# capacity and cost figures (thousands of connections, zen bench) rather than behaviour.
fast_skip=(LoadTests BenchTests HotPathTests)
timeout=${MUTATION_TIMEOUT:-600}
minimum_score=90

# The comment at the top of this file.
help() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
usage() { help >&2; exit 2; }

mode=all
filters=true
only=()
while (($#)); do
  case $1 in
    --list) mode=list; shift ;;
    --check) mode=check; shift ;;
    --no-filter) filters=false; shift ;;
    --timeout) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage; timeout=$2; shift 2 ;;
    --only) mode=only; shift; while (($#)) && [[ $1 != --* ]]; do only+=("$1"); shift; done
            ((${#only[@]})) || usage ;;
    -h|--help) help; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done

mapfile -t all < <("${helper[@]}" names "$list") || exit 2
((${#all[@]})) || { echo "run.sh: no mutants in $list" >&2; exit 2; }
if [[ $mode == list ]]; then
  printf '%s\n' "${all[@]}"
  exit 0
fi
if [[ $mode == check ]]; then
  "${helper[@]}" check "$list" "$repository"
  exit
fi
selected=("${all[@]}")
if [[ $mode == only ]]; then
  for name in "${only[@]}"; do
    printf '%s\n' "${all[@]}" | grep -qxF -- "$name" || { echo "run.sh: no mutant named $name" >&2; exit 2; }
  done
  selected=("${only[@]}")
fi

mkdir -p "$work" "$logs"
# One run at a time per checkout: two would mutate the same copy.
exec 9>"$work/lock"
flock -n 9 || { echo "run.sh: another run is using $work" >&2; exit 2; }

group=""       # the process group of the tests running now (its leader's PID)
dirty=false    # a mutant was built since the copy was last built unmutated
pids=$work/test-pids

# Ends the running tests: their whole process group, then any process they started that
# left the group, by the PIDs the test support recorded (only this copy's binaries).
stop_tests() {
  if [[ -n $group ]]; then
    kill -TERM -- "-$group" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 -- "-$group" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$group" 2>/dev/null
    group=""
  fi
  if [[ -f $pids ]]; then
    local pid
    while read -r pid; do
      [[ -n $pid && -d /proc/$pid ]] || continue
      [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$tree"/.build/* ]] && kill -KILL "$pid" 2>/dev/null
    done < "$pids"
    rm -f "$pids"
  fi
}

build() {  # LOG
  (cd "$tree" && nice -n 15 swift build --build-tests) >>"$1" 2>&1
}

finish() {
  local code=$1
  trap - INT TERM EXIT
  stop_tests
  "${helper[@]}" restore "$tree" "$applied"
  if $dirty; then
    echo "run.sh: rebuilding the unmutated copy" >&2
    if build "$logs/unmutated.log"; then dirty=false; else
      echo "run.sh: the unmutated copy does not build: see $logs/unmutated.log" >&2
      code=2
    fi
  fi
  exit "$code"
}
trap 'echo "run.sh: interrupted" >&2; finish 130' INT TERM
trap 'finish $?' EXIT

# True while PID runs (a zombie, ended but not yet waited for, does not).
running() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [[ -n $state && $state != Z ]]
}

# Runs the tests for mutant NAME with FILTERS (none: the whole fast set) in a process
# group of their own; sets `outcome` to killed, survived, timeout or error.
run_tests() {  # NAME LOG [FILTER...]
  local name=$1 log=$2
  shift 2
  local arguments=(--skip-build)
  local filter skip
  for filter in "$@"; do arguments+=(--filter "$filter"); done
  for skip in "${fast_skip[@]}"; do arguments+=(--skip "$skip"); done
  local limit
  limit=$("${helper[@]}" field "$list" "$name" timeout)
  limit=${limit:-$timeout}
  echo "+ swift test ${arguments[*]}" >>"$log"
  : >"$pids"
  # git must not take the copy for part of the enclosing checkout (the documentation test
  # lists tracked files): without a repository above it, it looks at the copy's files.
  (cd "$tree" && ZEND_TEST_PIDS=$pids GIT_CEILING_DIRECTORIES=$work \
     exec setsid nice -n 15 swift test "${arguments[@]}") >>"$log" 2>&1 &
  group=$!
  local deadline=$((SECONDS + limit)) timed_out=false
  while running "$group"; do
    if ((SECONDS >= deadline)); then
      timed_out=true
      echo "run.sh: tests still running after ${limit} s: killing process group $group" >>"$log"
      break
    fi
    sleep 1
  done
  local leader=$group
  stop_tests
  wait "$leader"
  local status=$?
  if $timed_out; then
    outcome=timeout
  elif grep -qE "Test run with 0 tests" "$log" && ! grep -qE "Executed [1-9]" "$log"; then
    outcome=error
    reason="no test matches its filter"
  elif ((status == 0)); then
    outcome=survived
  else
    outcome=killed
  fi
}

started=$SECONDS
echo "run.sh: copying the working tree to $tree" >&2
mkdir -p "$tree"
"${helper[@]}" restore "$tree" "$applied"  # a run killed hard may have left a mutant
"${helper[@]}" sync "$repository" "$tree" || exit 2
echo "run.sh: building the unmutated copy" >&2
: >"$logs/unmutated.log"
if ! build "$logs/unmutated.log"; then
  echo "run.sh: the unmutated copy does not build: see $logs/unmutated.log" >&2
  exit 2
fi

detected=0
total=0
all_killed=true
errors=false
index=0
for name in "${selected[@]}"; do
  index=$((index + 1))
  total=$((total + 1))
  log=$logs/$name.log
  : >"$log"
  reason=""
  mutant_started=$SECONDS
  if ! where=$("${helper[@]}" apply "$list" "$tree" "$name" "$applied" 2>&1); then
    outcome=error
    reason=$where
  else
    dirty=true
    echo "run.sh: [$index/${#selected[@]}] $name at $where: building" >&2
    echo "mutant $name at $where" >>"$log"
    if ! build "$log"; then
      outcome=error
      reason="does not build (see $log)"
    else
      built=$((SECONDS - mutant_started))
      tests=()
      if $filters; then read -r -a tests <<<"$("${helper[@]}" field "$list" "$name" tests)"; fi
      run_tests "$name" "$log" "${tests[@]}"
      echo "run.sh: [$index/${#selected[@]}] $name: built in ${built} s, tested in $((SECONDS - mutant_started - built)) s" >&2
    fi
    "${helper[@]}" restore "$tree" "$applied"
  fi
  case $outcome in
    killed) detected=$((detected + 1)); echo "killed $name" ;;
    timeout) detected=$((detected + 1)); all_killed=false; echo "timeout $name" ;;
    survived) all_killed=false; echo "survived $name" ;;
    error) all_killed=false; errors=true; echo "error $name: $reason" ;;
  esac
done

echo "score $detected/$total"
elapsed=$((SECONDS - started))
echo "run.sh: $total mutant(s) in $((elapsed / 60)) min $((elapsed % 60)) s" >&2
if [[ $mode == only ]]; then
  $all_killed
  exit
fi
! $errors && ((detected * 100 >= minimum_score * total))
exit
