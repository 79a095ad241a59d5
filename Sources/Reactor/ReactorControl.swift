import LinuxIO
import Synchronization
import ZenProtocol

/// Counters and limits shared by all reactors of one process.
final class SharedCounters: Sendable {
    let maxConnections: Int
    let maxConnectionsPerClient: Int
    let connections = Atomic<Int>(0)
    let nextConnectionID = Atomic<UInt64>(1)
    /// What all connections' buffers may hold together.
    let bufferBudget: BufferBudget
    /// Open connections per client address, kept only while a per-client limit is set.
    private let perClient = Lock<[PeerAddress.Client: Int]>([:])

    init(maxConnections: Int, maxConnectionsPerClient: Int = 0, maxBufferMemory: Int = .max) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerClient = maxConnectionsPerClient
        bufferBudget = BufferBudget(limit: maxBufferMemory)
    }

    /// Counts one more connection from `peer`'s address if its limit allows it.
    func reserveClient(_ peer: PeerAddress) -> Bool {
        guard maxConnectionsPerClient > 0, let client = peer.client else { return true }
        return perClient.withLock { counts in
            let open = counts[client, default: 0]
            guard open < maxConnectionsPerClient else { return false }
            counts[client] = open + 1
            return true
        }
    }

    /// Counts one connection from `peer`'s address less.
    func releaseClient(_ peer: PeerAddress) {
        guard maxConnectionsPerClient > 0, let client = peer.client else { return }
        perClient.withLock { counts in
            let open = counts[client, default: 1] - 1
            counts[client] = open > 0 ? open : nil
        }
    }

    /// Counts one more connection if the limit allows it. A compare-exchange, so a
    /// refused reservation never shows as a connection (another reactor closing its
    /// last connection must see the count reach zero).
    @inline(__always)
    func reserveConnection() -> Bool {
        var current = connections.load(ordering: .relaxed)
        while current < maxConnections {
            let (exchanged, original) = connections.compareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Counts one connection less; returns how many remain open.
    @inline(__always)
    @discardableResult
    func releaseConnection() -> Int {
        connections.wrappingSubtract(1, ordering: .relaxed).newValue
    }
}

/// The mailbox of one reactor: commands and handed-over connections from other
/// threads, the eventfd that wakes it, and the figures it publishes.
///
/// Every figure has one writer (the reactor) except `load`, which a reactor that hands
/// a connection over also raises; nothing here is written per request: the reactor's
/// counters are copied into `published` only when the supervisor asks.
final class ReactorControl: Sendable {
    struct Commands {
        var service: (any RequestProtocol)?
        var ping = false
        /// The latest stats round asked for, if any since the last take.
        var statsRound: UInt64?
        var drain = false
        var stop = false
    }

    /// A connection accepted by another reactor for this one to serve.
    struct HandedOver {
        var fd: FileDescriptor
        var peer: PeerAddress
        /// Accepted on a PROXY listener: its header is still to come.
        var proxied = false
    }

    private struct Handovers {
        var connections: [HandedOver] = []
        var open = true
    }

    let wakeup: EventFD
    private let pending = Lock(Commands())
    private let handovers = Lock(Handovers())
    /// Bumped each time the reactor answers a ping: proof its loop is turning.
    let heartbeat = Atomic<UInt64>(0)
    /// The reactor's counters as last published, and the stats round they answer.
    private let published = Lock<(stats: ReactorStats, round: UInt64)>((ReactorStats(), 0))
    /// Connections open in this reactor or handed to it: what balancing compares.
    let load = Atomic<Int>(0)
    /// Set once a draining reactor has taken the listeners out of its epoll set.
    let acceptingStopped = Atomic<Bool>(false)
    /// Set once the reactor's loop has returned.
    let finished = Atomic<Bool>(false)

    init() throws(SystemError) {
        wakeup = try EventFD()
    }

    /// Queues a change and wakes the reactor.
    func send(_ change: (inout Commands) -> Void) {
        pending.withLock { change(&$0) }
        wakeup.signal()
    }

    /// Publishes the reactor's counters for stats round `round` (reactor thread).
    func publish(_ stats: ReactorStats, round: UInt64) {
        published.withLock { $0 = (stats, round) }
    }

    /// The counters last published, and the round they answer.
    var latestStats: (stats: ReactorStats, round: UInt64) {
        published.withLock { $0 }
    }

    /// Takes every queued command (reactor thread).
    func take() -> Commands {
        pending.withLock { commands in
            let taken = commands
            commands = Commands()
            return taken
        }
    }

    /// Gives this reactor a connection another one accepted; false once it has stopped
    /// taking them (its loop ended), and the caller keeps the connection.
    func handOver(_ connection: HandedOver) -> Bool {
        let wasEmpty: Bool? = handovers.withLock { handovers in
            guard handovers.open else { return nil }
            handovers.connections.append(connection)
            return handovers.connections.count == 1
        }
        guard let wasEmpty else { return false }
        load.wrappingAdd(1, ordering: .relaxed)
        // One wake-up per batch: the reactor takes them all at once.
        if wasEmpty { wakeup.signal() }
        return true
    }

    /// Takes the connections handed over so far (reactor thread).
    func takeHandedOver() -> [HandedOver] {
        handovers.withLock { handovers in
            guard !handovers.connections.isEmpty else { return [] }
            let taken = handovers.connections
            handovers.connections.removeAll(keepingCapacity: true)
            return taken
        }
    }

    /// Stops taking handed-over connections; returns those still queued, to be closed.
    func closeHandovers() -> [HandedOver] {
        handovers.withLock { handovers in
            handovers.open = false
            let taken = handovers.connections
            handovers.connections = []
            return taken
        }
    }
}
