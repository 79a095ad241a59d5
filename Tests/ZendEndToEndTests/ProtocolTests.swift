import Glibc
import LinuxIO
import Testing
import TestSupport

extension EndToEnd {
    @Suite("protocol over real sockets")
    struct ProtocolTests {
        @Test("the three book answers and the unknown answer")
        func answers() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            for (question, answer) in bookAnswers {
                #expect(client.ask(question, expecting: answer) == answer)
            }
            #expect(client.ask("Is this zen?", expecting: unknownAnswer) == unknownAnswer)
            // Nothing is added after an answer: no newline, no extra byte.
            client.shutdownWrite()
            #expect(client.receiveToEnd() == ([], .endOfFile))
        }

        @Test("a 30-question conversation on one connection")
        func conversation() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            for round in 0 ..< 30 {
                let (question, answer) = bookAnswers[round % 3]
                #expect(client.ask(question, expecting: answer) == answer, "round \(round)")
            }
        }

        @Test("pipelining: many requests in one write get every answer, in order")
        func pipelinedInOneWrite() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            client.send(bookAnswers.map(\.question).joined() + "Nope?")
            let expected = bookAnswers.map(\.answer).joined() + unknownAnswer
            #expect(client.receiveText(count: expected.utf8.count) == expected)
        }

        @Test("10,000 pipelined requests in one write are all answered in order")
        func tenThousandPipelined() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            let questions = (0 ..< 10_000).map { bookAnswers[$0 % 3].question }.joined()
            let expected = (0 ..< 10_000).map { bookAnswers[$0 % 3].answer }.joined()
            client.send(questions)
            client.shutdownWrite()
            let (bytes, end) = client.receiveToEnd(timeout: .seconds(30))
            #expect(end == .endOfFile)
            let difference = firstDifference(bytes, Array(expected.utf8))
            #expect(difference == nil, "\(difference ?? "")")
        }

        @Test("a request sent one byte at a time is answered once its '?' arrives")
        func oneByteAtATime() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            for byte in "Beautiful is better than?".utf8.dropLast() {
                client.send([byte])
                usleep(2_000)
            }
            #expect(client.receive(count: 1, timeout: .milliseconds(200)).isEmpty)
            client.send("?")
            #expect(client.receiveText(count: 5) == "Ugly.")
        }

        @Test("whitespace before requests is skipped, as from `printf '…\\n' | nc`")
        func leadingWhitespace() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            client.send("Simple is better than?\n \t\r\nBeautiful is better than?\r\n")
            #expect(client.receiveText(count: 13) == "Complex.Ugly.")
        }

        @Test("nc sessions work: printf 'Simple is better than?\\n' | nc")
        func netcat() throws {
            let zend = try ZendServer()
            let result = try runCommand("/bin/sh", ["-c", "printf 'Simple is better than?\\n' | nc -N -w 5 127.0.0.1 \(zend.port)"])
            #expect(result.code == 0)
            #expect(result.output == "Complex.")
        }

        @Test("half-close: every owed answer is sent, then the connection closes")
        func halfClose() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            client.send("Beautiful is better than?Explicit is better than?")
            client.shutdownWrite()
            let (bytes, end) = client.receiveToEnd()
            #expect(String(decoding: bytes, as: UTF8.self) == "Ugly.Implicit.")
            #expect(end == .endOfFile)
        }

        @Test("a partial request then close is reported in the log")
        func partialThenClose() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            client.send("Beautiful is better than?Simple is")
            client.shutdownWrite()
            let (bytes, end) = client.receiveToEnd()
            #expect(String(decoding: bytes, as: UTF8.self) == "Ugly.")
            #expect(end == .endOfFile)
            try zend.waitForLog("client sent a partial request but then closed")
            #expect(zend.log.contains("pending_bytes=9"))
        }

        @Test("a too-long request gets 'Error: request too long.', then the connection closes, with a warning")
        func tooLong() throws {
            let zend = try ZendServer(["--max-request-bytes", "64"])
            let client = try zend.connect()
            client.send("Simple is better than?" + String(repeating: "x", count: 100))
            let (bytes, end) = client.receiveToEnd()
            #expect(String(decoding: bytes, as: UTF8.self) == "Complex." + tooLongAnswer)
            #expect(end == .endOfFile)
            try zend.waitForLog("request too long")
            #expect(zend.log.contains("client_address=127.0.0.1:"))
            // Other clients are unaffected.
            #expect(try zend.connect().ask("Simple is better than?", expecting: "Complex.") == "Complex.")
        }

        @Test("after the error answer, a client that neither sends nor closes is closed at the linger timeout (2 s)")
        func lingerTimeout() throws {
            let zend = try ZendServer(["--max-request-bytes", "8", "--log-level", "debug"])
            let client = try zend.connect()
            client.send("no question mark here")
            let (bytes, end) = client.receiveToEnd()
            #expect(String(decoding: bytes, as: UTF8.self) == tooLongAnswer && end == .endOfFile)
            // zend shut its side and discards input for a while; the client keeps the connection.
            let closed = "msg=\"connection closed\""
            let elapsed = milliseconds { _ = try? zend.waitForLog(closed, timeout: .seconds(6)) }
            #expect(zend.log.contains(closed), "still open \(elapsed) ms after the error answer")
            #expect(elapsed >= 1500 && elapsed < 4000, "closed \(elapsed) ms after the error answer")
            #expect(zend.log.contains("reason=\"request too long\""))
        }

        @Test("a too-long request while the client keeps sending still delivers the error")
        func tooLongWhileStreaming() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 65536)
            // 2 MiB without '?': zend answers after 4 KiB and discards the rest.
            for _ in 0 ..< 32 { if !client.send(chunk, timeout: .seconds(5)) { break } }
            let (bytes, _) = client.receiveToEnd()
            #expect(String(decoding: bytes, as: UTF8.self) == tooLongAnswer)
        }

        @Test("binary and NUL bytes are just an unknown question")
        func binaryInput() throws {
            let zend = try ZendServer()
            let client = try zend.connect()
            client.send([0, 0, 0xff, 0xfe, 0x80, 0x01, UInt8(ascii: "?")])
            #expect(client.receiveText(count: unknownAnswer.utf8.count) == unknownAnswer)
            #expect(client.ask("Explicit is better than?", expecting: "Implicit.") == "Implicit.")
        }

        @Test("a reset in the middle of a large answer stream affects only that client")
        func resetMidAnswer() throws {
            let zend = try ZendServer(["--log-level", "debug"])
            let baseline = zend.openDescriptors
            for _ in 0 ..< 5 {
                let client = try zend.connect(receiveBuffer: 4096)
                client.send(String(repeating: "Beautiful is better than?", count: 20_000))
                _ = client.receive(count: 1000)
                client.resetOnClose()
                client.close()
            }
            let other = try zend.connect()
            #expect(other.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            other.close()
            try zend.waitForLog("reason=\"connection reset\"")
            // Every reset connection was closed: zend holds no more descriptors than before.
            let deadline = ContinuousClock.now + .seconds(5)
            while zend.openDescriptors > baseline, ContinuousClock.now < deadline { usleep(10_000) }
            #expect(zend.openDescriptors == baseline)
            #expect(zend.process.isRunning)
        }

        @Test("the book's client (recv_until '.') works unchanged")
        func bookClient() throws {
            let zend = try ZendServer()
            let script = """
            import socket
            def recv_until(sock, suffix):
                message = sock.recv(4096)
                if not message:
                    raise EOFError('socket closed')
                while not message.endswith(suffix):
                    data = sock.recv(4096)
                    if not data:
                        raise IOError('received {!r} then socket closed'.format(message))
                    message += data
                return message
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.connect(('127.0.0.1', \(zend.port)))
            for aphorism in [b'Beautiful is better than?', b'Simple is better than?', b'Explicit is better than?']:
                sock.sendall(aphorism)
                print(aphorism, recv_until(sock, b'.'))
            sock.close()
            """
            let result = try runCommand("/usr/bin/python3", ["-c", script])
            #expect(result.code == 0)
            #expect(result.output == """
            b'Beautiful is better than?' b'Ugly.'
            b'Simple is better than?' b'Complex.'
            b'Explicit is better than?' b'Implicit.'

            """)
        }
    }
}
