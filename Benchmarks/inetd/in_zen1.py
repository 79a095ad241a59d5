#!/usr/bin/env python3
"""One Zen-of-Python conversation over the connection systemd passes as standard input.

The per-connection server of the book's chapter 7 (`in_zen1.py`, inetd "nowait" mode),
written for a socket unit with Accept=yes and a service with StandardInput=socket: fd 0
is the accepted client. A request is every byte up to and including the next `?`;
whitespace before a request is skipped; each answer is sent byte for byte with nothing
added, pipelined requests in order; the process exits when the client closes (or after
`Error: request too long.`, when 4096 bytes hold no `?`, as zend and the peers). Like the
book's server it reports the end of the conversation in one line (on stderr: under
systemd that is the journal, as zend's own per-connection log line is).
"""
import socket
import sys

ANSWERS = {
    b"Beautiful is better than?": b"Ugly.",
    b"Explicit is better than?": b"Implicit.",
    b"Simple is better than?": b"Complex.",
}
UNKNOWN = b"Error: unknown aphorism."
TOO_LONG = b"Error: request too long."
MAX_REQUEST = 4096  # bytes, the `?` included, as zend's default
WHITESPACE = b" \t\r\n"


def converse(sock):
    """Answers every complete request until the client closes; returns bytes left over."""
    pending = b""
    while True:
        data = sock.recv(4096)
        if not data:
            return pending
        pending += data
        answers = []
        while True:
            pending = pending.lstrip(WHITESPACE)
            end = pending.find(b"?")
            if end < 0:
                break
            request, pending = pending[:end + 1], pending[end + 1:]
            answers.append(ANSWERS.get(request, UNKNOWN))
        if len(pending) >= MAX_REQUEST:  # no `?` in the first MAX_REQUEST bytes
            sock.sendall(b"".join(answers) + TOO_LONG)
            sock.shutdown(socket.SHUT_WR)  # then read what is left, so closing sends no reset
            sock.settimeout(1.0)
            while sock.recv(65536):
                pass
            return b""
        if answers:
            sock.sendall(b"".join(answers))


if __name__ == "__main__":
    sock = socket.socket(fileno=0)
    try:
        peer = sock.getpeername()
        left = converse(sock)
        print(f"client {peer} closed" + (f" with {len(left)} bytes unanswered" if left else ""),
              file=sys.stderr)
    except OSError as error:
        print(f"client error: {error}", file=sys.stderr)
    finally:
        sock.close()
