import Glibc
import LinuxIO
import Logging
import ZenProtocol

/// One edge-triggered epoll event loop with its connection table and buffer pools.
///
/// Data flows one way: socket → receive buffer → `RequestProtocol.serve` → send buffer →
/// socket. Each reactor is a value owned by its thread and run by `run()`; other threads
/// reach it only through its `ReactorControl`. Reactors share the listeners (registered
/// with `EPOLLEXCLUSIVE`, so one connection wakes one reactor) and `SharedCounters`.
///
/// The type is split by section: this file holds the loop, `ConnectionIO.swift` serves
/// one connection, `Accepting.swift` opens, balances and closes connections, and
/// `Timeouts.swift` keeps the timers. A value rather than a class, so the loop's state
/// is accessed in place without Swift's dynamic exclusivity checks; generic over the
/// protocol, so the answer path is specialized and called directly (see `ReactorGroup`).
struct Reactor<Service: RequestProtocol>: ~Copyable {
    let index: Int
    let poller: Epoll
    let timer: TimerFD
    let listeners: [Listener]
    var listening = false
    var service: Service
    let configuration: ReactorConfiguration
    let timeouts: TimeoutNanoseconds
    let shared: SharedCounters
    let control: ReactorControl
    /// Every reactor's mailbox, this one's included: where accepted connections may go.
    let peers: [ReactorControl]
    let notifySupervisor: @Sendable () -> Void
    let logger: Logger
    /// Whether per-connection events are logged: decided once, not per connection.
    let logsConnections: Bool

    var table: ConnectionTable
    var receivePool: BufferPool
    var sendPool: BufferPool
    /// Resume answering a paused connection once its unsent bytes drop to this.
    let sendLowWater: Int
    /// Compact the receive buffer before a read that would have less room than this.
    static var minimumReadSpace: Int { 4096 }

    /// Connections that used up their turn's budget, served again after the others.
    var ready: [UInt64] = []
    var readyBatch: [UInt64] = []

    /// The time of the current wakeup: one clock read per `epoll_wait`.
    var now = MonotonicInstant.now()
    var timerArmedAt: MonotonicInstant?
    var draining = false
    var drainDeadline: MonotonicInstant?
    var acceptResumeAt: MonotonicInstant?
    /// A descriptor kept in reserve so `EMFILE` can still accept-and-close the waiting client.
    var spareDescriptor: EventFD?
    /// When to give freed buffer memory back to the system (set once many were freed).
    var memoryTrimAt: MonotonicInstant?
    /// Client problems logged this second, and those not logged.
    var clientProblems = LogRateLimit(perSecond: 5)
    /// Refused connections: one warning a second, with the count since the last.
    var rejections = LogRateLimit(perSecond: 1)
    /// What this reactor has done, published when asked.
    var stats = ReactorStats()
    /// Bytes read plus answered for the connection being served (see `turnBudget`).
    var turnWork = 0

    let peerStorage: UnsafeMutablePointer<sockaddr_storage>
    /// Where reads land and answers are written while a connection has nothing buffered
    /// (see `readAndAnswer`); sized like the pools' buffers. Lingering input is dropped here.
    let scratchInput: UnsafeMutableRawBufferPointer
    let scratchOutput: UnsafeMutableRawBufferPointer

    init(index: Int, listeners: [Listener], adopting connections: [FileDescriptor],
         service: Service, configuration: ReactorConfiguration,
         shared: SharedCounters, peers: [ReactorControl],
         notifySupervisor: @escaping @Sendable () -> Void, logger: Logger) throws(SystemError) {
        precondition(listeners.count < 200, "listener tokens are limited")
        // Everything that can fail comes first: a noncopyable value cannot be torn down
        // half-built, nor fail once built.
        let newPoller = try Epoll(capacity: 512)
        let newTimer = try TimerFD()
        try newPoller.add(newTimer.fd, events: .input, data: EventToken.timer)
        try newPoller.add(peers[index].wakeup.fd, events: .input, data: EventToken.control)
        for (position, listener) in listeners.enumerated() {
            try newPoller.add(listener.fd, events: Self.listenerEvents, data: EventToken.listener(position))
        }
        listening = true
        poller = newPoller
        timer = newTimer
        self.index = index
        self.listeners = listeners
        self.service = service
        self.configuration = configuration
        timeouts = TimeoutNanoseconds(configuration)
        self.shared = shared
        self.control = peers[index]
        self.peers = peers
        self.notifySupervisor = notifySupervisor
        var logger = logger
        logger[metadataKey: "reactor"] = "\(index)"
        self.logger = logger
        logsConnections = logger.logLevel <= .debug

        let receiveCapacity = Self.roundUp(max(16384, service.maxRequestBytes + Self.minimumReadSpace), to: 4096)
        let sendCapacity = Self.roundUp(max(16384, 4 * service.maxAnswerBytes), to: 4096)
        sendLowWater = sendCapacity / 4
        table = ConnectionTable(
            capacity: configuration.maxConnections,
            resolution: ConnectionTable.resolution(for: configuration.idleTimeout))
        // Cache at most about 4 MiB of idle buffers per pool, however large they are.
        receivePool = BufferPool(bufferSize: receiveCapacity, keep: max(4, min(256, (4 << 20) / receiveCapacity)),
                                 budget: shared.bufferBudget)
        sendPool = BufferPool(bufferSize: sendCapacity, keep: max(4, min(256, (4 << 20) / sendCapacity)),
                              budget: shared.bufferBudget)
        ready.reserveCapacity(1024)
        readyBatch.reserveCapacity(1024)
        peerStorage = .allocate(capacity: 1)
        scratchInput = .allocate(byteCount: receiveCapacity, alignment: 16)
        scratchOutput = .allocate(byteCount: sendCapacity, alignment: 16)
        spareDescriptor = try? EventFD()

        for fd in connections {
            let peer = PeerAddress(peerOf: fd)
            guard admit(fd, peer: peer) else { continue }
            control.load.wrappingAdd(1, ordering: .relaxed)
            open(fd, peer: peer)
        }
    }

    deinit {
        peerStorage.deallocate()
        scratchInput.deallocate()
        scratchOutput.deallocate()
    }

    // MARK: The loop

    /// Runs until a drain or stop completes, then closes what is left; throws only if
    /// the poller itself fails.
    mutating func run() throws(SystemError) {
        defer { closeEverything() }
        // Connections adopted in init are on the idle list already: arm their timer now,
        // or a passed client that never sends a byte would never time out.
        try updateTimer()
        while true {
            if table.count == 0 && (draining || configuration.exitWhenNoConnections) { return }
            let events = try poller.wait(timeout: ready.isEmpty ? -1 : 0)
            now = .now()
            for (token, flags) in events {
                if dispatch(token, flags) { return }
            }
            serveReadyList()
            try updateTimer()
        }
    }

    /// Handles one epoll event; true when the reactor must stop at once.
    @inline(__always)
    private mutating func dispatch(_ token: UInt64, _ flags: Epoll.Events) -> Bool {
        let slot = UInt32(truncatingIfNeeded: token)
        guard slot < EventToken.specialBase else { return dispatchSpecial(token) }
        let connection = table.slots + Int(slot)
        // A connection closed earlier in this batch may have left its slot (and fd
        // number) to a new one: its generation tells them apart.
        guard connection.pointee.isOpen, connection.pointee.generation == UInt32(truncatingIfNeeded: token >> 32) else {
            return false
        }
        var state = connection.pointee.state
        if !flags.isDisjoint(with: [.input, .readHangup, .hangup, .error]) { state.insert(.readable) }
        if !flags.isDisjoint(with: [.readHangup, .hangup]) { state.insert(.peerClosed) }
        if !flags.isDisjoint(with: [.output, .hangup, .error]) { state.insert(.writable) }
        connection.pointee.state = state
        drive(Int32(slot))
        return false
    }

    private mutating func dispatchSpecial(_ token: UInt64) -> Bool {
        switch token {
        case EventToken.timer:
            timer.acknowledge()
            timerArmedAt = nil
            expireTimeouts()
        case EventToken.control:
            return handleCommands()
        default:
            acceptConnections(from: Int(token - UInt64(EventToken.specialBase)))
        }
        return false
    }

    /// Serves the connections that used up their budget, in the order they did.
    private mutating func serveReadyList() {
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

    // MARK: Commands from other threads

    /// Applies queued commands and adopts handed-over connections; true when the
    /// reactor must stop at once.
    private mutating func handleCommands() -> Bool {
        control.wakeup.drain()
        for connection in control.takeHandedOver() {
            open(connection.fd, peer: connection.peer, proxied: connection.proxied)
        }
        let commands = control.take()
        if let replacement = commands.service as? Service {
            // Buffers were sized for the first service; a reload keeps its limits.
            if replacement.maxRequestBytes + Self.minimumReadSpace <= receivePool.bufferSize,
               replacement.maxAnswerBytes <= sendPool.bufferSize / 4 {
                service = replacement
            } else {
                logger.error("ignoring a replacement protocol whose limits exceed this reactor's buffers")
            }
        }
        if commands.ping {
            control.heartbeat.wrappingAdd(1, ordering: .relaxed)
        }
        if let round = commands.statsRound {
            publishStats(round: round)
            notifySupervisor()
        }
        if commands.drain, !draining {
            draining = true
            stopAccepting()
            acceptResumeAt = nil
            drainDeadline = now.advanced(by: configuration.drainTimeout)
            logger.debug("draining", metadata: ["connections": "\(table.count)"])
            control.acceptingStopped.store(true, ordering: .releasing)
            notifySupervisor()
        }
        return commands.stop
    }

    /// At the end of `run`: closes every connection, handed-over ones not yet adopted too.
    private mutating func closeEverything() {
        stopAccepting()
        for connection in control.closeHandovers() {
            release(connection.fd, peer: connection.peer)
        }
        for slot in table.openIndices { close(slot, reason: .reactorStopped) }
        publishStats(round: .max)
    }

    /// Copies the figures out for the supervisor, as of the stats round `round`.
    private func publishStats(round: UInt64) {
        var copy = stats
        copy.connectionsOpen = table.count
        control.publish(copy, round: round)
    }

    private static func roundUp(_ value: Int, to multiple: Int) -> Int {
        (value + multiple - 1) / multiple * multiple
    }
}

/// What an epoll event's 64-bit data says: a connection (slot and generation) or one
/// of the loop's own descriptors.
enum EventToken {
    static var specialBase: UInt32 { 0xFFFF_FF00 }
    static var timer: UInt64 { 0xFFFF_FFFF }
    static var control: UInt64 { 0xFFFF_FFFE }
    static func listener(_ index: Int) -> UInt64 { UInt64(specialBase) + UInt64(index) }
    @inline(__always)
    static func connection(_ slot: Int32, _ generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(slot))
    }
}
