#!/usr/bin/env python3
# Foundations of Python Network Programming, 3rd ed., chapter 7: srv_asyncio1.py,
# rewritten as a benchmark peer of zend with correct framing of pipelined
# requests (zend spec, section 1).
#
#   python3 srv_asyncio.py PORT
#
# Listens on 127.0.0.1:PORT, prints "listening on 127.0.0.1:PORT" once ready,
# exits 0 on SIGTERM or SIGINT.

import asyncio
import signal
import sys

TABLE = {
    b'Beautiful is better than?': b'Ugly.',
    b'Explicit is better than?': b'Implicit.',
    b'Simple is better than?': b'Complex.',
}
UNKNOWN = b'Error: unknown aphorism.'
TOO_LONG = b'Error: request too long.'
MAX_REQUEST = 4096          # longest request accepted without a '?'
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


class ZenServer(asyncio.Protocol):

    def connection_made(self, transport):
        self.transport = transport
        self.address = transport.get_extra_info('peername')
        self.data = b''

    def data_received(self, data):
        # The book appends and answers only when the whole buffer ends in '?',
        # so a read holding two requests gets one error. Frame each request.
        answers, self.data = frame(self.data + data if self.data else data)
        if answers:
            self.transport.write(answers)
        if len(self.data) > MAX_REQUEST:
            self.transport.write(TOO_LONG)
            self.data = b''
            self.transport.close()          # flushes what is owed, then closes

    def eof_received(self):
        # Half-close: returning a false value makes the transport close itself
        # once every answer still owed has been written.
        return None

    # Backpressure: stop reading while the transport's write buffer is full.
    def pause_writing(self):
        self.transport.pause_reading()

    def resume_writing(self):
        self.transport.resume_reading()

    def connection_lost(self, exc):
        if exc is None and self.data.strip():
            print('Client {} sent {!r} but then closed'.format(self.address, self.data),
                  file=sys.stderr)


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: srv_asyncio.py PORT')
    port = int(sys.argv[1])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    coro = loop.create_server(ZenServer, '127.0.0.1', port, backlog=1024,
                              reuse_address=True)
    server = loop.run_until_complete(coro)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    bound = server.sockets[0].getsockname()[1]
    print('listening on 127.0.0.1:{}'.format(bound), flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()


if __name__ == '__main__':
    main()
