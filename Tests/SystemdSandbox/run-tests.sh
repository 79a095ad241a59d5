#!/usr/bin/env bash
# zend's units under a real systemd (PID 1 of its own namespaces, see sandbox.sh).
# Usage: run-tests.sh ZEND_BINARY ZEN_BINARY   (both inside this checkout)
# Prints TAP-style lines and the measured figures; exits non-zero if a check failed.
# Skips (exit 0, with the reason) where the sandbox cannot run: not root, no namespaces.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CHECKOUT=$(cd "$HERE/../.." && pwd)
# shellcheck source=sandbox.sh
source "$HERE/sandbox.sh"

if ! reason=$(sandbox_supported); then
  echo "SKIP: systemd sandbox tests: $reason"
  exit 0
fi
inside() { echo "/opt/project/$(realpath --relative-to="$CHECKOUT" "$1")"; }
ZEND=$(inside "$1")
ZEN=$(inside "$2")

count=0; failures=0
ok() { count=$((count + 1)); echo "ok $count - $*"; }
not_ok() { count=$((count + 1)); failures=$((failures + 1)); echo "not ok $count - $*"; }
check() { local description=$1; shift; if "$@"; then ok "$description"; else not_ok "$description"; fi; }
milliseconds() { echo $(( $(date +%s%N) / 1000000 )); }
# Polls CMD for up to SECONDS seconds.
eventually() { local limit=$1; shift; local deadline=$((SECONDS + limit)); until "$@"; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.1; done; }

ARTIFACTS=$(mktemp -d /tmp/zend-sandbox-test.XXXXXX)
finish() {
  sandbox_stop
  rm -rf "$ARTIFACTS"
}
trap finish EXIT

echo "# booting systemd in namespaces"
if ! sandbox_start "zend$$" "$CHECKOUT"; then
  echo "not ok - the sandbox did not boot"
  exit 1
fi

# --- install: binaries, units, the aphorism file, exactly as an admin would copy them
sx install -m 755 "$ZEND" /usr/bin/zend
sx install -m 755 "$ZEN" /usr/bin/zen
sx mkdir -p /etc/zend
sx install -m 644 /opt/project/packaging/aphorisms.conf /etc/zend/aphorisms.conf
sx sh -c 'cp /opt/project/systemd/*.service /opt/project/systemd/*.socket /etc/systemd/system/'
# Many restarts in a short time are the point of some checks below, not a fault.
sx mkdir -p /etc/systemd/system/zend.service.d
printf '[Unit]\nStartLimitIntervalSec=0\n' | sx sh -c 'cat > /etc/systemd/system/zend.service.d/test-start-limit.conf'
sx systemctl daemon-reload

ask() { sx zen ask --timeout 5 "$@" 2>&1; }
journal_json() { sx journalctl --sync; sx journalctl -u zend -o json --no-pager 2>/dev/null > "$ARTIFACTS/journal.json"; }
# Checks zend's own journal entries (SYSLOG_IDENTIFIER=zend) against a python predicate
# on entry `e`: journal_has PREDICATE (some entry), journal_all PREDICATE (every entry).
journal_check() {
  journal_json
  python3 - "$ARTIFACTS/journal.json" "$1" "$2" <<'PY'
import json, sys
entries = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
zend = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "zend"]
results = [eval(sys.argv[3], {}, {"e": e}) for e in zend]
sys.exit(0 if zend and (any if sys.argv[2] == "any" else all)(results) else 1)
PY
}
journal_has() { journal_check any "$1"; }
journal_all() { journal_check all "$1"; }
main_pid() { sx systemctl show -P MainPID zend.service; }

# --- 1. systemctl start zend, with the socket not started before
t0=$(milliseconds)
sx systemctl start zend.service
start_ms=$(( $(milliseconds) - t0 ))
check "systemctl start zend: active (Type=notify, READY=1 after ${start_ms} ms)" \
  test "$(sx systemctl is-active zend.service)" = active
check "starting the service pulled in zend.socket" test "$(sx systemctl is-active zend.socket)" = active
check "zen ask over 127.0.0.1:1060 answers 'Ugly.'" test "$(ask 'Beautiful is better than?')" = "Ugly."
check "zen ask over [::1]:1060 answers 'Complex.'" test "$(ask --host ::1 'Simple is better than?')" = "Complex."
status=$(sx systemctl show -P StatusText zend.service)
check "systemctl status shows zend's STATUS= line ($status)" \
  grep -q "^Serving on 127.0.0.1:1060, \[::1\]:1060: " <<< "$status"
listening=$(sx ss -Hltn 'sport = :1060' | awk '{print $4}' | sort | tr '\n' ' ')
check "zend.socket listens on loopback only ($listening)" test "$listening" = "127.0.0.1:1060 [::1]:1060 "

# --- 2. journalctl -u zend -o json: structured fields and MESSAGE_IDs
sx python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 1060))
s.sendall(b"x" * 5000)
print(s.recv(100))' > /dev/null
check "journal: 'started' entry with MESSAGE_ID, PRIORITY, CODE_* and _SYSTEMD_UNIT=zend.service" journal_has \
  'e.get("MESSAGE_ID") == "c43a29d444624522ab7b58c6adc9871b" and e.get("PRIORITY") == "6" and e.get("CODE_FILE", "").endswith("Daemon.swift") and e.get("CODE_LINE") and e.get("CODE_FUNC") and e.get("_SYSTEMD_UNIT") == "zend.service" and e.get("_TRANSPORT") == "journal"'
check "journal: 'ready' entry with MESSAGE_ID and LISTENERS/APHORISMS/THREADS fields" journal_has \
  'e.get("MESSAGE_ID") == "92f4efcf23954625bdfcc7898dd33726" and e.get("LISTENERS") == "2" and e.get("APHORISMS") == "3" and "THREADS" in e'
check "journal: a too-long request is a client-error entry with CLIENT_ADDRESS and CONNECTION_ID" journal_has \
  'e.get("MESSAGE_ID") == "f54d6bcc279145fcbf04073d0de2cc55" and e.get("CLIENT_ADDRESS", "").startswith("127.0.0.1:") and "CONNECTION_ID" in e and e.get("PRIORITY") == "5"'
check "journal: zend never sets UNIT=" journal_all '"UNIT" not in e'

# --- 3. systemctl reload zend: a good file, then a bad one
pid_before=$(main_pid)
printf 'Beautiful is better than? Ugly.\nIs reload working? Yes.\n' | sx sh -c 'cat > /etc/zend/aphorisms.conf'
sx systemctl reload zend.service
check "reload with a good file: the new table answers" eventually 5 test "$(ask 'Is reload working?')" = "Yes."
check "reload kept the same process (MainPID $pid_before)" test "$(main_pid)" = "$pid_before"
check "journal: 'reloading' entry with its MESSAGE_ID" journal_has 'e.get("MESSAGE_ID") == "c944d438fad7459faa4f8f26b27a2751"'
printf 'this line has no question mark\n' | sx sh -c 'cat >> /etc/zend/aphorisms.conf'
reload_output=$(sx systemctl reload zend.service 2>&1); reload_code=$?
check "reload with a bad file: systemctl reload fails (exit $reload_code)" test "$reload_code" -ne 0
check "... the check's reason, /etc/zend/aphorisms.conf:3, is in the journal" eventually 5 journal_has \
  '"zend: /etc/zend/aphorisms.conf:3: " in e.get("MESSAGE", "")'
check "after a failed reload zend is active, the same process, and serves the previous table" \
  test "$(sx systemctl is-active zend.service) $(main_pid) $(ask 'Is reload working?')" = "active $pid_before Yes."
# A SIGHUP that bypasses the check (an admin's kill -HUP) still keeps the old table.
sx systemctl kill -s HUP zend.service
check "SIGHUP with a bad file: 'reload failed' entry whose ERROR names /etc/zend/aphorisms.conf:3" eventually 5 journal_has \
  'e.get("MESSAGE_ID") == "674e9d83ab6543a59be15d74d352772f" and "/etc/zend/aphorisms.conf:3:" in e.get("ERROR", "")'
stats=$(sx zen stats)
check "zen stats counts 1 reload and 1 failure, naming the failure" \
  grep -qzE 'reloads: 1.reload_failures: 1.last_reload_failure: "/etc/zend/aphorisms.conf:3: ' <<< "$stats"
sx install -m 644 /opt/project/packaging/aphorisms.conf /etc/zend/aphorisms.conf
sx systemctl reload zend.service

# --- 3b. zen stats through the control socket (zend-control.socket, root only)
sx systemctl restart zend.service
sx python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 1060))
s.sendall(b"Beautiful is better than?" * 900 + b"Who knows?" * 100)
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
assert data == b"Ugly." * 900 + b"Error: unknown aphorism." * 100, len(data)'
stats=$(sx zen stats)
field() { sed -n "s/^$1: //p" <<< "$stats"; }
check "zen stats after 1,000 known requests on one connection: requests_answered=$(field requests_answered) unknown_questions=$(field unknown_questions) connections_accepted=$(field connections_accepted) closed_client=$(field closed_client)" \
  test "$(field requests_answered) $(field unknown_questions) $(field connections_accepted) $(field closed_client)" = "1000 100 1 1"
check "zen stats: bytes_received=$(field bytes_received), bytes_sent=$(field bytes_sent) are those bytes" \
  test "$(field bytes_received) $(field bytes_sent)" = "$((25 * 900 + 10 * 100)) $((5 * 900 + 24 * 100))"
json=$(sx zen stats --json)
check "zen stats --json is one JSON object with the same count" \
  python3 -c 'import json, sys; o = json.loads(sys.argv[1]); sys.exit(0 if o["requests_answered"] == 1000 and len(o["reactors"]) >= 1 else 1)' "$json"
check "the control socket is root's, mode 0600: $(sx stat -c '%U %a' /run/zend/control.sock)" \
  test "$(sx stat -c '%U %a' /run/zend/control.sock)" = "root 600"
refused=$(sx setpriv --reuid=65534 --regid=65534 --clear-groups zen stats 2>&1); refused_code=$?
check "zen stats as a non-root user is refused (exit $refused_code: $refused)" \
  test "$refused_code" = 77 -a -n "$(grep -i 'permission denied' <<< "$refused")"
watch=$(sx zen stats --watch 0.2 --count 2)
check "zen stats --watch 0.2 --count 2 prints a header and two lines" test "$(wc -l <<< "$watch")" = 3

# --- 4. socket activation: the first connect on an inactive zend starts it
sx systemctl stop zend.service
check "with zend.service stopped, zend.socket still listens" \
  test "$(sx systemctl is-active zend.service) $(sx systemctl is-active zend.socket)" = "inactive active"
t0=$(milliseconds)
answer=$(ask 'Explicit is better than?')
first_ms=$(( $(milliseconds) - t0 ))
check "first connect on the inactive socket is answered ('$answer' after ${first_ms} ms)" test "$answer" = "Implicit."
check "that connect activated zend.service" test "$(sx systemctl is-active zend.service)" = active

# --- 5. the watchdog restarts a SIGSTOPped zend
printf '[Service]\nWatchdogSec=2s\n' | sx sh -c 'cat > /etc/systemd/system/zend.service.d/test-watchdog.conf'
sx systemctl daemon-reload
sx systemctl restart zend.service
stopped_pid=$(main_pid)
restarts_before=$(sx systemctl show -P NRestarts zend.service)
sx kill -STOP "$stopped_pid"
restarted() { local pid; pid=$(main_pid); [ "$pid" != "$stopped_pid" ] && [ "$pid" != 0 ] && [ "$(sx systemctl is-active zend.service)" = active ]; }
check "watchdog: a SIGSTOPped zend is killed and restarted (was PID $stopped_pid)" eventually 15 restarted
check "watchdog: NRestarts went up and the journal says 'Watchdog timeout'" \
  test "$(sx systemctl show -P NRestarts zend.service)" -gt "$restarts_before" -a \
       -n "$(sx journalctl -u zend.service --no-pager | grep 'Watchdog timeout')"
check "the restarted zend answers" test "$(ask 'Simple is better than?')" = "Complex."
sx rm /etc/systemd/system/zend.service.d/test-watchdog.conf
sx systemctl daemon-reload

# --- 6. systemctl restart while a client connects in a loop: nobody is refused
sx python3 -c '
import socket, time
counts = {"answered": 0, "refused": 0, "reset": 0, "empty": 0, "wrong": 0}
end = time.monotonic() + 6
while time.monotonic() < end:
    try:
        s = socket.create_connection(("127.0.0.1", 1060), timeout=5)
    except ConnectionRefusedError:
        counts["refused"] += 1
        continue
    try:
        s.sendall(b"Beautiful is better than?")
        data = b""
        while len(data) < 5:
            chunk = s.recv(5 - len(data))
            if not chunk:
                break
            data += chunk
        key = "answered" if data == b"Ugly." else "empty" if not data else "wrong"
        counts[key] += 1
    except (ConnectionResetError, BrokenPipeError):
        counts["reset"] += 1
    finally:
        s.close()
print(" ".join("%s=%d" % kv for kv in counts.items()))' > "$ARTIFACTS/restart-load" 2>&1 &
loader=$!
restart_pids=()
for _ in 1 2 3 4 5; do
  sleep 0.8
  sx systemctl restart zend.service
  restart_pids+=("$(main_pid)")
done
wait "$loader"
load=$(cat "$ARTIFACTS/restart-load")
distinct=$(printf '%s\n' "${restart_pids[@]}" | sort -u | wc -l)
check "5 restarts under a connect loop ($load; $distinct new PIDs): zero refused" \
  grep -qE '^answered=[1-9][0-9]* refused=0 ' <<< "$load"
check "... and nothing answered wrongly" grep -q ' wrong=0$' <<< "$load"

# --- 7. Accept=yes: one zend-inetd@ instance per connection
sx systemctl start zend-inetd.socket
check "Accept=yes: an instance answers on 127.0.0.1:1061" test "$(ask --port 1061 'Explicit is better than?')" = "Implicit."
check "Accept=yes: an instance answers on [::1]:1061" test "$(ask --host ::1 --port 1061 'Beautiful is better than?')" = "Ugly."
no_running_instances() { [ -z "$(sx systemctl list-units --no-legend --state=active 'zend-inetd@*.service')" ]; }
check "Accept=yes: instances exit once their client is served" eventually 5 no_running_instances
inetd_journal() { sx journalctl --sync; sx journalctl --no-pager -o cat -u 'zend-inetd@*' | grep -q '^stopped'; }
check "Accept=yes: each instance logged its clean stop to the journal" eventually 5 inetd_journal

# --- 8. hardening
security=$(sx systemd-analyze security zend.service --no-pager 2>&1)
exposure=$(sed -n 's/.*Overall exposure level for zend.service: \([0-9.]*\).*/\1/p' <<< "$security")
echo "# systemd-analyze security zend.service: exposure ${exposure:-unknown}"
check "systemd-analyze security zend.service: exposure ${exposure:-?} <= 2.0" \
  python3 -c "import sys; sys.exit(0 if 0 <= float('${exposure:-99}') <= 2.0 else 1)"

# --- 8a. zend-proxied.socket: a passed socket named "proxy" expects PROXY headers
# systemd starts a socket only while its service is stopped.
sx systemctl stop zend.service
sx systemctl start zend-proxied.socket
sx systemctl start zend.service
proxied=$(sx python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 1062), timeout=5)
s.sendall(b"PROXY TCP4 192.0.2.44 127.0.0.1 4444 1062\r\nExplicit is better than?")
s.shutdown(socket.SHUT_WR)
print(s.recv(100).decode())' 2>&1)
check "zend-proxied.socket: a PROXY v1 header then a question is answered ('$proxied')" test "$proxied" = "Implicit."
check "... zen stats counts the header accepted" \
  test "$(sx zen stats | sed -n 's/^proxy_headers_accepted: //p')" = 1
raw=$(sx python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 1062), timeout=5)
s.sendall(b"Explicit is better than?")
s.shutdown(socket.SHUT_WR)
print(repr(s.recv(100)))' 2>&1)
check "... and a connection without a header is closed unanswered ($raw)" test "$raw" = "b''"
sx systemctl stop zend-proxied.socket
sx systemctl restart zend.service

# --- 8b. the documented drop-in opens the socket to the network
sx mkdir -p /etc/systemd/system/zend.socket.d
printf '[Socket]\nListenStream=\nListenStream=1060\nBindIPv6Only=both\n' | sx sh -c 'cat > /etc/systemd/system/zend.socket.d/network.conf'
sx systemctl daemon-reload
sx systemctl restart zend.socket
listening=$(sx ss -Hltn 'sport = :1060' | awk '{print $4}' | tr '\n' ' ')
check "with the drop-in, zend.socket listens on every address ($listening) and answers" \
  test "$listening $(ask 'Simple is better than?')" = "*:1060  Complex."
sx rm -r /etc/systemd/system/zend.socket.d
sx systemctl daemon-reload
sx systemctl restart zend.socket

# --- 9. stopping the socket stops the service
sx systemctl stop zend.socket
check "systemctl stop zend.socket stops zend.service and leaves no zend process" \
  test "$(sx systemctl is-active zend.service) $(main_pid)" = "inactive 0"

echo "# figures: start_to_active_ms=$start_ms first_answer_on_inactive_socket_ms=$first_ms exposure=${exposure:-?} restart_load: $load"
echo "1..$count"
if [ "$failures" -gt 0 ]; then
  echo "# $failures of $count systemd sandbox checks failed; zend's journal follows"
  sx journalctl --no-pager -u zend.service -n 60 || true
  exit 1
fi
echo "# all $count systemd sandbox checks passed"
