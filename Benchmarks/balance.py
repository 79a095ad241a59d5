#!/usr/bin/env python3
"""How evenly zend's reactors share connections and requests (`--threads 2`).

    Benchmarks/balance.py [--threads 2] [--loads 2,8,50,1000] [--seconds 3] [--self-test]

For each number of connections C, this starts a fresh zend with `--threads 2
--log-level info --log-target console`, waits for its "ready" line (no probe
connection, so every connection counted is a client's), runs
`zen bench -c C -d SECONDS`, and stops zend with SIGTERM. zend's last log line,
"stopped", carries the figures of each reactor as metadata:

    2026-12-01T22:00:00.000Z info stopped requests=300 accepted_per_reactor=1,1 requests_per_reactor=140,160

The script reports each reactor's share of the connections and of the requests.
The target is that every reactor gets between 35% and 65% of each.

It also measures from outside, which works for any zend: the connections in each
reactor's epoll set, counted from /proc/PID/fdinfo halfway through the run
(listening sockets are left out), and each `zend-reactor-N` thread's share of the
CPU time over the run (utime + stime from /proc/PID/task/TID/stat), which stands
in for its share of the requests.

zen bench runs unpinned with one thread. zend's two reactors need both CPUs.
Pinning the client to one CPU would leave that CPU's reactor less time than the
other, so the split would show the pinning, not zend. One client thread treats
every connection the same way.

It prints progress on stderr and one JSON object as the last line of stdout.
Benchmarks/run.py imports it. `--self-test` checks the parsing against fake
lines and exits.
"""
import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import instructions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONNECTIONS = (2, 8, 50, 1000)
SECONDS = 3
LOW, HIGH = 0.35, 0.65


def path(*parts):
    return os.path.join(ROOT, *parts)


def log(text):
    print(text, file=sys.stderr, flush=True)


def parse_metadata(line):
    """`key=value` pairs of a console log line (values may be quoted)."""
    return {key: value.strip('"') for key, value in re.findall(r'(\w+)=("[^"]*"|\S+)', line)}


def per_reactor(value):
    """'12,15' -> [12, 15]; None if it is not a comma-separated list of counts."""
    if value is None:
        return None
    try:
        return [int(part) for part in value.strip("[]").split(",") if part.strip() != ""]
    except ValueError:
        return None


def shares(counts):
    total = sum(counts or [])
    return [count / total for count in counts] if total else None


def stopped_figures(log_text):
    """The per-reactor figures of the last "stopped" line, or None where zend gave none."""
    lines = [line for line in log_text.splitlines() if re.search(r"\sstopped(\s|$)", line)]
    if not lines:
        return None
    metadata = parse_metadata(lines[-1])
    accepted = per_reactor(metadata.get("accepted_per_reactor"))
    requests = per_reactor(metadata.get("requests_per_reactor"))
    return {
        "line": lines[-1].strip(),
        "accepted": accepted,
        "requests": requests,
        "accepted_share": shares(accepted),
        "requests_share": shares(requests),
    }


def within_target(share_list):
    return share_list is not None and all(LOW <= share <= HIGH for share in share_list)


def listening_inodes():
    """Socket inodes of every listening TCP socket (state 0A in /proc/net/tcp and tcp6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                for row in list(rows)[1:]:
                    fields = row.split()
                    if len(fields) > 9 and fields[3] == "0A":
                        inodes.add(fields[9])
        except OSError:
            pass
    return inodes


def connections_per_epoll(pid):
    """Connected sockets registered in each of the process's epoll sets that has any."""
    listeners = listening_inodes()
    counts = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            if "eventpoll" not in os.readlink(f"/proc/{pid}/fd/{fd}"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                targets = [line.split()[1] for line in info if line.startswith("tfd:")]
        except OSError:
            continue
        sockets = 0
        listens = False
        for target in targets:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{target}")
            except OSError:
                continue
            if link.startswith("socket:["):
                if link[8:-1] in listeners:
                    listens = True
                else:
                    sockets += 1
        if listens or sockets:
            counts.append(sockets)
    return counts


def reactor_cpu(pid):
    """CPU clock ticks of each thread named zend-reactor-N, by name."""
    ticks = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as comm:
                name = comm.read().strip()
            if not name.startswith("zend-reactor"):
                continue
            with open(f"/proc/{pid}/task/{task}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            ticks[name] = int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return ticks


def cpu_used(before, after):
    """Ticks each reactor used between two `reactor_cpu` readings, in reactor order."""
    names = sorted(set(before) | set(after), key=lambda name: int(re.sub(r"\D", "", name) or 0))
    return [after.get(name, 0) - before.get(name, 0) for name in names]


def run_load(connections, threads=2, seconds=SECONDS, zend=None, zen=None):
    """One fresh zend, one `zen bench -c connections -d seconds`, the stopped line's figures."""
    port = instructions.free_port()
    with tempfile.NamedTemporaryFile(prefix="zend-balance-", suffix=".log") as log_file:
        process = subprocess.Popen([zend or path(".build/release/zend"), "--listen", f"127.0.0.1:{port}",
                                    "--threads", str(threads), "--log-level", "info", "--log-target", "console"],
                                   stdout=log_file, stderr=log_file)
        try:
            deadline = time.monotonic() + 15
            while True:
                with open(log_file.name) as text:
                    if " ready" in text.read():
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"zend did not get ready: {open(log_file.name).read()[-2000:]}")
                time.sleep(0.01)
            cpu_before = reactor_cpu(process.pid)
            client = subprocess.Popen([zen or path(".build/release/zen"), "bench", "--port", str(port),
                                       "-c", str(connections), "-d", str(seconds), "--threads", "1", "--json"],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(1 + seconds / 2)  # past the warm-up, halfway through the measured run
            held = connections_per_epoll(process.pid)
            stdout, _ = client.communicate(timeout=seconds + 120)
            cpu = cpu_used(cpu_before, reactor_cpu(process.pid))
            lines = stdout.strip().splitlines()
            bench = json.loads(lines[-1]) if lines else {}
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        with open(log_file.name) as text:
            figures = stopped_figures(text.read())
    result = {"connections": connections, "rps": bench.get("rps"), "errors": bench.get("errors"),
              "mismatches": bench.get("mismatches"), "exit": process.returncode,
              "epoll_connections": held, "epoll_connections_share": shares(held),
              "reactor_cpu_ticks": cpu, "reactor_cpu_share": shares(cpu)}
    if figures is None:
        result["problem"] = "zend logged no \"stopped\" line"
    else:
        result.update(figures)
        if figures["accepted"] is None or figures["requests"] is None:
            result["problem"] = "this zend's \"stopped\" line has no accepted_per_reactor/requests_per_reactor"
        result["within_target"] = within_target(figures["accepted_share"]) and within_target(figures["requests_share"])
    return result


def measure(loads=CONNECTIONS, threads=2, seconds=SECONDS, zend=None, zen=None):
    results = []
    for connections in loads:
        result = run_load(connections, threads, seconds, zend, zen)
        results.append(result)
        log(f"   c={connections}: connections {format_shares(result.get('accepted_share'))}, "
            f"requests {format_shares(result.get('requests_share'))}"
            + (f" ({result['problem']})" if "problem" in result else "")
            + f"; from outside: connections held {format_shares(result['epoll_connections_share'])}, "
              f"reactor CPU {format_shares(result['reactor_cpu_share'])}")
    return results


def format_shares(share_list):
    return " / ".join(f"{share:.0%}" for share in share_list) if share_list else "–"


def self_test():
    """The parsing, against fake lines written to the contract."""
    line = ("2026-12-01T22:00:00.000Z info stopped requests=300 accepted_per_reactor=1,3 "
            "requests_per_reactor=140,160\n")
    figures = stopped_figures("2026-12-01T21:59:59.000Z info ready\n" + line)
    assert figures["accepted"] == [1, 3], figures
    assert figures["requests"] == [140, 160], figures
    assert figures["accepted_share"] == [0.25, 0.75], figures
    assert abs(figures["requests_share"][0] - 140 / 300) < 1e-12, figures
    assert not within_target(figures["accepted_share"]) and within_target(figures["requests_share"])
    # Metadata in another order, quoted values, more reactors.
    other = stopped_figures('x info stopped requests_per_reactor="5,5,10" accepted_per_reactor="2,2,4" requests=20')
    assert other["requests"] == [5, 5, 10] and other["accepted"] == [2, 2, 4], other
    # A zend without the figures, and no stopped line at all.
    old = stopped_figures("2026-11-25T15:00:00.000Z info stopped requests=7")
    assert old["accepted"] is None and old["requests"] is None and old["requests_share"] is None, old
    assert stopped_figures("2026-11-25T15:00:00.000Z info stopping\n") is None
    assert stopped_figures("2026-11-25T15:00:00.000Z info ready\n") is None
    # A "stopping" line with the figures is not the stopped line.
    assert stopped_figures("t info stopping accepted_per_reactor=1,1") is None
    print("balance.py self-test: ok")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="zend --threads (2)")
    parser.add_argument("--loads", default=",".join(map(str, CONNECTIONS)), help="connection counts (2,8,50,1000)")
    parser.add_argument("--seconds", type=float, default=SECONDS, help=f"zen bench -d ({SECONDS})")
    parser.add_argument("--self-test", action="store_true", help="check the parsing against fake lines")
    options = parser.parse_args()
    if options.self_test:
        return self_test()
    loads = [int(part) for part in options.loads.split(",") if part]
    print(json.dumps({"threads": options.threads, "loads": measure(loads, options.threads, options.seconds)}))


if __name__ == "__main__":
    sys.exit(main())
