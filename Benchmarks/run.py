#!/usr/bin/env python3
"""Runs zend and its peers under the same loads and writes BENCHMARKS.md and a plot.

Every server is pinned to CPU 0 and every client to CPU 1, and every figure is also
given as a ratio to zend measured in the same run: on a shared, noisy machine the
ratios are what repeats. Server CPU time per request comes from /proc/PID/stat,
which does not depend on how long the client had to wait for a CPU. The C peer
(Benchmarks/peers/c/zenserver) is the limit: the first row of each load, and zend's
ratio to it is given beside. Instructions, syscalls and allocations per request come
from Benchmarks/instructions.py, the per-reactor balance from Benchmarks/balance.py.

Called by Benchmarks/run.sh after it has built everything; paths are relative to the
repository root.
"""
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import balance
import instructions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_CPU, CLIENT_CPU = "0", "1"
PYTHON = "/usr/bin/python3"
DURATION, WARMUP = 3, 1
LOADS = [  # (label, connections, pipeline)
    ("c=1", 1, 1),
    ("c=50", 50, 1),
    ("c=1000", 1000, 1),
    ("c=50 P=16", 50, 16),
]
IDLE_CONNECTIONS = (10_000, 15_000)  # held at once, in steps
LIMIT, ZEND = "C (epoll, limit)", "zend"
TARGET_TO_LIMIT = 1.05  # zend's server CPU per request at most this times the C peer's
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def path(*parts):
    return os.path.join(ROOT, *parts)


SERVERS = [  # (name, command taking the port); the limit first
    (LIMIT, lambda port: [path("Benchmarks/peers/c/zenserver"), str(port)]),
    (ZEND, lambda port: [path(".build/release/zend"), "--listen", f"127.0.0.1:{port}",
                           "--threads", "1", "--log-level", "warning"]),
    ("SwiftNIO", lambda port: [path("Benchmarks/peers/nio/.build/release/zen-nio"), str(port), "1"]),
    ("asyncio (Python)", lambda port: [PYTHON, path("Benchmarks/peers/python/srv_asyncio.py"), str(port)]),
    ("poll() (Python)", lambda port: [PYTHON, path("Benchmarks/peers/python/srv_poll.py"), str(port)]),
]


class Server:
    """A server under test, started pinned to the server CPU, stopped by its PID."""

    def __init__(self, command):
        self.port = instructions.free_port()
        self.started = time.monotonic()
        self.process = subprocess.Popen(["taskset", "-c", SERVER_CPU] + command(self.port),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, limit=15.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            if instructions.answered(self.port, timeout=0.2):
                return time.monotonic() - self.started
            time.sleep(0.001)
        raise RuntimeError("server did not answer")

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICK

    def rss(self):
        with open(f"/proc/{self.process.pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def bench(port, connections, pipeline, seconds, warmup=0):
    command = ["taskset", "-c", CLIENT_CPU, path(".build/release/zen"), "bench", "--port", str(port),
               "-c", str(connections), "-P", str(pipeline), "-d", str(seconds), "--warmup", str(warmup),
               "--threads", "1", "--json"]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + warmup + 60)
    result = json.loads(output.stdout.strip().splitlines()[-1])
    if output.returncode != 0:
        result["problem"] = output.stderr.strip().splitlines()[-1]
    return result


def raise_descriptor_limit():
    """The soft RLIMIT_NOFILE up to the hard one, for this process and the servers it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    needed = max(IDLE_CONNECTIONS) + 100
    if hard < needed:
        print(f"run.py: warning: RLIMIT_NOFILE hard limit {hard} is under {needed}", file=sys.stderr)


def kernel_memory():
    """Bytes of the host's slab caches and of its TCP socket buffers (/proc/meminfo Slab,
    /proc/net/sockstat TCP mem): what the kernel spends on sockets, to divide by connections."""
    slab = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("Slab:"):
                slab = int(line.split()[1]) * 1024
    buffers = 0
    with open("/proc/net/sockstat") as sockstat:
        for line in sockstat:
            if line.startswith("TCP:"):
                fields = line.split()
                buffers = int(fields[fields.index("mem") + 1]) * PAGE
    return slab, buffers


def idle_memory(server):
    """Resident bytes per connection while the server holds each of IDLE_CONNECTIONS idle
    connections (opened in steps, all held at once), and the RSS before any. For zend, also
    the kernel's memory per idle TCP socket (both ends are on this host: halved)."""
    instructions.answered(server.port)
    time.sleep(0.3)
    before = server.rss()
    kernel_before = kernel_memory()
    clients = []
    per_connection = {}
    try:
        for count in IDLE_CONNECTIONS:
            while len(clients) < count:
                clients.append(socket.create_connection(("127.0.0.1", server.port)))
            # The last one answering proves every earlier connection was accepted.
            clients[-1].sendall(b"Simple is better than?")
            clients[-1].recv(16)
            time.sleep(1.0)
            per_connection[str(count)] = (server.rss() - before) / count
            slab, buffers = kernel_memory()
            server.kernel_per_socket = {"slab": (slab - kernel_before[0]) / (2 * count),
                                        "buffers": (buffers - kernel_before[1]) / (2 * count)}
    except OSError as error:
        print(f"   idle connections: stopped at {len(clients)}: {error}", flush=True)
    finally:
        for client in clients:
            client.close()
    return per_connection, before


def startup(command, runs=5):
    """Median milliseconds from exec to the first answer."""
    samples = []
    for _ in range(runs):
        server = Server(command)
        try:
            samples.append(server.wait_ready() * 1000)
        finally:
            server.stop()
    return statistics.median(samples)


def run_server(name, command):
    print(f"== {name}", flush=True)
    result = {"name": name, "loads": {}}
    result["startup_ms"] = startup(command)
    server = Server(command)
    try:
        server.wait_ready()
        for label, connections, pipeline in LOADS:
            bench(server.port, connections, pipeline, WARMUP)  # warm-up, not recorded
            cpu_before = server.cpu_seconds()
            load = bench(server.port, connections, pipeline, DURATION)
            cpu = server.cpu_seconds() - cpu_before
            load["server_cpu_us_per_request"] = cpu * 1e6 / load["requests"] if load["requests"] else None
            result["loads"][label] = load
            print(f"   {label}: {load['rps']:.0f} req/s, p99 {load['latency_us']['p99']} us, "
                  f"{load['server_cpu_us_per_request'] or 0:.2f} us CPU/request, client CPU "
                  f"{load['client_cpu_pct']}%{' PROBLEM: ' + load['problem'] if 'problem' in load else ''}",
                  flush=True)
        result["idle_bytes_per_connection"], result["rss_before_idle"] = idle_memory(server)
        result["kernel_bytes_per_idle_socket"] = getattr(server, "kernel_per_socket", None)
        idle = ", ".join(f"{value:.0f} bytes/connection at {int(count):,}"
                         for count, value in result["idle_bytes_per_connection"].items())
        print(f"   idle: {idle}; exec to first answer {result['startup_ms']:.1f} ms", flush=True)
    finally:
        server.stop()
    return result


def load_generator_check():
    """zen bench against the minimal C load generator, both loading the same zend."""
    server = Server(dict(SERVERS)[ZEND])
    rows = []
    try:
        server.wait_ready()
        for label, connections, pipeline in [("c=50", 50, 1), ("c=50 P=16", 50, 16)]:
            bench(server.port, connections, pipeline, WARMUP)
            ours = bench(server.port, connections, pipeline, DURATION)
            c = subprocess.run(["taskset", "-c", CLIENT_CPU, path("Benchmarks/peers/c/zenload"), str(server.port),
                                str(connections), str(pipeline), str(DURATION)], capture_output=True, text=True)
            theirs = json.loads(c.stdout.strip().splitlines()[-1])
            rows.append((label, ours["rps"], theirs["rps"], ours["client_cpu_pct"]))
            print(f"   zen bench {ours['rps']:.0f} vs zenload {theirs['rps']:.0f} req/s at {label}", flush=True)
    finally:
        server.stop()
    return rows


HAPROXY = "/usr/sbin/haproxy"
PROXY_LOADS = [("c=50", 50, 1), ("c=50 P=16", 50, 16)]


def behind_haproxy():
    """zend with a plain and a PROXY listener, loaded directly and through a real HAProxy
    (send-proxy-v2) in the same run: zend pinned to the server CPU, HAProxy to the client's
    (it stands for the balancer host). Returns rows of (load, path, figures)."""
    if not os.access(HAPROXY, os.X_OK):
        print("   behind HAProxy: skipped, no /usr/sbin/haproxy (scripts/setup installs it)", flush=True)
        return None
    direct_port, proxied_port, front_port = (instructions.free_port() for _ in range(3))
    zend = Server(lambda _port: [path(".build/release/zend"), "--listen", f"127.0.0.1:{direct_port}",
                                 "--listen", f"proxy:127.0.0.1:{proxied_port}", "--threads", "1",
                                 "--log-level", "warning"])
    zend.port = direct_port
    scratch = tempfile.mkdtemp(prefix="zend-haproxy-")
    configuration = os.path.join(scratch, "haproxy.cfg")
    with open(configuration, "w") as file:
        file.write(f"""global
    maxconn 8192
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend zend
    bind 127.0.0.1:{front_port}
    default_backend zend
backend zend
    server zend 127.0.0.1:{proxied_port} send-proxy-v2
""")
    haproxy = subprocess.Popen(["taskset", "-c", CLIENT_CPU, HAPROXY, "-db", "-f", configuration],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        zend.wait_ready()
        deadline = time.monotonic() + 10
        while not instructions.answered(front_port, timeout=0.2):
            if time.monotonic() > deadline:
                raise RuntimeError("HAProxy did not relay")
            time.sleep(0.05)
        for label, connections, pipeline in PROXY_LOADS:
            for route, port in (("direct", direct_port), ("through HAProxy (send-proxy-v2)", front_port)):
                bench(port, connections, pipeline, WARMUP)
                zend_before, haproxy_before = zend.cpu_seconds(), process_cpu_seconds(haproxy.pid)
                load = bench(port, connections, pipeline, DURATION)
                requests = load["requests"] or 1
                load["zend_cpu_us_per_request"] = (zend.cpu_seconds() - zend_before) * 1e6 / requests
                load["haproxy_cpu_us_per_request"] = ((process_cpu_seconds(haproxy.pid) - haproxy_before) * 1e6 / requests
                                                      if route != "direct" else None)
                rows.append((label, route, load))
                print(f"   {label} {route}: {load['rps']:.0f} req/s, p99 {load['latency_us']['p99']} us, "
                      f"zend {load['zend_cpu_us_per_request']:.2f} us CPU/request", flush=True)
    finally:
        haproxy.terminate()
        try:
            haproxy.wait(5)
        except subprocess.TimeoutExpired:
            haproxy.kill()
            haproxy.wait()
        zend.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def process_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def proxy_section(rows):
    if not rows:
        return []
    lines = [
        "",
        "## Behind a load balancer: zend through HAProxy (PROXY protocol v2)",
        "",
        "One zend (`--threads 1`, CPU 0) with a plain listener and a `proxy:` listener; Debian's HAProxy "
        "(CPU 1, beside the client) relays to the second with `send-proxy-v2`. Both routes are measured in "
        "this run. zend reads the header once per connection, so its CPU per request should match the "
        "direct route; the balancer's own cost is its column.",
        "",
        "| load | route | requests/s | p99 latency µs | zend CPU µs/request | HAProxy CPU µs/request |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, route, load in rows:
        lines.append(f"| {label} | {route} | {load['rps']:,.0f} | {load['latency_us']['p99']:,} "
                     f"| {fixed(load['zend_cpu_us_per_request'])} | {fixed(load['haproxy_cpu_us_per_request'])} |")
    return lines


def machine_line():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) // (1024 * 1024)
    return (f"{platform.node() or 'host'}: {os.cpu_count()} × {model}, {memory} GiB, "
            f"Linux {platform.release()}, {swift}, Python {platform.python_version()}")


def total_minutes():
    """Minutes since run.sh started (builds included), if it said when."""
    started = os.environ.get("ZEND_BENCH_STARTED")
    return f"{(time.time() - int(started)) / 60:.1f}" if started else "?"


def ratio(value, reference):
    if value is None or not reference:
        return "–"
    return f"{value / reference:.2f}×"


def microbenchmarks():
    """The summary table of Benchmarks/micro/run.sh (built and run here)."""
    print("== microbenchmarks", flush=True)
    output = subprocess.run([path("Benchmarks/micro/run.sh")], capture_output=True, text=True, timeout=1200)
    if output.returncode != 0:
        return [f"(the microbenchmarks failed: {output.stderr.strip().splitlines()[-1:]})"]
    table = []
    for line in output.stdout.splitlines():
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    for line in table:
        print("   " + line, flush=True)
    return table


def by_name(results, name):
    return next((result for result in results if result["name"] == name), None)


def fixed(value, digits=2):
    return "–" if value is None else f"{value:,.{digits}f}"


def hotpath_sections(hotpath):
    """Instructions, syscalls and allocations per request (Benchmarks/instructions.py)."""
    if not hotpath:
        return []
    if "problem" in hotpath:
        return ["", "## User-space instructions, syscalls and allocations per request", "",
                f"Not measured: {hotpath['problem']}"]
    names = hotpath["servers"]
    method = (f"Difference method: the server serves {hotpath['n1']:,} and then, started afresh, "
              f"{hotpath['n2']:,} requests from `zen bench -n` over {hotpath['connections']} connections "
              "(after 1,000 more that warm it up), is stopped with SIGTERM, and the count of each run is "
              "read; per request = (count₂ − count₁) / (N₂ − N₁), so start-up, connection set-up and "
              "shutdown cancel. zend runs with `--threads 1 --log-level warning`, every thread counted.")
    lines = []
    if "instructions" in hotpath:
        lines += [
            "",
            "## User-space instructions per request (callgrind)",
            "",
            method + " valgrind's callgrind counts the instructions executed in user space (Ir): a count that "
            "repeats whatever else the machine is doing, unlike time. Under valgrind the server is the slow "
            "side, so each epoll wait returns many ready connections; both servers are measured alike. "
            "`Benchmarks/instructions.py --measure instructions` measures just this (a JSON line); "
            "`--annotate` builds zend with DWARF 4 and prints `callgrind_annotate` for it.",
            "",
            "| load | " + " | ".join(f"{names[s]} instructions/request" for s in names) + " | zend ÷ C |",
            "|---|" + "---:|" * (len(names) + 1),
        ]
        for load, figures in hotpath["instructions"].items():
            lines.append(f"| {load} | " + " | ".join(fixed(figures.get(s), 0) for s in names)
                         + f" | {fixed(figures.get('zend_to_c'))}× |")
    if "syscalls" in hotpath:
        lines += [
            "",
            "## Syscalls per request (strace)",
            "",
            method + " `strace -f -c` is attached to the running server (all its threads) for the load "
            "only. The target for zend is at most 2.1 at c=50, depth 1: one read and one send per request "
            "plus a share of an epoll wait.",
            "",
            "| load | server | syscalls/request | of which |",
            "|---|---|---:|---|",
        ]
        for load, figures in hotpath["syscalls"].items():
            for server in names:
                figure = figures.get(server)
                if figure:
                    calls = ", ".join(f"{call} {value:.3f}" for call, value in figure["calls"].items())
                    lines.append(f"| {load} | {names[server]} | {figure['total']:.3f} | {calls} |")
    if "allocations" in hotpath:
        lines += [
            "",
            "## Heap allocations per request",
            "",
            method + " `Tests/HotPath/malloc_count.c`, preloaded, counts malloc, calloc, realloc, "
            "posix_memalign, aligned_alloc, memalign and valloc in every thread. "
            "`Tests/ZendEndToEndTests/HotPathTests.swift` asserts zend's is 0.",
            "",
            "| load | " + " | ".join(f"{names[s]} allocations/request" for s in names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for load, figures in hotpath["allocations"].items():
            lines.append(f"| {load} | " + " | ".join(fixed(figures.get(s), 3) for s in names) + " |")
    return lines


def balance_section(results):
    if not results:
        return []
    lines = [
        "",
        "## Per-reactor balance (`--threads 2`)",
        "",
        f"`Benchmarks/balance.py`: for each load a fresh zend `--threads 2 --log-level info --log-target "
        f"console` serves `zen bench -c C -d {balance.SECONDS}` (one client thread, not pinned: both CPUs belong "
        "to zend's two reactors, and pinning the client beside one of them would slow that one), then "
        "SIGTERM. The shares come from zend's final `stopped` line (`accepted_per_reactor`, "
        "`requests_per_reactor`); as a check from outside, the connections in each reactor's epoll set "
        "halfway through (/proc fdinfo) and each reactor thread's share of the CPU time. Target: every "
        f"reactor between {balance.LOW:.0%} and {balance.HIGH:.0%} of connections and of requests.",
        "",
        "| connections | connections per reactor | requests per reactor | in target | "
        "epoll sets (outside) | reactor CPU (outside) | requests/s |",
        "|---:|---|---|---|---|---|---:|",
    ]
    for result in results:
        target = "–" if result.get("accepted_share") is None else ("yes" if result.get("within_target") else "**no**")
        lines.append(
            f"| {result['connections']:,} | {balance.format_shares(result.get('accepted_share'))} "
            f"| {balance.format_shares(result.get('requests_share'))} | {target} "
            f"| {balance.format_shares(result.get('epoll_connections_share'))} "
            f"| {balance.format_shares(result.get('reactor_cpu_share'))} | {fixed(result.get('rps'), 0)} |")
    missing = [r for r in results if "problem" in r]
    if missing:
        lines += ["", f"zend did not report per-reactor figures: {missing[0]['problem']}."]
    return lines


def startup_section(figures):
    if not figures:
        return []
    c = figures.get("C-epoll-server:first-answer")
    zend = figures.get("zend:first-answer")
    lines = [
        "",
        "## Start-up of the binary the package ships",
        "",
        "`Benchmarks/startup/run.sh`: zend built as `debian/rules` builds it (release, Swift "
        "standard library and libstdc++ linked statically, `-z now`), the commands run in turn, median of "
        f"{zend['runs'] if zend else '?'} rounds each; on-CPU time (all threads) is the steadier figure on a busy machine.",
        "",
        "| command | wall ms (p25–p75) | on-CPU ms | ÷ C server (wall) |",
        "|---|---:|---:|---:|",
    ]
    for label, figure in figures.items():
        multiple = f"{figure['wall_ms'] / c['wall_ms']:.2f}×" if c and label.endswith("first-answer") else "–"
        lines.append(f"| `{label}` | {figure['wall_ms']:.2f} ({figure['wall_p25']:.2f}–{figure['wall_p75']:.2f}) "
                     f"| {figure['cpu_ms']:.2f} | {multiple} |")
    lines += [
        "",
        "The target of at most 2× the C server is not met, and cannot be while zend links Debian "
        "bookworm's libsystemd: a static Swift \"hello world\" that only links it already takes 2.2–2.5× "
        "(its six dependencies, libgcrypt, lzma, zstd, lz4, libcap and libgpg-error, are loaded and "
        "relocated at every start, about 0.9 ms). The rest: the Swift runtime and image (0.6–0.9 ms), "
        "FoundationEssentials, which swift-argument-parser 1.8.2 links (0.2–0.3 ms), and zend's own "
        "start-up (0.4–0.5 ms). zend reads its common command lines without the parser (whose "
        "reflection was two thirds of the instructions to the first answer) and the package links "
        "libstdc++ statically; together they halved the time to the first answer (6.8 → 4.0 ms).",
    ]
    return lines


def inetd_section(result):
    if not result:
        return []
    zend, python = result["zend"], result["python"]
    lines = [
        "",
        "## Accept=yes: one zend per connection (the book's inetd mode)",
        "",
        "`Benchmarks/inetd/run.sh`: `zend-inetd.socket` + `zend-inetd@.service` as shipped, and the same "
        "socket unit starting a per-connection Python server like the book's `in_zen1.py` "
        "(`Benchmarks/inetd/in_zen1.py`, `StandardInput=socket`, the same hardening), under the real "
        "systemd of the sandbox tests; clients connect, ask one question, check the answer and close.",
        "",
        "| server | connections/s | p50 ms | p99 ms | errors | CPU µs per connection (sandbox) | of it, the service |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in (zend, python):
        cpu = row["cpu_us_per_connection"]
        lines.append(f"| {row['name']} | {row['connections_per_second']:.1f} | {row['latency_ms']['p50']:.0f} "
                     f"| {row['latency_ms']['p99']:.0f} | {row['errors']} | {cpu['sandbox_total']:,} "
                     f"| {cpu['service_instances']:,} |")
    lines += [
        "",
        "Most of the CPU per connection is systemd starting a hardened service instance (about 40 ms); "
        "zend's own start, answer and exit are a few milliseconds of it. The shipped socket keeps "
        "systemd's default trigger limit (200 activations in 2 s) and `MaxConnections=256`.",
    ]
    return lines


def scaling_section(results, hotpath):
    """A model of one host holding 1,000,000 connections, from the figures measured here."""
    zend = by_name(results, ZEND)
    if not zend:
        return []
    idle = zend["idle_bytes_per_connection"]
    user = max(idle.values()) if idle else 0
    kernel = zend.get("kernel_bytes_per_idle_socket") or {"slab": 0, "buffers": 0}
    per_socket = kernel["slab"] + kernel["buffers"]
    cpu_1000 = zend["loads"]["c=1000"]["server_cpu_us_per_request"]
    cpu_p16 = zend["loads"]["c=50 P=16"]["server_cpu_us_per_request"]
    million = 1_000_000
    gib = 1 << 30
    return [
        "",
        "## Past this machine: one host with 1,000,000 connections, and scaling out",
        "",
        "A model from the figures above, not a measurement of a million connections:",
        "",
        f"- **zend's memory**: {user:,.0f} bytes per idle connection (the connection-table slot; buffers "
        f"only while bytes wait) → {user * million / gib:.2f} GiB for 1,000,000, plus the slot table's "
        "address space (reserved per reactor, touched only as slots are used).",
        f"- **the kernel's memory**: {per_socket:,.0f} bytes per idle TCP socket measured here (slab caches: "
        f"socket, inode, dentry, epoll item: {kernel['slab']:,.0f}; buffers: {kernel['buffers']:,.0f}) → "
        f"about {per_socket * million / gib:.1f} GiB. Buffers come on top while data waits: a client that "
        "sends and never reads can pin `--send-queue-bytes` (64 KiB, counted twice by the kernel) plus its "
        "receive buffer, so the worst case is bounded per connection, and `--max-buffer-memory` (1 GiB) "
        "bounds zend's own. `net.ipv4.tcp_mem` must allow what is expected to wait at once.",
        "- **descriptors**: one per connection plus a few dozen: `fs.nr_open` (1,048,576 by default) must "
        "be raised above 1,000,000 + zend's own, then `LimitNOFILE=` in zend.service (zend raises its soft "
        "limit to the hard one and sizes `--max-connections` from it); `net.core.somaxconn` and the "
        "socket's `Backlog=` for connection bursts. Ephemeral ports limit a single client host, not zend.",
        f"- **CPU**: {cpu_1000:.2f} µs of server CPU per request at c=1000 (one request in flight per "
        f"connection) is about {1e6 / cpu_1000:,.0f} requests/s per core; pipelined (P=16) "
        f"{cpu_p16:.2f} µs is {1e6 / cpu_p16:,.0f}. Most of it is the kernel's work (a read and a send "
        "per request); 1,000,000 mostly idle connections cost nothing while idle (no timer ticks, no "
        "polling: the idle lists are ordered, one timerfd per reactor).",
        "- **scaling out**: zend keeps no state between requests, so instances behind an L4 balancer "
        "(HAProxy, nginx `stream`, a cloud NLB) add capacity linearly; the balancer then sees every "
        "client, and zend the balancer, unless the PROXY protocol carries the client's address. On one "
        "host, several zend processes can each bind the port with `SO_REUSEPORT` (systemd: `ReusePort=yes` "
        "in one socket unit per instance), and the kernel spreads connections by a hash of the 4-tuple; "
        "or one process shares the single socket systemd passes between its reactors, which is what zend "
        "does (`EPOLLEXCLUSIVE`, with accepted connections handed to the least loaded reactor, see the "
        "balance table): one process, one table, one reload.",
    ]


def write_report(results, loadgen, micro, hotpath, balanced, started, elapsed, started_up=None, inetd=None,
                 proxied=None):
    zend = by_name(results, ZEND)
    limit = by_name(results, LIMIT)
    lines = [
        "# Benchmarks",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC by `Benchmarks/run.sh` ({total_minutes()} minutes with the release "
        f"builds; {elapsed / 60:.1f} minutes measuring) on {machine_line()}.",
        "",
        f"Each server runs pinned to CPU {SERVER_CPU} with one thread (zend `--threads 1`, SwiftNIO one event "
        f"loop); the client, `zen bench`, runs pinned to CPU {CLIENT_CPU}. Each load point: {WARMUP} s warm-up, "
        f"then {DURATION} s measured; every answer is verified byte for byte. Ratios are to zend in the same "
        "run (higher requests/s is better; lower latency, CPU and memory are better). "
        "**Server CPU per request** comes from `/proc/PID/stat` (utime + stime) over the measured run: "
        "the robust figure on a shared, noisy machine. The first row of each load, **C (epoll, limit)**, is "
        "`Benchmarks/peers/c/zenserver`: a minimal single-threaded edge-triggered epoll server in C, the "
        "limit zend's reactor is measured against.",
        "",
        "![requests/s and server CPU per request by server and load](Benchmarks/benchmarks.svg)",
        "",
        "| load | server | requests/s | ratio | p99 latency µs | ratio | server CPU µs/request | ratio | client CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, _, _ in LOADS:
        for result in results:
            load = result["loads"][label]
            reference = zend["loads"][label]
            cpu = load["server_cpu_us_per_request"]
            problem = " ⚠" if "problem" in load else ""
            name = f"**{result['name']}**" if result["name"] == LIMIT else result["name"]
            lines.append(
                f"| {label} | {name} | {load['rps']:,.0f}{problem} | {ratio(load['rps'], reference['rps'])} "
                f"| {load['latency_us']['p99']:,} | {ratio(load['latency_us']['p99'], reference['latency_us']['p99'])} "
                f"| {fixed(cpu)} | {ratio(cpu, reference['server_cpu_us_per_request'])} | {load['client_cpu_pct']:.0f}% |")
    lines += [
        "",
        "Reading it: where the client CPU column is near 100%, the one client thread was the limit, so "
        "requests/s understates the faster server's lead; server CPU per request is the fair comparison "
        "there. ⚠ marks a run with errors (listed below).",
    ]
    if limit:
        lines += [
            "",
            "## zend against the limit",
            "",
            f"zend's server CPU per request as a multiple of the C peer's, from the table above (target: at "
            f"most {TARGET_TO_LIMIT:.2f}× at c=50, c=1000 and c=50 P=16), and the same for user-space "
            "instructions where callgrind measured the load (below).",
            "",
            "| load | zend CPU µs/request | C CPU µs/request | zend ÷ C (CPU) | within target | "
            "zend ÷ C (instructions) |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for label, _, _ in LOADS:
            ours = zend["loads"][label]["server_cpu_us_per_request"]
            theirs = limit["loads"][label]["server_cpu_us_per_request"]
            multiple = ours / theirs if ours is not None and theirs else None
            target = "–" if label == "c=1" or multiple is None else ("yes" if multiple <= TARGET_TO_LIMIT else "**no**")
            counted = (hotpath or {}).get("instructions", {}).get(label, {}).get("zend_to_c")
            lines.append(f"| {label} | {fixed(ours)} | {fixed(theirs)} | {fixed(multiple)}× | {target} "
                         f"| {fixed(counted) + '×' if counted else '–'} |")
    lines += hotpath_sections(hotpath)
    counts = [str(count) for count in IDLE_CONNECTIONS]
    lines += [
        "",
        "## Memory and start-up",
        "",
        "Resident memory added per idle connection while the server holds "
        + " and then ".join(f"{count:,}" for count in IDLE_CONNECTIONS)
        + " idle connections (RSS from /proc/PID/statm; target for zend: at most 200 bytes), and the median of "
        "5 times from exec to the first answer.",
        "",
        "| server | " + " | ".join(f"bytes per idle connection at {int(c):,} | ratio" for c in counts)
        + " | RSS before (MiB) | exec to first answer ms | ratio |",
        "|---|" + "---:|---:|" * len(counts) + "---:|---:|---:|",
    ]
    for result in results:
        idle = result["idle_bytes_per_connection"]
        cells = " | ".join(f"{fixed(idle.get(c), 0)} | {ratio(idle.get(c), zend['idle_bytes_per_connection'].get(c))}"
                           for c in counts)
        lines.append(
            f"| {result['name']} | {cells} | {result['rss_before_idle'] / 1048576:.1f} | {result['startup_ms']:.1f} "
            f"| {ratio(result['startup_ms'], zend['startup_ms'])} |")
    lines += startup_section(started_up)
    lines += proxy_section(proxied)
    lines += balance_section(balanced)
    lines += inetd_section(inetd)
    lines += scaling_section(results, hotpath)
    lines += [
        "",
        "## Is the load generator the bottleneck?",
        "",
        "`zen bench` against `Benchmarks/peers/c/zenload` (a minimal C epoll client that also verifies "
        "every answer), both single-threaded on the client CPU against the same zend:",
        "",
        "| load | zen bench req/s | zenload req/s | ratio | zen bench client CPU |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, ours, theirs, cpu in loadgen:
        lines.append(f"| {label} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f}× | {cpu}% |")
    if micro:
        lines += [
            "",
            "## Microbenchmarks: the framer and the answer path",
            "",
            "`Benchmarks/micro/run.sh` (ordo-one/benchmark with its malloc interposer): median time and "
            "allocations per request (per line for the file parser), pure protocol code without I/O.",
            "",
        ] + micro
    problems = [(r["name"], label, r["loads"][label]["problem"]) for r in results for label in r["loads"]
                if "problem" in r["loads"][label]]
    if problems:
        lines += ["", "## Problems seen", ""]
        lines += [f"- {name}, {label}: {problem}" for name, label, problem in problems]
    lines += [
        "",
        "Reproduce: `Benchmarks/run.sh` (builds everything in release mode first). Raw figures: "
        "`Benchmarks/results.json`.",
        "",
    ]
    with open(path("BENCHMARKS.md"), "w") as report:
        report.write("\n".join(lines))


def write_plot(results):
    """Two grouped bar charts as SVG: requests/s and server CPU µs per request."""
    colors = ["#57606a", "#1f6feb", "#f0883e", "#3fb950", "#a371f7"]
    width, panel_height, left, top = 860, 300, 70, 40
    group_width = (width - left - 20) / len(LOADS)
    bar = group_width * 0.8 / len(results)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{2 * panel_height + 90}" '
             'font-family="sans-serif" font-size="12">', '<rect width="100%" height="100%" fill="white"/>']

    def panel(offset, title, value, log_scale):
        values = [value(r, label) or 0 for r in results for label, _, _ in LOADS]
        peak = max(values) or 1
        import math
        scale = (lambda v: math.log10(max(v, 1)) / math.log10(peak * 1.2)) if log_scale else (lambda v: v / (peak * 1.1))
        height = panel_height - 60
        base = offset + top + height
        parts.append(f'<text x="{left}" y="{offset + 25}" font-size="14" font-weight="bold">{title}</text>')
        parts.append(f'<line x1="{left}" y1="{base}" x2="{width - 20}" y2="{base}" stroke="#333"/>')
        for g, (label, _, _) in enumerate(LOADS):
            x0 = left + g * group_width + group_width * 0.1
            for s, result in enumerate(results):
                v = value(result, label) or 0
                h = max(scale(v) * height, 1)
                x = x0 + s * bar
                parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                             f'fill="{colors[s % len(colors)]}"><title>{result["name"]} {label}: {v:,.2f}</title></rect>')
                text = f"{v / 1000:.0f}k" if v >= 10000 else f"{v:.1f}"
                parts.append(f'<text x="{x + bar / 2 - 1:.1f}" y="{base - h - 3:.1f}" font-size="9" '
                             f'text-anchor="middle">{text}</text>')
            parts.append(f'<text x="{x0 + group_width * 0.4:.1f}" y="{base + 16}" text-anchor="middle">{label}</text>')

    panel(0, "requests/s (log scale; higher is better)", lambda r, l: r["loads"][l]["rps"], True)
    panel(panel_height, "server CPU µs per request (lower is better)",
          lambda r, l: r["loads"][l]["server_cpu_us_per_request"], False)
    for s, result in enumerate(results):
        x = left + s * 160
        y = 2 * panel_height + 60
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colors[s % len(colors)]}"/>')
        parts.append(f'<text x="{x + 18}" y="{y}">{result["name"]}</text>')
    parts.append("</svg>")
    with open(path("Benchmarks/benchmarks.svg"), "w") as plot:
        plot.write("\n".join(parts))


def hotpath_figures():
    """Instructions, syscalls and allocations per request, or why they could not be measured."""
    print("== instructions, syscalls and allocations per request", flush=True)
    missing = [tool for tool in ("valgrind", "strace", "objcopy", "cc") if not shutil.which(tool)]
    if missing:
        return {"problem": f"{', '.join(missing)} not installed (scripts/setup installs them)"}
    try:
        return instructions.measure_all()
    except (RuntimeError, subprocess.SubprocessError, OSError) as error:
        print(f"   failed: {error}", flush=True)
        return {"problem": str(error)[:500]}


def balance_figures():
    print("== per-reactor balance, zend --threads 2", flush=True)
    try:
        return balance.measure()
    except (RuntimeError, subprocess.SubprocessError, OSError) as error:
        print(f"   failed: {error}", flush=True)
        return []


STARTUP_LINE = re.compile(r"^(\S+)\s+([\d.]+)\s+\(\s*([\d.]+)-\s*([\d.]+)\)\s+([\d.]+)\s+\(\s*([\d.]+)-\s*([\d.]+)\)\s+n=(\d+)")


def startup_figures():
    """Benchmarks/startup/run.sh: exec to first answer of zend built as the package builds it,
    against a minimal C epoll server, commands in turn (wall and on-CPU medians)."""
    print("== start-up of the packaged binary", flush=True)
    output = subprocess.run([path("Benchmarks/startup/run.sh"), "41"], capture_output=True, text=True, timeout=1800)
    figures = {}
    for line in output.stdout.splitlines():
        match = STARTUP_LINE.match(line)
        if match:
            figures[match.group(1)] = {"wall_ms": float(match.group(2)), "wall_p25": float(match.group(3)),
                                       "wall_p75": float(match.group(4)), "cpu_ms": float(match.group(5)),
                                       "runs": int(match.group(8))}
            print("   " + line, flush=True)
    if not figures:
        print(f"   start-up benchmark failed: {output.stderr.strip().splitlines()[-1:]}", flush=True)
    return figures


def inetd_figures():
    """Benchmarks/inetd/run.sh: Accept=yes connections per second under the real systemd of
    the sandbox tests, zend against a per-connection Python peer under the same socket unit."""
    print("== Accept=yes under systemd (sandbox)", flush=True)
    if os.geteuid() != 0:
        print("   skipped: needs root (a systemd booted in namespaces)", flush=True)
        return None
    output = subprocess.run([path("Benchmarks/inetd/run.sh"), "10"], capture_output=True, text=True, timeout=1800)
    lines = output.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        print(f"   failed: {output.stderr.strip().splitlines()[-3:]}", flush=True)
        return None
    for line in lines[-12:-1]:
        print("   " + line, flush=True)
    return result


def main():
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    raise_descriptor_limit()
    results = [run_server(name, command) for name, command in SERVERS]
    hotpath = hotpath_figures()
    balanced = balance_figures()
    print("== load generator check", flush=True)
    loadgen = load_generator_check()
    started_up = startup_figures()
    inetd = inetd_figures()
    print("== behind HAProxy", flush=True)
    proxied = behind_haproxy()
    micro = microbenchmarks()
    with open(path("Benchmarks/results.json"), "w") as raw:
        json.dump({"started": started.isoformat(), "machine": machine_line(), "servers": results,
                   "hotpath": hotpath, "balance": balanced, "load_generator": loadgen,
                   "startup": started_up, "inetd": inetd, "behind_haproxy": proxied,
                   "microbenchmarks": micro}, raw, indent=1)
    write_plot(results)
    write_report(results, loadgen, micro, hotpath, balanced, started, time.monotonic() - clock,
                 started_up, inetd, proxied)
    print(f"wrote BENCHMARKS.md and Benchmarks/benchmarks.svg in {(time.monotonic() - clock) / 60:.1f} minutes")


if __name__ == "__main__":
    sys.exit(main())
