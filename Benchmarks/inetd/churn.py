#!/usr/bin/env python3
"""Connection churn against one Zen server: connect, ask one question, read the answer, close.

Usage: churn.py PORT SECONDS [WORKERS] [--host HOST] [--raw]
WORKERS threads (default 4) each run that loop until SECONDS have passed, so at most
WORKERS connections are open at once (the run is bounded in time and concurrency).
Every answer is checked byte for byte. Prints one JSON line: connections answered,
connections/s, connect-to-answer latency (p50, p99, max, in ms) and the errors by kind.
"""
import argparse
import json
import resource
import socket
import threading
import time

QUESTIONS = [
    (b"Beautiful is better than?", b"Ugly."),
    (b"Explicit is better than?", b"Implicit."),
    (b"Simple is better than?", b"Complex."),
    (b"Is this a Zen question?", b"Error: unknown aphorism."),
]
TIMEOUT = 10.0


def one_connection(host, port, question, expected):
    """Returns (error kind or None, seconds from before connect() to the whole answer)."""
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            sock.sendall(question)
            answer = b""
            while len(answer) < len(expected):
                chunk = sock.recv(len(expected) - len(answer))
                if not chunk:
                    break
                answer += chunk
            elapsed = time.perf_counter() - started
    except ConnectionRefusedError:
        return "refused", None
    except ConnectionResetError:
        return "reset", None
    except socket.timeout:
        return "timeout", None
    except OSError as error:
        return type(error).__name__, None
    if not answer:
        return "closed without answer", None
    if answer != expected:
        return "wrong answer", None
    return None, elapsed


def worker(host, port, deadline, index, latencies, errors, lock):
    mine, bad, n = [], {}, index
    while time.monotonic() < deadline:
        question, expected = QUESTIONS[n % len(QUESTIONS)]
        n += 1
        error, elapsed = one_connection(host, port, question, expected)
        if error:
            bad[error] = bad.get(error, 0) + 1
        else:
            mine.append(elapsed)
    with lock:
        latencies.extend(mine)
        for kind, count in bad.items():
            errors[kind] = errors.get(kind, 0) + count


def percentile(ordered, fraction):
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("workers", type=int, nargs="?", default=4)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--raw", action="store_true", help="also print every latency (ms)")
    args = parser.parse_args()
    if not 0 < args.seconds <= 600 or not 0 < args.workers <= 64:
        parser.error("SECONDS must be in (0, 600] and WORKERS in [1, 64]")
    latencies, errors, lock = [], {}, threading.Lock()
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [threading.Thread(target=worker, args=(args.host, args.port, deadline, i, latencies, errors, lock))
               for i in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    ms = lambda value: None if value is None else round(value * 1000, 3)
    result = {
        "port": args.port, "workers": args.workers, "seconds": round(elapsed, 3),
        "connections": len(ordered), "connections_per_second": round(len(ordered) / elapsed, 1),
        "latency_ms": {"p50": ms(percentile(ordered, 0.50)), "p99": ms(percentile(ordered, 0.99)),
                       "max": ms(ordered[-1] if ordered else None)},
        "errors": sum(errors.values()), "errors_by_kind": errors,
        "client_cpu_s": round(sum(getattr(usage, f) for f in ("ru_utime", "ru_stime")), 3),
    }
    if args.raw:
        result["latencies_ms"] = [ms(value) for value in latencies]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
