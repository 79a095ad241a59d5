import ZenProtocol

/// What one reactor has done since it started.
///
/// Plain fields of the reactor's own value, counted where the work happens and never
/// shared: other threads see a copy the reactor publishes when asked (`ReactorGroup.requestStats`),
/// so no counter costs a lock or a cache line another core writes.
public struct ReactorStats: Sendable {
    /// Connections open in this reactor when the copy was made.
    public var connectionsOpen = 0
    /// Connections this reactor has served, those another reactor accepted and handed over included.
    public var connectionsServed: UInt64 = 0
    /// New connections closed at once because `--max-connections` was reached.
    public var refusedAtLimit: UInt64 = 0
    /// New connections closed at once because their client reached `--max-connections-per-client`.
    public var refusedPerClient: UInt64 = 0
    /// New connections closed at once because the process was out of file descriptors.
    public var refusedOutOfDescriptors: UInt64 = 0
    /// Times accepting stopped for a moment (`EMFILE`/`ENFILE` with no spare descriptor, other accept errors).
    public var acceptPauses: UInt64 = 0
    /// Requests answered, unknown ones included.
    public var requests: UInt64 = 0
    /// Requests answered with the unknown-question error.
    public var unknownRequests: UInt64 = 0
    /// Requests longer than `--max-request-bytes` (answered with an error, then closed).
    public var tooLongRequests: UInt64 = 0
    /// Bytes read from clients.
    public var bytesReceived: UInt64 = 0
    /// Bytes the kernel took to send to clients.
    public var bytesSent: UInt64 = 0
    /// Connections closed, by reason (indexed by `CloseReason.Counted`).
    public var closed = InlineArray<11, UInt64>(repeating: 0)
    /// PROXY headers accepted.
    public var proxyHeadersAccepted: UInt64 = 0
    /// Connections to a PROXY listener from an address not in `--proxy-from`, closed at once.
    public var proxyRejectedUntrusted: UInt64 = 0
    /// Connections whose PROXY header did not arrive whole within `--proxy-timeout`.
    public var proxyRejectedTimeout: UInt64 = 0
    /// Connections closed by the client before their PROXY header was whole.
    public var proxyRejectedIncomplete: UInt64 = 0
    /// Malformed PROXY headers, by what was wrong (indexed like `ProxyHeaderError.allCases`).
    public var proxyRejectedInvalid = InlineArray<16, UInt64>(repeating: 0)

    public init() {}

    /// Malformed PROXY headers rejected for `error`; nil counts v2 headers too large for
    /// a receive buffer (zend takes at most one buffer's worth: TLVs are a few bytes).
    public func proxyRejected(_ error: ProxyHeaderError?) -> UInt64 {
        proxyRejectedInvalid[Self.index(of: error)]
    }

    /// The reason named for a v2 header too large for a receive buffer (`error` nil).
    public static let tooLargeProxyHeader = "v2_too_large"

    /// Where `error` is counted in `proxyRejectedInvalid` (the last slot for nil).
    static func index(of error: ProxyHeaderError?) -> Int {
        error.flatMap { ProxyHeaderError.allCases.firstIndex(of: $0) } ?? 15
    }

    /// Connections closed for `reason`.
    public func closed(_ reason: CloseReason.Counted) -> UInt64 {
        closed[reason.rawValue]
    }

    /// Adds another reactor's figures (for totals).
    public mutating func add(_ other: ReactorStats) {
        connectionsOpen += other.connectionsOpen
        connectionsServed &+= other.connectionsServed
        refusedAtLimit &+= other.refusedAtLimit
        refusedPerClient &+= other.refusedPerClient
        refusedOutOfDescriptors &+= other.refusedOutOfDescriptors
        acceptPauses &+= other.acceptPauses
        requests &+= other.requests
        unknownRequests &+= other.unknownRequests
        tooLongRequests &+= other.tooLongRequests
        bytesReceived &+= other.bytesReceived
        bytesSent &+= other.bytesSent
        for index in closed.indices { closed[index] &+= other.closed[index] }
        proxyHeadersAccepted &+= other.proxyHeadersAccepted
        proxyRejectedUntrusted &+= other.proxyRejectedUntrusted
        proxyRejectedTimeout &+= other.proxyRejectedTimeout
        proxyRejectedIncomplete &+= other.proxyRejectedIncomplete
        for index in proxyRejectedInvalid.indices { proxyRejectedInvalid[index] &+= other.proxyRejectedInvalid[index] }
    }
}

/// Why a connection was closed (logged, and counted by reason).
public enum CloseReason: String, Sendable {
    case clientClosed = "closed by client"
    case idleTimeout = "idle timeout"
    case requestTimeout = "request timeout"
    case bufferLimit = "buffer memory limit"
    case requestTooLong = "request too long"
    case reset = "connection reset"
    case readFailed = "read failed"
    case sendFailed = "send failed"
    case epollFailed = "epoll_ctl failed"
    case shuttingDown = "shutting down"
    case drainTimeout = "drain timeout"
    case reactorStopped = "reactor stopped"
    case proxyRejected = "PROXY header rejected"

    /// The counters close reasons are kept in: the failures of a system call share one.
    public enum Counted: Int, CaseIterable, Sendable {
        case client, idleTimeout, requestTimeout, tooLong, reset, error, bufferLimit, drain, drainTimeout, stopped, proxyRejected

        /// The name in `zen stats`, after `closed_`.
        public var name: String {
            switch self {
            case .client: "client"
            case .idleTimeout: "idle_timeout"
            case .requestTimeout: "request_timeout"
            case .tooLong: "too_long"
            case .reset: "reset"
            case .error: "error"
            case .bufferLimit: "buffer_limit"
            case .drain: "drain"
            case .drainTimeout: "drain_timeout"
            case .stopped: "stopped"
            case .proxyRejected: "proxy_rejected"
            }
        }
    }

    /// The counter this reason adds to.
    var counted: Counted {
        switch self {
        case .clientClosed: .client
        case .idleTimeout: .idleTimeout
        case .requestTimeout: .requestTimeout
        case .bufferLimit: .bufferLimit
        case .requestTooLong: .tooLong
        case .reset: .reset
        case .readFailed, .sendFailed, .epollFailed: .error
        case .shuttingDown: .drain
        case .drainTimeout: .drainTimeout
        case .reactorStopped: .stopped
        case .proxyRejected: .proxyRejected
        }
    }
}
