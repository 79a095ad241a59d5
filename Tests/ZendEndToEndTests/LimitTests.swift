import Glibc
import LinuxIO
import Testing
import TestSupport

extension EndToEnd {
    @Suite("limits")
    struct LimitTests {
        @Test("a connection idle longer than the idle timeout is closed; an active one is not")
        func idleTimeout() throws {
            let zend = try ZendServer(["--idle-timeout", "0.3"])
            let idle = try zend.connect()
            let active = try zend.connect()
            var closedAfter = 0.0
            let elapsed = milliseconds {
                for round in 0 ..< 8 {
                    let (q, a) = bookAnswers[round % 3]
                    #expect(active.ask(q, expecting: a) == a)
                    usleep(100_000)
                }
            }
            let (bytes, end) = idle.receiveToEnd(timeout: .seconds(1))
            closedAfter = elapsed
            #expect(bytes.isEmpty)
            #expect(end == .endOfFile, "idle connection still open after \(closedAfter) ms")
            // The active client spanned several idle timeouts and is still served.
            #expect(active.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
        }

        @Test("a partial request must complete within --request-timeout of its first byte, however it trickles")
        func requestTimeout() throws {
            let zend = try ZendServer(["--idle-timeout", "0.5", "--request-timeout", "1"])
            let trickler = try zend.connect()
            let other = try zend.connect()
            let question = Array("Beautiful is better than?".utf8)
            var sent = 0
            // One byte every 0.2 s: active enough for the idle timeout, never a whole request.
            let elapsed = milliseconds {
                while sent < question.count - 1, trickler.send([question[sent]], timeout: .seconds(1)) {
                    sent += 1
                    #expect(other.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
                    if !trickler.receive(count: 1, timeout: .milliseconds(200)).isEmpty { break }
                    let (_, end) = trickler.receiveToEnd(timeout: .milliseconds(1))
                    if end != .timeout { break }
                }
            }
            let (bytes, end) = trickler.receiveToEnd(timeout: .seconds(2))
            #expect(bytes.isEmpty && end == .endOfFile, "the trickling client was not closed")
            #expect(elapsed >= 900 && elapsed < 2500, "closed after \(elapsed) ms, \(sent) bytes")
            try zend.waitForLog("request not completed within the request timeout")
            #expect(zend.log.contains("notice"))
        }

        @Test("each partial request's deadline counts from its own first byte, not from an earlier request's")
        func requestDeadlinePerRequest() throws {
            let zend = try ZendServer(["--request-timeout", "1"])
            let client = try zend.connect()
            #expect(client.send("Beautiful is"))
            usleep(600_000)
            // The first request completes and the second begins in the same write.
            #expect(client.send(" better than?Simple is"))
            #expect(client.receiveText(count: 5) == "Ugly.")
            usleep(600_000)  // 1.2 s after the first request began, 0.6 s into the second
            #expect(client.send(" better than?"))
            #expect(client.receiveText(count: 8) == "Complex.", "the second request was cut by the first one's deadline")
        }

        @Test("--idle-timeout 0 and --request-timeout 0 mean never: a quiet connection and a partial request are kept")
        func zeroTimeoutsMeanNever() throws {
            let zend = try ZendServer(["--idle-timeout", "0", "--request-timeout", "0"])
            let quiet = try zend.connect()
            let partial = try zend.connect()
            #expect(partial.send("Simple is"))
            usleep(300_000)
            #expect(quiet.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
            #expect(partial.ask(" better than?", expecting: "Complex.") == "Complex.")
        }

        @Test("10,000 too-long requests from one client: a few lines a second in the log, then the count of the rest")
        func clientProblemsAreRateLimited() throws {
            let zend = try ZendServer(["--max-request-bytes", "8", "--threads", "1", "--log-target", "console"])
            let started = ContinuousClock.now
            for _ in 0 ..< 10_000 {
                let client = try zend.connect()
                client.send("no question mark here")
                #expect(client.receiveText(count: 24) == "Error: request too long.")
            }
            let seconds = Double((ContinuousClock.now - started).components.seconds) + 1
            usleep(1_200_000)  // the count of suppressed lines is due once their second is over
            let lines = zend.log.split(separator: "\n")
            let logged = lines.filter { $0.contains("request too long") }.count
            let counts = lines.filter { $0.contains("client problems were not logged") }
            let suppressed = counts.compactMap { line in
                line.split(separator: " ").first { $0.hasPrefix("suppressed=") }.flatMap { Int($0.dropFirst(11)) }
            }.reduce(0, +)
            #expect(Double(logged) <= 5 * (seconds + 1), "\(logged) lines in \(seconds) s")
            #expect(logged + suppressed == 10_000, "\(logged) logged + \(suppressed) counted")
        }

        @Test("--max-buffer-memory bounds what all connections' buffers hold: a connection needing more is closed, others are served")
        func bufferMemoryCap() throws {
            // Four receive buffers of 16 KiB: four partial requests fit, a fifth does not.
            let zend = try ZendServer(["--max-buffer-memory", "65536", "--threads", "1"])
            let partial = try (0 ..< 4).map { _ in try zend.connect() }
            for client in partial {
                client.send("Beautiful is")
                usleep(20_000)
            }
            #expect(try zend.connect().isClosedUnanswered(after: "Explicit is"), "a fifth partial request was given a buffer")
            try zend.waitForLog("buffer memory limit reached")
            // A whole request needs no buffer of its own: still answered at the limit.
            let other = try zend.connect()
            #expect(other.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            for client in partial {
                #expect(client.ask(" better than?", expecting: "Ugly.") == "Ugly.")
            }
        }

        @Test("input is activity: a request dribbled a byte every 0.1 s outlives a 0.3 s idle timeout")
        func dribbledRequestIsActivity() throws {
            let zend = try ZendServer(["--idle-timeout", "0.3"])
            let client = try zend.connect()
            for byte in Array("Explicit is better than?".utf8) {
                #expect(client.send([byte]))
                usleep(100_000)
            }
            #expect(client.receiveText(count: 9) == "Implicit.")
        }

        @Test("--max-connections-per-client: one address gets that many connections; others still get in")
        func perClientLimit() throws {
            let zend = try ZendServer(["--max-connections-per-client", "3", "--threads", "2"])
            let admitted = try (0 ..< 3).map { _ in try zend.connect() }
            for client in admitted {
                #expect(client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            }
            #expect(try zend.connect().isClosedUnanswered(after: "Simple is better than?"),
                    "a fourth connection from 127.0.0.1 was served")
            let elsewhere = try TestClient(port: zend.port, fromLoopback: "127.0.0.2")
            #expect(elsewhere.ask("Explicit is better than?", expecting: "Implicit.") == "Implicit.")
            try zend.waitForLog("connection limit per client reached")
            // A place freed is a place for that address again.
            admitted[0].close()
            usleep(100_000)
            let again = try zend.connect()
            #expect(again.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
        }

        /// Bytes waiting in the kernel send queue of zend's end of the connection from
        /// local port `clientPort`, read from /proc/net/tcp (`tx_queue`).
        private func sendQueue(serverPort: UInt16, clientPort: UInt16) -> Int? {
            for line in Paths.read("/proc/net/tcp").split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 4 else { continue }
                let local = fields[1].split(separator: ":"), remote = fields[2].split(separator: ":")
                guard local.count == 2, remote.count == 2, UInt16(local[1], radix: 16) == serverPort,
                      UInt16(remote[1], radix: 16) == clientPort else { continue }
                return Int(fields[4].split(separator: ":")[0], radix: 16)
            }
            return nil
        }

        // Each 1-byte '?' earns a 24-byte answer: a client that sends and never reads would
        // otherwise let the kernel autotune zend's send buffer to megabytes.
        @Test("a client that never reads pins no more than --send-queue-bytes of kernel send queue", arguments: [65536, 0])
        func sendQueueCap(bytes: Int) throws {
            let zend = try ZendServer(["--send-queue-bytes", "\(bytes)"])
            let client = try zend.connect()
            let clientPort = try #require(try client.fd.localAddress()?.port)
            _ = client.send(Array(repeating: UInt8(ascii: "?"), count: 1 << 20), timeout: .seconds(3))
            usleep(300_000)
            let queued = try #require(sendQueue(serverPort: zend.port, clientPort: clientPort))
            if bytes > 0 {
                // The kernel counts twice SO_SNDBUF, and its last write may overshoot by one 64 KiB segment.
                #expect(queued <= 2 * bytes + 65536, "\(queued) bytes queued with a cap of \(bytes)")
            } else {
                #expect(queued > 8 * 65536, "autotuning queued only \(queued) bytes: the cap above proves nothing")
            }
        }

        @Test("beyond --max-connections new connections are accepted and closed at once; existing ones are served")
        func maxConnections() throws {
            let zend = try ZendServer(["--max-connections", "5", "--threads", "1"])
            let admitted = try (0 ..< 5).map { _ in try zend.connect() }
            for client in admitted {
                #expect(client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            }
            let ticksBefore = try #require(zend.cpuTicks)
            for _ in 0 ..< 20 {
                #expect(try zend.connect().isClosedUnanswered(after: "Simple is better than?"))
            }
            try zend.waitForLog("connection limit reached")
            // Still served, and freeing a place admits a new client.
            #expect(admitted[0].ask("Explicit is better than?", expecting: "Implicit.") == "Implicit.")
            admitted[1].close()
            usleep(50_000)
            let next = try zend.connect()
            #expect(next.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
            // Rejections cost no busy loop: well under a second of CPU for all of this.
            let ticksAfter = try #require(zend.cpuTicks)
            #expect(ticksAfter - ticksBefore < 50)
        }

        @Test("running out of file descriptors (EMFILE) closes new clients without spinning", arguments: [1, 2])
        func outOfDescriptors(threads: Int) throws {
            let directory = Paths.scratchDirectory("emfile")
            defer { Paths.remove(directory) }
            let log = directory + "/zend.log"
            let child = try ChildProcess("/usr/bin/prlimit", ["--nofile=32:32", Paths.product("zend"),
                                                             "--listen", "127.0.0.1:0", "--threads", "\(threads)",
                                                             "--max-connections", "1000"],
                                         stdout: log, stderr: log)
            defer { child.stop() }
            let deadline = ContinuousClock.now + .seconds(10)
            while !Paths.read(log).contains("msg=ready"), ContinuousClock.now < deadline { usleep(10_000) }
            let line = Paths.read(log).split(separator: "\n").first { $0.contains("listening on") } ?? ""
            let port = UInt16(line.split(separator: ":").last?.prefix { $0.isNumber } ?? "") ?? 0
            #expect(port != 0, "\(Paths.read(log))")
            var clients: [TestClient] = []
            var served = 0
            var waiting = 0
            for _ in 0 ..< 40 {
                let client = try TestClient(port: port)
                client.send("Simple is better than?")
                let (bytes, end) = client.receive(timeout: .seconds(2)) { $0.count >= 8 }
                clients.append(client)
                if bytes == Array("Complex.".utf8) {
                    served += 1
                } else if end == .timeout {
                    // Neither served nor closed: stop here, each would cost the timeout.
                    waiting += 1
                    break
                }
            }
            // Some fit under the limit; the rest were accepted and closed, not left hanging.
            #expect(waiting == 0, "a client was left waiting, neither served nor closed")
            #expect(served > 5)
            #expect(served < 40)
            let stat = Paths.read("/proc/\(child.pid)/stat")
            let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
            let ticks = (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
            #expect(ticks < 100, "zend used \(ticks) ticks of CPU")
            // The log writer is a thread of its own: give it a moment.
            let logged = ContinuousClock.now + .seconds(5)
            while !Paths.read(log).contains("out of file descriptors"), ContinuousClock.now < logged { usleep(10_000) }
            #expect(Paths.read(log).contains("out of file descriptors"))
            // Freeing descriptors lets new clients in again.
            clients.removeAll()
            usleep(100_000)
            let client = try TestClient(port: port)
            #expect(client.ask("Beautiful is better than?", expecting: "Ugly.") == "Ugly.")
        }
    }
}
