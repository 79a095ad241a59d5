#!/usr/bin/env bash
# Accept=yes connection churn under the real systemd of the sandbox tests:
# zend-inetd.socket + zend-inetd@.service as shipped, against the same socket unit
# running the book-style Python peer (in_zen1.py) per connection.
# Usage: Benchmarks/inetd/run.sh [SECONDS]     (default 10 s per server; WORKERS=4 clients)
# Needs root (namespaces, cgroup2). Prints a summary, then one JSON line:
#   {"zend": {...}, "python": {...}}
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CHECKOUT=$(cd "$HERE/../.." && pwd)
DURATION=${1:-10}
WORKERS=${WORKERS:-4}
PROBE=${PROBE:-3}        # seconds of churn against each socket unit without the drop-in
WARMUP=1
[[ "$DURATION" =~ ^[0-9]+$ ]] && [ "$DURATION" -ge 1 ] && [ "$DURATION" -le 120 ] ||
  { echo "run.sh: SECONDS must be 1..120" >&2; exit 64; }
[[ "$WORKERS" =~ ^[0-9]+$ ]] && [ "$WORKERS" -ge 1 ] && [ "$WORKERS" -le 32 ] ||
  { echo "run.sh: WORKERS must be 1..32" >&2; exit 64; }
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
  sandbox_stop
  rm -rf "$WORK"
}
trap finish EXIT
trap 'exit 130' INT TERM

eventually() { local limit=$1; shift; local deadline=$((SECONDS + limit)); until "$@"; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.1; done; }
churn() { sx timeout $(( $2 + 60 )) python3 /opt/project/Benchmarks/inetd/churn.py "$1" "$2" "$WORKERS"; }
no_connections() { [ "$(sx systemctl show -P NConnections "$1")" = 0 ]; }
# usage_usec of a cgroup of the sandbox (path relative to its cgroup root), read from the host.
cpu_usec() { awk '$1 == "usage_usec" { print $2 }' "$SANDBOX_CGROUP/$1/cpu.stat" 2>/dev/null || echo 0; }
CGROUPS=(. init.scope system.slice system.slice/systemd-journald.service)
cpu_snapshot() { local g; for g in "${CGROUPS[@]}"; do printf '%s ' "$(cpu_usec "$g")"; done; }

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

# --- 3. measure each: warm-up, then DURATION s of churn; CPU from the sandbox's cgroups
for server in zend python; do
  socket=${SOCKET[$server]}
  sx systemctl start "$socket"
  churn "${PORT[$server]}" "$WARMUP" > /dev/null
  eventually 30 no_connections "$socket"
  accepted_before=$(sx systemctl show -P NAccepted "$socket")
  journal_before=$(sx journalctl -q --no-pager -o cat | wc -l)
  cpu_before=$(cpu_snapshot)
  echo "== $server: $socket on port ${PORT[$server]}, $WORKERS clients, ${DURATION} s"
  churn "${PORT[$server]}" "$DURATION" > "$WORK/churn-$server.json"
  eventually 30 no_connections "$socket" || echo "run.sh: $socket still has connections" >&2
  cpu_after=$(cpu_snapshot)
  accepted_after=$(sx systemctl show -P NAccepted "$socket")
  sx journalctl --sync
  journal_after=$(sx journalctl -q --no-pager -o cat | wc -l)
  state=$(sx systemctl is-active "$socket")
  sx systemctl stop "$socket"
  printf '{"cpu_before": [%s], "cpu_after": [%s], "accepted": %d, "journal_lines": %d, "socket_state": "%s", "probe": %s, "churn": %s}\n' \
    "$(tr ' ' ',' <<< "${cpu_before% }")" "$(tr ' ' ',' <<< "${cpu_after% }")" \
    $((accepted_after - accepted_before)) $((journal_after - journal_before)) "$state" \
    "$(cat "$WORK/probe-$server.json")" "$(cat "$WORK/churn-$server.json")" > "$WORK/$server.json"
done
echo "== leftovers: $(sx systemctl list-units --no-legend --all 'zend-inetd@*' 'zen-py-inetd@*' | wc -l) instance units"

python3 - "$WORK" "$DURATION" "$WORKERS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
work, duration, workers, cpus, load = sys.argv[1:6]
names = {"zend": "zend (zend-inetd@.service)", "python": "in_zen1.py (zen-py-inetd@.service)"}
out = {}
for key in ("zend", "python"):
    raw = json.load(open(f"{work}/{key}.json"))
    churn = raw["churn"]
    delta = [a - b for a, b in zip(raw["cpu_after"], raw["cpu_before"])]
    total, pid1, system, journald = delta
    n = raw["accepted"] or churn["connections"] or 1
    per = lambda usec: round(usec / n, 1)
    out[key] = {
        "name": names[key], "seconds": churn["seconds"], "workers": churn["workers"],
        "connections": churn["connections"], "accepted": raw["accepted"],
        "connections_per_second": churn["connections_per_second"],
        "latency_ms": churn["latency_ms"], "errors": churn["errors"], "errors_by_kind": churn["errors_by_kind"],
        "cpu_us_per_connection": {"sandbox_total": per(total), "services": per(system - journald),
                                  "systemd_pid1": per(pid1), "journald": per(journald),
                                  "other": per(total - pid1 - system)},
        "sandbox_cpu_cores": round(total / 1e6 / churn["seconds"], 2),
        "client_cpu_s": churn["client_cpu_s"], "journal_lines_per_connection": round(raw["journal_lines"] / n, 2),
        "socket_state_after": raw["socket_state"], "as_shipped_probe": raw["probe"],
    }
z, p = out["zend"], out["python"]
print(f"\n== Accept=yes churn under systemd (sandbox), {workers} client threads, {duration} s each, "
      f"{cpus} CPUs, load average at the end {load}")
print(f"{'':38} {'conn/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'CPU us/conn':>11} {'(service':>9} {'pid1':>6} {'journald)':>9}")
for r in (z, p):
    c = r["cpu_us_per_connection"]
    print(f"{r['name']:38} {r['connections_per_second']:8.1f} {r['latency_ms']['p50']:8.2f} {r['latency_ms']['p99']:8.2f} "
          f"{r['errors']:6d} {c['sandbox_total']:11.0f} {c['services']:9.0f} {c['systemd_pid1']:6.0f} {c['journald']:9.0f}")
ratio = lambda a, b: a / b if b else float("nan")
print(f"zend/python: {ratio(z['connections_per_second'], p['connections_per_second']):.2f}x connections/s, "
      f"{ratio(p['cpu_us_per_connection']['sandbox_total'], z['cpu_us_per_connection']['sandbox_total']):.2f}x less CPU "
      f"per connection (service alone {ratio(p['cpu_us_per_connection']['services'], z['cpu_us_per_connection']['services']):.2f}x)")
for key, r in out.items():
    probe = r["as_shipped_probe"]
    if probe:
        print(f"as shipped (TriggerLimitBurst=200 per 2 s, no drop-in), {key}: socket {probe['socket_state']} "
              f"(Result={probe['result']}) after {probe['churn']['connections']} answered, {probe['churn']['errors']} errors "
              f"in {probe['churn']['seconds']} s")
print(json.dumps(out))
PY
