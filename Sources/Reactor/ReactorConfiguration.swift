/// How reactors treat their connections; one value shared by every reactor of a process.
public struct ReactorConfiguration: Sendable {
    /// Connections idle longer than this are closed.
    public var idleTimeout: Duration = .seconds(60)
    /// A partial request must complete within this long from its first byte (like nginx's
    /// `client_header_timeout`): a client trickling a byte at a time cannot hold a slot.
    public var requestTimeout: Duration = .seconds(10)
    /// During a drain, a connection that owes nothing and has been quiet this long is closed.
    public var drainGrace: Duration = .milliseconds(100)
    /// A drain closes whatever is still open after this long.
    public var drainTimeout: Duration = .seconds(5)
    /// After an error answer, input is discarded this long at most before closing.
    public var lingerTimeout: Duration = .seconds(2)
    /// Bytes a connection may read plus answer in one turn before it goes to the back of
    /// the ready list. Fairness counts work, not reads: a flood of 1-byte requests (each
    /// answered with 24 bytes) yields as often as the same bytes of real questions.
    public var turnBudget: Int = 64 << 10
    /// Open connections allowed across all reactors; more are accepted and closed at once.
    public var maxConnections: Int = 1024
    /// Open connections allowed from one client address (0: no limit of its own); more
    /// from that address are accepted and closed at once. Unix-socket clients share no
    /// address and are not limited.
    public var maxConnectionsPerClient = 0
    /// Bytes all connections' buffers may hold together (each buffer counts whole: 16 KiB
    /// by default, more with a larger `--max-request-bytes`); a connection that needs a
    /// buffer beyond it is closed.
    public var maxBufferMemory = 1 << 30
    /// The kernel send buffer of each TCP connection (`SO_SNDBUF`, set on the listeners and
    /// inherited by what they accept; 0 leaves the kernel's autotuning). Answers are up to
    /// 24 times larger than requests: without a cap, clients that never read pin the
    /// autotuned maximum (4 MiB by default) each.
    public var sendQueueBytes = 64 << 10
    /// The balancers whose PROXY headers are believed, on listeners that expect one; a
    /// connection from any other address to such a listener is closed at once.
    public var proxyFrom: [AddressRange] = AddressRange.loopback
    /// A connection to a PROXY listener must deliver its whole header within this long.
    public var proxyHeaderTimeout: Duration = .seconds(3)
    /// Stop the reactor once it has no connections left (a passed-in connection, `Accept=yes`).
    public var exitWhenNoConnections = false
    /// Wake the supervisor whenever the last open connection closes (for `--exit-when-idle`).
    public var reportIdle = false

    public init() {}

    /// The largest connection limit zend accepts (each reactor reserves address space
    /// for a table of this many slots; only slots in use take memory).
    public static let maxConnectionsLimit = 4 << 20

    /// The default connection limit: what `RLIMIT_NOFILE` leaves after zend's own
    /// descriptors (a few for the process, four per reactor), capped.
    public static func defaultMaxConnections(openFileLimit: UInt64, threads: Int) -> Int {
        let reserved = UInt64(32 + 4 * max(threads, 1))
        let available = openFileLimit > reserved ? openFileLimit - reserved : 1
        return Int(min(available, UInt64(maxConnectionsLimit)))
    }
}
