#!/usr/bin/env bash
# Accept=yes connection churn under the real systemd of the sandbox tests:
# zend-inetd.socket + zend-inetd@.service as shipped, against the same socket unit
# running the book-style Python peer (in_zen1.py) per connection.
# Usage: Benchmarks/inetd/run.sh [SECONDS]     (default 10 s of churn per server)
#   environment: WORKERS=4 concurrent clients, ROUNDS=2 interleaved slices per server,
#   PROBE=3 s against the units as shipped first, LATENCY_SECONDS=3 with one client last,
#   SKIP_BUILD=1 to use the existing .build/release/zend.
# Needs root (namespaces, cgroup2). Prints a summary, then one JSON line:
#   {"zend": {...}, "python": {...}}
# Everything runs inside the sandbox (loopback of its own network namespace); the sandbox
# is powered off and removed on exit, by PID (sandbox.sh).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CHECKOUT=$(cd "$HERE/../.." && pwd)
DURATION=${1:-10}
WORKERS=${WORKERS:-4}
PROBE=${PROBE:-3}        # seconds of churn against each socket unit without the drop-in
ROUNDS=${ROUNDS:-2}       # interleaved slices per server (SECONDS is split among them)
LATENCY_SECONDS=${LATENCY_SECONDS:-3}   # then one client alone against each
WARMUP=1
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 1 ] && [ "$DURATION" -le 120 ] ||
  { echo "run.sh: SECONDS must be 1..120" >&2; exit 64; }
[[ "$WORKERS" =~ ^[0-9]+$ ]] && [ "$WORKERS" -ge 1 ] && [ "$WORKERS" -le 32 ] ||
  { echo "run.sh: WORKERS must be 1..32" >&2; exit 64; }
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le "$DURATION" ] ||
  { echo "run.sh: ROUNDS must be 1..SECONDS" >&2; exit 64; }
[[ "$LATENCY_SECONDS" =~ ^[0-9]+$ ]] && [ "$LATENCY_SECONDS" -le 30 ] ||
  { echo "run.sh: LATENCY_SECONDS must be 0..30" >&2; exit 64; }
[[ "$PROBE" =~ ^[0-9]+$ ]] && [ "$PROBE" -le 30 ] || { echo "run.sh: PROBE must be 0..30" >&2; exit 64; }
# shellcheck source=../../Tests/SystemdSandbox/sandbox.sh
source "$CHECKOUT/Tests/SystemdSandbox/sandbox.sh"
if ! reason=$(sandbox_supported); then
  echo "run.sh: cannot boot the systemd sandbox: $reason" >&2
  exit 1
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "== building zend (release)"
  (cd "$CHECKOUT" && scripts/setup && swift build -c release --product zend) >&2 || exit 1
fi
[ -x "$CHECKOUT/.build/release/zend" ] || { echo "run.sh: no .build/release/zend" >&2; exit 1; }

WORK=$(mktemp -d /tmp/zend-inetd-bench.XXXXXX)
finish() {
  local name=${SANDBOX_NAME:-}
  sandbox_stop
  [ -n "$name" ] && rm -f "$SANDBOX_STATE/run/$name.log" "$SANDBOX_STATE/run/$name.pid"
  rm -rf "$WORK"
}
trap finish EXIT
trap 'exit 130' INT TERM

eventually() { local limit=$1; shift; local deadline=$((SECONDS + limit)); until "$@"; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.1; done; }
churn() { sx timeout $(( ${2%.*} + 60 )) python3 /opt/project/Benchmarks/inetd/churn.py "$1" "$2" "$WORKERS" "${@:3}"; }
no_connections() { [ "$(sx systemctl show -P NConnections "$1")" = 0 ]; }
# usage_usec of a cgroup of the sandbox (path relative to its cgroup root), read from the host.
cpu_usec() { awk '$1 == "usage_usec" { print $2 }' "$SANDBOX_CGROUP/$1/cpu.stat" 2>/dev/null || echo 0; }
CGROUPS=(. init.scope system.slice system.slice/systemd-journald.service)
cpu_snapshot() { local g; for g in "${CGROUPS[@]}"; do printf '%s ' "$(cpu_usec "$g")"; done; }
# "1 2 3" "5 7 9" -> "4,5,6"
delta() { local -a a b out; read -ra a <<< "$1"; read -ra b <<< "$2"; local i; for i in "${!a[@]}"; do out+=($(( b[i] - a[i] ))); done; (IFS=,; echo "${out[*]}"); }
# Busy time of the whole machine (user, nice, system, irq, softirq), all CPUs, in µs.
host_busy_usec() { awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%d", ($2 + $3 + $4 + $7 + $8) * 1e6 / hz }' /proc/stat; }

echo "== booting systemd in namespaces (Tests/SystemdSandbox/sandbox.sh)"
sandbox_start "inetd$$" "$CHECKOUT" || { echo "run.sh: the sandbox did not boot" >&2; exit 1; }

# --- install exactly as run-tests.sh does: binary, aphorism table, the shipped units
sx install -m 755 /opt/project/.build/release/zend /usr/bin/zend
sx mkdir -p /etc/zend
sx install -m 644 /opt/project/packaging/aphorisms.conf /etc/zend/aphorisms.conf
sx sh -c 'cp /opt/project/systemd/*.service /opt/project/systemd/*.socket /etc/systemd/system/'

# --- the Python peer: the same units, derived from the shipped ones with as few changes as
# possible: another port, and a service that runs in_zen1.py on the connection as stdin.
sx sh -c "sed -e 's/^ListenStream=1061\$/ListenStream=1062/' \
  -e 's/^Description=.*/Description=Zen of Python aphorisms, the book in_zen1.py per connection (benchmark peer)/' \
  /etc/systemd/system/zend-inetd.socket > /etc/systemd/system/zen-py-inetd.socket"
sx sh -c "sed -e 's|^ExecStart=.*|ExecStart=/usr/bin/python3 /opt/project/Benchmarks/inetd/in_zen1.py\\
# fd 0 is the connection; stdout would inherit it, so logs go to the journal\\
StandardInput=socket\\
StandardOutput=journal\\
StandardError=journal|' \
  -e '/^# zend finds the connection/d' -e '/^Environment=SWIFT_BACKTRACE=/d' \
  -e 's/^Description=.*/Description=in_zen1.py for one connection (%i, benchmark peer)/' \
  /etc/systemd/system/zend-inetd@.service > /etc/systemd/system/zen-py-inetd@.service"
sx systemctl daemon-reload
echo "== what differs between the two units (diff of the installed files)"
sx diff /etc/systemd/system/zend-inetd.socket /etc/systemd/system/zen-py-inetd.socket | sed 's/^/   /'
sx diff /etc/systemd/system/zend-inetd@.service /etc/systemd/system/zen-py-inetd@.service | sed 's/^/   /'
sx grep -q '^ExecStart=/usr/bin/python3 ' /etc/systemd/system/zen-py-inetd@.service ||
  { echo "run.sh: could not derive zen-py-inetd@.service" >&2; exit 1; }
echo "== socket limits as shipped"
sx systemctl show -p TriggerLimitIntervalUSec -p TriggerLimitBurst -p MaxConnections \
  -p MaxConnectionsPerSource -p Backlog zend-inetd.socket | sed 's/^/   /'

declare -A PORT=([zend]=1061 [python]=1062) SOCKET=([zend]=zend-inetd.socket [python]=zen-py-inetd.socket)
declare -A TEMPLATE=([zend]='zend-inetd@*.service' [python]='zen-py-inetd@*.service')

# --- 1. as shipped (no drop-in): does the trigger limit stop a sustained churn?
for server in zend python; do
  socket=${SOCKET[$server]}
  sx systemctl start "$socket"
  if [ "$PROBE" -gt 0 ]; then
    churn "${PORT[$server]}" "$PROBE" > "$WORK/probe-$server.json"
    state=$(sx systemctl is-active "$socket")
    result=$(sx systemctl show -P Result "$socket")
    echo "== as shipped, $socket: ${PROBE} s of churn -> socket $state (Result=$result); $(cat "$WORK/probe-$server.json")"
    printf '{"socket_state": "%s", "result": "%s", "churn": %s}\n' "$state" "$result" \
      "$(cat "$WORK/probe-$server.json")" > "$WORK/probe-$server.json"
  else
    echo '{}' > "$WORK/probe-$server.json"
  fi
  sx systemctl stop "$socket"
  eventually 30 no_connections "$socket"
  sx systemctl reset-failed "$socket" 2>/dev/null || true
done

# --- 2. the benchmark-only drop-in: no trigger limit (inside the sandbox, not in systemd/)
for server in zend python; do
  sx mkdir -p "/etc/systemd/system/${SOCKET[$server]}.d"
  printf '[Socket]\n# benchmark only: sustained churn is the point, not a fault\nTriggerLimitIntervalSec=0\n' |
    sx sh -c "cat > /etc/systemd/system/${SOCKET[$server]}.d/bench-trigger-limit.conf"
done
sx systemctl daemon-reload

# --- 3. measure: ROUNDS interleaved slices per server (ABBA order, so drift and the other
# work on a shared machine hit both alike); CPU from the sandbox's cgroups (the client runs
# outside them: sx enters the namespaces, not the cgroup), and host-wide from /proc/stat.
for server in zend python; do
  sx systemctl start "${SOCKET[$server]}"
  churn "${PORT[$server]}" "$WARMUP" > /dev/null   # warm-up: page cache, dynamic user, slice
  eventually 30 no_connections "${SOCKET[$server]}"
done
SLICE=$(awk -v d="$DURATION" -v r="$ROUNDS" 'BEGIN { printf "%.3f", d / r }')
for round in $(seq 1 "$ROUNDS"); do
  order="zend python"; [ $((round % 2)) = 0 ] && order="python zend"
  for server in $order; do
    socket=${SOCKET[$server]}
    accepted_before=$(sx systemctl show -P NAccepted "$socket")
    journal_before=$(sx journalctl -q --no-pager -o cat | wc -l)
    host_before=$(host_busy_usec)
    cpu_before=$(cpu_snapshot)
    echo "== round $round/$ROUNDS, $server: $socket on port ${PORT[$server]}, $WORKERS clients, ${SLICE} s"
    churn "${PORT[$server]}" "$SLICE" --raw > "$WORK/churn-$server-$round.json"
    eventually 30 no_connections "$socket" || echo "run.sh: $socket still has connections" >&2
    cpu_after=$(cpu_snapshot)
    host_after=$(host_busy_usec)
    accepted_after=$(sx systemctl show -P NAccepted "$socket")
    sx journalctl --sync
    journal_after=$(sx journalctl -q --no-pager -o cat | wc -l)
    printf '{"cpu": [%s], "host_cpu": %d, "accepted": %d, "journal_lines": %d, "socket_state": "%s", "churn": %s}\n' \
      "$(delta "$cpu_before" "$cpu_after")" \
      $((host_after - host_before)) $((accepted_after - accepted_before)) $((journal_after - journal_before)) \
      "$(sx systemctl is-active "$socket")" "$(cat "$WORK/churn-$server-$round.json")" > "$WORK/$server-$round.json"
  done
done
# --- 4. one client at a time: the connect-to-answer time without queueing
for server in zend python; do
  if [ "$LATENCY_SECONDS" -gt 0 ]; then
    echo "== $server: 1 client, ${LATENCY_SECONDS} s"
    WORKERS=1 churn "${PORT[$server]}" "$LATENCY_SECONDS" > "$WORK/one-$server.json"
    eventually 30 no_connections "${SOCKET[$server]}"
  else
    echo '{}' > "$WORK/one-$server.json"
  fi
  sx systemctl stop "${SOCKET[$server]}"
done
echo "== leftovers: $(sx systemctl list-units --no-legend --all 'zend-inetd@*' 'zen-py-inetd@*' | wc -l) instance units"

python3 - "$WORK" "$DURATION" "$WORKERS" "$ROUNDS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import glob, json, sys
work, duration, workers, rounds, cpus, load = sys.argv[1:7]
names = {"zend": "zend (zend-inetd@.service)", "python": "in_zen1.py (zen-py-inetd@.service)"}


def percentile(ordered, fraction):
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else None


out = {}
for key in ("zend", "python"):
    slices = [json.load(open(name)) for name in sorted(glob.glob(f"{work}/{key}-*.json"))]
    one = json.load(open(f"{work}/one-{key}.json"))
    seconds = sum(s["churn"]["seconds"] for s in slices)
    answered = sum(s["churn"]["connections"] for s in slices)
    accepted = sum(s["accepted"] for s in slices)
    errors = {}
    for s in slices:
        for kind, count in s["churn"]["errors_by_kind"].items():
            errors[kind] = errors.get(kind, 0) + count
    latencies = sorted(v for s in slices for v in s["churn"]["latencies_ms"])
    total, pid1, system, journald = (sum(s["cpu"][i] for s in slices) for i in range(4))
    host = sum(s["host_cpu"] for s in slices)
    n = accepted or answered or 1
    per = lambda usec: round(usec / n)
    probe = json.load(open(f"{work}/probe-{key}.json"))
    out[key] = {
        "name": names[key], "seconds": round(seconds, 3), "rounds": len(slices), "workers": int(workers),
        "connections": answered, "accepted": accepted,
        "connections_per_second": round(answered / seconds, 1) if seconds else 0,
        "per_round_connections_per_second": [s["churn"]["connections_per_second"] for s in slices],
        "latency_ms": {"p50": percentile(latencies, 0.50), "p99": percentile(latencies, 0.99),
                       "max": latencies[-1] if latencies else None},
        "errors": sum(errors.values()), "errors_by_kind": errors,
        "one_client": one and {"connections_per_second": one["connections_per_second"],
                               "latency_ms": one["latency_ms"], "errors": one["errors"]},
        "cpu_us_per_connection": {"sandbox_total": per(total), "service_instances": per(system - journald),
                                  "systemd_pid1": per(pid1), "journald": per(journald),
                                  "other": max(0, per(total - pid1 - system))},
        "host_cpu_us_per_connection_upper_bound": per(host),
        "sandbox_cpu_cores": round(total / 1e6 / seconds, 2) if seconds else 0,
        "client_cpu_s": round(sum(s["churn"]["client_cpu_s"] for s in slices), 3),
        "journal_lines_per_connection": round(sum(s["journal_lines"] for s in slices) / n, 2),
        "socket_active_after": all(s["socket_state"] == "active" for s in slices),
        "as_shipped_probe": probe and {"socket_state": probe["socket_state"], "result": probe["result"],
                                       "connections": probe["churn"]["connections"],
                                       "errors": probe["churn"]["errors"], "seconds": probe["churn"]["seconds"]},
    }
z, p = out["zend"], out["python"]
ratio = lambda a, b: a / b if b else float("nan")
print(f"\n== Accept=yes churn under the sandbox's systemd: {workers} client threads, {duration} s per server "
      f"in {rounds} interleaved rounds; {cpus} CPUs, load average at the end {load}")
print(f"{'':36} {'conn/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} {'CPU µs/connection: sandbox':>27} "
      f"{'service':>8} {'PID 1':>6} {'journald':>8} {'host≤':>7}")
for r in (z, p):
    c = r["cpu_us_per_connection"]
    print(f"{r['name']:36} {r['connections_per_second']:7.1f} {r['latency_ms']['p50']:7.1f} {r['latency_ms']['p99']:7.1f} "
          f"{r['errors']:6d} {c['sandbox_total']:27,} {c['service_instances']:8,} {c['systemd_pid1']:6,} "
          f"{c['journald']:8,} {r['host_cpu_us_per_connection_upper_bound']:7,}")
print(f"zend vs in_zen1.py: {ratio(z['connections_per_second'], p['connections_per_second']):.2f}× the connections/s, "
      f"{ratio(p['cpu_us_per_connection']['sandbox_total'], z['cpu_us_per_connection']['sandbox_total']):.2f}× less "
      f"sandbox CPU per connection ({ratio(p['cpu_us_per_connection']['service_instances'], z['cpu_us_per_connection']['service_instances']):.2f}× "
      f"for the service instances alone)")
for r in (z, p):
    if r["one_client"]:
        o = r["one_client"]
        print(f"one client alone, {r['name']}: {o['connections_per_second']} conn/s, p50 {o['latency_ms']['p50']:.1f} ms, "
              f"p99 {o['latency_ms']['p99']:.1f} ms, {o['errors']} errors")
for key, r in out.items():
    probe = r["as_shipped_probe"]
    if probe:
        print(f"as shipped (no drop-in: TriggerLimitBurst=200 per 2 s), {key}: socket {probe['socket_state']} "
              f"(Result={probe['result']}) after {probe['connections']} answered, {probe['errors']} errors in {probe['seconds']} s")
print(json.dumps(out))
PY
