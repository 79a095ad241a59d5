# A throwaway real systemd (PID 1 in namespaces) for tests; source this file.
#   sandbox_start NAME CHECKOUT   boots it and waits until it runs
#   sx CMD...                     runs CMD inside (no CAP_SYS_TIME: the clock is global)
#   sandbox_stop                  powers it off and removes its cgroup and mount point
# Everything is stopped by PID; nothing is killed by name.

SANDBOX_STATE=${SANDBOX_STATE:-/var/tmp/zend-sandbox}
SANDBOX_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# True when this machine can run the sandbox: root, namespaces, a cgroup2 to delegate.
sandbox_supported() {
  [ "$(id -u)" = 0 ] || { echo "needs root"; return 1; }
  unshare --pid --mount --net --fork true 2>/dev/null || { echo "cannot create namespaces"; return 1; }
  [ -x /lib/systemd/systemd ] || { echo "systemd is not installed"; return 1; }
  [ -n "$(sandbox_cgroup_root)" ] || { echo "no writable cgroup2 hierarchy"; return 1; }
  return 0
}

# Where a per-sandbox cgroup can be made: the hybrid layout's unified tree, else cgroup2 root.
sandbox_cgroup_root() {
  if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
    echo /sys/fs/cgroup
  elif [ -d /sys/fs/cgroup/unified ] && [ "$(stat -f -c %T /sys/fs/cgroup/unified)" = cgroup2fs ]; then
    echo /sys/fs/cgroup/unified
  fi
}

sandbox_start() {
  SANDBOX_NAME=$1
  local checkout=$2
  SANDBOX_CGROUP=$(sandbox_cgroup_root)/sdlab-$SANDBOX_NAME
  mkdir -p "$SANDBOX_STATE/mnt/$SANDBOX_NAME" "$SANDBOX_STATE/run"
  rm -f "$SANDBOX_STATE/run/$SANDBOX_NAME.pid"
  mkdir "$SANDBOX_CGROUP"
  bash -c 'echo $$ > "$0/cgroup.procs" && exec setpriv --pdeathsig KILL unshare --pid --mount --uts --ipc --net --cgroup --fork --kill-child "$1" "$2" "$3" "$4"' \
    "$SANDBOX_CGROUP" "$SANDBOX_HERE/boot.sh" "$SANDBOX_NAME" "$checkout" "$SANDBOX_STATE" \
    > "$SANDBOX_STATE/run/$SANDBOX_NAME.log" 2>&1 < /dev/null &
  SANDBOX_UNSHARE=$!
  local deadline=$((SECONDS + 20))
  until [ -s "$SANDBOX_STATE/run/$SANDBOX_NAME.pid" ]; do
    [ -d "/proc/$SANDBOX_UNSHARE" ] || { cat "$SANDBOX_STATE/run/$SANDBOX_NAME.log" >&2; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "sandbox: no PID file" >&2; return 1; }
    sleep 0.05
  done
  SANDBOX_PID=$(cat "$SANDBOX_STATE/run/$SANDBOX_NAME.pid")
  # The PID file is written before pivot_root: wait for systemd itself and its bus.
  until [ "$(cat "/proc/$SANDBOX_PID/comm" 2>/dev/null)" = systemd ] && [ -S "/proc/$SANDBOX_PID/root/run/systemd/private" ]; do
    [ -d "/proc/$SANDBOX_UNSHARE" ] || { cat "$SANDBOX_STATE/run/$SANDBOX_NAME.log" >&2; return 1; }
    [ $SECONDS -lt $deadline ] || { echo "sandbox: systemd did not come up" >&2; return 1; }
    sleep 0.05
  done
  sx timeout 60 systemctl is-system-running --wait >/dev/null || true
}

sx() {
  nsenter -t "$SANDBOX_PID" -a setpriv --bounding-set -sys_module,-sys_time,-sys_rawio -- \
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

sandbox_stop() {
  [ -n "${SANDBOX_UNSHARE:-}" ] || return 0
  if [ -n "${SANDBOX_PID:-}" ] && [ -d "/proc/$SANDBOX_PID" ]; then
    kill -s SIGRTMIN+4 "$SANDBOX_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while [ -d "/proc/$SANDBOX_PID" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  fi
  # unshare --kill-child takes the rest of the sandbox with it.
  kill -KILL "$SANDBOX_UNSHARE" 2>/dev/null || true
  wait "$SANDBOX_UNSHARE" 2>/dev/null || true
  [ -d "${SANDBOX_CGROUP:-/nonexistent}" ] && find "$SANDBOX_CGROUP" -depth -type d -exec rmdir {} \; 2>/dev/null
  rmdir "$SANDBOX_STATE/mnt/$SANDBOX_NAME" 2>/dev/null || true
  SANDBOX_UNSHARE=
}
