#!/usr/bin/env bash
# The Debian package under a real systemd: lintian, then install, activate, upgrade,
# remove and purge inside the sandbox (see sandbox.sh).
# Usage: package-tests.sh DEB
# When the .changes that packaging/build-deb writes beside DEB is there, lintian checks
# it (the source package too); else the .deb alone.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CHECKOUT=$(cd "$HERE/../.." && pwd)
# shellcheck source=sandbox.sh
source "$HERE/sandbox.sh"
DEB=$(realpath "$1")

count=0; failures=0
ok() { count=$((count + 1)); echo "ok $count - $*"; }
not_ok() { count=$((count + 1)); failures=$((failures + 1)); echo "not ok $count - $*"; }
check() { local description=$1; shift; if "$@"; then ok "$description"; else not_ok "$description"; fi; }
eventually() { local limit=$1; shift; local deadline=$((SECONDS + limit)); until "$@"; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.1; done; }

# --- lintian: no errors, no warnings, and with --pedantic no tag either (each override
# carries its reason in debian/zend.lintian-overrides or debian/source/lintian-overrides)
CHANGES=${DEB%.deb}.changes
lint_target=$DEB
[ -f "$CHANGES" ] && lint_target=$CHANGES
lintian --info --pedantic --fail-on error,warning,info,pedantic "$lint_target" > /tmp/zend-lintian.$$ 2>&1
lintian_status=$?
lintian_output=$(grep -v 'running with root privileges' /tmp/zend-lintian.$$)
rm -f /tmp/zend-lintian.$$
echo "# lintian --pedantic $(basename "$lint_target"): ${lintian_output:-no tags}" | head -20
check "lintian --pedantic reports no tag on $(basename "$lint_target")" test "$lintian_status" -eq 0
if [ -f "$CHANGES" ]; then
  check "the source package was built too (.dsc in the .changes)" grep -q '\.dsc$' "$CHANGES"
fi
echo "# package size: $(stat -c %s "$DEB") bytes; files:"
dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ {print "#   " $6 " (" $3 " bytes)"}'

if ! reason=$(sandbox_supported); then
  echo "SKIP: package install tests: $reason"
  echo "1..$count"
  exit $((failures > 0))
fi
trap sandbox_stop EXIT
echo "# booting systemd in namespaces"
sandbox_start "zpkg$$" "$CHECKOUT" || { echo "not ok - the sandbox did not boot"; exit 1; }
# The host's Docker-style policy-rc.d would forbid the postinst to start units, and
# man-db's trigger would take seconds: both are whiteouts in the sandbox's overlay only.
sx rm -f /usr/sbin/policy-rc.d /var/lib/man-db/auto-update
sx sh -c 'cat > /tmp/zend.deb' < "$DEB"

zend_processes() { sx sh -c 'for p in /proc/[0-9]*; do readlink "$p/exe"; done 2>/dev/null' | grep -c '^/usr/bin/zend$'; }

# --- install
check "dpkg -i installs the package" sx dpkg -i /tmp/zend.deb
check "installing enabled and started zend.socket" \
  test "$(sx systemctl is-enabled zend.socket) $(sx systemctl is-active zend.socket)" = "enabled active"
check "... and zend-control.socket, for zen stats" \
  test "$(sx systemctl is-enabled zend-control.socket) $(sx systemctl is-active zend-control.socket)" = "enabled active"
check "... but not the service: it waits for the first connection" test "$(sx systemctl is-active zend.service)" = inactive
check "the inetd-style socket is opt-in (not enabled)" test "$(sx systemctl is-enabled zend-inetd.socket)" = disabled
answer=$(sx zen ask --timeout 5 "Beautiful is better than?" 2>&1)
check "zen ask over 127.0.0.1:1060 activates zend and answers ('$answer')" test "$answer" = "Ugly."
check "systemctl status zend.socket zend.service shows both active" \
  eval 'sx systemctl status --no-pager zend.socket zend.service | grep -c "Active: active" | grep -qx 2'
listening=$(sx ss -Hltn 'sport = :1060' | awk '{print $4}' | sort | tr '\n' ' ')
check "the installed package listens on loopback only ($listening)" test "$listening" = "127.0.0.1:1060 [::1]:1060 "
check "zen stats (as root) reads the counters through the packaged control socket" \
  eval 'sx zen stats | grep -qE "^requests_answered: [1-9]"'
# MESSAGE is the message followed by its fields in logfmt: "ready listeners=1 ...".
check "journalctl -u zend shows zend's entries" eval 'sx journalctl --sync; sx journalctl -u zend --no-pager -o cat | grep -qE "^ready( |$)"'
check "the journal catalog is installed: journalctl -x explains zend's MESSAGE_IDs" \
  eval 'sx journalctl -x -u zend --no-pager | grep -q "Subject: zend is ready"'
check "the binaries need no Swift toolchain (standard library linked statically)" \
  eval '! sx ldd /usr/bin/zend /usr/bin/zen | grep -q swift'
installed_kib=$(sx dpkg-query -W -f='${Installed-Size}' zend)
check "the installed size is at most 16 MB, as apt counts (Installed-Size: $installed_kib KiB; at most 15625 KiB = 16,000,000 bytes)" test "$installed_kib" -le 15625
check "/usr/bin/zen is a symlink to zend: one executable, two names" test "$(sx readlink /usr/bin/zen)" = zend
check "zen --version, run through /usr/bin/zen, is the client's" test "$(sx zen --version 2>&1)" = "zen $(sx zend --version 2>&1 | awk '{print $2}')"
check "zen ask -e exits 1 on an error answer, after printing it" \
  eval 'test "$(sx zen ask -e --timeout 5 "Ugly is better than?" 2>&1; echo "exit=$?")" = "Error: unknown aphorism.
exit=1"'
check "bash, zsh and fish completions are installed for both names" \
  eval 'sx test -f /usr/share/bash-completion/completions/zen -a -f /usr/share/bash-completion/completions/zend \
    -a -f /usr/share/zsh/vendor-completions/_zen -a -f /usr/share/zsh/vendor-completions/_zend \
    -a -f /usr/share/fish/vendor_completions.d/zen.fish -a -f /usr/share/fish/vendor_completions.d/zend.fish'
check "man pages zend(8) and zen(1) are installed" eval 'sx man -w zend | grep -q man8/zend.8 && sx man -w zen | grep -q man1/zen.1'
check "/etc/zend/aphorisms.conf is a conffile" eval 'sx dpkg-query -W -f="\${Conffiles}" zend | grep -q /etc/zend/aphorisms.conf'
check "the README is in /usr/share/doc/zend" eval 'sx sh -c "ls /usr/share/doc/zend/README.md*" >/dev/null 2>&1'
check "/usr/share/doc/zend/copyright lists what is linked in" \
  eval 'sx grep -q "swift-argument-parser 1.8.2" /usr/share/doc/zend/copyright'

# --- upgrade (reinstall): the socket keeps listening, the service restarts on the new binary
pid_before=$(sx systemctl show -P MainPID zend.service)
# A client asks throughout the upgrade: the socket must never refuse it.
sx python3 -c '
import socket, time
refused = answered = 0
end = time.monotonic() + 4
while time.monotonic() < end:
    try:
        s = socket.create_connection(("127.0.0.1", 1060), timeout=5)
    except ConnectionRefusedError:
        refused += 1
        continue
    s.sendall(b"Simple is better than?")
    answered += s.recv(16) == b"Complex."
    s.close()
print("answered=%d refused=%d" % (answered, refused))' > /tmp/zend-upgrade-load.$$ 2>&1 &
loader=$!
sleep 0.5
check "upgrading (dpkg -i again) succeeds" sx dpkg -i /tmp/zend.deb
wait "$loader"
upgrade_load=$(cat /tmp/zend-upgrade-load.$$); rm -f /tmp/zend-upgrade-load.$$
check "no connection was refused during the upgrade ($upgrade_load)" grep -qE '^answered=[1-9][0-9]* refused=0$' <<< "$upgrade_load"
pid_after=$(sx systemctl show -P MainPID zend.service)
check "upgrade restarted the running service (PID $pid_before -> $pid_after)" \
  test "$pid_after" != "$pid_before" -a "$pid_after" != 0
check "after the upgrade zend answers" test "$(sx zen ask --timeout 5 'Simple is better than?' 2>&1)" = "Complex."

# --- remove: nothing runs, no unit is left, the configuration stays
check "dpkg -r removes the package" sx dpkg -r zend
check "after removal zend.socket, zend-control.socket and zend.service are stopped" \
  eval 'test "$(sx systemctl is-active zend.socket zend-control.socket zend.service | sort -u)" = inactive'
check "after removal no zend process is left" test "$(zend_processes)" = 0
check "after removal no unit file is left" eval '! sx sh -c "ls /lib/systemd/system/zend* /etc/systemd/system/*/zend*" 2>/dev/null | grep -q .'
check "after removal nothing listens on 1060" eval '! sx zen ask --timeout 2 "Simple is better than?" >/dev/null 2>&1'
check "after removal /etc/zend/aphorisms.conf is kept (until purge)" sx test -f /etc/zend/aphorisms.conf

# --- purge: the package's configuration goes, an admin's own files stay
sx sh -c 'echo "# the admin'"'"'s own notes" > /etc/zend/local-notes.txt'
check "dpkg -P purges the package" sx dpkg -P zend
check "after purge the package's conffile is gone" eval '! sx test -e /etc/zend/aphorisms.conf'
check "after purge a file the admin added to /etc/zend is kept" sx test -f /etc/zend/local-notes.txt
check "after purge dpkg knows nothing of zend" eval '! sx dpkg-query -W zend >/dev/null 2>&1'
sx rm -f /etc/zend/local-notes.txt
sx rmdir /etc/zend 2>/dev/null

# --- install and purge again, with nothing of the admin's: /etc/zend goes as a whole
check "dpkg -i installs the package again" sx dpkg -i /tmp/zend.deb
check "dpkg -P purges it again" sx dpkg -P zend
check "after that purge /etc/zend is gone" eval '! sx test -e /etc/zend'
check "after that purge no zend unit, process or listener is left" \
  eval '! sx sh -c "ls /lib/systemd/system/zend* /etc/systemd/system/*/zend*" 2>/dev/null | grep -q . && test "$(zend_processes)" = 0'

echo "1..$count"
if [ "$failures" -gt 0 ]; then
  echo "# $failures of $count package checks failed"
  exit 1
fi
echo "# all $count package checks passed"
