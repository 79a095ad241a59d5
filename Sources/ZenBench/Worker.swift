import CZendShims
import Glibc
import Histogram
import LinuxIO
import Synchronization

/// One thread's share of the load: its connections, each keeping `pipeline` requests
/// in flight, every answer verified, every request's latency recorded.
final class Worker {
    private struct Connection {
        var fd = FileDescriptor.closed
        var isOpen: Bool { fd.rawValue >= 0 }
        /// Requests sent and answered on this connection (since it was opened).
        var sent = 0
        var answered = 0
        var verifier: AnswerVerifier
        /// Unsent bytes of the last batch after a short write.
        var pendingOffset = 0
        var pendingEnd = 0
        var pendingFirst = 0
        var lastProgress: Int64 = 0
        var wantsOutput = false
        /// When a failed connection may be opened again (0: not waiting).
        var reopenAt: Int64 = 0
    }

    private let configuration: BenchConfiguration
    private let shared: SharedProgress
    private let epoll: Epoll
    private var connections: [Connection]
    private let requests: RequestStream
    /// When each in-flight request was sent, per connection: `pipeline` slots each.
    private let sentAt: UnsafeMutablePointer<Int64>
    private let buffer: UnsafeMutableRawBufferPointer
    private var budget: Int?
    private var result: WorkerResult
    private var stopping = false
    private var now: Int64 = 0
    private var warmupEnd: Int64 = 0
    /// The last time some connection was open (the run gives up after a timeout with none).
    private var lastAlive: Int64 = 0
    private var end: Int64 = .max

    static func makeHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    }

    init(configuration: BenchConfiguration, connections count: Int, requestBudget: Int?,
         shared: SharedProgress) throws(SystemError) {
        self.configuration = configuration
        self.shared = shared
        epoll = try Epoll()
        connections = Array(repeating: Connection(verifier: AnswerVerifier(configuration.workload)), count: count)
        requests = configuration.workload.requestStream(maxRun: configuration.pipeline)
        sentAt = .allocate(capacity: max(count * configuration.pipeline, 1))
        buffer = .allocate(byteCount: 1 << 16, alignment: 16)
        budget = requestBudget
        result = WorkerResult(latency: Worker.makeHistogram())
    }

    deinit {
        requests.deallocate()
        sentAt.deallocate()
        buffer.deallocate()
        for connection in connections where connection.isOpen { connection.fd.close() }
    }

    func run() -> WorkerResult {
        defer { shared.finished.wrappingAdd(1, ordering: .releasing) }
        for slot in connections.indices { open(slot) }
        shared.connected.wrappingAdd(1, ordering: .releasing)
        var start = shared.start.load(ordering: .acquiring)
        while start == 0 {
            usleep(200)
            start = shared.start.load(ordering: .acquiring)
        }
        warmupEnd = start + configuration.warmup.nanoseconds
        if case .duration(let duration) = configuration.length { end = warmupEnd + duration.nanoseconds }
        now = MonotonicInstant.now().nanoseconds
        lastAlive = now
        for slot in connections.indices where connections[slot].isOpen { sendMore(slot) }

        var nextStallCheck = now + 100_000_000
        let drainLimit = configuration.timeout.nanoseconds
        while true {
            if !stopping, now >= end || (budget ?? 1) == 0 { stopping = true }
            if stopping {
                let inFlight = connections.reduce(0) { $0 + ($1.isOpen ? $1.sent - $1.answered : 0) }
                if inFlight == 0 || now >= (end == .max ? now : end) + drainLimit { break }
            }
            let wait = Int32(max(0, min(100, (end == .max ? 100 : (end - now) / 1_000_000 + 1))))
            let events = try? epoll.wait(timeout: wait)
            now = MonotonicInstant.now().nanoseconds
            for (token, flags) in events ?? Epoll.ReadyEvents() {
                let slot = Int(token)
                if flags.contains(.output) { flushPending(slot) }
                if !flags.isDisjoint(with: [.input, .hangup, .error]) { receive(slot) }
            }
            if now >= nextStallCheck {
                nextStallCheck = now + 100_000_000
                checkStalls()
            }
        }
        return result
    }

    // MARK: Connections

    private func open(_ slot: Int) {
        connections[slot] = Connection(verifier: AnswerVerifier(configuration.workload))
        do {
            let fd = try Socket.connect(to: configuration.address)
            if configuration.address.family != AF_UNIX {
                try? fd.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1)
            }
            try fd.setNonBlocking(true)
            try epoll.add(fd, events: .input, data: UInt64(slot))
            connections[slot].fd = fd
            connections[slot].lastProgress = now
        } catch {
            fail(slot, "cannot connect to \(configuration.address): \(error)")
        }
    }

    /// Counts a failed connection; a new one takes its place a little later (a server
    /// that is restarting comes back; one that is down is not hammered).
    private func fail(_ slot: Int, _ problem: String, mismatch: Bool = false) {
        if mismatch { result.mismatches += 1 } else { result.errors += 1 }
        if result.firstProblem == nil { result.firstProblem = problem }
        if connections[slot].isOpen {
            connections[slot].fd.close()
            connections[slot].fd = .closed
        }
        connections[slot].reopenAt = now + 100_000_000
    }

    /// Every 100 ms: fails connections that stopped getting answers, reopens failed ones,
    /// and ends the run if none could be kept open for the whole timeout.
    private func checkStalls() {
        let limit = configuration.timeout.nanoseconds
        var open = 0
        for slot in connections.indices {
            let connection = connections[slot]
            if connection.isOpen {
                if connection.sent > connection.answered, now - connection.lastProgress > limit {
                    fail(slot, "no answer within \(configuration.timeout) on a connection with "
                         + "\(connection.sent - connection.answered) request(s) in flight")
                } else {
                    open += 1
                    lastAlive = now
                }
            } else if !stopping, connection.reopenAt > 0, now >= connection.reopenAt {
                self.open(slot)
                if connections[slot].isOpen {
                    open += 1
                    sendMore(slot)
                }
            }
        }
        if open == 0, now - lastAlive > limit { stopping = true }
    }

    // MARK: Traffic

    /// Sends requests until `pipeline` are in flight (or the run stops issuing).
    private func sendMore(_ slot: Int) {
        guard !stopping, connections[slot].pendingOffset == connections[slot].pendingEnd else { return }
        var count = configuration.pipeline - (connections[slot].sent - connections[slot].answered)
        if let remaining = budget { count = min(count, remaining) }
        guard count > 0 else { return }
        let first = connections[slot].sent
        let bytes = requests.slice(first: first, count: count)
        let base = slot * configuration.pipeline
        for request in first ..< first + count { sentAt[base + request % configuration.pipeline] = now }
        // Nothing was in flight: the wait for an answer starts now (not when the
        // connection opened, before the run's clock started).
        if connections[slot].sent == connections[slot].answered { connections[slot].lastProgress = now }
        connections[slot].sent += count
        if budget != nil { budget! -= count }
        let written: Int
        do {
            switch try connections[slot].fd.send(UnsafeRawBufferPointer(bytes)) {
            case .processed(let count): written = count
            case .wouldBlock: written = 0
            }
        } catch {
            fail(slot, "\(error)")
            return
        }
        if written == bytes.count { return }
        // Short write: keep the rest and wait for room.
        connections[slot].pendingFirst = first
        connections[slot].pendingOffset = written
        connections[slot].pendingEnd = bytes.count
        connections[slot].wantsOutput = true
        try? epoll.modify(connections[slot].fd, events: [.input, .output], data: UInt64(slot))
    }

    private func flushPending(_ slot: Int) {
        guard connections[slot].isOpen, connections[slot].wantsOutput else { return }
        let connection = connections[slot]
        let bytes = requests.slice(first: connection.pendingFirst,
                                   count: 0).baseAddress! // start of that batch
        let rest = UnsafeRawBufferPointer(start: bytes + connection.pendingOffset,
                                          count: connection.pendingEnd - connection.pendingOffset)
        let written: Int
        do {
            guard case .processed(let count) = try connection.fd.send(rest) else { return }
            written = count
        } catch {
            fail(slot, "\(error)")
            return
        }
        connections[slot].pendingOffset += written
        if connections[slot].pendingOffset == connections[slot].pendingEnd {
            connections[slot].pendingOffset = 0
            connections[slot].pendingEnd = 0
            connections[slot].wantsOutput = false
            try? epoll.modify(connection.fd, events: .input, data: UInt64(slot))
            sendMore(slot)
        }
    }

    private func receive(_ slot: Int) {
        guard connections[slot].isOpen else { return }
        let count: Int
        do {
            guard case .processed(let read) = try connections[slot].fd.read(into: buffer) else { return }
            count = read
        } catch {
            fail(slot, "\(error)")
            return
        }
        if count == 0 {
            fail(slot, "the server closed a connection with \(connections[slot].sent - connections[slot].answered) "
                 + "request(s) in flight")
            return
        }
        let outcome = connections[slot].verifier.consume(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0 ..< count]))
        switch outcome {
        case .answered(let answers):
            complete(slot, answers)
            sendMore(slot)
        case .mismatch(let offset, let answeredBefore):
            complete(slot, answeredBefore)
            let received = String(decoding: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[offset ..< min(count, offset + 40)]),
                                  as: UTF8.self)
            fail(slot, "wrong answer to request \(connections[slot].answered + 1) of a connection: "
                 + "received \"\(received)\" where the answer to \"\(questionText(connections[slot].answered))\" was due "
                 + "(a server that does not frame pipelined requests answers like this)", mismatch: true)
        }
    }

    /// Records `answers` completed requests of a connection.
    @inline(__always)
    private func complete(_ slot: Int, _ answers: Int) {
        guard answers > 0 else { return }
        let base = slot * configuration.pipeline
        let first = connections[slot].answered
        connections[slot].answered += answers
        connections[slot].lastProgress = now
        guard now >= warmupEnd, now < end else { return }
        for request in first ..< first + answers {
            let latency = (now - sentAt[base + request % configuration.pipeline]) / 1000
            _ = result.latency.record(UInt64(clamping: min(max(latency, 0), 60_000_000)))
        }
        result.requests += answers
        result.measuredFrom = min(result.measuredFrom, now)
        result.measuredUntil = now
        shared.add(answered: answers)
    }

    private func questionText(_ request: Int) -> String {
        let questions = configuration.workload.questions
        return String(decoding: questions[request % questions.count], as: UTF8.self)
    }
}
