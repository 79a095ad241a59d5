#!/usr/bin/env python3
"""Soak load for zend: about 1,000 connections of mixed, partly hostile clients for a
while, every answer checked byte for byte, zend's RSS and open descriptors sampled
every second and tested for growth.

    soak.py --port PORT --pid PID [--seconds 600] [--connections 1000] ...

One process, non-blocking sockets on an epoll selector, loopback only; the count of
connections and of new connections per second are bounded. Kinds of clients:

  pipelined  bursts of 16-64 requests (book, unknown, whitespace between) in one write,
             every answer checked; ends with a close or a half-close (then EOF expected)
  slow       a few requests, whitespace a byte at a time and each request in small
             pieces, a few hundred ms apart (each request completes well within the
             request timeout: only a partial request counts against it)
  resetting  a large pipelined burst with a small receive buffer, reads part of the
             answers, then closes with SO_LINGER 0 (a reset mid-answer)
  trickling  a partial request, a byte every few hundred ms, never a '?': zend must
             close it about --request-timeout after its first byte
  toolong    maybe some requests, then more than --max-request-bytes without '?' (and
             junk after): the answers, `Error: request too long.`, then EOF
  idle       maybe one request, then nothing: zend must close it about --idle-timeout
             after the last byte

Exit status 0 only if: no wrong byte, no connection broken or stalled, every
timeout-driven close came in time, zend is alive at the end, RSS and descriptors did
not grow after the warm-up (see `check_growth`), and the descriptors came back to the
starting count once the load ended.
"""

import argparse
import collections
import errno
import heapq
import os
import random
import selectors
import socket
import statistics
import struct
import sys
import time

TABLE = {
    b"Beautiful is better than?": b"Ugly.",
    b"Explicit is better than?": b"Implicit.",
    b"Simple is better than?": b"Complex.",
}
UNKNOWN = b"Error: unknown aphorism."
TOO_LONG = b"Error: request too long."
KNOWN = list(TABLE)
STRANGERS = [b"?", b"Is this zen?", b"Ugly is better than?", b"Simple is better than ?",
             b"simple is better than?", b"\x00\xff\x80?", b"Beautiful\tis better than?"]
WHITESPACE = b" \t\r\n"

KINDS = ["pipelined", "slow", "resetting", "trickling", "toolong", "idle"]
WEIGHTS = [40, 12, 10, 10, 8, 20]


def answer(request):
    """The reference answer of one request (leading whitespace already skipped)."""
    return TABLE.get(request, UNKNOWN)


def random_request(rng):
    return rng.choice(KNOWN) if rng.random() < 0.8 else rng.choice(STRANGERS)


def burst(rng, count):
    """`count` pipelined requests, sometimes with whitespace before them; their answers; count."""
    sent, expected = bytearray(), bytearray()
    for _ in range(count):
        if rng.random() < 0.15:
            sent += bytes(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 3)))
        request = random_request(rng)
        sent += request
        expected += answer(request)
    return bytes(sent), bytes(expected), count


class Failures:
    def __init__(self):
        self.counts = collections.Counter()
        self.examples = []

    def add(self, what, detail):
        self.counts[what] += 1
        if self.counts[what] <= 3:  # the first few of each kind
            self.examples.append(f"{what}: {detail}")

    def __bool__(self):
        return bool(self.counts)


class Conn:
    """One client connection and its plan: a list of steps done in order.

    Steps: ("send", bytes, expected answer bytes, requests answered), ("sleep", s),
    ("answers",) waits until every expected byte so far arrived, ("bytes", n) waits until n bytes
    arrived, ("shutdown",), ("reset",), ("close",), and ("eof", earliest, latest, since)
    waits for zend to close: not before `earliest` s nor after `latest` s counted from
    `since` ("start", "first_send" or "last_send")."""

    __slots__ = ("id", "kind", "sock", "steps", "step", "out", "expected", "received",
                 "entered", "step_at", "connected", "started", "first_send", "last_send",
                 "done", "answer_ends", "registered_events", "server_closed", "rcvbuf")

    def __init__(self, ident, kind, steps, rcvbuf=None):
        self.id = ident
        self.kind = kind
        self.steps = steps
        self.step = 0
        self.out = bytearray()
        self.expected = bytearray()
        self.received = 0
        self.entered = False
        self.step_at = 0.0
        self.connected = False
        self.started = time.monotonic()
        self.first_send = None
        self.last_send = None
        self.done = False
        self.answer_ends = collections.deque()  # (offset where a send's answers end, requests)
        self.registered_events = 0
        self.server_closed = False
        self.rcvbuf = rcvbuf
        self.sock = None


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.selector = selectors.EpollSelector()
        self.failures = Failures()
        self.timers = []  # (when, seq, conn)
        self.seq = 0
        self.conns = {}
        self.next_id = 0
        self.opened = collections.Counter()
        self.finished = collections.Counter()
        self.answered = 0
        self.wrong = 0
        self.timeout_closes = collections.Counter()
        self.resets_mid_answer = 0
        self.longest_turn = 0.0
        self.samples = []  # (t, rss_bytes, fds, connections)
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.chunk = bytearray(65536)

    # ---- plans --------------------------------------------------------------------
    def plan(self, kind):
        rng, a = self.rng, self.args
        steps = []
        rcvbuf = None
        if kind == "pipelined":
            for _ in range(rng.randint(3, 12)):
                steps += [("send", *burst(rng, rng.randint(16, 64))), ("answers",), ("sleep", rng.uniform(0, 0.3))]
            if rng.random() < 0.5:
                steps += [("close",)]
            else:
                # Half-close with a last burst still owed: every answer, then EOF.
                steps += [("send", *burst(rng, rng.randint(16, 64))), ("shutdown",), ("eof", 0, 10.0, "last_send")]
        elif kind == "slow":
            for _ in range(rng.randint(2, 4)):
                for _ in range(rng.randint(0, 2)):
                    steps += [("send", bytes([rng.choice(WHITESPACE)]), b"", 0), ("sleep", rng.uniform(0.2, 0.4))]
                # The request in 3-5 pieces 200-300 ms apart: complete well within the
                # request timeout, which counts from a partial request's first byte.
                request = random_request(rng)
                pieces = rng.randint(3, 5)
                cuts = sorted(rng.sample(range(1, len(request)), pieces - 1)) if len(request) >= pieces else []
                bounds = [0] + cuts + [len(request)]
                for i in range(len(bounds) - 2):
                    steps += [("send", request[bounds[i]:bounds[i + 1]], b"", 0), ("sleep", rng.uniform(0.2, 0.3))]
                steps += [("send", request[bounds[-2]:], answer(request), 1), ("answers",), ("sleep", rng.uniform(0.2, 0.4))]
            steps += [("close",)]
        elif kind == "resetting":
            # Answers pile up behind a small receive buffer; reset with them in flight.
            rcvbuf = 4096
            steps += [("send", *burst(rng, rng.randint(2000, 5000))), ("bytes", rng.randint(1, 3000)), ("reset",)]
        elif kind == "trickling":
            partial = rng.choice(KNOWN)[:-1] + b" and so on and so forth"
            for byte in partial[: rng.randint(12, len(partial))]:
                steps += [("send", bytes([byte]), b"", 0), ("sleep", rng.uniform(0.2, 0.4))]
            # zend closes it about the request timeout after its first byte, usually
            # while the bytes above are still trickling.
            steps += [("eof", a.request_timeout - 0.5, a.request_timeout + 3.0, "first_send")]
        elif kind == "toolong":
            steps += [("send", *burst(rng, rng.randint(0, 5)))]
            junk = bytes(rng.choice(b"abcxyz \t0123") for _ in range(a.max_request_bytes + rng.randint(0, 3000)))
            # After the error nothing more is answered, not even the requests after it.
            steps += [("send", b"x" + junk + b"Simple is better than?" * rng.randint(0, 3), TOO_LONG, 0),
                      ("eof", 0, 10.0, "last_send"), ("close",)]
        elif kind == "idle":
            if rng.random() < 0.5:
                request = random_request(rng)
                steps += [("send", request, answer(request), 1), ("answers",)]
            # Closed about the idle timeout after its last byte (or its connect).
            steps += [("eof", a.idle_timeout - 0.5, a.idle_timeout + 3.0, "last_send")]
        return steps, rcvbuf

    # ---- connections --------------------------------------------------------------
    def open(self):
        kind = self.rng.choices(KINDS, WEIGHTS)[0]
        steps, rcvbuf = self.plan(kind)
        conn = Conn(self.next_id, kind, steps, rcvbuf)
        self.next_id += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        conn.sock = sock
        try:
            sock.connect(("127.0.0.1", self.args.port))
            conn.connected = True
        except BlockingIOError:
            pass
        except OSError as error:
            self.failures.add("connect failed", f"#{conn.id}: {error}")
            sock.close()
            return
        self.conns[sock.fileno()] = conn
        self.opened[kind] += 1
        self.update_events(conn)
        if conn.connected:
            self.advance(conn)

    def update_events(self, conn):
        if conn.done:
            return
        events = selectors.EVENT_READ
        if not conn.connected or conn.out:
            events |= selectors.EVENT_WRITE
        if events != conn.registered_events:
            if conn.registered_events:
                self.selector.modify(conn.sock, events, conn)
            else:
                self.selector.register(conn.sock, events, conn)
            conn.registered_events = events

    def finish(self, conn, how="close"):
        if conn.done:
            return
        conn.done = True
        if conn.registered_events:
            self.selector.unregister(conn.sock)
        del self.conns[conn.sock.fileno()]
        if how == "reset":
            if conn.received < len(conn.expected):
                self.resets_mid_answer += 1
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sock.close()
        self.finished[conn.kind] += 1

    def fail(self, conn, what, detail=""):
        now = time.monotonic()
        try:
            port = conn.sock.getsockname()[1]
        except OSError:
            port = "?"
        since = lambda t: f"{now - t:.2f} s ago" if t else "never"
        self.failures.add(what, f"#{conn.id} {conn.kind} (port {port}) step {conn.step}/{len(conn.steps)}: {detail}"
                          f" [opened {since(conn.started)}, first send {since(conn.first_send)},"
                          f" last send {since(conn.last_send)}]")
        self.finish(conn)

    def schedule(self, conn, when):
        self.seq += 1
        heapq.heappush(self.timers, (when, self.seq, conn))

    def next_step(self, conn, index=None):
        conn.step = conn.step + 1 if index is None else index
        conn.entered = False

    def advance(self, conn):
        """Runs the plan's steps until one has to wait (for a timer, bytes or EOF)."""
        now = time.monotonic()
        while not conn.done:
            if conn.step >= len(conn.steps):
                self.finish(conn)
                return
            step = conn.steps[conn.step]
            op = step[0]
            entering = not conn.entered
            if entering:
                conn.entered = True
                conn.step_at = now
            if op == "send":
                if conn.server_closed:
                    self.fail(conn, "closed early", f"zend closed before the plan ended, {conn.received} bytes received")
                    return
                _, data, expected, requests = step
                conn.out += data
                conn.expected += expected
                if requests:
                    conn.answer_ends.append((len(conn.expected), requests))
                if conn.first_send is None:
                    conn.first_send = now
                conn.last_send = now
                self.next_step(conn)
                self.flush(conn)
                continue
            if op == "sleep":
                if entering:
                    self.schedule(conn, now + step[1])
                if now < conn.step_at + step[1]:
                    return
                self.next_step(conn)
                continue
            if op in ("answers", "bytes"):
                want = len(conn.expected) if op == "answers" else min(step[1], len(conn.expected))
                if conn.received >= want:
                    self.next_step(conn)
                    continue
                if conn.server_closed:
                    self.fail(conn, "closed early", f"EOF after {conn.received} of {len(conn.expected)} answer bytes")
                    return
                if entering:
                    self.schedule(conn, now + 10.0)
                elif now - conn.step_at >= 10.0:
                    self.fail(conn, "stalled", f"{conn.received} of {len(conn.expected)} answer bytes after 10 s")
                return
            if op == "shutdown":
                if conn.out:
                    return  # again after the flush
                try:
                    conn.sock.shutdown(socket.SHUT_WR)
                except OSError as error:
                    self.fail(conn, "shutdown failed", str(error))
                    return
                self.next_step(conn)
                continue
            if op in ("reset", "close"):
                self.finish(conn, op)
                return
            if op == "eof":
                _, earliest, latest, since = step
                base = {"first_send": conn.first_send, "last_send": conn.last_send}.get(since) or conn.started
                if conn.server_closed:
                    if conn.received != len(conn.expected):
                        self.fail(conn, "closed early", f"EOF after {conn.received} of {len(conn.expected)} answer bytes")
                        return
                    waited = now - base
                    if waited < earliest:
                        self.fail(conn, "closed too early", f"after {waited:.2f} s, expected at least {earliest} s")
                        return
                    if earliest > 0:
                        self.timeout_closes[conn.kind] += 1
                    self.next_step(conn)
                    continue
                if now - base > latest:
                    self.fail(conn, "not closed", f"zend did not close it within {latest} s "
                              f"({conn.received} of {len(conn.expected)} answer bytes)")
                    return
                if entering:
                    self.schedule(conn, base + latest + 0.01)
                return
            raise AssertionError(op)

    def flush(self, conn):
        while conn.out and not conn.done:
            try:
                sent = conn.sock.send(conn.out)
            except BlockingIOError:
                break
            except (BrokenPipeError, ConnectionResetError):
                self.on_server_closed(conn)
                return
            del conn.out[:sent]
        self.update_events(conn)

    def on_server_closed(self, conn):
        """zend closed (EOF, reset or a failed send): nothing more will be sent. A plan
        that only had unanswered sends and sleeps left before its "eof" step (a
        trickler) goes straight to that step to judge the timing."""
        if conn.done:
            return
        conn.server_closed = True
        conn.out.clear()
        if conn.registered_events:
            self.selector.unregister(conn.sock)
            conn.registered_events = 0
        rest = conn.steps[conn.step:]
        eof = next((i for i, s in enumerate(rest) if s[0] == "eof"), None)
        if eof is not None and all(s[0] == "sleep" or (s[0] == "send" and not s[2]) for s in rest[:eof]):
            self.next_step(conn, conn.step + eof)
        self.advance(conn)

    def on_readable(self, conn):
        # A client that resets mid-answer reads a little at a time and stops as soon as
        # it has what it waits for, so the reset comes with answers still in flight.
        size = 1024 if conn.rcvbuf else len(self.chunk)
        while not conn.done:
            step = conn.steps[conn.step] if conn.step < len(conn.steps) else ("close",)
            if step[0] == "bytes" and conn.received >= step[1]:
                break
            try:
                count = conn.sock.recv_into(self.chunk, size)
            except BlockingIOError:
                break
            except ConnectionResetError:
                self.on_server_closed(conn)
                return
            if count == 0:
                self.on_server_closed(conn)
                return
            got = memoryview(self.chunk)[:count]
            start = conn.received
            want = conn.expected[start:start + count]
            if got != want:
                self.wrong += 1
                offset = next((i for i in range(min(len(want), count)) if got[i] != want[i]), min(len(want), count))
                at = start + offset
                self.fail(conn, "wrong bytes",
                          f"first difference at byte {at} of {len(conn.expected)} expected: "
                          f"expected {bytes(conn.expected[at:at + 24])!r}, got {bytes(got[offset:offset + 24])!r}")
                return
            conn.received += count
            while conn.answer_ends and conn.answer_ends[0][0] <= conn.received:
                self.answered += conn.answer_ends.popleft()[1]
        self.advance(conn)

    # ---- the process under test ---------------------------------------------------
    def sample(self, t):
        pid = self.args.pid
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state in ("Z", "X"):
                return False
            with open(f"/proc/{pid}/statm") as f:
                rss = int(f.read().split()[1]) * self.page
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return False
        self.samples.append((t, rss, fds, len(self.conns)))
        return True

    # ---- the run ------------------------------------------------------------------
    def run(self):
        a = self.args
        start = time.monotonic()
        if not self.sample(0.0):
            print("soak: the server is not running", file=sys.stderr)
            return False
        alive = True
        end = start + a.seconds
        next_sample = start + 1
        next_report = start + 10
        turn_start = start
        opened_this_second, second = 0, int(start)
        while True:
            now = time.monotonic()
            if now >= end:
                break
            self.longest_turn = max(self.longest_turn, now - turn_start)
            turn_start = now
            if int(now) != second:
                second, opened_this_second = int(now), 0
            # New connections spread over the second (a few per turn), so the driver's
            # own turns stay short and the slow clients' timing stays true.
            for _ in range(max(1, a.rate // 25)):
                if len(self.conns) >= a.connections or opened_this_second >= a.rate:
                    break
                self.open()
                opened_this_second += 1
            timeout = 0.05
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - now))
            for key, events in self.selector.select(timeout):
                conn = key.data
                if conn.done:
                    continue
                if not conn.connected and events & selectors.EVENT_WRITE:
                    error = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if error:
                        self.fail(conn, "connect failed", os.strerror(error))
                        continue
                    conn.connected = True
                    self.update_events(conn)
                    self.advance(conn)
                    continue
                if events & selectors.EVENT_READ:
                    self.on_readable(conn)
                if not conn.done and events & selectors.EVENT_WRITE:
                    self.flush(conn)
                    if not conn.out:
                        self.advance(conn)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, conn = heapq.heappop(self.timers)
                if not conn.done:
                    self.advance(conn)
            if now >= next_sample:
                next_sample += 1
                if not self.sample(now - start):
                    alive = False
                    self.failures.add("server died", f"at {now - start:.1f} s")
                    break
            if now >= next_report:
                next_report += 10
                t, rss, fds, n = self.samples[-1]
                print(f"soak: {t:5.0f} s  {n} connections  {self.answered} answered  "
                      f"RSS {rss / 2**20:.1f} MiB  {fds} fds  {sum(self.failures.counts.values())} failures", flush=True)
        # The load ends: close every client, then zend should hold what it held at the start.
        for conn in list(self.conns.values()):
            self.finish(conn)
        self.timers.clear()
        settled = None
        if alive:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    settled = len(os.listdir(f"/proc/{a.pid}/fd"))
                except FileNotFoundError:
                    settled = None
                    break
                if settled <= self.samples[0][2] + a.fd_settle_slack:
                    break
                time.sleep(0.2)
        return self.report(alive, settled)

    # ---- judging ------------------------------------------------------------------
    def report(self, alive, settled):
        a = self.args
        ok = True
        s = self.samples
        warm = a.seconds * a.warmup
        post = [x for x in s if x[0] >= warm]
        print()
        print(f"soak: {a.seconds} s against PID {a.pid} on 127.0.0.1:{a.port}, target {a.connections} connections, seed {a.seed}")
        print(f"  requests answered        {self.answered}")
        print(f"  wrong answers            {self.wrong}")
        print("  connections by kind      " + ", ".join(f"{k} {self.opened[k]}" for k in KINDS)
              + f"  (total {sum(self.opened.values())})")
        print(f"  resets mid-answer        {self.resets_mid_answer}")
        print(f"  driver's longest turn    {self.longest_turn * 1000:.0f} ms")
        print("  closed by zend's timeouts " + ", ".join(f"{k} {v}" for k, v in sorted(self.timeout_closes.items())))
        if s:
            first = s[0]
            after = post[0] if post else s[-1]
            last = s[-1]
            print(f"  RSS  start {first[1] / 2**20:.2f} MiB  after warm-up ({after[0]:.0f} s) {after[1] / 2**20:.2f} MiB"
                  f"  end {last[1] / 2**20:.2f} MiB")
            print(f"  fds  start {first[2]}  after warm-up {after[2]}  end {last[2]}  after the load {settled}")
        if len(post) >= 5:
            ok &= check_growth("RSS", [(t, r) for t, r, _, _ in post], a.rss_slope_bound,
                               lambda base: base * (1 + a.rss_median_ratio), "MiB", 2**20)
            ok &= check_growth("fds", [(t, f) for t, _, f, _ in post], a.fd_slope_bound,
                               lambda base: base + a.fd_median_slack, "fds", 1)
        else:
            print("  (too few samples after the warm-up to judge growth)")
        if settled is not None and settled > s[0][2] + a.fd_settle_slack:
            self.failures.add("fds not released", f"{settled} fds 10 s after the load ended, {s[0][2]} at the start")
        if not alive:
            ok = False
        if self.failures:
            ok = False
            print("  failures: " + ", ".join(f"{k} {v}" for k, v in sorted(self.failures.counts.items())))
            for example in self.failures.examples:
                print("    " + example)
        print("soak: " + ("PASS" if ok else "FAIL"))
        return ok


def slope(points):
    """Least-squares slope of (t, y) points, per second."""
    n = len(points)
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (y - my) for t, y in points) / var


def check_growth(name, points, bound_per_minute, median_limit, unit, scale):
    """Fails when both the least-squares slope after the warm-up exceeds the bound and
    the median of the last minute (or last third, if shorter) is above the limit
    derived from the post-warm-up median: a steady leak does both, noise rarely does."""
    per_minute = slope(points) * 60
    span = points[-1][0] - points[0][0]
    window = min(60.0, max(10.0, span / 3))
    last = [y for t, y in points if t >= points[-1][0] - window]
    base = statistics.median(y for _, y in points)
    recent = statistics.median(last)
    limit = median_limit(base)
    grows = per_minute > bound_per_minute and recent > limit
    print(f"  {name} slope after warm-up {per_minute / scale:+.3f} {unit}/min (bound {bound_per_minute / scale:g});"
          f" median {base / scale:.2f}, last {window:.0f} s median {recent / scale:.2f} (limit {limit / scale:.2f})"
          f"  {'GROWS' if grows else 'ok'}")
    return not grows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="the server's PID, for /proc sampling")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--rate", type=int, default=500, help="most new connections a second")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--request-timeout", type=float, default=2)
    p.add_argument("--idle-timeout", type=float, default=5)
    p.add_argument("--max-request-bytes", type=int, default=4096)
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of the run before growth is judged")
    p.add_argument("--rss-slope-bound", type=float, default=2**20, help="bytes per minute")
    p.add_argument("--rss-median-ratio", type=float, default=0.10)
    p.add_argument("--fd-slope-bound", type=float, default=30, help="descriptors per minute")
    p.add_argument("--fd-median-slack", type=float, default=50)
    p.add_argument("--fd-settle-slack", type=int, default=5)
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    soak = Soak(args)
    sys.exit(0 if soak.run() else 1)


if __name__ == "__main__":
    main()
