import LinuxIO

/// A connection's readiness and lifecycle flags: the state machine as data you can print.
struct ConnectionState: OptionSet, CustomStringConvertible {
    let rawValue: UInt16

    /// The kernel may hold unread bytes (an input edge arrived and no read has come up short since).
    static let readable = ConnectionState(rawValue: 1 << 0)
    /// The kernel may take more bytes (no `EAGAIN` on send since the last output edge).
    static let writable = ConnectionState(rawValue: 1 << 1)
    /// `EPOLLRDHUP` seen: once a read comes up short, no more bytes will arrive.
    static let peerClosed = ConnectionState(rawValue: 1 << 2)
    /// All input has been read; answer what is owed, then close.
    static let endOfInput = ConnectionState(rawValue: 1 << 3)
    /// `EPOLLOUT` is in the epoll mask (armed after the first `EAGAIN` on send).
    static let outputArmed = ConnectionState(rawValue: 1 << 4)
    /// The send buffer cannot take the next answer: neither answer nor read until it drains.
    static let paused = ConnectionState(rawValue: 1 << 5)
    /// On the ready list, to be served again after the others.
    static let queued = ConnectionState(rawValue: 1 << 6)
    /// A final error answer is being flushed; then the write side is shut.
    static let closing = ConnectionState(rawValue: 1 << 7)
    /// Write side shut after an error; input is discarded until EOF or the linger timeout,
    /// so closing with unread input does not turn into a reset that destroys the error answer.
    static let lingering = ConnectionState(rawValue: 1 << 8)
    /// Accepted on a PROXY listener and its header is not yet whole: nothing is answered.
    static let awaitingProxyHeader = ConnectionState(rawValue: 1 << 9)

    var description: String {
        let names = ["readable", "writable", "peerClosed", "endOfInput", "outputArmed",
                     "paused", "queued", "closing", "lingering", "awaitingProxyHeader"]
        let set = names.indices.filter { rawValue & (1 << $0) != 0 }.map { names[$0] }
        return "[" + set.joined(separator: ",") + "]"
    }
}

/// The timeout lists: each kind is a list of its own. A connection is on at most one of
/// the idle and linger lists, and, while it holds a partial request, also on the request list.
enum TimeoutKind: UInt8 {
    case none = 0
    /// The idle timeout from the last activity (during a drain: the quiet grace).
    case idle = 1
    /// The linger timeout after an error answer.
    case linger = 2
    /// The deadline for a partial request to complete, from its first byte.
    case request = 3
    /// The deadline for a PROXY header to arrive, from the accept (a connection awaiting
    /// its header has no request yet: this list shares the request list's links).
    case proxyHeader = 4
}

/// A connection's place in one timeout list.
struct ListLinks {
    var previous: Int32 = -1
    var next: Int32 = -1
}

/// One slot of the connection table: everything zend knows about one client.
///
/// Plain data (no references), so slots live in one raw array and the hot path
/// touches them in place without reference counting.
struct Connection {
    /// The socket; `FileDescriptor.closed` marks a free slot.
    var fd = FileDescriptor.closed
    /// Bumped at every close; epoll tokens carry it, so an event for a closed
    /// connection is never applied to a new one that reused the fd or the slot.
    var generation: UInt32 = 0
    var state: ConnectionState = []
    /// The idle or linger list the connection is on (`.none` for neither).
    var timeout: TimeoutKind = .none
    /// Whether it is on the request list (it holds a partial request), or on the PROXY
    /// header list (`state` says `awaitingProxyHeader`): the two share `requestLinks`.
    var requestPending = false
    var id: UInt64 = 0

    /// Received bytes not yet answered.
    var input = BufferWindow()
    /// Answers not yet sent.
    var output = BufferWindow()

    var requests: UInt64 = 0
    var bytesReceived: UInt64 = 0
    var bytesSent: UInt64 = 0
    /// The last byte in or out (for the idle timeout).
    var lastActive = MonotonicInstant.zero
    /// When the connection joined the linger list (its timeout counts from then).
    var lingerSince = MonotonicInstant.zero
    /// When the first byte of its partial request arrived (the request timeout counts from then).
    var requestSince = MonotonicInstant.zero
    var opened = MonotonicInstant.zero

    var timeoutLinks = ListLinks()
    var requestLinks = ListLinks()

    /// The client: the connection's peer, or the one its PROXY header named.
    var peer = PeerAddress()
    /// The balancer that sent the PROXY header (empty for a direct client).
    var proxy = PeerAddress()

    var isOpen: Bool { fd.rawValue >= 0 }
}

/// The connection table: slots for up to `capacity` connections, reused through a free
/// list, plus the timeout lists threaded through them.
///
/// Each timeout list is ordered by its key (last activity for the idle list, the time of
/// joining for the others): entries join at the tail with the latest key, so the head
/// is always the next to expire and the loop needs one timer, not one per connection.
struct ConnectionTable: ~Copyable {
    let capacity: Int
    /// The slots; index with `slots[i]` to touch a connection in place.
    let slots: UnsafeMutablePointer<Connection>
    private var initialized = 0
    private var freeSlots: [Int32] = []
    /// Open connections.
    private(set) var count = 0
    /// How close two activities may be to count as one, in nanoseconds.
    let resolution: Int64

    private var idle = ListEnds()
    private var linger = ListEnds()
    private var request = ListEnds()
    private var proxyHeader = ListEnds()

    private struct ListEnds {
        var head: Int32 = -1
        var tail: Int32 = -1
    }

    init(capacity: Int, resolution: Int64 = 1_000_000) {
        self.capacity = max(capacity, 1)
        self.resolution = resolution
        // Virtual memory only: pages are touched as slots are first used.
        slots = .allocate(capacity: self.capacity)
    }

    deinit {
        slots.deinitialize(count: initialized)
        slots.deallocate()
    }

    /// The resolution for an idle timeout: a thousandth of it, from 1 to 10 ms (a 60 s
    /// timeout may fire 10 ms early, a 0.3 s one 1 ms early; the drain's quiet grace
    /// shares it).
    static func resolution(for idleTimeout: Duration) -> Int64 {
        min(max(idleTimeout.nanoseconds / 1000, 1_000_000), 10_000_000)
    }

    /// A free slot, with its generation already advanced past any earlier use; nil when full.
    mutating func allocate() -> Int32? {
        let index: Int32
        if let reused = freeSlots.popLast() {
            index = reused
        } else if initialized < capacity {
            index = Int32(initialized)
            (slots + initialized).initialize(to: Connection())
            initialized += 1
        } else {
            return nil
        }
        count += 1
        return index
    }

    /// Returns a closed connection's slot; it must be off every timeout list.
    mutating func release(_ index: Int32) {
        precondition(slots[Int(index)].timeout == .none && !slots[Int(index)].requestPending,
                     "remove from its timeout lists first")
        let generation = slots[Int(index)].generation &+ 1
        slots[Int(index)] = Connection()
        slots[Int(index)].generation = generation
        freeSlots.append(index)
        count -= 1
    }

    /// The first connection on a timeout list (the next to expire), or nil.
    func head(_ kind: TimeoutKind) -> Int32? {
        let index: Int32
        switch kind {
        case .none: index = -1
        case .idle: index = idle.head
        case .linger: index = linger.head
        case .request: index = request.head
        case .proxyHeader: index = proxyHeader.head
        }
        return index >= 0 ? index : nil
    }

    /// Records activity at `now`: a connection on the idle list moves to its tail.
    ///
    /// Activity within `resolution` of the last recorded one is not recorded again: a busy
    /// connection then costs one comparison per read instead of a move to the tail, and a
    /// timeout still fires within `resolution` of exact (never late, at most that early).
    @inline(__always)
    mutating func touch(_ index: Int32, now: MonotonicInstant) {
        let slot = slots + Int(index)
        if now.nanoseconds &- slot.pointee.lastActive.nanoseconds < resolution { return }
        slot.pointee.lastActive = now
        if slot.pointee.timeout == .idle, idle.tail != index { wait(index, for: .idle, now: now) }
    }

    /// Puts the connection at the tail of `kind`'s list, joining at `now`. Joining the idle
    /// or linger list leaves the other; on the idle list `now` counts as activity.
    mutating func wait(_ index: Int32, for kind: TimeoutKind, now: MonotonicInstant) {
        let slot = slots + Int(index)
        switch kind {
        case .none:
            unlinkTimeout(index)
        case .idle, .linger:
            unlinkTimeout(index)
            if kind == .idle { slot.pointee.lastActive = now } else { slot.pointee.lingerSince = now }
            slot.pointee.timeout = kind
            if kind == .idle {
                Self.append(index, to: &idle, in: slots, links: \.timeoutLinks)
            } else {
                Self.append(index, to: &linger, in: slots, links: \.timeoutLinks)
            }
        case .request, .proxyHeader:
            endRequest(index)
            slot.pointee.requestSince = now
            slot.pointee.requestPending = true
            if kind == .request {
                Self.append(index, to: &request, in: slots, links: \.requestLinks)
            } else {
                Self.append(index, to: &proxyHeader, in: slots, links: \.requestLinks)
            }
        }
    }

    /// Takes the connection off the request list (or the PROXY header list), if it is on it.
    mutating func endRequest(_ index: Int32) {
        guard slots[Int(index)].requestPending else { return }
        if slots[Int(index)].state.contains(.awaitingProxyHeader) {
            Self.unlink(index, from: &proxyHeader, in: slots, links: \.requestLinks)
        } else {
            Self.unlink(index, from: &request, in: slots, links: \.requestLinks)
        }
        slots[Int(index)].requestPending = false
    }

    /// Takes the connection off every timeout list.
    mutating func unlink(_ index: Int32) {
        unlinkTimeout(index)
        endRequest(index)
    }

    private mutating func unlinkTimeout(_ index: Int32) {
        switch slots[Int(index)].timeout {
        case .idle: Self.unlink(index, from: &idle, in: slots, links: \.timeoutLinks)
        case .linger: Self.unlink(index, from: &linger, in: slots, links: \.timeoutLinks)
        case .none, .request, .proxyHeader: break
        }
        slots[Int(index)].timeout = .none
    }

    private static func append(_ index: Int32, to list: inout ListEnds, in slots: UnsafeMutablePointer<Connection>,
                               links: WritableKeyPath<Connection, ListLinks>) {
        slots[Int(index)][keyPath: links] = ListLinks(previous: list.tail, next: -1)
        if list.tail >= 0 { slots[Int(list.tail)][keyPath: links].next = index } else { list.head = index }
        list.tail = index
    }

    private static func unlink(_ index: Int32, from list: inout ListEnds, in slots: UnsafeMutablePointer<Connection>,
                               links: WritableKeyPath<Connection, ListLinks>) {
        let (previous, next) = (slots[Int(index)][keyPath: links].previous, slots[Int(index)][keyPath: links].next)
        if previous >= 0 { slots[Int(previous)][keyPath: links].next = next } else { list.head = next }
        if next >= 0 { slots[Int(next)][keyPath: links].previous = previous } else { list.tail = previous }
        slots[Int(index)][keyPath: links] = ListLinks()
    }

    /// Indices of every open connection (for drains and shutdown; not a hot path).
    var openIndices: [Int32] {
        (0 ..< initialized).compactMap { slots[$0].isOpen ? Int32($0) : nil }
    }
}
