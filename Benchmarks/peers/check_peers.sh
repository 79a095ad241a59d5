#!/bin/sh
# Start each peer on PORT (default 20100), run verify.py against it, stop it by
# PID with SIGTERM and check that it exited 0. Peers that are not built are skipped.
set -u
cd "$(dirname "$0")"
PORT=${1:-20100}
rc=0

wait_ready() {  # $1 = log file
    i=0
    while [ $i -lt 100 ]; do
        grep -q "^listening on 127.0.0.1:$PORT\$" "$1" 2>/dev/null && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

run_peer() {  # $1 = name, rest = command
    name=$1; shift
    log=$(mktemp)
    "$@" "$PORT" >"$log" 2>&1 &
    pid=$!
    if ! wait_ready "$log"; then
        echo "== $name: not ready"; cat "$log"; kill "$pid" 2>/dev/null; rc=1; return
    fi
    echo "== $name (pid $pid, port $PORT)"
    python3 verify.py "$PORT" || rc=1
    kill -TERM "$pid"
    wait "$pid"; st=$?
    if [ "$st" -eq 0 ]; then echo "ok   exited 0 on SIGTERM"; else echo "FAIL exit status $st on SIGTERM"; rc=1; fi
    rm -f "$log"
    PORT=$((PORT + 1))
}

if [ -x c/zenserver ]; then
    run_peer zenserver c/zenserver
else
    echo "== zenserver: not built (make -C c)"
fi
run_peer srv_asyncio python3 python/srv_asyncio.py
run_peer srv_poll python3 python/srv_poll.py
if [ -x nio/.build/release/zen-nio ]; then
    run_peer zen-nio nio/.build/release/zen-nio
else
    echo "== zen-nio: not built (cd nio && swift build -c release)"
fi
exit $rc
