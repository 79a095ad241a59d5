import Glibc
import LinuxIO
import Synchronization
import Testing
import TestSupport

/// Sends zend SIGSTOP and waits until every thread of it is stopped: the signal takes
/// effect asynchronously, and a reactor woken meanwhile would still take what arrives.
private func stopCompletely(_ zend: ZendServer) throws {
    let pid = zend.process.pid
    zend.process.signal(SIGSTOP)
    let deadline = ContinuousClock.now + .seconds(5)
    while ContinuousClock.now < deadline {
        let states = Paths.threads(of: pid).map { thread in
            Paths.read("/proc/\(pid)/task/\(thread.id)/stat").split(separator: ")").last?.split(separator: " ").first ?? ""
        }
        if !states.isEmpty, states.allSatisfy({ $0 == "T" }) { return }
        usleep(1_000)
    }
    throw Failure("zend's threads did not all stop within 5 s of SIGSTOP")
}

extension EndToEnd {
    /// Edges of the reactor that ordinary traffic on TCP loopback never reaches: each test
    /// builds the one situation where a plausible one-line bug would show.
    @Suite("reactor edge cases")
    struct ReactorEdgeTests {
        // The book's srv_async.py bug: an event for a connection closed earlier in the same
        // batch of events reaches the new connection that took over its descriptor. Here
        // one batch holds A's idle timeout (A is closed, its slot and descriptor freed),
        // B's connection (accepted into them) and A's own hang-up, in that order.
        @Test("an event of a connection closed earlier in the same batch never reaches the connection that took its place")
        func staleEventInOneBatch() throws {
            let zend = try ZendServer(["--threads", "1", "--idle-timeout", "0.3"])
            let a = try zend.connect()
            #expect(a.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            zend.process.signal(SIGSTOP)
            var resumed = false
            defer { if !resumed { zend.process.signal(SIGCONT) } }
            usleep(500_000)  // past A's idle timeout: its timer is due when zend resumes
            let b = try zend.connect()
            a.close()
            usleep(100_000)
            zend.process.signal(SIGCONT)
            resumed = true
            for round in 0 ..< 3 {
                let (question, answer) = bookAnswers[round % 3]
                #expect(b.ask(question, expecting: answer) == answer, "answer \(round + 1) of 3")
            }
        }

        // Usually zend reads a request before its FIN arrives, and the FIN comes as an edge of
        // its own whose read returns 0. With zend stopped, both wait in the kernel and come
        // as one event (EPOLLIN and EPOLLRDHUP): the read that drains the request is the
        // last edge, so only the hang-up flag says no more will come.
        @Test("a request and its FIN in one event: the answer, then the close, with no further edge")
        func requestAndFinInOneEvent() throws {
            let zend = try ZendServer(["--threads", "1"])
            let client = try zend.connect()
            #expect(client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            try stopCompletely(zend)
            var resumed = false
            defer { if !resumed { zend.process.signal(SIGCONT) } }
            client.send("Beautiful is better than?")
            client.shutdownWrite()
            usleep(100_000)
            zend.process.signal(SIGCONT)
            resumed = true
            let (bytes, end) = client.receiveToEnd(timeout: .seconds(3))
            #expect(String(decoding: bytes, as: UTF8.self) == "Ugly.")
            #expect(end == .endOfFile, "the connection was not closed after the answer")
        }

        // On TCP loopback a turn always ends on a short read, so a missing budget never
        // shows; a unix socket whose sender has a huge send buffer fills every read.
        @Test("a client streaming blank lines over a unix socket does not starve another: the turn budget counts bytes read")
        func budgetCountsBytesRead() throws {
            let directory = Paths.scratchDirectory("budget")
            defer { Paths.remove(directory) }
            let path = directory + "/zend.sock"
            let zend = try ZendServer(["--threads", "1"], listen: ["unix:\(path)"])
            defer { withExtendedLifetime(zend) {} }  // serves until the test ends
            let streamer = try TestClient(connectingTo: .unix(path: path))
            // Root may force a send buffer past the system maximum: 64 MiB of blank lines
            // wait in the kernel, so zend never sees a short read from this client.
            var forced: Int32 = 64 << 20
            guard setsockopt(streamer.fd.rawValue, SOL_SOCKET, SO_SNDBUFFORCE, &forced, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                print("SKIP: needs root (SO_SNDBUFFORCE) to make every read of a unix socket full")
                return
            }
            let stop = Atomic<Bool>(false)
            let box = UncheckedBox(streamer)
            let lines = Array(repeating: UInt8(ascii: "\n"), count: 1 << 20)
            let writer = try PosixThread.spawn(name: "blank-lines") {
                while !stop.load(ordering: .relaxed) { if !box.value.send(lines, timeout: .seconds(1)) { break } }
            }
            defer {
                stop.store(true, ordering: .relaxed)
                writer.join()
            }
            usleep(300_000)
            let worst = try TestClient(connectingTo: .unix(path: path)).answerTimes(rounds: 10).max()!
            #expect(worst < 500, "slowest answer took \(worst) ms next to a client streaming blank lines")
        }

        // Tiny kernel buffers on both sides (zend's send queue, the client's receive
        // buffer) and a slow reader: zend reads the end of input while answers still wait
        // in its own buffer, and must send them all before closing.
        @Test("after a half-close every owed answer is sent, however many wait in zend", arguments: [2_000, 5_000, 10_000, 20_000])
        func halfCloseSendsEveryOwedAnswer(requests: Int) throws {
            let zend = try ZendServer(["--threads", "1", "--send-queue-bytes", "4096"])
            let client = try zend.connect(receiveBuffer: 4096)
            #expect(client.send(Array(repeating: UInt8(ascii: "?"), count: requests)))
            client.shutdownWrite()
            var bytes: [UInt8] = []
            while bytes.count < requests * unknownAnswer.utf8.count {
                let chunk = client.receive(count: 1_200, timeout: .milliseconds(500))
                if chunk.isEmpty { break }
                bytes += chunk
                usleep(200)
            }
            let (rest, end) = client.receiveToEnd(timeout: .seconds(10))
            bytes += rest
            let expected = Array(String(repeating: unknownAnswer, count: requests).utf8)
            let difference = firstDifference(bytes, expected)
            #expect(difference == nil, "\(difference ?? "")")
            #expect(end == .endOfFile)
        }

        // Each reactor's table is sized to the limit, so with one reactor the table alone
        // would refuse the extra client: only the count shared by the reactors holds the
        // limit across two.
        @Test("--max-connections holds across reactors: the limit, not one more")
        func connectionLimitAcrossReactors() throws {
            let zend = try ZendServer(["--max-connections", "4", "--threads", "2"])
            let admitted = try (0 ..< 4).map { _ in try zend.connect() }
            for client in admitted {
                #expect(client.ask("Simple is better than?", expecting: "Complex.") == "Complex.")
            }
            #expect(try zend.connect().isClosedUnanswered(after: "Simple is better than?"), "a fifth connection was served")
        }
    }
}
