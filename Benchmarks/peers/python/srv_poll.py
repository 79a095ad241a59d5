#!/usr/bin/env python3
# Foundations of Python Network Programming, 3rd ed., chapter 7: srv_async.py,
# the hand-written poll() event loop, as a benchmark peer of zend with correct
# framing of pipelined requests (zend spec, section 1).
#
#   python3 srv_poll.py PORT
#
# Listens on 127.0.0.1:PORT, prints "listening on 127.0.0.1:PORT" once ready,
# exits 0 on SIGTERM or SIGINT.

import select
import signal
import socket
import sys

TABLE = {
    b'Beautiful is better than?': b'Ugly.',
    b'Explicit is better than?': b'Implicit.',
    b'Simple is better than?': b'Complex.',
}
UNKNOWN = b'Error: unknown aphorism.'
TOO_LONG = b'Error: request too long.'
MAX_REQUEST = 4096          # longest request accepted without a '?'
HIGH_WATER = 256 * 1024     # stop reading from a client owed this many bytes
WHITESPACE = frozenset(b' \t\r\n')


def frame(data):
    """Split data at each '?'. Return (answers, rest): the answers to every
    complete request, in order, joined, and the bytes of the unfinished one.
    ASCII whitespace before a request is skipped."""
    answers = []
    start, n = 0, len(data)
    while True:
        while start < n and data[start] in WHITESPACE:
            start += 1
        end = data.find(b'?', start)
        if end < 0:
            break
        answers.append(TABLE.get(data[start:end + 1], UNKNOWN))
        start = end + 1
    return b''.join(answers), data[start:]


def create_srv_socket(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(('127.0.0.1', port))
    listener.listen(1024)
    listener.setblocking(False)
    return listener


def all_events_forever(poll_object):
    while True:
        for fd, event in poll_object.poll():
            yield fd, event


def serve(listener):
    sockets = {listener.fileno(): listener}
    addresses = {}
    bytes_received = {}
    bytes_to_send = {}
    closing = set()     # client shut down its side: send what is owed, then close

    poll_object = select.poll()
    poll_object.register(listener, select.POLLIN)

    def drop(sock):
        poll_object.unregister(sock.fileno())
        del sockets[sock.fileno()]
        address = addresses.pop(sock)
        rb = bytes_received.pop(sock, b'')
        bytes_to_send.pop(sock, None)
        closing.discard(sock)
        sock.close()
        if rb.strip():
            print('Client {} sent {!r} but then closed'.format(address, rb), file=sys.stderr)

    def rearm(sock):
        """Poll for what this socket can do next; close it when it is done."""
        owed = len(bytes_to_send.get(sock, b''))
        mask = 0
        if sock not in closing and owed < HIGH_WATER:
            mask |= select.POLLIN
        if owed:
            mask |= select.POLLOUT
        if mask:
            poll_object.modify(sock, mask)
        else:
            drop(sock)

    for fd, event in all_events_forever(poll_object):
        sock = sockets.get(fd)
        if sock is None:
            continue

        # Socket closed or broken: remove it from our data structures.

        if event & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            if sock is listener:
                raise RuntimeError('listening socket failed')
            drop(sock)

        # New socket: add it to our data structures.

        elif sock is listener:
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sockets[sock.fileno()] = sock
            addresses[sock] = address
            poll_object.register(sock, select.POLLIN)

        else:
            # Incoming data: frame every complete request, queue its answer.
            if event & select.POLLIN:
                try:
                    more_data = sock.recv(65536)
                except BlockingIOError:
                    more_data = None
                except OSError:
                    drop(sock)
                    continue
                if more_data == b'':                        # end-of-file
                    closing.add(sock)
                elif more_data:
                    data = bytes_received.pop(sock, b'') + more_data
                    answers, rest = frame(data)
                    if answers:
                        bytes_to_send[sock] = bytes_to_send.pop(sock, b'') + answers
                    if len(rest) > MAX_REQUEST:
                        bytes_to_send[sock] = bytes_to_send.pop(sock, b'') + TOO_LONG
                        closing.add(sock)
                    elif rest:
                        bytes_received[sock] = rest

            # Socket ready to send: keep sending until all bytes are delivered.
            if event & select.POLLOUT and sock in bytes_to_send:
                data = bytes_to_send.pop(sock)
                try:
                    n = sock.send(data)
                except BlockingIOError:
                    n = 0
                except OSError:
                    drop(sock)
                    continue
                if n < len(data):
                    bytes_to_send[sock] = data[n:]

            rearm(sock)


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: srv_poll.py PORT')
    port = int(sys.argv[1])
    listener = create_srv_socket(port)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0))
    print('listening on 127.0.0.1:{}'.format(listener.getsockname()[1]), flush=True)
    try:
        serve(listener)
    finally:
        listener.close()


if __name__ == '__main__':
    main()
