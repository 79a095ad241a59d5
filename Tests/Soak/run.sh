#!/usr/bin/env bash
# Soak test: zend under about 1,000 mixed, partly hostile connections for SECONDS (600),
# every answer checked byte for byte, its RSS and open descriptors sampled every second.
#
#   Tests/Soak/run.sh [SECONDS] [soak.py options...]
#
# Starts ZEND (default .build/release/zend, built first) on a free loopback port:
#   --threads 2 --request-timeout 2 --idle-timeout 5 --log-target console --log-level notice
# plus $ZEND_ARGS (e.g. ZEND_ARGS="--max-connections 50" to see the soak fail), then runs
# Tests/Soak/soak.py (the load, the checks and the summary; see its docstring). Exit
# status non-zero on any wrong answer, broken or stalled connection, late timeout
# close, zend's death, or RSS/descriptor growth after the warm-up (the first 20%).
# zend is stopped by its PID when the run ends, also on failure or interrupt; its log
# is shown (the last lines) when the run fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
shift || true
zend=${ZEND:-.build/release/zend}
if [[ -z ${ZEND:-} ]]; then
  swift build -c release --product zend   # quick when up to date
fi

# 1,000 client sockets here and as many in zend, with room to spare.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/zend-soak.XXXXXX)
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  [[ -n $pid ]] && wait "$pid" 2>/dev/null || true
  if [[ ${status:-1} -eq 0 ]]; then rm -rf "$work"; else echo "soak: zend's log kept in $work/zend.log"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
request_timeout=2 idle_timeout=5
# shellcheck disable=SC2086  # ZEND_ARGS is split on purpose
"$zend" --listen "127.0.0.1:$port" --threads 2 --request-timeout "$request_timeout" \
  --idle-timeout "$idle_timeout" --log-target console --log-level notice ${ZEND_ARGS:-} \
  >"$work/zend.log" 2>&1 &
pid=$!

# Ready once it accepts a connection.
for _ in $(seq 100); do
  if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()' "$port" 2>/dev/null; then
    break
  fi
  kill -0 "$pid" 2>/dev/null || { echo "soak: $zend exited at start"; exit 1; }
  sleep 0.1
done
echo "soak: $zend (PID $pid) on 127.0.0.1:$port for $seconds s"
status=0

python3 Tests/Soak/soak.py --port "$port" --pid "$pid" --seconds "$seconds" \
  --request-timeout "$request_timeout" --idle-timeout "$idle_timeout" "$@" || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
  echo "soak: zend is not running at the end"
  status=1
fi
if [[ $status -ne 0 ]]; then
  echo "soak: zend's log (last 20 lines):"
  tail -n 20 "$work/zend.log"
fi
exit "$status"
