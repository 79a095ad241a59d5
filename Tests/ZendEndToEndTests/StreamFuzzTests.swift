import Glibc
import LinuxIO
import Testing
import TestSupport

extension EndToEnd {
    /// The reactor under random byte streams: many connections to one real zend, each
    /// sending a seeded random mix of requests cut into random writes with random small
    /// pauses, and each receiving exactly what a plain model of the protocol says, then
    /// the end the model says (EOF, or the connection left open).
    ///
    /// `STREAM_FUZZ_PORT=N` points the test at a server already listening on
    /// 127.0.0.1:N instead of a zend it starts (to check that the test catches a server
    /// that frames wrongly); that server must use `--max-request-bytes 64` semantics.
    @Suite("stream fuzzing against a real zend")
    struct StreamFuzzTests {
        static let maxRequestBytes = 64
        static let connections = 50

        /// Fixed seeds for a repeatable run, and one new seed each run (shown in the
        /// test's name and in every failure: rerun it by adding it to this list).
        static let seeds: [UInt64] = Array(1 ... 8) + [UInt64.random(in: 9 ... UInt64.max)]

        @Test("random streams, cut anywhere, paused anywhere, get the model's bytes and end", arguments: seeds)
        func randomStreams(seed: UInt64) throws {
            var zend: ZendServer?
            let port: UInt16
            if let text = getenv("STREAM_FUZZ_PORT"), let external = UInt16(String(cString: text)) {
                port = external
            } else {
                zend = try ZendServer(["--threads", "2", "--max-request-bytes", "\(Self.maxRequestBytes)",
                                       "--request-timeout", "60", "--idle-timeout", "60"])
                port = zend!.port
            }
            defer { zend?.stop() }

            var generator = SplitMix64(seed: seed)
            var plans: [StreamPlan] = []
            for _ in 0 ..< Self.connections {
                plans.append(StreamPlan.random(using: &generator, maxRequestBytes: Self.maxRequestBytes))
            }
            let clients = try plans.map { _ in try TestClient(port: port) }
            let outcomes = drive(clients, plans, deadline: ContinuousClock.now + .seconds(5))

            var failed = 0
            for (index, (plan, outcome)) in zip(plans, outcomes).enumerated() {
                let expected = ZenModel.expected(for: plan.stream, maxRequestBytes: Self.maxRequestBytes,
                                                 halfClosed: plan.halfClose)
                if let difference = StreamDifference(expected: expected, got: outcome) {
                    failed += 1
                    if failed <= 5 {
                        Issue.record("seed \(seed), connection \(index) (\(plan.summary)): \(difference)")
                    }
                }
            }
            #expect(failed == 0, "seed \(seed): \(failed) of \(plans.count) connections differ from the model")
            if let zend { #expect(zend.process.isRunning, "zend exited:\n\(zend.log)") }
        }
    }
}

// MARK: - The reference model

/// The protocol as the spec states it, written plainly over a whole stream.
enum ZenModel {
    static let table: [[UInt8]: [UInt8]] = Dictionary(uniqueKeysWithValues: bookAnswers.map {
        (Array($0.question.utf8), Array($0.answer.utf8))
    })
    static let unknown = Array(unknownAnswer.utf8)
    static let tooLong = Array(tooLongAnswer.utf8)

    /// What a client sending `stream` receives: the answers in order and how the
    /// connection ends. Whitespace before a request is skipped; a request is every
    /// byte up to and including the next `?`; one that cannot end within
    /// `maxRequestBytes` gets the error and EOF, and nothing after it is answered.
    /// Otherwise a half-close ends in EOF once the answers are sent, and a connection
    /// that was not half-closed stays open (a partial request at the end just waits).
    static func expected(for stream: [UInt8], maxRequestBytes: Int, halfClosed: Bool) -> ReceivedStream {
        var answers: [UInt8] = []
        var position = 0
        while true {
            while position < stream.count, [0x20, 0x09, 0x0D, 0x0A].contains(stream[position]) { position += 1 }
            if position == stream.count { break }
            let limit = min(stream.count, position + maxRequestBytes)
            if let mark = stream[position ..< limit].firstIndex(of: UInt8(ascii: "?")) {
                answers += table[Array(stream[position ... mark])] ?? unknown
                position = mark + 1
            } else if stream.count - position >= maxRequestBytes {
                return ReceivedStream(bytes: answers + tooLong, end: .endOfFile)
            } else {
                break
            }
        }
        return ReceivedStream(bytes: answers, end: halfClosed ? .endOfFile : nil)
    }
}

/// The bytes a connection received and how it ended: EOF, a reset, or still open (nil).
struct ReceivedStream {
    var bytes: [UInt8]
    var end: TestClient.ReadEnd?
}

/// Where a received stream first differs from the expected one, for a short message.
struct StreamDifference: CustomStringConvertible {
    let expected: ReceivedStream
    let got: ReceivedStream
    let offset: Int?

    init?(expected: ReceivedStream, got: ReceivedStream) {
        let common = min(expected.bytes.count, got.bytes.count)
        let offset = (0 ..< common).first { expected.bytes[$0] != got.bytes[$0] }
            ?? (expected.bytes.count == got.bytes.count ? nil : common)
        guard offset != nil || expected.end != got.end else { return nil }
        self.expected = expected
        self.got = got
        self.offset = offset
    }

    var description: String {
        func end(_ end: TestClient.ReadEnd?) -> String {
            switch end {
            case .endOfFile: "EOF"
            case .reset: "a reset"
            case .timeout: "a timeout"
            case nil: "the connection open"
            }
        }
        var text = "expected \(expected.bytes.count) bytes then \(end(expected.end)), "
            + "got \(got.bytes.count) bytes then \(end(got.end))"
        if let offset {
            let from = max(0, offset - 16)
            text += "; first difference at byte \(offset): expected \(Self.window(expected.bytes, from, offset))"
                + ", got \(Self.window(got.bytes, from, offset))"
        }
        return text
    }

    /// Up to 16 bytes before the difference and 24 from it, escaped: `…"before" | "after"`.
    static func window(_ bytes: [UInt8], _ from: Int, _ offset: Int) -> String {
        func escaped(_ slice: ArraySlice<UInt8>) -> String {
            slice.map { byte in
                switch byte {
                case 0x20 ..< 0x7F where byte != UInt8(ascii: "\""): String(UnicodeScalar(byte))
                case 0x0A: "\\n"
                case 0x0D: "\\r"
                case 0x09: "\\t"
                default: "\\x" + String(byte, radix: 16, uppercase: false).leftPadded(to: 2)
                }
            }.joined()
        }
        let start = min(from, bytes.count), middle = min(offset, bytes.count), end = min(offset + 24, bytes.count)
        return "\"\(escaped(bytes[start ..< middle]))\" | \"\(escaped(bytes[middle ..< end]))\""
            + (end < bytes.count ? "…" : "")
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}

// MARK: - Random streams

/// A small, seedable generator (SplitMix64), so a seed replays the same streams.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One connection's stream, its cuts into writes with pauses, and whether it half-closes.
struct StreamPlan {
    var stream: [UInt8] = []
    /// Writes in order: the bytes, then how long to wait before the next one.
    var writes: [(bytes: ArraySlice<UInt8>, pause: Duration)] = []
    var halfClose = false
    var pieces: [String] = []

    var summary: String {
        "\(stream.count) bytes in \(writes.count) writes\(halfClose ? ", half-closed" : ""): "
            + pieces.prefix(12).joined(separator: " ") + (pieces.count > 12 ? " …" : "")
    }

    static func random(using rng: inout SplitMix64, maxRequestBytes: Int) -> StreamPlan {
        var plan = StreamPlan()
        let oversized = Int.random(in: 0 ..< 4, using: &rng) == 0
        let count = Int.random(in: 10 ... 120, using: &rng)
        let oversizedAt = oversized ? Int.random(in: 0 ..< count, using: &rng) : -1
        let whitespace: [UInt8] = [0x20, 0x09, 0x0D, 0x0A]
        for index in 0 ..< count {
            if index == oversizedAt {
                // More than the limit without '?' (sometimes with one just past it).
                let length = Int.random(in: maxRequestBytes ... maxRequestBytes * 4, using: &rng)
                var junk = (0 ..< length).map { _ in UInt8.random(in: 0x41 ... 0x7A, using: &rng) }
                if Bool.random(using: &rng) { junk.append(UInt8(ascii: "?")) }
                plan.stream += junk
                plan.pieces.append("oversized(\(junk.count))")
                continue
            }
            switch Int.random(in: 0 ..< 100, using: &rng) {
            case 0 ..< 45:
                let question = bookAnswers.randomElement(using: &rng)!.question
                plan.stream += Array(question.utf8)
                plan.pieces.append("book")
            case 45 ..< 55:
                let text = ["Is this zen?", "Ugly is better than?", "Simple is better than ?",
                            "Simple is  better than?", "beautiful is better than?", "Flat is better than nested?"]
                    .randomElement(using: &rng)!
                plan.stream += Array(text.utf8)
                plan.pieces.append("unknown")
            case 55 ..< 70:
                let run = (0 ..< Int.random(in: 1 ... 12, using: &rng)).map { _ in whitespace.randomElement(using: &rng)! }
                plan.stream += run
                plan.pieces.append("ws(\(run.count))")
            case 70 ..< 78:
                plan.stream.append(UInt8(ascii: "?"))
                plan.pieces.append("?")
            case 78 ..< 90:
                let binary = (0 ..< Int.random(in: 1 ... 24, using: &rng)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
                plan.stream += binary
                plan.pieces.append("binary(\(binary.count))")
            case 90 ..< 95:
                // A request of exactly the limit, '?' included: still answered.
                plan.stream += [UInt8](repeating: UInt8(ascii: "z"), count: maxRequestBytes - 1) + [UInt8(ascii: "?")]
                plan.pieces.append("at-limit")
            default:
                // A book question cut short: the next piece completes some other request.
                let question = Array(bookAnswers.randomElement(using: &rng)!.question.utf8)
                plan.stream += question[0 ..< Int.random(in: 1 ..< question.count, using: &rng)]
                plan.pieces.append("partial")
            }
        }
        // Cut into writes: single bytes, small and larger pieces, sometimes all the rest.
        var offset = 0
        while offset < plan.stream.count {
            let size = switch Int.random(in: 0 ..< 100, using: &rng) {
            case 0 ..< 30: 1
            case 30 ..< 65: Int.random(in: 2 ... 16, using: &rng)
            case 65 ..< 97: Int.random(in: 17 ... 300, using: &rng)
            default: plan.stream.count - offset
            }
            let end = min(plan.stream.count, offset + size)
            let pause: Duration = Int.random(in: 0 ..< 3, using: &rng) == 0
                ? .microseconds(Int.random(in: 100 ... 4000, using: &rng)) : .zero
            plan.writes.append((plan.stream[offset ..< end], pause))
            offset = end
        }
        plan.halfClose = Int.random(in: 0 ..< 3, using: &rng) != 0
        return plan
    }
}

// MARK: - Driving the connections

/// Sends every plan's writes on its client (all connections at once, one poll loop),
/// reading all the while; returns what each received and how it ended. A connection
/// is done when it ended, or (left open) when it has as many bytes as `expected` would
/// need and 300 ms passed after its last write without more; all by `deadline`.
private func drive(_ clients: [TestClient], _ plans: [StreamPlan], deadline: ContinuousClock.Instant) -> [ReceivedStream] {
    struct State {
        var write = 0
        var offset = 0
        var due = ContinuousClock.now
        var sendDone = false
        var lastActivity = ContinuousClock.now
        var received: [UInt8] = []
        var end: TestClient.ReadEnd?
    }
    let quiet: Duration = .milliseconds(300)
    var states = [State](repeating: State(), count: clients.count)
    var buffer = [UInt8](repeating: 0, count: 65536)
    let expectedCounts = plans.map {
        ZenModel.expected(for: $0.stream, maxRequestBytes: EndToEnd.StreamFuzzTests.maxRequestBytes,
                          halfClosed: $0.halfClose).bytes.count
    }

    func finishSending(_ index: Int) {
        states[index].sendDone = true
        states[index].lastActivity = .now
        if plans[index].halfClose, states[index].end == nil { clients[index].shutdownWrite() }
    }

    while ContinuousClock.now < deadline {
        let now = ContinuousClock.now
        // Writes that are due, each as far as the kernel takes it.
        for index in clients.indices where !states[index].sendDone && states[index].due <= now {
            let fd = clients[index].fd.rawValue
            while states[index].write < plans[index].writes.count {
                let (bytes, pause) = plans[index].writes[states[index].write]
                let remaining = bytes.dropFirst(states[index].offset)
                let sent = remaining.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK { break }
                    // zend closed (after a too-long request): nothing more can be sent.
                    finishSending(index)
                    break
                }
                states[index].offset += sent
                if states[index].offset < bytes.count { break }
                states[index].write += 1
                states[index].offset = 0
                states[index].lastActivity = .now
                if pause > .zero {
                    states[index].due = .now + pause
                    break
                }
            }
            if !states[index].sendDone, states[index].write == plans[index].writes.count { finishSending(index) }
        }

        // Finished?
        var pending = false
        for index in clients.indices {
            let state = states[index]
            let settled = state.end != nil
                || (state.sendDone && !plans[index].halfClose && state.received.count >= expectedCounts[index]
                    && now - state.lastActivity >= quiet)
            if !settled { pending = true }
        }
        if !pending { break }

        // Wait for input, room to write or the next due write.
        var fds: [pollfd] = []
        var owners: [Int] = []
        var wake = now + .milliseconds(20)
        for index in clients.indices {
            var events: Int16 = 0
            if states[index].end == nil { events |= Int16(POLLIN) }
            if !states[index].sendDone {
                if states[index].due <= now { events |= Int16(POLLOUT) } else { wake = min(wake, states[index].due) }
            }
            guard events != 0 else { continue }
            fds.append(pollfd(fd: clients[index].fd.rawValue, events: events, revents: 0))
            owners.append(index)
        }
        let milliseconds = Int32(max(0, ((wake - now) / .milliseconds(1)).rounded(.up)))
        _ = poll(&fds, nfds_t(fds.count), milliseconds)
        for (entry, index) in zip(fds, owners) where entry.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
            guard states[index].end == nil else { continue }
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(entry.fd, $0.baseAddress, $0.count, 0) }
                if count > 0 {
                    states[index].received += buffer[0 ..< count]
                    states[index].lastActivity = .now
                    continue
                }
                if count == 0 {
                    states[index].end = .endOfFile
                } else if errno != EAGAIN && errno != EWOULDBLOCK {
                    states[index].end = .reset
                }
                break
            }
        }
    }
    return states.map { ReceivedStream(bytes: $0.received, end: $0.end) }
}
