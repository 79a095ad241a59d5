#!/usr/bin/env python3
"""Runs zend and its peers under the same loads and writes BENCHMARKS.md and a plot.

Every server is pinned to CPU 0 and every client to CPU 1, and every figure is also
given as a ratio to zend measured in the same run: on a shared, noisy machine the
ratios are what repeats. Server CPU time per request comes from /proc/PID/stat,
which does not depend on how long the client had to wait for a CPU.

Called by Benchmarks/run.sh after it has built everything; paths are relative to the
repository root.
"""
import datetime
import json
import os
import platform
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

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
IDLE_CONNECTIONS = 10_000
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def path(*parts):
    return os.path.join(ROOT, *parts)


SERVERS = [  # (name, command taking the port)
    ("zend", lambda port: [path(".build/release/zend"), "--listen", f"127.0.0.1:{port}",
                           "--threads", "1", "--log-level", "warning"]),
    ("SwiftNIO", lambda port: [path("Benchmarks/peers/nio/.build/release/zen-nio"), str(port), "1"]),
    ("asyncio (Python)", lambda port: [PYTHON, path("Benchmarks/peers/python/srv_asyncio.py"), str(port)]),
    ("poll() (Python)", lambda port: [PYTHON, path("Benchmarks/peers/python/srv_poll.py"), str(port)]),
]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answered(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
            client.sendall(b"Beautiful is better than?")
            return client.recv(16) == b"Ugly."
    except OSError:
        return False


class Server:
    """A server under test, started pinned to the server CPU, stopped by its PID."""

    def __init__(self, command):
        self.port = free_port()
        self.started = time.monotonic()
        self.process = subprocess.Popen(["taskset", "-c", SERVER_CPU] + command(self.port),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_ready(self, limit=15.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            if answered(self.port):
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


def idle_memory(server):
    """Resident bytes per connection while the server holds IDLE_CONNECTIONS idle ones."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    answered(server.port)
    time.sleep(0.3)
    before = server.rss()
    clients = []
    try:
        for _ in range(IDLE_CONNECTIONS):
            clients.append(socket.create_connection(("127.0.0.1", server.port)))
        # The last one answering proves every earlier connection was accepted.
        clients[-1].sendall(b"Simple is better than?")
        clients[-1].recv(16)
        time.sleep(1.0)
        return (server.rss() - before) / IDLE_CONNECTIONS, before
    finally:
        for client in clients:
            client.close()


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
        print(f"   idle: {result['idle_bytes_per_connection']:.0f} bytes/connection; "
              f"exec to first answer {result['startup_ms']:.1f} ms", flush=True)
    finally:
        server.stop()
    return result


def load_generator_check():
    """zen bench against the minimal C load generator, both loading the same zend."""
    server = Server(SERVERS[0][1])
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


def write_report(results, loadgen, micro, started, elapsed):
    zend = results[0]
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
        "the robust figure on a shared, noisy machine.",
        "",
        "![requests/s and server CPU per request by server and load](Benchmarks/benchmarks.svg)",
        "",
        "| server | load | requests/s | ratio | p99 latency µs | ratio | server CPU µs/request | ratio | client CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for label, _, _ in LOADS:
            load = result["loads"][label]
            reference = zend["loads"][label]
            cpu = load["server_cpu_us_per_request"]
            problem = " ⚠" if "problem" in load else ""
            lines.append(
                f"| {result['name']} | {label} | {load['rps']:,.0f}{problem} | {ratio(load['rps'], reference['rps'])} "
                f"| {load['latency_us']['p99']:,} | {ratio(load['latency_us']['p99'], reference['latency_us']['p99'])} "
                f"| {cpu:.2f} | {ratio(cpu, reference['server_cpu_us_per_request'])} | {load['client_cpu_pct']:.0f}% |")
    lines += [
        "",
        "Reading it: where the client CPU column is near 100%, the one client thread was the limit, so "
        "requests/s understates the faster server's lead; server CPU per request is the fair comparison "
        "there. ⚠ marks a run with errors (listed below).",
        "",
        f"## Memory and start-up",
        "",
        f"Resident memory added per idle connection while the server holds {IDLE_CONNECTIONS:,} idle "
        "connections (RSS from /proc/PID/statm), and the median of 5 times from exec to the first answer.",
        "",
        "| server | bytes per idle connection | ratio | RSS before (MiB) | exec to first answer ms | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        lines.append(
            f"| {result['name']} | {result['idle_bytes_per_connection']:,.0f} "
            f"| {ratio(result['idle_bytes_per_connection'], zend['idle_bytes_per_connection'])} "
            f"| {result['rss_before_idle'] / 1048576:.1f} | {result['startup_ms']:.1f} "
            f"| {ratio(result['startup_ms'], zend['startup_ms'])} |")
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
    colors = ["#1f6feb", "#f0883e", "#3fb950", "#a371f7"]
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
        x = left + s * 190
        y = 2 * panel_height + 60
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{colors[s % len(colors)]}"/>')
        parts.append(f'<text x="{x + 18}" y="{y}">{result["name"]}</text>')
    parts.append("</svg>")
    with open(path("Benchmarks/benchmarks.svg"), "w") as plot:
        plot.write("\n".join(parts))


def main():
    started = datetime.datetime.now(datetime.timezone.utc)
    clock = time.monotonic()
    results = [run_server(name, command) for name, command in SERVERS]
    print("== load generator check", flush=True)
    loadgen = load_generator_check()
    micro = microbenchmarks()
    with open(path("Benchmarks/results.json"), "w") as raw:
        json.dump({"started": started.isoformat(), "machine": machine_line(), "servers": results,
                   "load_generator": loadgen, "microbenchmarks": micro}, raw, indent=1)
    write_plot(results)
    write_report(results, loadgen, micro, started, time.monotonic() - clock)
    print(f"wrote BENCHMARKS.md and Benchmarks/benchmarks.svg in {(time.monotonic() - clock) / 60:.1f} minutes")


if __name__ == "__main__":
    sys.exit(main())
