import Glibc
import LinuxIO
import Logging
import Synchronization
import ZenProtocol

/// A listening socket the reactors share.
public struct Listener: Sendable, CustomStringConvertible {
    /// The listening descriptor (non-blocking).
    public var fd: FileDescriptor
    /// Where it listens (`127.0.0.1:1060`, `unix:/run/zend.sock`), for status lines.
    public var address: String
    /// The `FileDescriptorName=` of a socket systemd passed; nil for one zend opened.
    public var passedName: String?
    /// Whether every connection must start with a PROXY protocol header (`proxy:ADDR`,
    /// or a passed socket named `proxy`).
    public var expectsProxyHeader: Bool

    public init(fd: FileDescriptor, address: String, passedName: String?, expectsProxyHeader: Bool = false) {
        self.fd = fd
        self.address = address
        self.passedName = passedName
        self.expectsProxyHeader = expectsProxyHeader
    }

    /// The address, and where the socket came from when systemd passed it.
    public var description: String {
        let shown = expectsProxyHeader ? "proxy:\(address)" : address
        return passedName.map { "\(shown) (\($0), from systemd)" } ?? shown
    }
}

/// N reactors on N threads sharing the listeners, driven from one supervising thread.
///
/// The supervisor (the daemon's main loop) talks to reactors only through their
/// mailboxes and reads only their published counters; the reactors wake it through
/// `notifications` when one finishes.
public final class ReactorGroup: Sendable {
    private let controls: [ReactorControl]
    private let shared: SharedCounters
    private let wakeup: EventFD
    private let threads = Lock<[PosixThread]>([])
    private let failures = Lock<[String]>([])
    private let statsRounds = Atomic<UInt64>(0)

    /// Readable when a reactor has finished or emptied during a drain.
    public var notifications: FileDescriptor { wakeup.fd }
    /// Connections open across all reactors.
    public var openConnections: Int { shared.connections.load(ordering: .relaxed) }
    /// Connections accepted (or adopted) since start.
    public var connectionsOpened: UInt64 { shared.nextConnectionID.load(ordering: .relaxed) - 1 }
    /// Each reactor's counters as last published (see `requestStats`); final once it has finished.
    public var latestStats: [ReactorStats] { controls.map(\.latestStats.stats) }
    /// Number of reactors.
    public var count: Int { controls.count }
    /// True once every reactor's loop has returned.
    public var isFinished: Bool { controls.allSatisfy { $0.finished.load(ordering: .acquiring) } }
    /// True once every reactor has stopped watching the listeners (after `drain`):
    /// from then on they can be closed without racing a reactor's `epoll_ctl`.
    public var listenersReleased: Bool {
        controls.allSatisfy { $0.acceptingStopped.load(ordering: .acquiring) || $0.finished.load(ordering: .acquiring) }
    }
    /// Fatal errors reported by reactors that stopped on their own.
    public var errors: [String] { failures.withLock { $0 } }

    /// Starts `count` reactors serving `listeners` (and adopting `connections`, spread over them).
    // Specialized for the Zen protocol here, where the reactor's code is: from a generic
    // entry point every call of `serve` would go through the protocol's witness table.
    @_specialize(exported: true, where Service == ZenService)
    public init<Service: RequestProtocol>(count: Int, listeners: [Listener], adopting connections: [FileDescriptor] = [],
                service: Service, configuration: ReactorConfiguration,
                logger: Logger) throws(SystemError) {
        precondition(count >= 1)
        shared = SharedCounters(maxConnections: configuration.maxConnections,
                                maxConnectionsPerClient: configuration.maxConnectionsPerClient,
                                maxBufferMemory: configuration.maxBufferMemory)
        if configuration.sendQueueBytes > 0 {
            // Accepted TCP sockets inherit the listener's send buffer (and its lock against
            // autotuning): one call per listener instead of one per connection.
            for listener in listeners {
                try? listener.fd.setOption(SOL_SOCKET, SO_SNDBUF, Int32(clamping: configuration.sendQueueBytes))
            }
        }
        wakeup = try EventFD()
        var controls: [ReactorControl] = []
        for _ in 0 ..< count { controls.append(try ReactorControl()) }
        self.controls = controls

        // Build every reactor before starting any thread, so a failure leaves nothing running.
        let group = self
        let notify: @Sendable () -> Void = { group.wakeup.signal() }
        var handOffs: [ReactorHandOff<Service>] = []
        for index in 0 ..< count {
            let mine = connections.indices.filter { $0 % count == index }.map { connections[$0] }
            handOffs.append(ReactorHandOff(try Reactor(
                index: index, listeners: listeners, adopting: mine, service: service,
                configuration: configuration, shared: shared, peers: controls,
                notifySupervisor: notify, logger: logger)))
        }
        var started: [PosixThread] = []
        for (index, handOff) in handOffs.enumerated() {
            let control = controls[index]
            let thread = try PosixThread.spawn(name: "zend-reactor-\(index)") {
                // The reactor value moves to this thread, runs and ends here.
                if var reactor = handOff.take() {
                    do {
                        try reactor.run()
                    } catch {
                        group.failures.withLock { $0.append("reactor \(index): \(error)") }
                    }
                }
                control.finished.store(true, ordering: .releasing)
                group.wakeup.signal()
            }
            started.append(thread)
        }
        threads.withLock { $0 = started }
    }

    /// Serves new connections and pending requests with `service` from now on.
    public func replaceService(_ service: any RequestProtocol) {
        for control in controls { control.send { $0.service = service } }
    }

    /// Stops accepting; each connection closes once quiet; reactors finish when empty.
    public func drain() {
        for control in controls { control.send { $0.drain = true } }
    }

    /// Closes everything and finishes at once.
    public func stop() {
        for control in controls { control.send { $0.stop = true } }
    }

    /// Asks every reactor to publish its counters; each wakes `notifications` when it has.
    /// Returns the round's number, for `hasPublished`.
    public func requestStats() -> UInt64 {
        let round = statsRounds.wrappingAdd(1, ordering: .relaxed).newValue
        for control in controls { control.send { $0.statsRound = round } }
        return round
    }

    /// Whether every reactor has published its counters for `round` or later (a finished
    /// reactor published its last ones, which stay current).
    public func hasPublished(round: UInt64) -> Bool {
        controls.allSatisfy { $0.latestStats.round >= round || $0.finished.load(ordering: .acquiring) }
    }

    /// Asks every reactor to prove its loop turns; see `heartbeats`.
    public func ping() {
        for control in controls { control.send { $0.ping = true } }
    }

    /// Each reactor's heartbeat count (it advances once per answered `ping`), or nil for a
    /// reactor whose loop has returned (a finished reactor answers no pings, and is not stuck).
    public var heartbeats: [UInt64?] {
        controls.map { $0.finished.load(ordering: .acquiring) ? nil : $0.heartbeat.load(ordering: .relaxed) }
    }

    /// Clears the notification counter (call when `notifications` is readable).
    public func acknowledgeNotification() {
        wakeup.drain()
    }

    /// Waits for every reactor thread.
    public func join() {
        let all = threads.withLock { threads in
            let all = threads
            threads = []
            return all
        }
        for thread in all { thread.join() }
    }
}

/// Moves a reactor to the thread that will own it; nothing else touches it afterwards.
private final class ReactorHandOff<Service: RequestProtocol>: @unchecked Sendable {
    private var reactor: Reactor<Service>?
    init(_ reactor: consuming Reactor<Service>) { self.reactor = .some(reactor) }
    /// The reactor, once (on the thread that runs it).
    func take() -> Reactor<Service>? { reactor.take() }
}
