#!/usr/bin/env bash
# Start-up time: exec -> first answer on 127.0.0.1 for zend built as the Debian package
# builds it (debian/rules: release, Swift standard library and libstdc++
# linked statically, -z now) against a minimal C epoll server, plus exec -> exit for
# `zend --version` and a C program that does nothing. Usage: run.sh [ROUNDS] (41).
# Not part of the test suite; the machine should be otherwise idle.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-41}
scratch=$PWD/.build-startup
mkdir -p "$scratch/static-libstdc++"
ln -sf "$(cc -print-file-name=libstdc++.a)" "$scratch/static-libstdc++/libstdc++.a"
swift build -c release --scratch-path "$scratch" --static-swift-stdlib \
  -Xlinker -z -Xlinker now -Xswiftc -L"$scratch/static-libstdc++" --product zend >&2
zend=$scratch/release/zend
if ldd "$zend" | grep -q libstdc++; then
  echo "run.sh: $zend still loads libstdc++.so (a stale build plan? remove $scratch)" >&2
  exit 1
fi
bin=$(mktemp -d /tmp/zend-startup.XXXXXX)
trap 'rm -rf "$bin"' EXIT
cc -O2 -o "$bin/startup" Benchmarks/startup/startup.c
cc -O2 -o "$bin/epoll_server" Benchmarks/startup/epoll_server.c
printf 'int main(void) { return 0; }\n' > "$bin/nothing.c" && cc -O2 -o "$bin/nothing" "$bin/nothing.c"
cat > "$bin/commands" <<COMMANDS
C:exec-exit e $bin/nothing
C-epoll-server:first-answer c $bin/epoll_server {port}
zend--version e $zend --version
zend:first-answer c $zend --listen 127.0.0.1:{port} --threads 1 --log-level warning
zend-defaults:first-answer c $zend --listen 127.0.0.1:{port}
COMMANDS
"$bin/startup" "$rounds" "$bin/commands"
