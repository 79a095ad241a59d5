#!/usr/bin/env python3
"""Protocol checks against a running Zen server (zend spec, section 1).

    python3 verify.py PORT

Prints one line per check and exits non-zero if any check fails.
"""
import socket
import sys
import time

QA = [
    (b'Beautiful is better than?', b'Ugly.'),
    (b'Explicit is better than?', b'Implicit.'),
    (b'Simple is better than?', b'Complex.'),
]
UNKNOWN = b'Error: unknown aphorism.'


def connect(port):
    s = socket.create_connection(('127.0.0.1', port), timeout=2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s, n):
    data = b''
    while len(data) < n:
        try:
            more = s.recv(n - len(data))
        except (socket.timeout, OSError):
            break
        if not more:
            break
        data += more
    return data


def no_more(s, wait=0.2):
    """True if nothing else arrives within `wait` seconds."""
    s.settimeout(wait)
    try:
        extra = s.recv(4096)
    except socket.timeout:
        return True
    finally:
        s.settimeout(2)
    return extra == b''  # EOF is fine too


def expect_eof(s):
    s.settimeout(2)
    try:
        return s.recv(4096) == b''
    except (socket.timeout, OSError):
        return False


def main():
    port = int(sys.argv[1])
    failures = 0
    passed = 0

    def check(name, ok, detail=''):
        nonlocal failures, passed
        print('{} {}{}'.format('ok  ' if ok else 'FAIL', name, ('  ' + detail) if detail and not ok else ''))
        if ok:
            passed += 1
        else:
            failures += 1

    # The three answers, one at a time on one connection.
    s = connect(port)
    for q, a in QA:
        s.sendall(q)
        got = recv_exactly(s, len(a))
        check('answer {!r}'.format(q.decode()), got == a, 'got {!r}'.format(got))
    check('nothing added after answers', no_more(s))
    s.close()

    # Unknown question.
    s = connect(port)
    s.sendall(b'Ugly is better than?')
    got = recv_exactly(s, len(UNKNOWN))
    check('unknown question', got == UNKNOWN and no_more(s), 'got {!r}'.format(got))
    # Whitespace inside a request is part of the key.
    s.sendall(b'Simple  is better than?')
    got = recv_exactly(s, len(UNKNOWN))
    check('whitespace inside key is part of it', got == UNKNOWN, 'got {!r}'.format(got))
    s.close()

    # Two requests in one write (the book's srv_async.py answers one error).
    s = connect(port)
    s.sendall(QA[0][0] + QA[1][0])
    want = QA[0][1] + QA[1][1]
    got = recv_exactly(s, len(want))
    check('two requests in one write', got == want and no_more(s), 'got {!r}'.format(got))
    s.close()

    # 1,000 pipelined requests in one write.
    s = connect(port)
    reqs = [QA[i % 3] for i in range(1000)]
    s.sendall(b''.join(q for q, _ in reqs))
    want = b''.join(a for _, a in reqs)
    got = recv_exactly(s, len(want))
    check('1000 pipelined requests in one write', got == want and no_more(s),
          'got {} of {} bytes, first diff at {}'.format(
              len(got), len(want),
              next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), None)))
    s.close()

    # A request sent one byte at a time.
    s = connect(port)
    for b in QA[1][0]:
        s.sendall(bytes([b]))
        time.sleep(0.002)
    got = recv_exactly(s, len(QA[1][1]))
    check('request one byte at a time', got == QA[1][1] and no_more(s), 'got {!r}'.format(got))
    # ... then two requests arriving byte by byte with a split across them.
    stream = QA[2][0] + QA[0][0]
    for b in stream:
        s.sendall(bytes([b]))
    want = QA[2][1] + QA[0][1]
    got = recv_exactly(s, len(want))
    check('two requests byte by byte', got == want and no_more(s), 'got {!r}'.format(got))
    s.close()

    # Leading whitespace: 'Simple is better than?\n', as printf | nc sends it.
    s = connect(port)
    s.sendall(b'Simple is better than?\n')
    got = recv_exactly(s, len(b'Complex.'))
    check("leading whitespace 'Simple is better than?\\n'", got == b'Complex.', 'got {!r}'.format(got))
    s.sendall(b' \t\r\nBeautiful is better than?\r\n')
    got = recv_exactly(s, len(b'Ugly.'))
    check('space/tab/CR/LF before a request skipped', got == b'Ugly.' and no_more(s),
          'got {!r}'.format(got))
    s.close()

    # Half-close: every answer owed is sent, then the server closes.
    s = connect(port)
    s.sendall(b''.join(q for q, _ in QA) + b'\n')
    s.shutdown(socket.SHUT_WR)
    want = b''.join(a for _, a in QA)
    got = recv_exactly(s, len(want))
    check('half-close: answers then EOF', got == want and expect_eof(s), 'got {!r}'.format(got))
    s.close()

    print('{} passed, {} failed'.format(passed, failures))
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
