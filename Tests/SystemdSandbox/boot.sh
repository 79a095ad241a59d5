#!/usr/bin/env bash
# PID 1 of a fresh pid/mount/uts/ipc/net/cgroup namespace: builds an overlay of the host
# root (writes land in RAM), private /dev, /run, /tmp and cgroup2, binds the checkout
# read-only at /opt/project, then execs systemd. Refuses to run anywhere else: systemd on
# the host root would wipe /tmp and more. Arguments: NAME CHECKOUT STATEDIR.
set -euo pipefail
NAME=$1; BIND=$2; S=$3; W=$S/mnt/$NAME
[ "$$" = 1 ] || { echo "boot.sh: not PID 1 of a new pid namespace" >&2; exit 1; }
read -r HOSTPID _ < /proc/self/stat          # /proc is still the host's here: the host PID
mount -n --make-rprivate /
mount -n -t tmpfs -o mode=755 "sdlab-$NAME" "$W"; mkdir -p "$W/upper" "$W/work" "$W/root"
mount -n -t overlay "sdlab-$NAME" -o lowerdir=/,upperdir="$W/upper",workdir="$W/work" "$W/root"; R=$W/root
[ "$(stat -f -c %T "$R")" = overlayfs ] || { echo "boot.sh: overlay not mounted" >&2; exit 1; }
mount -n -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -n --bind "$R/proc/sys" "$R/proc/sys"; mount -n -o remount,bind,ro "$R/proc/sys"
mount -n -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -n -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
mount -n -t tmpfs -o mode=755,nosuid,size=4m sdlab-dev "$R/dev"
for n in null zero full random urandom tty; do touch "$R/dev/$n"; mount -n --bind "/dev/$n" "$R/dev/$n"; done
mkdir -p "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -n -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5,nosuid,noexec devpts "$R/dev/pts"; ln -s pts/ptmx "$R/dev/ptmx"
mount -n -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"; mount -n -t mqueue mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
for i in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/${i%:*}" "$R/dev/${i#*:}"; done
mount -n -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"; mount -n -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
mkdir -p "$R/opt/project"
mount -n --bind "$BIND" "$R/opt/project"; mount -n -o remount,bind,ro "$R/opt/project"
echo "sdlab-$NAME" > "$R/etc/hostname"; rm -rf "$R/var/log/journal"
mkdir -p "$R/run/systemd/system"
for u in getty.target console-getty.service systemd-timesyncd.service cron.service ssh.service postgresql.service \
   e2scrub_reap.service systemd-pstore.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
   e2scrub_all.timer fstrim.timer man-db.timer; do
  ln -sf /dev/null "$R/run/systemd/system/$u"
done
echo "$HOSTPID" > "$S/run/$NAME.pid"
mkdir -p "$R/.oldroot"; cd "$R"; pivot_root . .oldroot; umount -l /.oldroot; rmdir /.oldroot
mount --make-rshared /
exec env -i container=sdlab PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  setpriv --bounding-set -sys_module,-sys_time,-sys_rawio -- /lib/systemd/systemd --system --unit=multi-user.target
