#!/usr/bin/env python3
"""User-space instructions, syscalls and heap allocations per request: zend and the C peer.

    Benchmarks/instructions.py [--measure instructions,syscalls,allocations] [--servers zend,c]
                               [--loads c=50,c=50 P=16] [--n1 20000] [--n2 100000] [--annotate]

Each figure uses the difference method. The server is started, `zen bench -n N`
sends a fixed number of requests over 50 connections, the server is stopped with
SIGTERM, and the count is read. This is done for two run lengths N1 < N2. Start-up,
connection set-up and shutdown are the same in both runs, so they cancel:
per request = (count(N2) - count(N1)) / (N2 - N1).

- instructions: valgrind's callgrind counts user-space instructions (Ir) in every
  thread of the server. The count repeats from run to run, whatever the machine is
  doing. Valgrind 3.19 cannot read DWARF 5, so zend runs from a copy with the debug
  sections stripped (the symbol table stays; totals need no symbols).
- syscalls: `strace -f -c` is attached to the running server (every thread) for the
  load only; the figure is total syscalls.
- allocations: Tests/HotPath/malloc_count.c is preloaded and counts malloc, calloc,
  realloc, posix_memalign, aligned_alloc, memalign and valloc calls.

zend runs with `--threads 1 --log-level warning`. The server is pinned to CPU 0 and
`zen bench` (one thread) to CPU 1. Under valgrind or strace the server is the slow
side, so each epoll wait returns many ready connections. Both servers are measured
the same way.

--annotate builds zend with DWARF 4 (`swift build -c release -Xswiftc
-dwarf-version=4 -Xcc -gdwarf-4 --scratch-path .build-dwarf4`), measures that build,
and prints the top 40 lines of `callgrind_annotate --inclusive=yes` (from its
PROGRAM TOTALS line on) for each zend run at N2. Add --measure instructions
--servers zend --loads c=50 to get only that.

It prints progress on stderr and one JSON object as the last line of stdout. It needs
zend and zen built (`swift build -c release`) and the peer built
(`make -C Benchmarks/peers/c`). Benchmarks/run.py imports it.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER_CPU, CLIENT_CPU = "0", "1"
LOADS = {"c=50": (50, 1), "c=50 P=16": (50, 16)}
MEASURES = ("instructions", "syscalls", "allocations")
SERVER_NAMES = {"zend": "zend", "c": "C (epoll, limit)"}
N1, N2 = 20_000, 100_000
DWARF4_SCRATCH = ".build-dwarf4"


def path(*parts):
    return os.path.join(ROOT, *parts)


def log(text):
    print(text, file=sys.stderr, flush=True)


def pinned(cpu, command):
    """`command` pinned to `cpu`, where taskset exists and there are two CPUs."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", cpu] + command
    return command


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answered(port, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
            client.sendall(b"Beautiful is better than?")
            return client.recv(16) == b"Ugly."
    except OSError:
        return False


class Server:
    """A server started pinned to the server CPU (under `wrapper`), stopped by its PID."""

    def __init__(self, command, wrapper=(), environment=None, limit=120.0):
        self.port = free_port()
        self.errors = tempfile.TemporaryFile()
        self.process = subprocess.Popen(pinned(SERVER_CPU, list(wrapper) + command(self.port)),
                                        stdout=subprocess.DEVNULL, stderr=self.errors, env=environment)
        deadline = time.monotonic() + limit
        while not answered(self.port):
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not answer")
            time.sleep(0.05)

    def stderr(self):
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace")[-2000:]

    def stop(self, limit=120.0):
        """SIGTERM, then waits (valgrind writes its file on exit); SIGKILL only if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(limit)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError("server did not exit on SIGTERM")
        if self.process.returncode != 0:
            raise RuntimeError(f"server exited with {self.process.returncode} on SIGTERM: {self.stderr()}")


def bench(port, connections, pipeline, requests):
    """`zen bench -n`, one client thread; its timeouts are far above valgrind's slowness."""
    command = pinned(CLIENT_CPU, [path(".build/release/zen"), "bench", "--port", str(port), "-c", str(connections),
                                  "-P", str(pipeline), "-n", str(requests), "--threads", "1",
                                  "--timeout", "120", "--json"])
    output = subprocess.run(command, capture_output=True, text=True, timeout=900)
    lines = output.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    if output.returncode != 0 or result.get("requests") != requests or result.get("errors") or result.get("mismatches"):
        raise RuntimeError(f"zen bench failed ({output.returncode}): {output.stderr.strip()[-500:]} {result}")
    return result


def server_command(name, zend):
    if name == "zend":
        return lambda port: [zend, "--listen", f"127.0.0.1:{port}", "--threads", "1", "--log-level", "warning"]
    return lambda port: [path("Benchmarks/peers/c/zenserver"), str(port)]


def callgrind_total(output):
    """The total Ir of a callgrind output file (its `totals:` or `summary:` line)."""
    with open(output) as profile:
        text = profile.read()
    found = re.search(r"^totals:\s+(\d+)", text, re.M) or re.search(r"^summary:\s+(\d+)", text, re.M)
    if not found:
        raise RuntimeError(f"no totals in {output}")
    return int(found.group(1))


def strace_counts(output):
    """Calls per syscall from `strace -c` output (the `total` row under "total")."""
    counts = {}
    with open(output) as table:
        for line in table:
            fields = line.split()
            # % time, seconds, usecs/call, calls, [errors,] syscall
            if len(fields) >= 5 and re.match(r"^[\d.]+$", fields[0]) and fields[3].isdigit():
                counts[fields[-1]] = int(fields[3])
    return counts


def wait_traced(pid, tracer, limit=10.0):
    """Until every thread of `pid` has `tracer` as its tracer."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        tasks = os.listdir(f"/proc/{pid}/task")
        traced = 0
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/status") as status:
                    traced += f"TracerPid:\t{tracer}\n" in status.read()
            except OSError:
                pass
        if traced == len(tasks):
            return
        time.sleep(0.02)
    raise RuntimeError("strace did not attach")


def malloc_counter(scratch):
    library = os.path.join(scratch, "malloc_count.so")
    if not os.path.exists(library):
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", library, path("Tests/HotPath/malloc_count.c")],
                       check=True)
    return library


WARMUP = 1_000


def drive(port, connections, pipeline, requests):
    bench(port, connections, pipeline, WARMUP)
    bench(port, connections, pipeline, requests)


def one_run_once(measure, name, zend, load, requests, scratch, keep=None):
    """The count of `measure` for one run of `requests` requests at `load` (after `WARMUP` more,
    which the difference cancels: they let valgrind translate the hot path first)."""
    connections, pipeline = LOADS[load]
    command = server_command(name, zend)
    if measure == "instructions":
        output = keep or os.path.join(scratch, "callgrind.out")
        server = Server(command, wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={output}"])
        try:
            drive(server.port, connections, pipeline, requests)
        finally:
            server.stop()
        return callgrind_total(output)
    if measure == "syscalls":
        output = os.path.join(scratch, "strace.out")
        server = Server(command)
        try:
            tracer = subprocess.Popen(["strace", "-f", "-c", "-o", output, "-p", str(server.process.pid)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_traced(server.process.pid, tracer.pid)
                time.sleep(0.2)
                drive(server.port, connections, pipeline, requests)
                time.sleep(0.2)
            finally:
                tracer.send_signal(signal.SIGINT)  # detaches and writes the table
                tracer.wait(30)
        finally:
            server.stop()
        return strace_counts(output)
    if measure == "allocations":
        output = os.path.join(scratch, "allocations")
        environment = dict(os.environ, LD_PRELOAD=malloc_counter(scratch), MALLOC_COUNT_FILE=output)
        server = Server(command, environment=environment)
        try:
            drive(server.port, connections, pipeline, requests)
        finally:
            server.stop()
        with open(output) as count:
            return int(count.read())
    raise ValueError(measure)


def one_run(measure, name, zend, load, requests, scratch, keep=None, attempts=3):
    """`one_run_once`, tried again when zen bench fails: it fails a connection whose first
    answer takes more than 100 ms, whatever --timeout says, and a server under valgrind or
    strace on a busy machine can be that slow."""
    for attempt in range(1, attempts + 1):
        try:
            return one_run_once(measure, name, zend, load, requests, scratch, keep)
        except RuntimeError as error:
            if attempt == attempts:
                raise
            log(f"   (attempt {attempt} failed, trying again: {str(error)[:300]})")


def per_request(measure, name, zend, load, n1, n2, scratch, annotate_to=None):
    first = one_run(measure, name, zend, load, n1, scratch)
    second = one_run(measure, name, zend, load, n2, scratch, keep=annotate_to)
    if measure == "syscalls":
        calls = {call: (second.get(call, 0) - first.get(call, 0)) / (n2 - n1) for call in set(first) | set(second)}
        total = calls.pop("total")
        return {"total": total, "calls": {c: round(v, 4) for c, v in sorted(calls.items(), key=lambda kv: -kv[1])
                                           if abs(v) >= 0.005}}
    return (second - first) / (n2 - n1)


def stripped_zend(binary, scratch):
    """A copy of `binary` without its DWARF 5 sections, which valgrind 3.19 cannot read."""
    copy = os.path.join(scratch, "zend")
    subprocess.run(["objcopy", "--strip-debug", binary, copy], check=True)
    return copy


def build_dwarf4():
    log("== building zend with DWARF 4 for callgrind_annotate (" + DWARF4_SCRATCH + ")")
    subprocess.run(["swift", "build", "-c", "release", "--product", "zend", "-Xswiftc", "-dwarf-version=4",
                    "-Xcc", "-gdwarf-4", "--scratch-path", DWARF4_SCRATCH], cwd=ROOT, check=True,
                   stdout=sys.stderr)
    return path(DWARF4_SCRATCH, "release", "zend")


def measure_all(measures=MEASURES, servers=("zend", "c"), loads=tuple(LOADS), n1=N1, n2=N2, annotate=False,
                zend=None):
    """Every figure asked for, as a dict: result[measure][load][server], plus zend/C ratios."""
    result = {"n1": n1, "n2": n2, "connections": 50, "servers": {s: SERVER_NAMES[s] for s in servers}}
    scratch = tempfile.mkdtemp(prefix="zend-instructions-")
    try:
        binary = zend or path(".build/release/zend")
        if annotate:
            binary = build_dwarf4()
        runnable = {"instructions": binary if annotate else stripped_zend(binary, scratch)}
        for measure in measures:
            figures = result[measure] = {}
            for load in loads:
                figures[load] = {}
                for server in servers:
                    zend_binary = runnable.get(measure, binary)
                    annotated = None
                    if annotate and measure == "instructions" and server == "zend":
                        annotated = os.path.join(scratch, "annotated.out")
                    value = per_request(measure, server, zend_binary, load, n1, n2, scratch, annotated)
                    figures[load][server] = value
                    shown = value["total"] if isinstance(value, dict) else value
                    log(f"   {measure} per request, {load}, {SERVER_NAMES[server]}: {shown:,.3f}")
                    if annotated:
                        annotation = subprocess.run(["callgrind_annotate", "--inclusive=yes", annotated],
                                                    capture_output=True, text=True).stdout
                        log(f"== callgrind_annotate --inclusive=yes, zend, {load}, {n2} requests (top 40 lines)")
                        lines = annotation.splitlines()
                        first = next((i for i, line in enumerate(lines) if "PROGRAM TOTALS" in line), 0)
                        log("\n".join(lines[first:first + 40]))
                total = {s: (v["total"] if isinstance(v, dict) else v) for s, v in figures[load].items()}
                if "zend" in total and "c" in total:
                    figures[load]["zend_to_c"] = total["zend"] / total["c"] if total["c"] else None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", default=",".join(MEASURES),
                        help="comma-separated: instructions, syscalls, allocations (default: all)")
    parser.add_argument("--servers", default="zend,c", help="comma-separated: zend, c (default: both)")
    parser.add_argument("--loads", default=",".join(LOADS), help=f"comma-separated among {', '.join(LOADS)}")
    parser.add_argument("--n1", type=int, default=N1, help=f"requests in the short run ({N1})")
    parser.add_argument("--n2", type=int, default=N2, help=f"requests in the long run ({N2})")
    parser.add_argument("--zend", help="the zend binary (default .build/release/zend)")
    parser.add_argument("--annotate", action="store_true",
                        help="build zend with DWARF 4 and print callgrind_annotate's top 40 lines")
    options = parser.parse_args()
    measures = [m for m in options.measure.split(",") if m]
    loads = [l.strip() for l in options.loads.split(",") if l.strip()]
    servers = [s for s in options.servers.split(",") if s]
    for value, known in [(measures, MEASURES), (loads, LOADS), (servers, SERVER_NAMES)]:
        unknown = [v for v in value if v not in known]
        if unknown:
            parser.error(f"unknown {unknown}; choose among {list(known)}")
    if not options.n1 < options.n2:
        parser.error("--n1 must be less than --n2")
    if options.annotate and "instructions" not in measures:
        measures.insert(0, "instructions")
    result = measure_all(measures, servers, loads, options.n1, options.n2, options.annotate, options.zend)
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
