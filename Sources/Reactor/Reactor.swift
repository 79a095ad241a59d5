import CZendShims
import Glibc
import LinuxIO
import Logging
import ZenProtocol

/// One edge-triggered epoll event loop, its connection table and its buffer pools.
///
/// Data flows one way: socket → receive buffer → `RequestProtocol.serve` → send buffer →
/// socket. Each reactor runs on its own thread; reactors share only the listeners
/// (registered with `EPOLLEXCLUSIVE`, so one connection wakes one reactor) and the
/// `SharedCounters`.
final class Reactor {
    private let index: Int
    private let epoll: Epoll
    private let timer: TimerFD
    private let listeners: [Listener]
    private var listening = false
    private var service: any RequestProtocol
    private let configuration: ReactorConfiguration
    private let shared: SharedCounters
    private let control: ReactorControl
    private let notifySupervisor: @Sendable () -> Void
    private let logger: Logger

    private var table: ConnectionTable
    private var receivePool: BufferPool
    private var sendPool: BufferPool
    private let receiveCapacity: Int
    private let sendCapacity: Int
    /// Resume answering a paused connection once its unsent bytes drop to this.
    private let sendLowWater: Int
    /// Compact the receive buffer before a read that would have less room than this.
    private let minimumReadSpace = 4096

    /// Connections that used up their read budget, served again after the others.
    private var ready: [UInt64] = []
    private var readyBatch: [UInt64] = []

    /// Monotonic nanoseconds of the current wakeup: one clock read per `epoll_wait`.
    private var now: Int64 = 0
    private var timerArmedAt: Int64?
    private var draining = false
    private var drainDeadline: Int64?
    private var acceptResumeAt: Int64?
    /// A descriptor kept in reserve so `EMFILE` can still accept-and-close the waiting client.
    private var spareDescriptor: FileDescriptor?
    private var rejectedSinceWarning = 0
    private var lastRejectionWarning: Int64?

    private let events: UnsafeMutableBufferPointer<epoll_event>
    private let peerStorage: UnsafeMutablePointer<sockaddr_storage>
    private let discardBuffer: UnsafeMutableRawBufferPointer

    private enum Token {
        static let specialBase: UInt32 = 0xFFFF_FF00
        static let timer: UInt64 = 0xFFFF_FFFF
        static let control: UInt64 = 0xFFFF_FFFE
        static func listener(_ index: Int) -> UInt64 { UInt64(specialBase) + UInt64(index) }
        @inline(__always)
        static func connection(_ slot: Int32, _ generation: UInt32) -> UInt64 {
            UInt64(generation) << 32 | UInt64(UInt32(slot))
        }
    }

    init(index: Int, listeners: [Listener], adopting connections: [FileDescriptor],
         service: any RequestProtocol, configuration: ReactorConfiguration,
         shared: SharedCounters, control: ReactorControl,
         notifySupervisor: @escaping @Sendable () -> Void, logger: Logger) throws(SystemError) {
        precondition(listeners.count < 200, "listener tokens are limited")
        self.index = index
        self.listeners = listeners
        self.service = service
        self.configuration = configuration
        self.shared = shared
        self.control = control
        self.notifySupervisor = notifySupervisor
        var logger = logger
        logger[metadataKey: "reactor"] = "\(index)"
        self.logger = logger
        epoll = try Epoll()
        timer = try TimerFD()

        receiveCapacity = Self.roundUp(max(16384, service.maxRequestBytes + minimumReadSpace), to: 4096)
        sendCapacity = Self.roundUp(max(16384, 4 * service.maxAnswerBytes), to: 4096)
        sendLowWater = sendCapacity / 4
        table = ConnectionTable(capacity: configuration.maxConnections)
        // Cache at most about 4 MiB of idle buffers per pool, however large they are.
        receivePool = BufferPool(bufferSize: receiveCapacity, keep: max(4, min(256, (4 << 20) / receiveCapacity)))
        sendPool = BufferPool(bufferSize: sendCapacity, keep: max(4, min(256, (4 << 20) / sendCapacity)))
        ready.reserveCapacity(1024)
        readyBatch.reserveCapacity(1024)
        events = .allocate(capacity: 512)
        peerStorage = .allocate(capacity: 1)
        discardBuffer = .allocate(byteCount: 16384, alignment: 16)
        spareDescriptor = Self.makeSpareDescriptor()

        try epoll.add(timer.fd, events: .input, data: Token.timer)
        try epoll.add(control.wakeup.fd, events: .input, data: Token.control)
        try startAccepting()
        now = MonotonicInstant.now().nanoseconds
        for fd in connections {
            guard shared.reserveConnection() else {
                fd.close()
                continue
            }
            open(fd, peer: PeerAddress(peerOf: fd))
        }
    }

    deinit {
        for index in table.openIndices { close(index, reason: "reactor stopped") }
        events.deallocate()
        peerStorage.deallocate()
        discardBuffer.deallocate()
        spareDescriptor?.close()
    }

    // MARK: The loop

    /// Runs until a drain or stop completes; throws only if the poller itself fails.
    func run() throws(SystemError) {
        // Connections adopted in init are on the idle list already: arm their timer now,
        // or a passed client that never sends a byte would never time out.
        try updateTimer()
        while true {
            if table.count == 0 && (draining || configuration.exitWhenNoConnections) { return }
            let count = try epoll.wait(into: events, timeout: ready.isEmpty ? -1 : 0)
            now = MonotonicInstant.now().nanoseconds
            for position in 0 ..< count {
                if dispatch(events[position]) { return }
            }
            serveReadyList()
            try updateTimer()
        }
    }

    /// Handles one epoll event; true when the reactor must stop at once.
    @inline(__always)
    private func dispatch(_ event: epoll_event) -> Bool {
        let data = event.data.u64
        let slot = UInt32(truncatingIfNeeded: data)
        guard slot < Token.specialBase else { return dispatchSpecial(data) }
        let connection = table.slots + Int(slot)
        // A connection closed earlier in this batch may have left its slot (and fd
        // number) to a new one: its generation tells them apart.
        guard connection.pointee.isOpen, connection.pointee.generation == UInt32(truncatingIfNeeded: data >> 32) else {
            return false
        }
        let flags = Epoll.Events(rawValue: event.events)
        var state = connection.pointee.state
        if !flags.isDisjoint(with: [.input, .readHangup, .hangup, .error]) { state.insert(.readable) }
        if !flags.isDisjoint(with: [.readHangup, .hangup]) { state.insert(.peerClosed) }
        if !flags.isDisjoint(with: [.output, .hangup, .error]) { state.insert(.writable) }
        connection.pointee.state = state
        drive(Int32(slot))
        return false
    }

    private func dispatchSpecial(_ data: UInt64) -> Bool {
        switch data {
        case Token.timer:
            timer.acknowledge()
            timerArmedAt = nil
            expireTimeouts()
        case Token.control:
            return handleCommands()
        default:
            acceptConnections(from: Int(data - UInt64(Token.specialBase)))
        }
        return false
    }

    private func serveReadyList() {
        guard !ready.isEmpty else { return }
        swap(&ready, &readyBatch)
        for token in readyBatch {
            let slot = Int32(truncatingIfNeeded: token)
            let connection = table.slots + Int(slot)
            guard connection.pointee.isOpen, connection.pointee.generation == UInt32(truncatingIfNeeded: token >> 32) else {
                continue
            }
            connection.pointee.state.remove(.queued)
            drive(slot)
        }
        readyBatch.removeAll(keepingCapacity: true)
    }

    // MARK: Serving one connection

    /// Answers, writes and reads for one connection until it would block, its read
    /// budget is spent (then it goes on the ready list) or it is closed.
    private func drive(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        var reads = 0
        while true {
            var state = connection.pointee.state
            if state.contains(.lingering) {
                discardInput(slot)
                return
            }
            if connection.pointee.pendingInput > 0, state.isDisjoint(with: [.paused, .closing]) {
                answer(slot)
                state = connection.pointee.state
            }
            if connection.pointee.pendingOutput > 0, state.contains(.writable) {
                guard flush(slot) else { return }
                state = connection.pointee.state
            }
            if state.contains(.closing) {
                if connection.pointee.pendingOutput == 0 { startLingering(slot) }
                return
            }
            if state.contains(.paused) {
                guard connection.pointee.pendingOutput <= sendLowWater else { return }
                connection.pointee.state.remove(.paused)
                continue
            }
            if state.contains(.endOfInput) || !state.contains(.readable) { break }
            if reads == configuration.readBudget {
                enqueue(slot)
                return
            }
            guard read(slot) else { return }
            reads += 1
        }
        if connection.pointee.state.contains(.endOfInput), connection.pointee.pendingOutput == 0 {
            finishAtEndOfInput(slot)
        }
    }

    /// Reads once into the receive buffer; false if the connection was closed.
    @inline(__always)
    private func read(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        let buffer: UnsafeMutableRawPointer
        if let existing = connection.pointee.receive {
            buffer = existing
            let start = Int(connection.pointee.receiveStart), end = Int(connection.pointee.receiveEnd)
            if start > 0, receiveCapacity - end < minimumReadSpace {
                (buffer).copyMemory(from: buffer + start, byteCount: end - start)
                connection.pointee.receiveStart = 0
                connection.pointee.receiveEnd = Int32(end - start)
            }
        } else {
            buffer = receivePool.take()
            connection.pointee.receive = buffer
            connection.pointee.receiveStart = 0
            connection.pointee.receiveEnd = 0
        }
        let end = Int(connection.pointee.receiveEnd)
        let space = receiveCapacity - end
        let result: IOResult<Int>
        do {
            result = try FileDescriptor(rawValue: connection.pointee.fd)
                .read(into: UnsafeMutableRawBufferPointer(start: buffer + end, count: space))
        } catch {
            close(slot, reason: "read failed", error: error)
            return false
        }
        switch result {
        case .wouldBlock:
            connection.pointee.state.remove(.readable)
        case .processed(0):
            connection.pointee.state.remove(.readable)
            connection.pointee.state.insert(.endOfInput)
        case .processed(let count):
            connection.pointee.receiveEnd += Int32(count)
            connection.pointee.bytesReceived &+= UInt64(count)
            table.touch(slot, .idle, now: now)
            if count < space {
                // A short read drained the socket: the next edge says when there is more,
                // so no read is spent just to see EAGAIN. If the peer already shut its
                // side, nothing more will ever come.
                connection.pointee.state.remove(.readable)
                if connection.pointee.state.contains(.peerClosed) {
                    connection.pointee.state.insert(.endOfInput)
                }
            }
        }
        releaseEmptyReceiveBuffer(connection)
        return true
    }

    /// Frames and answers buffered requests into the send buffer.
    @inline(__always)
    private func answer(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        let output: UnsafeMutableRawPointer
        if let existing = connection.pointee.send {
            output = existing
            let start = Int(connection.pointee.sendStart), end = Int(connection.pointee.sendEnd)
            if start > 0 {
                output.copyMemory(from: output + start, byteCount: end - start)
                connection.pointee.sendStart = 0
                connection.pointee.sendEnd = Int32(end - start)
            }
        } else {
            output = sendPool.take()
            connection.pointee.send = output
            connection.pointee.sendStart = 0
            connection.pointee.sendEnd = 0
        }
        let inputStart = Int(connection.pointee.receiveStart)
        let outputEnd = Int(connection.pointee.sendEnd)
        let result = service.serve(
            UnsafeRawBufferPointer(start: connection.pointee.receive! + inputStart, count: connection.pointee.pendingInput),
            into: UnsafeMutableRawBufferPointer(start: output + outputEnd, count: sendCapacity - outputEnd))
        connection.pointee.receiveStart += Int32(result.consumed)
        connection.pointee.sendEnd += Int32(result.produced)
        if result.requests > 0 {
            connection.pointee.requests &+= UInt64(result.requests)
            control.requestsServed.wrappingAdd(UInt64(result.requests), ordering: .relaxed)
        }
        switch result.stop {
        case .needInput:
            break
        case .outputFull:
            connection.pointee.state.insert(.paused)
        case .requestTooLong:
            connection.pointee.state.insert(.closing)
            logger.warning("request too long; answering with an error and closing", metadata: [
                "event": "client-error",
                "client_address": "\(connection.pointee.peer)",
                "connection_id": "\(connection.pointee.id)",
                "max_request_bytes": "\(service.maxRequestBytes)",
            ])
        }
        releaseEmptyReceiveBuffer(connection)
        releaseEmptySendBuffer(connection)
    }

    /// Writes unsent answers; false if the connection was closed.
    @inline(__always)
    private func flush(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        guard let buffer = connection.pointee.send else { return true }
        while connection.pointee.pendingOutput > 0 {
            let start = Int(connection.pointee.sendStart)
            let count = connection.pointee.pendingOutput
            let result: IOResult<Int>
            do {
                result = try FileDescriptor(rawValue: connection.pointee.fd)
                    .send(UnsafeRawBufferPointer(start: buffer + start, count: count))
            } catch {
                close(slot, reason: "send failed", error: error)
                return false
            }
            switch result {
            case .processed(let sent):
                connection.pointee.sendStart += Int32(sent)
                connection.pointee.bytesSent &+= UInt64(sent)
                table.touch(slot, .idle, now: now)
                if sent < count {
                    // Short write: the socket buffer is full, as an EAGAIN would say.
                    return blockOutput(slot)
                }
            case .wouldBlock:
                return blockOutput(slot)
            }
        }
        releaseEmptySendBuffer(connection)
        return true
    }

    /// The kernel's send buffer is full: wait for the output edge, arming `EPOLLOUT` the
    /// first time (connections that never fill it never pay for the `epoll_ctl`).
    /// False if the connection had to be closed.
    private func blockOutput(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        connection.pointee.state.remove(.writable)
        guard !connection.pointee.state.contains(.outputArmed) else { return true }
        connection.pointee.state.insert(.outputArmed)
        do {
            try epoll.modify(FileDescriptor(rawValue: connection.pointee.fd),
                             events: [.input, .output, .readHangup, .edgeTriggered],
                             data: Token.connection(slot, connection.pointee.generation))
            return true
        } catch {
            close(slot, reason: "epoll_ctl failed", error: error)
            return false
        }
    }

    private func enqueue(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        guard !connection.pointee.state.contains(.queued) else { return }
        connection.pointee.state.insert(.queued)
        ready.append(Token.connection(slot, connection.pointee.generation))
    }

    /// The peer shut its side and every answer went out: report a partial request, close.
    private func finishAtEndOfInput(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        let partial = connection.pointee.pendingInput
        if partial > 0 {
            logger.warning("client sent a partial request but then closed", metadata: [
                "event": "client-error",
                "client_address": "\(connection.pointee.peer)",
                "connection_id": "\(connection.pointee.id)",
                "pending_bytes": "\(partial)",
            ])
        }
        close(slot, reason: "closed by client")
    }

    /// The error answer is out: shut the write side (the client reads EOF after it) and
    /// discard input for a while, so unread input does not make `close` send a reset.
    private func startLingering(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        let fd = FileDescriptor(rawValue: connection.pointee.fd)
        guard (try? fd.shutdown(Int32(SHUT_WR))) != nil, !connection.pointee.state.contains(.endOfInput) else {
            close(slot, reason: "request too long")
            return
        }
        connection.pointee.state.remove(.closing)
        connection.pointee.state.insert(.lingering)
        if let buffer = connection.pointee.receive {
            receivePool.give(buffer)
            connection.pointee.receive = nil
            connection.pointee.receiveStart = 0
            connection.pointee.receiveEnd = 0
        }
        table.touch(slot, .linger, now: now)
        discardInput(slot)
    }

    private func discardInput(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        let fd = FileDescriptor(rawValue: connection.pointee.fd)
        for _ in 0 ..< configuration.readBudget {
            guard connection.pointee.state.contains(.readable) else { return }
            switch try? fd.read(into: discardBuffer) {
            case .processed(let count) where count > 0:
                connection.pointee.bytesReceived &+= UInt64(count)
                if count < discardBuffer.count { connection.pointee.state.remove(.readable) }
            case .wouldBlock:
                connection.pointee.state.remove(.readable)
            default:
                close(slot, reason: "request too long")
                return
            }
        }
        enqueue(slot)
    }

    @inline(__always)
    private func releaseEmptyReceiveBuffer(_ connection: UnsafeMutablePointer<Connection>) {
        if let buffer = connection.pointee.receive, connection.pointee.receiveStart == connection.pointee.receiveEnd {
            receivePool.give(buffer)
            connection.pointee.receive = nil
            connection.pointee.receiveStart = 0
            connection.pointee.receiveEnd = 0
        }
    }

    @inline(__always)
    private func releaseEmptySendBuffer(_ connection: UnsafeMutablePointer<Connection>) {
        if let buffer = connection.pointee.send, connection.pointee.sendStart == connection.pointee.sendEnd {
            sendPool.give(buffer)
            connection.pointee.send = nil
            connection.pointee.sendStart = 0
            connection.pointee.sendEnd = 0
        }
    }

    // MARK: Opening and closing

    private func acceptConnections(from listener: Int) {
        let fd = listeners[listener].fd
        while listening {
            let result: IOResult<FileDescriptor>
            do {
                result = try fd.accept(peer: peerStorage)
            } catch {
                handleAcceptError(error, listener: listener)
                return
            }
            guard case .processed(let client) = result else { return }
            guard shared.reserveConnection() else {
                client.close()
                noteRejection()
                continue
            }
            open(client, peer: PeerAddress(peerStorage))
        }
    }

    private func open(_ fd: FileDescriptor, peer: PeerAddress) {
        guard let slot = table.allocate() else {
            // The table is sized to the connection limit, so this is only a safety net.
            fd.close()
            releaseConnection()
            noteRejection()
            return
        }
        let connection = table.slots + Int(slot)
        connection.pointee.fd = fd.rawValue
        connection.pointee.id = shared.nextConnectionID.wrappingAdd(1, ordering: .relaxed).oldValue
        connection.pointee.state = [.writable]
        connection.pointee.peer = peer
        connection.pointee.opened = now
        if peer.isInternet {
            // Answers are small and go out once per read: don't let Nagle hold them.
            try? fd.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        }
        do {
            // Data that arrived before this call still produces the first edge.
            try epoll.add(fd, events: [.input, .readHangup, .edgeTriggered],
                          data: Token.connection(slot, connection.pointee.generation))
        } catch {
            logger.error("cannot watch a new connection", metadata: ["error": "\(error)"])
            fd.close()
            table.release(slot)
            releaseConnection()
            return
        }
        table.touch(slot, .idle, now: now)
        logger.debug("connection opened", metadata: [
            "client_address": "\(peer)",
            "connection_id": "\(connection.pointee.id)",
        ])
    }

    private func close(_ slot: Int32, reason: String, error: SystemError? = nil) {
        let connection = table.slots + Int(slot)
        if logger.logLevel <= .debug {
            var metadata: Logger.Metadata = [
                "client_address": "\(connection.pointee.peer)",
                "connection_id": "\(connection.pointee.id)",
                "requests": "\(connection.pointee.requests)",
                "bytes_received": "\(connection.pointee.bytesReceived)",
                "bytes_sent": "\(connection.pointee.bytesSent)",
                "duration_ms": "\((now - connection.pointee.opened) / 1_000_000)",
                "reason": "\(reason)",
            ]
            if let error { metadata["error"] = "\(error)" }
            logger.debug("connection closed", metadata: metadata)
        }
        table.unlink(slot)
        if let buffer = connection.pointee.receive { receivePool.give(buffer) }
        if let buffer = connection.pointee.send { sendPool.give(buffer) }
        connection.pointee.receive = nil
        connection.pointee.send = nil
        FileDescriptor(rawValue: connection.pointee.fd).close()
        table.release(slot)
        releaseConnection()
    }

    /// Gives a connection back to the shared count; the supervisor hears when the last
    /// one across all reactors has gone (for `--exit-when-idle`).
    private func releaseConnection() {
        if shared.releaseConnection() == 0, configuration.reportIdle {
            notifySupervisor()
        }
    }

    private func handleAcceptError(_ error: SystemError, listener: Int) {
        switch error.errno {
        case EMFILE, ENFILE:
            // The waiting client stays in the backlog and the level-triggered listener
            // would report it again at once: free the reserve descriptor, accept and close
            // it, and if even that fails, stop accepting for a moment instead of spinning.
            if let spare = spareDescriptor {
                spare.close()
                spareDescriptor = nil
                if case .processed(let client)? = try? listeners[listener].fd.accept(peer: peerStorage) {
                    client.close()
                }
                spareDescriptor = Self.makeSpareDescriptor()
                noteRejection(cause: error)
                if spareDescriptor != nil { return }
            }
            pauseAccepting(for: .milliseconds(100), cause: error)
        case ECONNABORTED, EPROTO, EPERM, EINTR:
            // This client is gone or refused by a filter; the next one may be fine.
            return
        default:
            pauseAccepting(for: .milliseconds(100), cause: error)
        }
    }

    private func noteRejection(cause: SystemError? = nil) {
        rejectedSinceWarning += 1
        // One warning a second at most: a flood must not become a log flood.
        if let last = lastRejectionWarning, now - last < 1_000_000_000 { return }
        var metadata: Logger.Metadata = [
            "rejected": "\(rejectedSinceWarning)",
            "max_connections": "\(shared.maxConnections)",
        ]
        if let cause { metadata["error"] = "\(cause)" }
        logger.warning(cause == nil ? "connection limit reached; closing new connections"
                                    : "out of file descriptors; closing new connections",
                       metadata: metadata)
        rejectedSinceWarning = 0
        lastRejectionWarning = now
    }

    private func startAccepting() throws(SystemError) {
        guard !listening, !draining else { return }
        for (position, listener) in listeners.enumerated() {
            try epoll.add(listener.fd, events: [.input, .exclusive], data: Token.listener(position))
        }
        listening = true
    }

    private func stopAccepting() {
        guard listening else { return }
        for listener in listeners { try? epoll.remove(listener.fd) }
        listening = false
    }

    private func pauseAccepting(for duration: Duration, cause: SystemError) {
        logger.error("accepting paused", metadata: ["error": "\(cause)", "pause_ms": "\(duration.nanoseconds / 1_000_000)"])
        stopAccepting()
        acceptResumeAt = MonotonicInstant.deadline(now, plus: duration)
    }

    private static func makeSpareDescriptor() -> FileDescriptor? {
        let raw = eventfd(0, Int32(EFD_CLOEXEC))
        return raw >= 0 ? FileDescriptor(rawValue: raw) : nil
    }

    // MARK: Timers and commands

    private func expireTimeouts() {
        let quietPeriod = draining ? configuration.drainGrace : configuration.idleTimeout
        while let slot = table.head(.idle), MonotonicInstant.deadline(table.slots[Int(slot)].lastActive, plus: quietPeriod) <= now {
            let connection = table.slots + Int(slot)
            if draining, connection.pointee.pendingOutput > 0 || connection.pointee.state.contains(.paused) {
                // Still owed answers: quiet only because the client is slow to read.
                table.touch(slot, .idle, now: now)
                continue
            }
            close(slot, reason: draining ? "shutting down" : "idle timeout")
        }
        while let slot = table.head(.linger), MonotonicInstant.deadline(table.slots[Int(slot)].lastActive, plus: configuration.lingerTimeout) <= now {
            close(slot, reason: "request too long")
        }
        if let deadline = drainDeadline, now >= deadline {
            let remaining = table.openIndices
            if !remaining.isEmpty {
                logger.warning("drain timeout; closing remaining connections", metadata: ["connections": "\(remaining.count)"])
            }
            for slot in remaining { close(slot, reason: "drain timeout") }
        }
        if let resume = acceptResumeAt, now >= resume {
            acceptResumeAt = nil
            // Another reactor may have taken the descriptor our spare freed.
            if spareDescriptor == nil { spareDescriptor = Self.makeSpareDescriptor() }
            do {
                try startAccepting()
            } catch {
                logger.error("cannot resume accepting", metadata: ["error": "\(error)"])
                acceptResumeAt = now + 1_000_000_000
            }
        }
    }

    /// Arms the timerfd for the earliest deadline, unless it is already armed earlier.
    /// A timer that fires early (its connection was active since) is simply re-armed.
    private func updateTimer() throws(SystemError) {
        var next: Int64?
        func consider(_ deadline: Int64?) {
            if let deadline, next == nil || deadline < next! { next = deadline }
        }
        let quietPeriod = draining ? configuration.drainGrace : configuration.idleTimeout
        if let slot = table.head(.idle) { consider(MonotonicInstant.deadline(table.slots[Int(slot)].lastActive, plus: quietPeriod)) }
        if let slot = table.head(.linger) {
            consider(MonotonicInstant.deadline(table.slots[Int(slot)].lastActive, plus: configuration.lingerTimeout))
        }
        consider(drainDeadline)
        consider(acceptResumeAt)
        guard let next, next < .max else { return }
        if let armed = timerArmedAt, armed <= next { return }
        try timer.arm(at: MonotonicInstant(nanoseconds: next))
        timerArmedAt = next
    }

    /// Applies queued commands; true when the reactor must stop at once.
    private func handleCommands() -> Bool {
        control.wakeup.drain()
        let commands = control.take()
        if let replacement = commands.service {
            // Buffers were sized for the first service; a reload keeps its limits.
            if replacement.maxRequestBytes + minimumReadSpace <= receiveCapacity,
               replacement.maxAnswerBytes <= sendCapacity / 4 {
                service = replacement
            } else {
                logger.error("ignoring a replacement protocol whose limits exceed this reactor's buffers")
            }
        }
        if commands.ping {
            control.heartbeat.wrappingAdd(1, ordering: .relaxed)
        }
        if commands.drain, !draining {
            draining = true
            stopAccepting()
            acceptResumeAt = nil
            drainDeadline = MonotonicInstant.deadline(now, plus: configuration.drainTimeout)
            logger.debug("draining", metadata: ["connections": "\(table.count)"])
            control.acceptingStopped.store(true, ordering: .releasing)
            notifySupervisor()
        }
        return commands.stop
    }

    private static func roundUp(_ value: Int, to multiple: Int) -> Int {
        (value + multiple - 1) / multiple * multiple
    }
}
