import LinuxIO
import Synchronization
import ZenProtocol

/// Counters and limits shared by all reactors of one process.
final class SharedCounters: Sendable {
    let maxConnections: Int
    let connections = Atomic<Int>(0)
    let nextConnectionID = Atomic<UInt64>(1)

    init(maxConnections: Int) {
        self.maxConnections = maxConnections
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

/// The mailbox of one reactor: commands from other threads, the eventfd that wakes
/// it, and the figures it publishes (heartbeat, requests served).
final class ReactorControl: Sendable {
    struct Commands {
        var service: (any RequestProtocol)?
        var ping = false
        var drain = false
        var stop = false
    }

    let wakeup: EventFD
    private let pending = Mutex(Commands())
    /// Bumped each time the reactor answers a ping: proof its loop is turning.
    let heartbeat = Atomic<UInt64>(0)
    /// Requests answered by this reactor.
    let requestsServed = Atomic<UInt64>(0)
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

    /// Takes every queued command (reactor thread).
    func take() -> Commands {
        pending.withLock { commands in
            let taken = commands
            commands = Commands()
            return taken
        }
    }
}
